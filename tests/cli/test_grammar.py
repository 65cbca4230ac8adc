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
