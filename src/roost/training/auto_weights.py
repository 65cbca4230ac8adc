"""`model: auto`'s weights: of the candidates' held-out predictions (blend_weights), and of cross-validated
candidates together with children the budget kept out of cross-validation (with_children, on the validation rows,
instead of dropping those children)."""

from __future__ import annotations

from typing import Any

# Below SHRINK_ROWS held-out rows (binary tasks) the fitted weights are averaged with equal weights: greedy
# weights fitted on 100-200 out-of-fold rows overfit them (issue 36, bench/RESULTS.md: on five tables of 144-263
# rows x 10 splits the fitted blend scored 0.0088 +- 0.0028 ROC-AUC below equal weights, the half-way weights
# +0.0072 +- 0.0020 above the fitted ones; on seven tables of 334-698 cross-validation rows the half-way weights
# moved it by -0.0018..+0.0026, and equal weights alone lost 0.010 on crabs, where one candidate is far ahead).
SHRINK_ROWS = 300
SHRINK = 0.5  # share of equal weights


def blend_weights(task: str, y: Any, preds: list[Any], ensemble: bool, seed: int) -> list[float]:
    """Weights of the candidates from their held-out predictions: bagged greedy weights with the best-single
    guard (ensemble.bagged_weights), shrunk half-way to equal weights for a binary task below SHRINK_ROWS rows; or
    with `ensemble` false the best candidate alone."""
    import numpy as np

    from roost.metrics import overall as M
    from roost.training.ensemble import bagged_weights, score

    if ensemble:
        w = bagged_weights(task, y, preds, seed=seed)
        if task == "binary" and len(y) < SHRINK_ROWS:
            return [(1 - SHRINK) * wk + SHRINK / len(w) for wk in w]
        return w
    scores = [score(task, y, p) for p in preds]
    best = int(np.nanargmax(scores) if M.PRIMARY[task][1] == "max" else np.nanargmin(scores))
    return [float(j == best) for j in range(len(preds))]


def with_children(
    task: str,
    label: str,
    parts: tuple[Any, Any, Any],
    crossed: tuple[list[str], list[list[Any]], list[Any]],
    rest: list[tuple[str, Any]],
    ye: Any,
    opts: Any,
    seed: int,
) -> tuple[Any, dict[str, float], str, dict[str, float]] | None:
    """(final model, val_* metrics, criterion, weights) weighed on the validation rows when candidates the budget
    kept out of cross-validation (`rest`: (name, child model fitted on the training rows)) weigh in there, else None
    (the cross-validated blend stands).

    `crossed`: the cross-validated names, their fold models and out-of-fold predictions over the training then
    validation rows; on the validation rows those are held-out predictions, as the children's are, so both compete
    on the same rows (issue 36: on digits under the default budget the best child's cross-validation did not fit
    and auto kept LightGBM's defaults alone, log loss ×1.98 the best reference's)."""
    import numpy as np

    from roost.metrics import overall as M
    from roost.training.ensemble import Blend

    names, bags, preds = crossed
    val = parts[1]
    if not len(val):
        return None
    rows = np.arange(len(parts[0]), len(parts[0]) + len(val))
    yv = ye[rows]
    Xv = val.drop(columns=[label])
    on_val = [np.asarray(p, dtype=np.float64)[rows] for p in preds]
    on_val += [np.asarray(m.predict(Xv), dtype=np.float64) for _, m in rest]
    w = blend_weights(task, yv, on_val, opts.ensemble, seed)
    if not any(wk > 0 for wk in w[len(names) :]):
        return None
    members = [(n, m) for n, bag, wk in zip(names, bags, w) if wk > 0 for m in bag]
    member_w = [wk / len(bag) for bag, wk in zip(bags, w) if wk > 0 for _ in bag]
    members += [(n, m) for (n, m), wk in zip(rest, w[len(names) :]) if wk > 0]
    member_w += [wk for wk in w[len(names) :] if wk > 0]
    blended = sum(wk * p for wk, p in zip(w, on_val))
    held = {f"val_{k}": v for k, v in M.compute(task, yv, np.asarray(blended)).items()}
    weights = {n: float(wk) for n, wk in zip([*names, *(n for n, _ in rest)], w)}
    primary = M.PRIMARY[task][0]
    others = ", ".join(n for n, _ in rest)
    crit = f"validation {primary} (out-of-fold for {', '.join(names)}; {others} not cross-validated)"
    final = members[0] if len(members) == 1 and members[0] in rest else Blend(members, member_w)
    return final, held, crit, weights
