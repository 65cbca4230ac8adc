"""`roost models import PATH --name N`: bring a model file from any framework into the repository;
`roost models package RUN`: build the ONNX package of a model autolog logged for packaging on first need."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `models import` to the models group."""
    from roost.cli.runs import models_app

    @models_app.command("package")
    def models_package(
        ref: str = typer.Argument(
            ..., metavar="RUN", help="run id (or prefix), runs:/RUN/PATH, NAME@ALIAS or a folder"
        ),
        path: str = typer.Option("model", "--path", help="the run's artifact holding the model"),
        allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="keep a model whose ONNX parity > 1e-4"),
        as_json: bool = typer.Option(False, "--json", help="print the package's roost-model.yaml as JSON"),
    ) -> None:
        """Build (once) the ONNX package of a model logged for packaging on first use: converted, checked against
        the logged native model on the logged sample. roost.load_model and `roost serve` do it by themselves."""
        from roost.cli.output import echo, print_json
        from roost.model_import.deferred import locate, package_model

        meta = package_model(ref, path, allow_mismatch=allow_mismatch)
        if as_json:
            print_json(meta)
            return
        parity = meta.get("parity_max_abs_diff")
        echo(
            f"packaged {locate(ref, path)}: {meta.get('model_type')} ({meta.get('task')}), "
            f"parity max |diff| {parity:.3g} on {meta.get('parity_rows')} rows"
            if isinstance(parity, float)
            else f"packaged {locate(ref, path)}: {meta.get('model_type')} ({meta.get('task')})"
        )

    @models_app.command("import")
    def models_import(
        path: Path = typer.Argument(..., help=".onnx, .pkl/.joblib, LightGBM .txt, XGBoost .json/.ubj, .pt/.pt2"),
        name: str | None = typer.Option(None, "--name", help="registered model name"),
        sample: str | None = typer.Option(None, "--sample", help="rows to check parity on (path or sklearn:…)"),
        label: str | None = typer.Option(None, "--label", help="column of the sample to drop (the target)"),
        task: str | None = typer.Option(None, "--task", help="binary | multiclass | regression (torch/onnx)"),
        trust_pickle: bool = typer.Option(False, "--trust-pickle", help="allow loading a pickle (runs its code)"),
        allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="keep a model whose ONNX parity > 1e-4"),
        rows: int = typer.Option(200, "--rows", min=1, help="sample rows used for the parity check"),
        as_json: bool = typer.Option(False, "--json", help="print the registered version as JSON"),
    ) -> None:
        """Convert a model file to a roost package, check parity on a sample, register a new version."""
        from roost.cli.output import print_json, print_table
        from roost.errors import RoostError
        from roost.model_import.log import load_model_file, log_model

        if not name:
            raise RoostError("which name?", hint="pass --name NAME (the registered model name)")
        if task is not None and task not in ("binary", "multiclass", "regression"):
            raise RoostError(f"unknown task {task!r}", hint="one of binary, multiclass, regression")
        model = load_model_file(path, trust_pickle=trust_pickle)
        df = None
        if sample is not None:
            from roost.datasets import load

            df = load(sample)
            if label and label not in df.columns:
                raise RoostError(
                    f"--label {label!r} is not a column of the sample {sample}",
                    hint=f"its columns: {', '.join(map(str, list(df.columns)[:12]))}",
                )
            for col in [label, "target"] if label else ["target"]:
                if col in df.columns and (label or col not in getattr(model, "feature_names_in_", [])):
                    df = df.drop(columns=[col])
            df = df.head(rows)
        elif not isinstance(model, (bytes, bytearray)):
            raise RoostError(
                "a --sample is required to convert this model and check its parity",
                hint="pass a Parquet/CSV file with the model's input columns",
            )
        v = log_model(model, name=name, sample_input=df, task=task, allow_mismatch=allow_mismatch, source=path.name)
        if as_json:
            print_json(v.to_dict())
            return
        meta = v.meta or {}
        print_table(
            f"registered {v.name}/{v.version}",
            ["field", "value"],
            [
                ["framework", meta.get("framework")],
                ["model", meta.get("model_type")],
                ["task", meta.get("task")],
                ["inputs", len(meta.get("features") or [])],
                ["parity max |diff|", meta.get("parity_max_abs_diff")],
                ["run", v.run_id],
            ],
        )
