"""Model cards assembled from the repository: intended use, data, metrics, slices, fairness, explanations, drift,
lineage. Every section says where its content came from, or what to record for it to appear.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
USE_KEYS = ("intended_use", "description", "roost.intended_use", "roost.description")


@dataclass
class Card:
    """The assembled content of a model card."""

    title: str
    sections: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def _first(keys: tuple[str, ...], *dicts: dict[str, Any] | None) -> str | None:
    """The first value of any key in any dict."""
    for d in dicts:
        for k in keys:
            if d and d.get(k):
                return str(d[k])
    return None


def build_card(
    ref: str,
    data: Any = None,
    label: str | None = None,
    sensitive: list[str] | None = None,
    current: Any = None,
    explain_rows: int = 100,
    threshold: float | None = None,
) -> Card:
    """Collect a model card for a registered model (`name@alias`, `name/3`); `threshold`: the decision threshold
    the model is used at (default: `threshold` in roost-model.yaml, else 0.5)."""
    from roost.monitor.sources import PROFILE, run_dir
    from roost.registry.api import get_run, resolve_model

    mv = resolve_model(ref)
    meta, sig = mv.meta or {}, mv.signature or {}
    run = get_run(mv.run_id) if mv.run_id else None
    params, tags = (run or {}).get("params", {}), (run or {}).get("tags", {})
    card = Card(
        f"Model card: {mv.name} v{mv.version}" + (f" ({', '.join('@' + a for a in mv.aliases)})" if mv.aliases else "")
    )
    s = card.sections
    use = _first(USE_KEYS, meta, tags)
    s["Intended use"] = use or None
    if not use:
        card.missing.append("intended use: set `intended_use` in roost-model.yaml or tag the run `roost.intended_use`")
    s["Model"] = {
        "framework": meta.get("framework"),
        "model type": meta.get("model_type"),
        "task": sig.get("task"),
        "classes": sig.get("classes"),
        "label": sig.get("label") or meta.get("label"),
        "inputs": ", ".join(f"{i['name']} ({i['dtype']})" for i in sig.get("inputs", [])),
        "outputs": ", ".join(o["name"] for o in sig.get("outputs", [])),
    }
    root = run_dir(run) if run else None
    data_sec: dict[str, Any] = {
        "source": meta.get("data_source") or params.get("data.source"),
        "fingerprint": params.get("data.fingerprint"),
        "rows": params.get("data.rows"),
    }
    if any(f"data.{k}_rows" in params for k in ("train", "val", "test")):
        data_sec["train / val / test rows"] = " / ".join(
            str(params.get(f"data.{k}_rows", "?")) for k in ("train", "val", "test")
        )
    if root is not None and (root / PROFILE).is_file():
        from roost.monitor.profile import Profile

        data_sec["profile"] = Profile.load(root / PROFILE).summary()
    else:
        card.missing.append("training data profile: the run stored no profile.json")
    s["Data"] = data_sec
    s["Metrics"] = dict(sorted((run or {}).get("metrics", {}).items())) or meta.get("metrics") or None
    if not s["Metrics"]:
        card.missing.append("metrics: the run logged none and the package records none (roost train logs them)")
    label = label or sig.get("label") or meta.get("label")
    frame = _evaluation(mv, root, data, label, card)
    if frame is not None and label is not None and label in frame.columns:
        thr = float(threshold if threshold is not None else meta.get("threshold", 0.5))
        _analysis_sections(card, frame, label, sensitive or _sensitive_from(tags), mv, thr)
    if frame is not None:
        try:
            from roost.responsible.attributions import explain

            s["Explanations"] = explain(mv.local_path, frame, rows=explain_rows)
        except Exception as exc:  # noqa: BLE001 - a card shows what it can
            card.missing.append(f"explanations: {exc}")
    s["Drift"] = _drift(mv, current, card)
    s["Lineage"] = {
        "model version": f"{mv.name}/{mv.version}",
        "run": mv.run_id,
        "experiment": (run or {}).get("experiment"),
        "git commit": (run or {}).get("git_commit"),
        "uncommitted changes": (run or {}).get("git_dirty"),
        "command": (run or {}).get("source"),
        "data fingerprint": params.get("data.fingerprint"),
        "feature views": meta.get("feature_refs"),
        "entities": meta.get("entities"),
        "package": mv.source,
        "created": str(mv.created_at),
        "ONNX parity (max |native − ONNX|)": meta.get("parity_max_abs_diff"),
    }
    return card


def _sensitive_from(tags: dict[str, str]) -> list[str]:
    """Sensitive columns recorded on the run (tag `roost.sensitive`, comma-separated)."""
    v = tags.get("roost.sensitive")
    return [c.strip() for c in v.split(",") if c.strip()] if v else []


def _evaluation(mv: Any, root: Path | None, data: Any, label: str | None, card: Card) -> Any:
    """Labelled rows with `pred_<output>`: given data (scored now) or the run's evaluation.parquet."""
    import pandas as pd

    from roost.monitor.sources import EVALUATION

    if data is not None:
        from roost.modelpkg import load

        pred = load(mv.local_path)
        frame = data.copy()
        if pred.task != "multiclass":
            frame[f"pred_{'probability' if pred.task == 'binary' else 'prediction'}"] = pred.predict(frame)
        return frame
    if root is not None and (root / EVALUATION).is_file():
        return pd.read_parquet(root / EVALUATION)
    card.missing.append(
        "evaluation set: the run stored no evaluation.parquet and no --data was given "
        "(slices, fairness and explanations need it)"
    )
    return None


def _analysis_sections(card: Card, frame: Any, label: str, sensitive: list[str], mv: Any, thr: float) -> None:
    """Slices (and fairness when sensitive columns are known) from labelled predictions."""
    from roost.monitor.analysis import analyze

    score = next((c for c in ("pred_probability", "pred_prediction") if c in frame.columns), None)
    if score is None:
        card.missing.append("slices: no binary/regression score to analyse")
        return
    feats = [c for c in sensitive if c in frame.columns] + [
        i["name"] for i in (mv.signature or {}).get("inputs", []) if i["name"] in frame.columns
    ][:6]
    card.sections["Slices"] = analyze(
        frame, label, score, features=list(dict.fromkeys(feats)), threshold=thr, source="evaluation set"
    )
    if not sensitive:
        card.missing.append("fairness: no sensitive column given (--sensitive, or tag the run `roost.sensitive`)")
        return
    absent = [c for c in sensitive if c not in frame.columns]
    if absent:
        card.missing.append(f"fairness: sensitive column(s) {absent} are not in the evaluation data")
        sensitive = [c for c in sensitive if c in frame.columns]
    if sensitive and score == "pred_probability":
        from roost.responsible.group_fairness import group_metrics

        card.sections["Fairness"] = group_metrics(
            frame[sensitive], y_true=frame[label], y_score=frame[score], threshold=thr
        )


def _drift(mv: Any, current: Any, card: Card) -> Any:
    """A drift report against `current`, else the newest logged drift result for this model, else None."""
    if current is not None:
        from roost.monitor.api import drift

        try:
            return drift(f"{mv.name}/{mv.version}", current)
        except Exception as exc:  # noqa: BLE001
            card.missing.append(f"drift: {exc}")
            return None
    from roost.monitor.api import latest_drift

    found = latest_drift(mv.name)
    if found is None:
        card.missing.append(
            "drift status: never checked (run `roost monitor drift --reference MODEL --current LOGS --log`)"
        )
    return found


def _kv_rows(d: dict[str, Any]) -> list[list[Any]]:
    """Key/value rows, skipping empty values and nested tables."""
    return [
        [k, v if not isinstance(v, (list, dict)) else str(v)]
        for k, v in d.items()
        if v not in (None, "", [], {}) and k != "profile"
    ]


def _demote(html: str) -> str:
    """Headings of an embedded report one level down (its h2 become h3 under the card's section)."""
    for a, b in (("h3", "h4"), ("h2", "h3")):
        html = html.replace(f"<{a}>", f"<{b}>").replace(f"</{a}>", f"</{b}>")
    return html


def card_html(card: Card) -> str:
    """The card as a self-contained HTML page."""
    from roost.monitor import html_report as R

    s = card.sections
    out = []
    for name, sec in s.items():
        out.append(f"<h2>{escape(name)}</h2>")
        if sec is None:
            out.append('<p class="muted">not recorded</p>')
        elif isinstance(sec, str):
            out.append(f"<p>{escape(sec)}</p>")
        elif isinstance(sec, dict) and name != "Drift":
            out.append(R.table(["", "value"], _kv_rows(sec)))
            if sec.get("profile"):
                rows = sec["profile"]
                out.append(R.table(list(rows[0]), [list(r.values()) for r in rows]))
        elif name == "Slices":
            out.append(_demote(R.analysis_html(sec, full=False)))
        elif name == "Fairness":
            out.append(_demote(R.fairness_html(sec, full=False)))
        elif name == "Explanations":
            out.append(_demote(R.explanation_html(sec, full=False)))
        elif name == "Drift":
            out.append(
                _demote(R.drift_html(sec, full=False))
                if hasattr(sec, "features")
                else R.table(["", "value"], _kv_rows(sec))
            )
    if card.missing:
        out.insert(0, R.banner("Not recorded for this model", "warn") + R.notes(card.missing))
    return R.page(card.title, "".join(out), f"created {card.created_at}")


_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")  # code, emphasis, links/images, table cells


def md_text(v: Any, one_line: bool = True) -> str:
    """Text as Markdown that shows it literally: HTML escaped (no tag opens), and the punctuation that would open
    code, emphasis, a link or a table cell backslash-escaped, as are a heading, quote, list or rule marker at the
    start of a line; `one_line` folds newlines into spaces."""
    s = " ".join(str(v).split()) if one_line else str(v).replace("\r\n", "\n")
    s = _MD_SPECIAL.sub(r"\\\1", escape(s, quote=False))
    s = re.sub(r"(?m)^(\s*)([#>+=~-])", r"\1\\\2", s)
    return re.sub(r"(?m)^(\s*\d+)([.)])", r"\1\\\2", s)  # "1." opens an ordered list


def card_markdown(card: Card) -> str:
    """The card as Markdown (tables for every section); text from the repository is escaped (`md_text`)."""

    def cell(v: Any) -> str:
        from roost.monitor.html_report import fmt

        return md_text(v) if isinstance(v, str) else " ".join(str(fmt(v)).split()).replace("|", "\\|")

    def md_table(cols: list[str], rows: list[list[Any]]) -> str:
        esc = [[cell(v) for v in r] for r in rows]  # one line per row
        head = [md_text(c) for c in cols]
        return (
            "\n".join(
                ["| " + " | ".join(head) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(r) + " |" for r in esc]
            )
            + "\n"
        )

    out = [f"# {md_text(card.title)}\n", f"_created {md_text(card.created_at)}_\n"]
    if card.missing:
        out.append("> **Not recorded:**\n" + "".join(f"> - {md_text(m)}\n" for m in card.missing))
    for name, sec in card.sections.items():
        out.append(f"\n## {md_text(name)}\n")
        if sec is None:
            out.append("_not recorded_\n")
        elif isinstance(sec, str):
            out.append(md_text(sec, one_line=False) + "\n")
        elif isinstance(sec, dict):
            out.append(md_table(["", "value"], _kv_rows(sec)))
            if sec.get("profile"):
                rows = sec["profile"]
                out.append("\n" + md_table(list(rows[0]), [list(r.values()) for r in rows]))
        elif name == "Slices":
            out.append(md_table(["metric", "value"], [[k, v] for k, v in sec.overall.items()]))
            for feat, rows in list(sec.slices.items())[:6]:
                keys = [k for k in rows[0] if k != "slice"] if rows else []
                out.append(
                    f"\n**{md_text(feat)}**\n\n"
                    + md_table(["slice", *keys], [[r["slice"], *[r[k] for k in keys]] for r in rows])
                )
        elif name == "Fairness":
            for t in sec.tables:
                keys = [k for k in t.metrics if k != "positives"]
                out.append(
                    f"\n**{md_text(' × '.join(t.columns))}**: "
                    + ", ".join(f"{md_text(k.replace('_', ' '))} {v:.4g}" for k, v in t.disparities().items())
                    + "\n\n"
                )
                out.append(
                    md_table(
                        ["group", *keys],
                        [[" / ".join(g), *[t.metrics[k][i] for k in keys]] for i, g in enumerate(t.groups)],
                    )
                )
            out += [f"- {md_text(w)}\n" for w in sec.warnings]
        elif name == "Explanations":
            out.append(
                f"{md_text(sec.method)}, {md_text(sec.space)}\n\n"
                + md_table(["feature", "mean |attribution|"], [[f, v] for f, v in sec.importance()])
            )
        elif name == "Drift":
            out.append(md_text(sec.verdict) + "\n")
    return "".join(out)


def write_card(card: Card, path: str | Path) -> Path:
    """Write the card as HTML (.html) or Markdown (.md)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(card_markdown(card) if p.suffix.lower() in (".md", ".markdown") else card_html(card), encoding="utf-8")
    return p
