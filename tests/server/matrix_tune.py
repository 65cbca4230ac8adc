"""The tuning service's rows of the permission table (matrix_table.py), from the same rules: a tuning study is
governed by the experiment its attrs name — read to see it, edit to create one, ask, tell, report, add points and
abandon trials — else as a stored object of kind 'tune.study' (the World's object kind); an unknown study is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from matrix_table import EDIT_E, EDIT_O, OB, READ_E, READ_O, Case, E, Req, _c

TU = "/api/v1/tune"


def tune_cases() -> list[Case]:
    """The tuning service at /api/v1/tune: a study of mx-exp (w.study) takes mx-exp's roles, a study without an
    experiment (w.bare) the roles on the stored objects of kind 'tune.study'; an unknown study is 404 for all."""
    space = {"x": {"uniform": [0, 1]}}

    def on_trial(verb: str, body: Callable[[dict[str, Any]], Any]) -> Callable[[Any, Any, str], Req]:
        """A request `verb` on a trial leased just now (so an allowed tell does not leave the next one a 409)."""

        def build(w: Any, p: Any, sid: str) -> Req:
            t = w.new_trial(sid)
            url = f"{TU}/studies/{sid}/{verb}".replace("{n}", str(t["number"]))
            return Req("POST", url, body(t))

        return build

    tell_one = on_trial("trials/{n}/tell", lambda t: {"value": 0.25})
    tell_many = on_trial("tell", lambda t: {"results": [{"number": t["number"], "value": 0.5}]})
    report = on_trial("trials/{n}/report", lambda t: {"step": 1, "value": 0.75})
    abandon = on_trial("abandon", lambda t: {"client_ids": [t["client_id"]], "reason": "stopped"})
    rows = [
        _c("GET", f"{TU}/health", "signed", lambda w, p: Req("GET", f"{TU}/health")),
        _c("GET", f"{TU}/studies", "signed", lambda w, p: Req("GET", f"{TU}/studies"), shows=(E, "STUDY")),
        _c("GET", f"{TU}/studies", "signed", lambda w, p: Req("GET", f"{TU}/studies"), shows=(OB, "BARE")),
        _c(
            "POST",
            f"{TU}/studies",
            EDIT_E,
            lambda w, p: Req("POST", f"{TU}/studies", {"space": space, "attrs": {"experiment": w.exp}}),
        ),
        _c("POST", f"{TU}/studies", EDIT_O, lambda w, p: Req("POST", f"{TU}/studies", {"space": space})),
        _c("GET", f"{TU}/studies/{{sid}}", "unknown", lambda w, p: Req("GET", f"{TU}/studies/{w.fresh()}")),
        _c("POST", f"{TU}/studies/{{sid}}/ask", "unknown", lambda w, p: Req("POST", f"{TU}/studies/nope/ask", {})),
    ]
    for needs, which in ((READ_E, "study"), (READ_O, "bare")):
        rows.append(
            _c(
                "GET",
                f"{TU}/studies/{{sid}}",
                needs,
                lambda w, p, which=which: Req("GET", f"{TU}/studies/{getattr(w, which)}"),
            )
        )
    for needs, which in ((EDIT_E, "study"), (EDIT_O, "bare")):
        rows += [
            _c(
                "POST",
                f"{TU}/studies/{{sid}}/ask",
                needs,
                lambda w, p, which=which: Req(
                    "POST", f"{TU}/studies/{getattr(w, which)}/ask", {"client_id": w.fresh(), "n": 2}
                ),
            ),
            _c(
                "POST",
                f"{TU}/studies/{{sid}}/trials",
                needs,
                lambda w, p, which=which: Req(
                    "POST", f"{TU}/studies/{getattr(w, which)}/trials", {"params": {"x": 0.5}, "value": 1.0}
                ),
            ),
            _c(
                "POST",
                f"{TU}/studies/{{sid}}/tell",
                needs,
                lambda w, p, which=which: tell_many(w, p, getattr(w, which)),
            ),
            *[
                _c(
                    "POST",
                    f"{TU}/studies/{{sid}}/{verb}",
                    needs,
                    lambda w, p, which=which, b=b: b(w, p, getattr(w, which)),
                )
                for verb, b in (("trials/{n}/tell", tell_one), ("trials/{n}/report", report), ("abandon", abandon))
            ],
        ]
    return rows
