"""One CLI grammar (#23): short flags mean one thing everywhere, --version, grouped help, runs tag, id prefixes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
import typer

# Typer vendors its own Click (typer._click): test by the parameter kind, not isinstance of the `click` package.


def _is_option(p: Any) -> bool:
    return getattr(p, "param_type_name", "") == "option"


def _walk(cmd: Any, path: str = "roost") -> list[tuple[str, Any]]:
    out = [(path, cmd)]
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            if not sub.hidden:
                out += _walk(sub, f"{path} {name}")
    return out


COUNTS = {"--limit", "--rows", "--trials"}


def _help(*args: str) -> str:
    """The real `roost ... --help` (plain help, as users see it; CliRunner may render Rich panels)."""
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "roost.cli.main", *args, "--help"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def _tree() -> list[tuple[str, Any]]:
    from roost.cli.main import build_app

    return _walk(typer.main.get_command(build_app()))


def test_each_visible_short_flag_means_one_long_option_everywhere() -> None:
    """`-p` was --port, --parallel and --param; `-e` was --experiment, --embeddings and --entity (#23)."""
    seen: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path, cmd in _tree():
        for p in cmd.params:
            if not _is_option(p) or p.hidden:
                continue
            longs = [o for o in p.opts + p.secondary_opts if o.startswith("--")]
            for short in (o for o in p.opts if len(o) == 2):
                seen[short].add(longs[0] if longs else short)
                where[(short, longs[0] if longs else short)].append(path)
    seen["-n"] -= COUNTS  # -n is "how many" (as in head -n): the count of what the verb makes or shows
    clashes = {s: {ln: where[(s, ln)] for ln in longs} for s, longs in seen.items() if len(longs) > 1}
    assert clashes == {}


def test_model_is_an_argument_in_every_verb_that_acts_on_one() -> None:
    """The model was positional in serve/explain/card and `-m/--model` in embed/analyze/fairness (#23)."""
    verbs = {"roost embed", "roost explain", "roost card", "roost serve", "roost monitor analyze", "roost fairness"}
    for path, cmd in _tree():
        if path in verbs:
            kinds = {p.param_type_name for p in cmd.params if p.name in ("model", "models")}
            assert kinds == {"argument"}, path
            assert not any(_is_option(p) and "--model" in p.opts and not p.hidden for p in cmd.params)


def test_version(cli: Any) -> None:
    """`roost --version` prints the installed version."""
    from importlib.metadata import version

    code, out, _ = cli("--version")
    assert code == 0
    assert version("roost") in out


def test_top_level_help_is_grouped() -> None:
    """Top-level help lists the verbs under headings, and every visible verb under one of them."""
    out = _help()
    from roost.cli.main import SECTIONS

    for title, names in SECTIONS.items():
        section = out.split(f"\n{title}:\n", 1)[1].split("\n\n", 1)[0]
        assert [line.split()[0] for line in section.splitlines()] == names
    listed = {n for names in SECTIONS.values() for n in names}
    for path, _ in _tree():
        parts = path.split()
        if len(parts) == 2:
            assert parts[1] in listed, parts[1]


def test_notebook_is_one_group_and_the_old_nb_alias_is_gone(cli: Any) -> None:
    """`roost notebook run|diff` (and `roost notebook` alone launches Lab); `roost nb` was removed at 0.1.0 (#32)."""
    code, out, _ = cli("notebook", "--help")
    assert code == 0 and "run" in out and "diff" in out and "--port" in out
    code, _, _ = cli("nb", "diff", "--help")
    assert code == 2


def test_tune_help_lists_the_config_form() -> None:
    """`roost tune --help` advertised `roost tune CONFIG.yaml` without showing it in the usage (#23)."""
    usage = _help("tune").splitlines()[0]
    assert "CONFIG" in usage, usage


def _finished_run(**tags: str) -> str:
    import roost

    with roost.start_run(experiment="grammar", params={"lr": 0.1}) as run:
        run.log_metric("test_roc_auc", 0.8)
        run.set_tags(tags)
    return run.id


def test_runs_tag_sets_and_deletes_tags_by_id_prefix(ws: Any, cli: Any) -> None:
    """The model card asks to tag a run; there was no command (#23)."""
    from roost.registry import api

    rid = _finished_run(team="ads")
    code, out, err = cli("runs", "tag", rid[:8], "reviewed=yes", "owner=ml team")
    assert code == 0, err
    assert api.get_run(rid)["tags"] | {} == {**api.get_run(rid)["tags"], "reviewed": "yes", "owner": "ml team"}
    code, _, err = cli("runs", "tag", rid[:8], "--delete", "team")
    assert code == 0, err
    tags = api.get_run(rid)["tags"]
    assert "team" not in tags and tags["reviewed"] == "yes"
    code, _, err = cli("runs", "tag", rid[:8], "novalue")
    assert code == 2 and "key=value" in err


def test_tune_show_takes_an_id_prefix(ws: Any, cli: Any) -> None:
    """`roost runs show` took prefixes, `roost tune show` did not (#23)."""
    from roost.tune.engine import Engine

    eng = Engine()
    sid = eng.create_study({"a": ["x", "y"]}, name="s")["id"]
    code, out, err = cli("tune", "show", sid[:6], "--json")
    assert code == 0, err
    assert sid in out
    code, _, err = cli("tune", "show", "zzzz-no-such")
    assert code == 2 and "not found" in err


def test_old_short_flags_are_gone(ws: Any, cli: Any) -> None:
    """`roost runs list -o ...` was --order-by, kept hidden for one release; removed at 0.1.0 (#32)."""
    _finished_run()
    code, _, err = cli("runs", "list", "-o", "start_time DESC", "--json")
    assert code == 2 and "-o" in err
    code, _, err = cli("runs", "list", "--order-by", "start_time DESC", "--json")
    assert code == 0, err


def test_runs_list_says_when_a_filter_names_an_unknown_metric(ws: Any, cli: Any) -> None:
    """The README's `metrics.roc_auc > 0.7` returned 0 runs without a word: metrics are test_roc_auc (#23)."""
    _finished_run()
    code, out, err = cli("runs", "list", "--filter", "metrics.roc_auc > 0.7")
    assert code == 0
    assert "metrics.roc_auc" in err and "metrics.test_roc_auc" in err
    code, out, err = cli("runs", "list", "--filter", "metrics.test_roc_auc > 0.7")
    assert code == 0 and "no run" not in err


@pytest.mark.parametrize("verb", ["ui", "serve", "index serve"])
def test_port_has_no_short_flag(verb: str) -> None:
    """`-p` is --param; the old `-p` for --port was hidden for one release and is gone (#32)."""
    for path, cmd in _tree():
        if path == f"roost {verb}":
            port = next(p for p in cmd.params if p.name == "port")
            assert port.opts == ["--port"]
            assert not any(_is_option(p) and "-p" in p.opts for p in cmd.params)
            return
    raise AssertionError(verb)


def test_no_hidden_options_or_deprecated_groups_remain() -> None:
    """The deprecated spellings kept hidden for one release went at 0.1.0 (#32): no command hides an option."""
    hidden = [f"{path} {p.opts}" for path, cmd in _tree() for p in cmd.params if _is_option(p) and p.hidden]
    assert hidden == []
    from roost.cli.main import build_app

    assert [g.name for g in build_app().registered_groups if g.deprecated] == []


# ---- One grammar across every verb (#37 item 3): the rules, and the few exceptions with their reasons. ----

SERVERS = {  # long-running processes: they print a URL and serve; there is no result to print as JSON or to list
    "roost serve",
    "roost ui",
    "roost server",
    "roost tensorboard",
    "roost notebook",
    "roost features serve",
    "roost features stream",
    "roost tune serve",
    "roost index serve",
}

# Verbs that create or read runs take -e/--experiment (the experiment to write into or to read from).
EXPERIMENT_VERBS = {
    "roost train",
    "roost tune run",
    "roost predict",
    "roost pipeline run",
    "roost notebook run",
    "roost runs list",
    "roost runs delete",
    "roost runs archive",
    "roost runs restore",
    "roost runs import-tb",
}
NO_EXPERIMENT = {  # create or read runs, yet -e would be wrong
    "roost runs show": "reads one run by id (or unique prefix): the id names it, whatever its experiment",
    "roost runs tag": "acts on one run by id",
    "roost runs upload-staged": "acts on one run by id",
    "roost runs import-mlflow": "keeps each source experiment's name (--prefix renames them all)",
    "roost monitor drift": "records into monitor/MODEL, the experiment the model page charts (--model picks it)",
    "roost monitor check": "records into monitor/MODEL, the experiment the model page charts (--model picks it)",
    "roost monitor analyze": "records into monitor/MODEL, the experiment the model page charts (MODEL picks it)",
    "roost monitor skew": "records into monitor/MODEL, the experiment the model page charts (--model picks it)",
    "roost monitor shadow": "records into monitor/MODEL, the experiment the model page charts (--model picks it)",
}

NO_JSON = {  # verbs that print no result a script would parse
    "roost login": "stores a credential; prints one confirmation line",
    "roost logout": "removes a credential; prints one confirmation line",
    "roost monitor schedule export": "writes an Airflow DAG file (the file is the result)",
    "roost pipeline export": "writes an Airflow DAG file (the file is the result)",
}

# List verbs print one table of rows: they take --limit and --order-by.
LIST_VERBS = {
    "roost runs list",
    "roost experiments list",
    "roost models list",
    "roost models versions",
    "roost index list",
    "roost index versions",
    "roost users list",
    "roost tokens list",
    "roost groups list",
    "roost grants",
    "roost audit",
}
NO_ORDER_BY = {  # list verbs with --limit whose order is their meaning
    "roost audit": "a log: newest first, as `git log`; --since/--actor/--action select the events",
}
NOT_LISTS = {  # named like lists, yet not one table of rows
    "roost features list": "prints the definitions grouped by kind (entities, sources, views), a few of each",
}

# The HTML report is written by one flag everywhere.
HTML_VERBS = {
    "roost monitor drift",
    "roost monitor check",
    "roost monitor analyze",
    "roost monitor skew",
    "roost fairness",
    "roost explain",
    "roost notebook diff",
}
# `roost card --out card.html|card.md`: the card IS the verb's output, in the format the suffix names; not a
# report beside a printed result.


def _leaves() -> dict[str, Any]:
    """Every command that runs something (groups only when they run on their own, like `roost notebook`)."""
    out = {}
    for path, cmd in _tree():
        is_group = hasattr(cmd, "commands")
        if not is_group or getattr(cmd, "invoke_without_command", False):
            out[path] = cmd
    out.pop("roost", None)
    return out


def _longs(cmd: Any) -> set[str]:
    return {o for p in cmd.params if _is_option(p) for o in p.opts + p.secondary_opts if o.startswith("--")}


def test_the_grammar_lists_name_real_verbs() -> None:
    """A renamed verb must not leave a stale entry that silently checks nothing."""
    names = set(_leaves())
    for group in (SERVERS, EXPERIMENT_VERBS, NO_EXPERIMENT, NO_JSON, LIST_VERBS, NO_ORDER_BY, NOT_LISTS, HTML_VERBS):
        assert set(group) - names == set()


def test_every_verb_that_creates_or_reads_runs_takes_experiment() -> None:
    """`train`, `tune run`, `predict` and `pipeline run` made runs in an experiment they could not be told (#37)."""
    leaves = _leaves()
    missing = []
    for path in sorted(EXPERIMENT_VERBS):
        p = next((p for p in leaves[path].params if p.name == "experiment"), None)
        if p is None or set(p.opts) != {"-e", "--experiment"}:
            missing.append(path)
    assert missing == []


def test_every_verb_that_prints_a_result_takes_json() -> None:
    """`pipeline run/show`, `models alias/import` printed tables or lines only (#37)."""
    missing = [
        path
        for path, cmd in sorted(_leaves().items())
        if path not in SERVERS and path not in NO_JSON and "--json" not in _longs(cmd)
    ]
    assert missing == []


def test_every_list_verb_takes_limit_and_order_by() -> None:
    """Only `runs list` could be cut or sorted (#37)."""
    leaves = _leaves()
    lists = {p for p in leaves if p.split()[-1] in ("list", "versions")} - set(NOT_LISTS)
    assert lists <= LIST_VERBS, lists - LIST_VERBS
    wanted = {p: {"--limit"} if p in NO_ORDER_BY else {"--limit", "--order-by"} for p in LIST_VERBS}
    missing = [p for p in sorted(LIST_VERBS) if not wanted[p] <= _longs(leaves[p])]
    assert missing == []


def test_one_flag_writes_the_html_report() -> None:
    """drift/check/analyze/fairness/explain said --html, skew said --out (#37)."""
    leaves = _leaves()
    assert [p for p in sorted(HTML_VERBS) if "--html" not in _longs(leaves[p])] == []
    for path, cmd in leaves.items():  # no other option's help promises an HTML report
        for p in cmd.params:
            if _is_option(p) and "--html" not in p.opts and "html report" in (p.help or "").lower():
                raise AssertionError(f"{path} {p.opts}: the HTML report is --html")


def test_help_shows_no_python_type_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--features <list[str]>`-style metavars leaked Python's type names into --help (#37)."""
    import click
    import typer.core

    monkeypatch.setattr(typer.core, "HAS_RICH", False)  # the plain help `roost` prints (main sets TYPER_USE_RICH=0)
    leaked = {}
    for path, cmd in _leaves().items():
        ctx = click.Context(cmd, info_name=path)
        text = cmd.get_help(ctx)
        bad = [w for w in ("list[", "dict[", "tuple[", "Optional", "<class", "NoneType", "typing.") if w in text]
        if bad:
            leaked[path] = bad
    assert leaked == {}


def test_list_order_by_and_limit_work(ws: Any, cli: Any) -> None:
    """`--order-by KEY [ASC|DESC]` sorts, `--limit N` cuts, a key no row has is an error naming the keys."""
    import json

    import roost

    for name in ("b-exp", "a-exp", "c-exp"):
        with roost.start_run(experiment=name):
            pass
    code, out, err = cli("experiments", "list", "--order-by", "name DESC", "--limit", "2", "--json")
    assert code == 0, err
    assert [e["name"] for e in json.loads(out)] == ["c-exp", "b-exp"]
    code, out, err = cli("experiments", "list", "--order-by", "name", "--json")
    names = [e["name"] for e in json.loads(out)]
    assert names == sorted(names) and {"a-exp", "b-exp", "c-exp"} <= set(names)
    code, _, err = cli("experiments", "list", "--order-by", "nme")
    assert code == 2 and "nme" in err and "name" in err


def test_pipeline_run_takes_experiment_and_json(ws: Any, cli: Any, tmp_path: Any) -> None:
    """`roost pipeline run -e X --json` records into X and prints the run with its task runs (#37)."""
    import json

    from roost.registry import api

    f = tmp_path / "pipe.py"
    f.write_text(
        'import roost\n\n@roost.task\ndef one() -> int:\n    return 1\n\nwith roost.Pipeline("tiny") as p:\n    one()\n'
    )
    code, out, err = cli("pipeline", "run", str(f), "-e", "nightly", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["experiment"] == "nightly" and [t["tags"]["roost.task"] for t in shown["tasks"]] == ["one"]
    assert {r["run_id"] for r in api.search_runs(experiment="nightly")} == {
        shown["run_id"],
        shown["tasks"][0]["run_id"],
    }
    code, out2, err = cli("pipeline", "show", shown["run_id"][:8], "--json")
    assert code == 0, err
    assert json.loads(out2)["run_id"] == shown["run_id"]


def test_models_alias_json_and_versions_order_limit(ws: Any, cli: Any) -> None:
    """`models alias --json` says what changed; `models versions --order-by/--limit` sort and cut (#37)."""
    import json

    import roost

    for auc in (0.7, 0.95, 0.9):
        with roost.start_run(experiment="churn") as run:
            run.log_metric("auc", auc)
            d = run.artifact_dir / "model"
            d.mkdir()
            (d / "model.onnx").write_bytes(b"x")
            (d / "roost-model.yaml").write_text(f"framework: torch\nmetrics: {{auc: {auc}}}\n")
        roost.register_model(run.id, "churn", "model")
    code, out, err = cli("models", "alias", "churn", "2", "prod", "--json")
    assert code == 0, err
    assert json.loads(out) == {"name": "churn", "alias": "prod", "version": 2, "changed": True}
    code, out, _ = cli("models", "alias", "churn", "2", "prod", "--json")
    assert json.loads(out)["changed"] is False
    code, out, err = cli("models", "versions", "churn", "--order-by", "meta.metrics.auc DESC", "--limit", "2", "--json")
    assert code == 0, err
    assert [v["version"] for v in json.loads(out)] == [2, 3]


def test_train_records_into_the_experiment_given(ws: Any, cli: Any, tmp_path: Any) -> None:
    """`roost train CONFIG -e X` records its run in X, over the config's `experiment:` (#37)."""
    import json

    import yaml

    import roost
    from helpers import mixed_frame

    mixed_frame(300).to_parquet(tmp_path / "mixed.parquet")
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"data": "mixed.parquet", "label": "clicked", "model": "logreg", "experiment": "from-config"}
            | {"features": {"exclude": ["kind", "score"]}, "trainer": {"epochs": 1}}
        )
    )
    code, out, err = cli("train", str(cfg), "-e", "ctr", "--json")
    assert code == 0, err
    assert roost.get_run(json.loads(out)["run_id"])["experiment"] == "ctr"


def test_admin_verbs_print_json_and_lists_sort(ws: Any, cli: Any) -> None:
    """`users add`, `tokens create`, `groups add` print the record with --json; `users list` sorts and cuts (#37)."""
    import json

    for name in ("ci-b", "ci-a", "ci-c"):
        code, out, err = cli("users", "add", name, "--service", "--json")
        assert code == 0, err
        assert json.loads(out)["name"] == name
    code, out, err = cli("tokens", "create", "--user", "ci-a", "--json")
    assert code == 0, err
    tok = json.loads(out)
    assert tok["token"] and tok["account"] == "ci-a"
    code, out, _ = cli("tokens", "list", "--json")
    assert [t["id"] for t in json.loads(out)] == [tok["id"]]  # the id printed is the stored token's
    code, out, err = cli("users", "list", "--order-by", "name DESC", "--limit", "2", "--json")
    assert code == 0, err
    assert [u["name"] for u in json.loads(out)] == ["ci-c", "ci-b"]
    code, out, err = cli("groups", "add", "ml", "--json")
    assert code == 0 and json.loads(out)["name"] == "ml", err
