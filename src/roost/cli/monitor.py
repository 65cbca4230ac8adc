"""`roost monitor` (profile, drift, check, analyze) and `roost fairness`, `roost explain`, `roost card`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from roost.errors import RoostError

REF_HELP = "Reference: data file/glob/data set, profile .json, run id, or model (name@alias, name/3)."
CUR_HELP = "Current: data file/glob/data set, or a serving request-log folder (Parquet under YYYY-MM-DD/)."


def _status(message: str) -> Any:
    """A spinner on stderr (stdout stays clean for --json)."""
    from rich.console import Console

    return Console(stderr=True).status(message)


def _split(values: list[str] | None) -> list[str]:
    """Repeatable and comma-separated options as one list."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _load(spec: str) -> Any:
    """Rows of a data source (files, data sets, request-log folders)."""
    from roost.monitor.sources import load_source

    src = load_source(spec)
    if src.frame is None:
        raise RoostError(f"{spec} is a profile, not rows", hint="pass a data file")
    return src.frame


def profile(
    data: str = typer.Argument(..., help="Data: file/glob, data set (engagement:ROWS), or request-log folder."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the profile JSON here."),
    as_json: bool = typer.Option(False, "--json", help="Print the column summary as JSON."),
) -> None:
    """Profile every column: counts, missing, min/max/mean/std, quantiles, histogram, top values, cardinality."""
    from roost.cli.output import echo, print_json, print_table
    from roost.monitor.profile import profile_frame

    with _status(f"profiling {data} ..."):
        prof = profile_frame(_load(data), source=data)
        if out is not None:
            prof.save(out)
    rows = prof.summary()
    if as_json:
        print_json({"rows": prof.rows, "out": str(out) if out else None, "columns": rows})
        return
    print_table(f"{data}: {prof.rows:,} rows", list(rows[0]) if rows else [], [list(r.values()) for r in rows])
    if out is not None:
        echo(f"[dim]profile written to[/] {out}")


def _drift(
    reference: str,
    current: str,
    model: str | None,
    since: str | None,
    until: str | None,
    features: list[str] | None,
    method: str,
    threshold: float | None,
    drift_share: float,
) -> Any:
    """Compute a drift report from CLI options."""
    from roost.monitor.api import drift

    thresholds = {} if threshold is None else dict.fromkeys(("ks", "chi2", "wasserstein", "js", "psi"), threshold)
    with _status("computing drift ..."):
        return drift(
            reference,
            current,
            features=_split(features) or None,
            method=method,
            thresholds=thresholds,
            drift_share=drift_share,
            model=model,
            since=since,
            until=until,
        )


def _writable(html: Path | None, prom: Path | None) -> None:
    """Fail before the work when --html or --prom cannot be written."""
    from roost.monitor.html_report import check_writable

    for path, option in ((html, "--html"), (prom, "--prom")):
        if path is not None:
            check_writable(path, option)


def _record(do: bool | None, what: str, fn: Any, *args: Any, **kw: Any) -> str:
    """Record a check as a monitor run: a note saying which run, or why none (no workspace, --no-record)."""
    if do is False:
        return ""
    try:
        return f"recorded as monitor run {fn(*args, **kw)[:8]} (experiment {_experiment(kw.get('model'))})"
    except RoostError as exc:
        if do:  # asked for explicitly: a failure is an error
            raise
        return f"{what} not recorded ({exc.message}); pass --no-record to skip recording"


def _views(model: str | None, version: str | None = None) -> list[str]:
    """The feature views the model's registered version read in training ([] when unknown)."""
    from roost.lineage import model_views

    return model_views(model, version)


def _experiment(model: str | None) -> str:
    from roost.monitor.record import experiment_for

    return experiment_for(model)


def _emit(report: Any, html: Path | None, prom: Path | None, record: bool | None, model: str | None) -> None:
    """Write the optional outputs of a drift report, and record it as a monitor run (unless --no-record)."""
    from roost.monitor import alerts
    from roost.monitor.html_report import drift_html, write
    from roost.monitor.record import record_drift

    page = drift_html(report) if html is not None or record is not False else None
    if html is not None:
        write(page, html, "--html")  # type: ignore[arg-type]
    if prom is not None:
        alerts.write_prom(report, prom, model or "")
    note = _record(record, "drift", record_drift, report, model=model, views=_views(model), html=page)
    if note:
        report.notes.append(note)


_OPTS: dict[str, Any] = {
    "reference": typer.Option(..., "--reference", "-r", help=REF_HELP),
    "current": typer.Option(..., "--current", "-c", help=CUR_HELP),
    "model": typer.Option(None, "--model", help="Model folder inside a request-log directory."),
    "since": typer.Option(None, "--since", help="Request logs from this UTC time (e.g. 2024-01-08)."),
    "until": typer.Option(None, "--until", help="Request logs before this UTC time."),
    "features": typer.Option(None, "--features", help="Features to compare (repeat or comma-separate)."),
    "method": typer.Option("auto", "--method", help="auto (Evidently's choice), ks, wasserstein, psi, js, chi2."),
    "threshold": typer.Option(None, "--threshold", help="Threshold for the method [default: the method's]."),
    "drift_share": typer.Option(
        0.5, "--drift-share", min=0.0, max=1.0, help="Share of drifted features that makes the dataset drifted."
    ),
    "html": typer.Option(None, "--html", help="Write the HTML report here."),
    "prom": typer.Option(None, "--prom", help="Write Prometheus gauges here (node_exporter textfile collector)."),
    "record": typer.Option(
        None,
        "--record/--no-record",
        "--log",
        help="Record the check as a monitor run (experiment monitor/MODEL; charted in the UI) [default: when in a "
        "workspace].",
    ),
    "as_json": typer.Option(False, "--json", help="Print the report as JSON."),
}


def drift_cmd(
    reference: str = _OPTS["reference"],
    current: str = _OPTS["current"],
    model: str | None = _OPTS["model"],
    since: str | None = _OPTS["since"],
    until: str | None = _OPTS["until"],
    features: list[str] | None = _OPTS["features"],
    method: str = _OPTS["method"],
    threshold: float | None = _OPTS["threshold"],
    drift_share: float = _OPTS["drift_share"],
    html: Path | None = _OPTS["html"],
    prom: Path | None = _OPTS["prom"],
    record: bool | None = _OPTS["record"],
    as_json: bool = _OPTS["as_json"],
) -> None:
    """Per-feature drift (PSI, KS, chi², Jensen–Shannon, Wasserstein) with thresholds and a verdict."""
    from roost.cli.output import echo, print_json, print_table

    _writable(html, prom)
    rep = _drift(reference, current, model, since, until, features, method, threshold, drift_share)
    _emit(rep, html, prom, record, model)
    if as_json:
        print_json(rep.to_dict())
        return
    rows = [
        (
            f.feature,
            f.kind,
            f.status,
            f.method,
            f.score,
            f.threshold,
            f.stats.get("psi"),
            f.stats.get("ks_pvalue"),
            f.stats.get("js"),
            "; ".join(f.notes),
        )
        for f in rep.features
    ]
    print_table(
        f"{rep.reference} → {rep.current}",
        ["feature", "kind", "status", "method", "score", "threshold", "PSI", "KS p", "JS", "notes"],
        rows,
    )
    for n in rep.notes:
        echo(f"[dim]note:[/] {n}")
    echo(("[bold red]" if rep.dataset_drift else "[bold green]") + rep.verdict + "[/]")
    if html is not None:
        echo(f"[dim]report:[/] {html}")


def check(
    reference: str = _OPTS["reference"],
    current: str = _OPTS["current"],
    model: str | None = _OPTS["model"],
    since: str | None = _OPTS["since"],
    until: str | None = _OPTS["until"],
    features: list[str] | None = _OPTS["features"],
    method: str = _OPTS["method"],
    threshold: float | None = _OPTS["threshold"],
    drift_share: float = _OPTS["drift_share"],
    html: Path | None = _OPTS["html"],
    prom: Path | None = _OPTS["prom"],
    record: bool | None = _OPTS["record"],
    as_json: bool = _OPTS["as_json"],
) -> None:
    """Exit 1 when the dataset drifted, 0 when not (2 on bad input): for cron, CI and alerting."""
    from roost.cli.output import echo, print_json
    from roost.monitor.alerts import exit_code

    _writable(html, prom)
    rep = _drift(reference, current, model, since, until, features, method, threshold, drift_share)
    _emit(rep, html, prom, record, model)
    if as_json:
        print_json(
            {
                "verdict": rep.verdict,
                "dataset_drift": rep.dataset_drift,
                "share": rep.share,
                "drifted": [f.feature for f in rep.tested if f.drifted],
            }
        )
    else:
        echo(rep.verdict)
    raise typer.Exit(exit_code(rep))


def analyze(
    model: str | None = typer.Argument(None, help="A model to score --data with: name@alias, name/VERSION, folder."),
    run: str | None = typer.Option(None, "--run", help="A run: analyse its stored evaluation set."),
    data: str | None = typer.Option(None, "--data", "-d", help="Labelled data, or request logs with --labels."),
    labels: str | None = typer.Option(None, "--labels", help="Delayed labels to join to request logs."),
    on: list[str] | None = typer.Option(None, "--on", help="Join columns for --labels [_request_id,_row]."),
    label: str | None = typer.Option(None, "--label", "-l", help="Label column [from the model]."),
    score: str | None = typer.Option(None, "--score", help="Score column [pred_probability/pred_prediction]."),
    slices: list[str] | None = typer.Option(None, "--slice", help="Features to slice by [the first 12]."),
    bins: int = typer.Option(5, "--bins", min=2, help="Quantile bins for numeric slices."),
    threshold: float = typer.Option(0.5, "--threshold", help="Decision threshold (binary)."),
    html: Path | None = typer.Option(None, "--html", help="Write the HTML report here."),
    record: bool | None = _OPTS["record"],
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON."),
) -> None:
    """Model analysis: metrics by slice, calibration curve, score distribution, confusion matrix."""
    from rich.console import Console
    from rich.markup import escape

    from roost.cli.output import echo, print_json, print_table
    from roost.monitor.analysis import analyze as run_analysis
    from roost.monitor.api import analysis_frame
    from roost.monitor.html_report import analysis_html, write
    from roost.monitor.overlap import training_overlap

    with _status("analysing ..."):
        frame, source, label = analysis_frame(run, model, data, labels, _split(on) or None, label)
        an = run_analysis(
            frame, label, score, features=_split(slices) or None, bins=bins, threshold=threshold, source=source
        )
        overlap = training_overlap(model, data) if model is not None and data is not None and labels is None else None
    if overlap is not None:
        an.training_overlap = overlap.to_dict()
        if overlap.overlaps:  # loud: on stderr whatever the output format, and in the report's notes
            an.notes.append(overlap.message())
            Console(stderr=True, soft_wrap=True).print(f"[bold red]warning:[/] {escape(overlap.message())}")
    page = analysis_html(an) if html is not None or record is not False else None
    if html is not None and page is not None:
        write(page, html)
    if model is not None or run is not None:
        from roost.monitor.record import record_analysis

        name, _, ver = (model or "").partition("/")
        note = _record(
            record,
            "analysis",
            record_analysis,
            an,
            model=name.split("@")[0] or None,
            version=ver or None,
            views=_views(name.split("@")[0] or None, ver or None),
            threshold=threshold,
            html=page,
        )
        if note:  # on stderr: the analysis (and its JSON) is the library's, unchanged
            Console(stderr=True, soft_wrap=True).print(f"[dim]note:[/] {escape(note)}")
    if as_json:
        print_json(an.to_dict())
        return
    print_table(f"{an.task} model · {an.rows:,} rows · {source}", ["metric", "value"], list(an.overall.items()))
    for feat, rows in list(an.slices.items())[:4]:
        keys = [k for k in rows[0] if k != "slice"] if rows else []
        print_table(f"by {feat}", ["slice", *keys], [[r["slice"], *[r[k] for k in keys]] for r in rows])
    for n in an.notes:
        echo(f"[dim]note:[/] {n}")
    if html is not None:
        echo(f"[dim]report:[/] {html}")


def fairness_cmd(
    model: str | None = typer.Argument(None, help="A model package, name@alias or name/VERSION."),
    sensitive: list[str] = typer.Option(
        [], "--sensitive", help="Sensitive column(s); several = each alone and their intersection."
    ),
    run: str | None = typer.Option(None, "--run", help="A run: its model, and its evaluation set by default."),
    data: str | None = typer.Option(None, "--data", "-d", help="Data with the sensitive columns (and label)."),
    label: str | None = typer.Option(None, "--label", "-l", help="Label column [from the model]."),
    score: str | None = typer.Option(None, "--score", help="Use this score column instead of a model."),
    threshold: float = typer.Option(0.5, "--threshold", help="Decision threshold on the score."),
    pos_label: str | None = typer.Option(None, "--pos-label", help="The positive label value."),
    min_group: int = typer.Option(30, "--min-group", help="Warn about groups smaller than this."),
    html: Path | None = typer.Option(None, "--html", help="Write the HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Group fairness: per-group rates, demographic parity, equalised odds, intersectional groups."""
    from roost.cli.output import echo, print_json, print_table
    from roost.monitor.html_report import fairness_html, write
    from roost.responsible.api import fairness

    if not sensitive:
        raise RoostError("which columns are sensitive?", hint="pass --sensitive COLUMN (repeatable)")

    with _status("computing group metrics ..."):
        rep = fairness(
            data,
            _split(sensitive),
            label=label,
            model=model,
            run=run,
            score=score,
            threshold=threshold,
            pos_label=pos_label,
            min_group=min_group,
        )
    if html is not None:
        write(fairness_html(rep), html)
    if as_json:
        print_json(rep.to_dict())
        return
    for t in rep.tables:
        keys = [k for k in t.metrics if k != "positives"]
        print_table(
            " × ".join(t.columns),
            ["group", *keys],
            [[" / ".join(g), *[t.metrics[k][i] for k in keys]] for i, g in enumerate(t.groups)],
        )
        echo("  " + ", ".join(f"{k.replace('_', ' ')} [bold]{v:.4g}[/]" for k, v in t.disparities().items()))
    for w in rep.warnings:
        echo(f"[yellow]warning:[/] {w}")


def explain_cmd(
    model: str = typer.Argument(..., help="Model package folder, name@alias or name/VERSION."),
    data: str = typer.Option(..., "--data", "-d", help="Rows to explain (the model's input columns)."),
    rows: int = typer.Option(100, "--rows", "-n", min=1, help="Explain the first N rows."),
    method: str = typer.Option("auto", "--method", help="auto, tree, linear, ig or permutation."),
    background: int = typer.Option(50, "--background", min=1, help="Background rows (SHAP, IG baseline)."),
    row: int | None = typer.Option(None, "--row", help="Show the attributions of this row."),
    html: Path | None = typer.Option(None, "--html", help="Write the HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print importance and rows as JSON."),
) -> None:
    """Feature attributions: TreeSHAP, linear SHAP, Integrated Gradients or permutation SHAP."""
    from roost.cli.output import echo, print_json, print_table
    from roost.monitor.html_report import explanation_html, write
    from roost.responsible.attributions import explain

    with _status("explaining ..."):
        exp = explain(model, _load(data), rows=rows, background=background, method=method)
    if html is not None:
        write(explanation_html(exp), html)
    if as_json:
        print_json(exp.to_dict())
        return
    print_table(f"{exp.method} · {exp.space}", ["feature", "mean |attribution|"], exp.importance())
    if row is not None:
        if not 0 <= row < len(exp.values):
            raise RoostError(f"--row {row} is outside the {len(exp.values)} explained rows", hint="pass --rows")
        print_table(
            f"row {row}: base {exp.base[row]:.4g} → {exp.output[row]:.4g}",
            ["feature", "value", "attribution"],
            exp.row(row),
        )
    for n in exp.notes:
        echo(f"[dim]note:[/] {n}")


def card_cmd(
    model: str = typer.Argument(..., help="Registered model: name@alias, name/VERSION or name."),
    out: Path = typer.Option(..., "--out", "-o", help="card.html or card.md"),
    data: str | None = typer.Option(None, "--data", "-d", help="Labelled evaluation data [the run's]."),
    label: str | None = typer.Option(None, "--label", "-l", help="Label column [from the model]."),
    sensitive: list[str] | None = typer.Option(None, "--sensitive", help="Sensitive column(s)."),
    current: str | None = typer.Option(None, "--current", "-c", help="Current data or logs for drift status."),
    threshold: float | None = typer.Option(None, "--threshold", help="Decision threshold the model is used at."),
    as_json: bool = typer.Option(False, "--json", help='Print {"path", "missing"} as JSON.'),
) -> None:
    """Write a model card: intended use, data, metrics, slices, fairness, explanations, drift, lineage."""
    from roost.cli.output import echo
    from roost.responsible.card import build_card, write_card

    with _status(f"assembling the card of {model} ..."):
        card = build_card(
            model,
            data=_load(data) if data else None,
            label=label,
            sensitive=_split(sensitive),
            current=current,
            threshold=threshold,
        )
        path = write_card(card, out)
    if as_json:
        from roost.cli.output import print_json

        print_json({"path": str(path), "missing": list(card.missing)})
        return
    echo(f"model card written to {path}")
    for m in card.missing:
        echo(f"[yellow]not recorded:[/] {m}")


def skew_cmd(
    logs: list[str] = typer.Argument(..., help="Request-log folders, model folders, files or globs."),
    out: Path | None = typer.Option(None, "--html", help="Write the HTML report here."),
    max_mismatch: float = typer.Option(
        0.01, "--max-mismatch", min=0.0, max=1.0, help="Exit 1 when a feature's mismatch rate exceeds this."
    ),
    model: str | None = typer.Option(None, "--model", help="Model folder inside a request-log directory."),
    since: str | None = typer.Option(None, "--since", help="Requests from this UTC time (e.g. 2024-01-08)."),
    until: str | None = typer.Option(None, "--until", help="Requests before this UTC time."),
    rtol: float = typer.Option(1e-6, "--rtol", min=0.0, help="Relative tolerance for float features."),
    atol: float = typer.Option(1e-9, "--atol", min=0.0, help="Absolute tolerance for float features."),
    record: bool | None = _OPTS["record"],
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Served feature values vs a point-in-time recomputation: exit 1 when a feature's mismatch rate is too high."""
    from roost.cli.output import echo, print_json, print_table
    from roost.monitor.html_report import check_writable, write
    from roost.monitor.skew import CATEGORIES, skew
    from roost.monitor.skew_report import skew_html

    if out is not None:
        check_writable(out, "--html")  # before minutes of recomputation, not after
    with _status("recomputing served features ..."):
        rep = skew(logs, model=model, since=since, until=until, max_mismatch=max_mismatch, rtol=rtol, atol=atol)
    page = skew_html(rep) if out is not None or record is not False else None
    if out is not None and page is not None:
        write(page, out, "--html")
    from roost.monitor.record import record_skew

    note = _record(record, "skew", record_skew, rep, model=model, html=page)
    if note:
        rep.notes.append(note)
    if as_json:
        print_json(rep.to_dict())
    else:
        print_table(
            f"skew · {rep.rows_compared:,} request rows",
            ["feature", "ref", "compared", "mismatch rate", *CATEGORIES],
            [[f.feature, f.ref, f.compared, f"{f.mismatch_rate:.2%}", *f.counts] for f in rep.features],
        )
        for n in rep.notes:
            echo(f"[dim]note:[/] {n}")
        echo(("[bold red]" if rep.failed else "[bold green]") + rep.verdict + "[/]")
        if out is not None:
            echo(f"[dim]report:[/] {out}")
    raise typer.Exit(1 if rep.failed else 0)


def shadow_cmd(
    logs: Path = typer.Argument(..., help="Request-log folder (holding shadow/), its shadow/ folder or a model's."),
    model: str | None = typer.Option(None, "--model", help="Only this served model."),
    since: str | None = typer.Option(None, "--since", help="Comparisons from this UTC time (e.g. 2024-01-08)."),
    until: str | None = typer.Option(None, "--until", help="Comparisons before this UTC time."),
    min_agreement: float | None = typer.Option(
        None, "--min-agreement", min=0.0, max=1.0, help="Exit 1 when label agreement is below this."
    ),
    max_diff: float | None = typer.Option(
        None, "--max-diff", min=0.0, help="Exit 1 when the --quantile of |score difference| is above this."
    ),
    quantile: float = typer.Option(0.99, "--quantile", min=0.0, max=1.0, help="Quantile --max-diff applies to."),
    record: bool | None = _OPTS["record"],
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Shadow vs primary answers: agreement, |score difference| quantiles, latencies; exit 1 when a gate fails."""
    from roost.cli.output import echo, print_json, print_table
    from roost.monitor.record import record_shadow
    from roost.monitor.shadow import shadow_summary

    rep = shadow_summary(logs, model, since, until, min_agreement=min_agreement, max_diff=max_diff, quantile=quantile)
    if rep.pairs:
        note = _record(
            record,
            "shadow",
            record_shadow,
            rep,
            model=model,
            views=_views(model),
            min_agreement=min_agreement,
            max_diff=max_diff,
        )
        rep.notes.extend([note] if note else [])
    if as_json:
        print_json(rep.to_dict())
    else:

        def ms(d: dict[str, float]) -> str:
            return " / ".join(f"{d[k]:.2f}" for k in ("p50", "p99") if k in d)

        print_table(
            f"shadow comparisons · {rep.files} files",
            ["model", "primary", "shadow", "requests", "agreement", "|diff| p50", "p90", "p99", "max", "ms p50/p99"],
            [
                [
                    p.model,
                    p.primary_version,
                    p.shadow_version,
                    f"{p.requests:,}",
                    "-" if p.agreement is None else f"{p.agreement:.2%}",
                    *[f"{p.abs_diff.get(k, float('nan')):.4g}" for k in ("p50", "p90", "p99", "max")],
                    f"{ms(p.primary_latency_ms)} vs {ms(p.shadow_latency_ms)}",
                ]
                for p in rep.pairs
            ],
        )
        for n in rep.notes:
            echo(f"[dim]note:[/] {n}")
        echo(("[bold red]" if rep.failed else "[bold green]") + rep.verdict + "[/]")
    raise typer.Exit(1 if rep.failed else 0)


def register(app: typer.Typer) -> None:
    """Add `monitor` (profile, drift, check, analyze, skew, shadow, rollup, schedule), `fairness`, `explain` and
    `card` to the CLI."""
    group = typer.Typer(name="monitor", help="Profiles, drift, alerts and model analysis.", no_args_is_help=True)
    group.command("profile")(profile)
    group.command("drift")(drift_cmd)
    group.command("check")(check)
    group.command("analyze")(analyze)
    group.command("skew")(skew_cmd)
    group.command("shadow")(shadow_cmd)
    from roost.cli.monitor_rollup import rollup_cmd
    from roost.cli.monitor_schedule import app_ as schedule_app

    group.command("rollup")(rollup_cmd)

    group.add_typer(schedule_app, name="schedule")
    app.add_typer(group, name="monitor")
    app.command("fairness")(fairness_cmd)
    app.command("explain")(explain_cmd)
    app.command("card")(card_cmd)
