"""Built-in pipeline tasks: materialize, train, evaluate, compare (champion/challenger gate), shadow_gate (on
serving shadow comparisons), register, promote, notebook, monitor (a recorded monitor check).
Outputs are JSON-friendly dicts so they travel through Airflow XComs unchanged.

Each built-in is one `@task(name=...)` function, plus, where it reads or changes state outside its inputs, the
hooks the runner uses (see `roost.pipeline.dsl.Task`): `refs` (what the inputs resolve to now, for the cache key),
`still_holds` (is a cached output's effect still in place) and `summary` (one line: what it did). Inputs that are
files or `name@alias` strings need no hook: the cache key hashes file contents and resolves aliases itself
(roost.pipeline.fingerprint). Add a built-in by writing its function here and listing it in BUILTINS.
"""

from __future__ import annotations

from typing import Any

from roost.errors import RoostError
from roost.pipeline.dsl import Task, task


def _materialize_summary(out: dict[str, Any]) -> str:
    return f"{len(out.get('views') or [])} feature view(s) materialized"


@task(name="materialize", cache=False, summary=_materialize_summary)  # new rows since the watermark: always run
def materialize(start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """Load the latest feature values into the online store (incremental from the watermark)."""
    from roost.features.materialize import materialize as mat

    res = mat(start=start, end=end)
    return {"views": [r.as_dict() if hasattr(r, "as_dict") else str(r) for r in res]}


def _train_summary(out: dict[str, Any]) -> str:
    reg = f", registered {out['model']}/{out['version']}" if out.get("version") is not None else ""
    return f"run {str(out.get('run_id'))[:8]}{reg}"


@task(name="train", summary=_train_summary)
def train(config: Any, overrides: list[str] | None = None, register: str | None = None) -> dict[str, Any]:
    """Train from a config (file path or dict) and return run id, metrics and the registered version."""
    from roost.training.api import train as do_train

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


def _score(ref: str, data: str, label: str) -> dict[str, float]:
    import numpy as np

    import roost
    from roost.datasets import load
    from roost.metrics import overall as M

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
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float, np.integer, np.floating))}


def _evaluate_summary(out: dict[str, Any]) -> str:
    shown = ", ".join(f"{k} {v:.4g}" for k, v in list((out.get("metrics") or {}).items())[:3])
    return f"{out.get('model')}/{out.get('version')}: {shown}"


@task(name="evaluate", summary=_evaluate_summary)
def evaluate(model: Any, data: str, label: str) -> dict[str, Any]:
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


def _compare_summary(out: dict[str, Any]) -> str:
    champ = (
        "no champion"
        if out.get("champion") is None
        else f"champion v{out.get('champion_version')} {out['champion']:.4g}"
    )
    verdict = "promote" if out.get("promote") else "keep the champion"
    return (
        f"{verdict}: {out.get('metric')} challenger {out.get('challenger'):.4g} vs {champ} (margin {out.get('margin')})"
    )


@task(name="compare", summary=_compare_summary)  # `champion` (name@alias) is keyed on the version it points to
def compare(
    challenger: dict[str, Any],
    champion: str | None,
    metric: str,
    margin: float = 0.0,
    higher_is_better: bool = True,
) -> dict[str, Any]:
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


def _shadow_gate_summary(out: dict[str, Any]) -> str:
    return (
        f"{'promote' if out.get('promote') else 'keep'} {out.get('model')}/{out.get('version')}: {out.get('verdict')}"
    )


@task(name="shadow_gate", cache=False, summary=_shadow_gate_summary)  # comparisons keep arriving: always re-read
def shadow_gate(
    logs: str,
    model: str,
    min_agreement: float | None = None,
    max_diff: float | None = None,
    quantile: float = 0.99,
    since: str | None = None,
) -> dict[str, Any]:
    """Gate a promotion on `roost serve --shadow` comparisons (like `compare`): feeds `promote`'s `gate`."""
    from roost.monitor.shadow import shadow_summary

    rep = shadow_summary(logs, model, since, min_agreement=min_agreement, max_diff=max_diff, quantile=quantile)
    versions = sorted({p.shadow_version for p in rep.pairs})
    if len(versions) > 1:
        raise RoostError(
            f"shadow_gate: {model} was shadowed by versions {', '.join(versions)}",
            hint="pass `since:` to keep only the current shadow's comparisons",
        )
    return {
        "promote": not rep.failed and bool(versions),
        "model": model,
        "version": int(versions[0]) if versions and versions[0].isdigit() else None,
        "verdict": rep.verdict,
        "agreement": [p.agreement for p in rep.pairs],
    }


def _register_refs(inputs: dict[str, Any]) -> dict[str, Any]:
    """run prefix -> full run id."""
    from roost.registry import api

    try:
        return {"run": api.get_run(str(inputs["run_id"]))["run_id"]}
    except RoostError:
        return {"run": None}


def _register_summary(out: dict[str, Any]) -> str:
    return f"registered {out.get('model')}/{out.get('version')}"


@task(name="register", refs=_register_refs, summary=_register_summary)
def register(run_id: str, name: str, path: str = "model") -> dict[str, Any]:
    """Register a run's model package as a new version."""
    import roost

    v = roost.register_model(run_id, name, path)
    return {"model": v.name, "version": v.version}


def _promote_target(inputs: dict[str, Any]) -> str:
    gate = inputs.get("gate") or {}
    return f"{inputs.get('name') or gate.get('model')}@{inputs['alias']}"


def _promote_refs(inputs: dict[str, Any]) -> dict[str, Any]:
    """name@alias -> the version it points to before promoting."""
    from roost.pipeline.fingerprint import resolve_alias

    target = _promote_target(inputs)
    return {"alias": target, "version": resolve_alias(target)}


def _promote_still_holds(out: dict[str, Any]) -> bool:
    """A cached promotion stands only while the alias still points where it was moved."""
    from roost.pipeline.fingerprint import resolve_alias

    if not out.get("promoted"):
        return True  # nothing was changed; the cache key holds the alias's version
    return resolve_alias(f"{out['model']}@{out['alias']}") == out.get("version")


def _promote_summary(out: dict[str, Any]) -> str:
    where, was = f"{out.get('model')}@{out.get('alias')}", out.get("previous")
    if not out.get("promoted"):
        kept = "unset" if was is None else f"version {was}"
        return f"{where} left at {kept}: {out.get('reason', 'gate refused')}"
    if was == out.get("version"):
        return f"{where} already at version {was}"
    return f"moved {where} to version {out.get('version')} (was {'unset' if was is None else was})"


@task(name="promote", refs=_promote_refs, still_holds=_promote_still_holds, summary=_promote_summary)
def promote(gate: dict[str, Any], alias: str, name: str | None = None) -> dict[str, Any]:
    """Move `name@alias` to the gated version when the gate says promote."""
    import roost
    from roost.pipeline.fingerprint import resolve_alias

    name = name or gate.get("model")
    if not name:
        raise RoostError("promote: no model name", hint="give the promote task `name:` or gate a registered model")
    previous = resolve_alias(f"{name}@{alias}")
    if not gate.get("promote"):
        return {"promoted": False, "model": name, "alias": alias, "previous": previous, "reason": "gate refused"}
    roost.set_alias(name, int(gate["version"]), alias)
    return {"promoted": True, "model": name, "alias": alias, "version": int(gate["version"]), "previous": previous}


@task(name="notebook")  # `path` (and files in params) are keyed on their contents
def notebook(path: str, params: dict[str, Any] | None = None, out: str | None = None) -> dict[str, str]:
    """Execute a notebook with papermill, recorded as a run."""
    from roost.notebook import run_notebook

    res = run_notebook(path, params or {}, out)
    return {k: str(v) for k, v in dict(res).items()}


def _tune_summary(out: dict[str, Any]) -> str:
    reg = f", registered {out['model']}/{out['version']}" if out.get("version") is not None else ""
    return f"best {out.get('metric')} {out.get('best_value')} of {sum((out.get('trials') or {}).values())} trials{reg}"


@task(name="tune", summary=_tune_summary)
def tune(
    config: Any, trials: int = 20, sampler: str | None = None, register: str | None = None, seed: int | None = 0
) -> dict[str, Any]:
    """Tune a training config (the model's prescribed space without a search: block); answers like `train`, with
    the best trial's run and registered version, plus the study and what was searched (roost.tune.task)."""
    from roost.tune.task import tune_task

    return tune_task(config, trials, sampler, register, seed)


def _monitor_summary(out: dict[str, Any]) -> str:
    return f"{out.get('check')} of {out.get('model')}: {out.get('verdict')} (monitor run {str(out.get('run_id'))[:8]})"


@task(name="monitor", cache=False, summary=_monitor_summary)  # new requests keep arriving: always run
def monitor(model: str, check: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one monitor check (drift, skew, shadow, analysis) of a model and record it as a monitor run."""
    from roost.pipeline.monitor_checks import run_check

    return run_check(model, check, options)


BUILTINS: dict[str, Task] = {
    t.name: t for t in (materialize, train, tune, evaluate, compare, shadow_gate, register, promote, notebook, monitor)
}
