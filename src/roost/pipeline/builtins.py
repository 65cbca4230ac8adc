"""Built-in pipeline tasks: materialize, train, evaluate, compare (champion/challenger gate), register, promote,
notebook. Outputs are JSON-friendly dicts so they travel through Airflow XComs unchanged."""

from __future__ import annotations

from typing import Any

from roost.errors import RoostError
from roost.pipeline.dsl import task


@task(name="materialize")
def materialize(start: str | None = None, end: str | None = None) -> dict:
    """Load the latest feature values into the online store (incremental from the watermark)."""
    from roost.features import materialize as mat

    res = mat(start=start, end=end)
    return {"views": [r.as_dict() if hasattr(r, "as_dict") else str(r) for r in res]}


@task(name="train")
def train(config: Any, overrides: list | None = None, register: str | None = None) -> dict:
    """Train from a config (file path or dict) and return run id, metrics and the registered version."""
    from roost.train.api import train as do_train

    ov = list(overrides or [])
    if register:
        ov.append(f"register={register}")
    res = do_train(config, ov, progress=False)
    return {
        "run_id": res.run_id,
        "metrics": dict(res.metrics),
        "model": res.model_name,
        "version": res.version,
        "package": str(res.package_path),
    }


def _ref(model: Any) -> str:
    """A model reference from a string or a train/evaluate output dict."""
    if isinstance(model, dict):
        if not model.get("model") or model.get("version") is None:
            raise RoostError("the upstream task registered no model", hint="give the train task `register: NAME`")
        return f"{model['model']}/{model['version']}"
    return str(model)


def _score(ref: str, data: str, label: str) -> dict:
    import numpy as np

    import roost
    from roost.datasets import load
    from roost.train import metrics as M

    pred = roost.load_model(ref)
    df = load(data)
    if label not in df.columns:
        raise RoostError(f"label {label!r} not in {data}", hint=f"columns: {', '.join(map(str, df.columns))}")
    y = df[label].to_numpy()
    p = pred.predict(df)
    out = (
        M.binary_metrics(y, p)
        if pred.task == "binary"
        else (M.multiclass_metrics(y, p) if pred.task == "multiclass" else M.regression_metrics(y, p))
    )
    return {k: float(v) for k, v in out.items() if np.isscalar(v)}


@task(name="evaluate")
def evaluate(model: Any, data: str, label: str) -> dict:
    """Score a model (`name@alias`, `name/3`, or a train output) on a labelled table."""
    ref = _ref(model)
    name, _, ver = ref.partition("/")
    return {
        "model": name if ver.isdigit() else model,
        "version": int(ver) if ver.isdigit() else None,
        "data": data,
        "label": label,
        "metrics": _score(ref, data, label),
    }


@task(name="compare")
def compare(
    challenger: dict, champion: str | None, metric: str, margin: float = 0.0, higher_is_better: bool = True
) -> dict:
    """Champion/challenger gate: the challenger must beat the champion by `margin` on the same evaluation data."""
    ch = float(challenger["metrics"][metric])
    champ_value, champ_version = None, None
    if champion:
        import roost

        try:
            v = roost.resolve_model(champion)
            champ_version = v.version
        except RoostError:
            v = None  # no champion yet: the challenger wins
        if v is not None:
            if challenger.get("data"):
                champ_value = _score(f"{v.name}/{v.version}", challenger["data"], challenger["label"])[metric]
            else:
                champ_value = ((v.meta or {}).get("metrics") or {}).get(metric)
    if champ_value is None:
        ok = True
    else:
        ok = ch >= champ_value + margin if higher_is_better else ch <= champ_value - margin
    return {
        "promote": bool(ok),
        "metric": metric,
        "challenger": ch,
        "champion": champ_value,
        "champion_version": champ_version,
        "margin": margin,
        "model": challenger.get("model"),
        "version": challenger.get("version"),
    }


@task(name="register")
def register(run_id: str, name: str, path: str = "model") -> dict:
    """Register a run's model package as a new version."""
    import roost

    v = roost.register_model(run_id, name, path)
    return {"model": v.name, "version": v.version}


@task(name="promote")
def promote(gate: dict, alias: str, name: str | None = None) -> dict:
    """Move `name@alias` to the gated version when the gate says promote."""
    import roost

    name = name or gate.get("model")
    if not gate.get("promote"):
        return {"promoted": False, "model": name, "alias": alias, "reason": "gate refused"}
    roost.set_alias(name, int(gate["version"]), alias)
    return {"promoted": True, "model": name, "alias": alias, "version": int(gate["version"])}


@task(name="notebook")
def notebook(path: str, params: dict | None = None, out: str | None = None) -> dict:
    """Execute a notebook with papermill, recorded as a run."""
    from roost.notebook import run_notebook

    res = run_notebook(path, params or {}, out)
    return {k: str(v) for k, v in dict(res).items()}


BUILTINS = {t.name: t for t in (materialize, train, evaluate, compare, register, promote, notebook)}
