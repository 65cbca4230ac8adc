"""Hostile input to `notebook diff` and `notebook run`: clear RoostErrors naming the file/field, nothing half-done."""

from __future__ import annotations

import datetime
import difflib
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from roost.errors import RoostError
from roost.notebook import diff

sys.path.insert(0, str(Path(__file__).parent))
from nb_helpers import code, write


def _cell(src, outputs=None, cell_type="code", **meta) -> dict:
    c = {"cell_type": cell_type, "source": src, "metadata": meta}
    if cell_type == "code":
        c["outputs"] = outputs or []
        c["execution_count"] = None
    return c


def _nb(cells) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


NOT_NOTEBOOKS = {
    "list.ipynb": [1, 2],
    "string.ipynb": "text",
    "no_cells.ipynb": {"nbformat": 4, "metadata": {}},
    "other_object.ipynb": {"a": 1},
    "cells_not_list.ipynb": {"nbformat": 4, "cells": "x"},
    "cell_not_object.ipynb": _nb([_cell("x = 1"), 7]),
    "outputs_not_list.ipynb": _nb([{"cell_type": "code", "source": "x", "outputs": "zz", "metadata": {}}]),
    "output_not_object.ipynb": _nb([_cell("x", [1])]),
    "source_of_ints.ipynb": _nb([_cell([1, 2])]),
    "stream_of_ints.ipynb": _nb([_cell("x", [{"output_type": "stream", "name": "stdout", "text": [1]}])]),
    "data_not_object.ipynb": _nb([_cell("x", [{"output_type": "display_data", "data": [1], "metadata": {}}])]),
}


@pytest.mark.parametrize("fname", sorted(NOT_NOTEBOOKS))
def test_diff_of_json_that_is_not_a_notebook_names_the_file(tmp_path, cli, fname):
    bad = tmp_path / fname
    bad.write_text(json.dumps(NOT_NOTEBOOKS[fname]))
    good = tmp_path / "good.ipynb"
    good.write_text(json.dumps(_nb([_cell("x = 1")])))
    for a, b in ((bad, good), (good, bad)):
        with pytest.raises(RoostError) as ei:
            diff(a, b)
        assert fname in ei.value.message and ei.value.hint
    rc, out, err = cli("notebook", "diff", str(good), str(bad))
    assert rc == 2 and fname in err and "Traceback" not in out + err


def test_diff_of_a_dict_that_is_not_a_notebook_is_a_roost_error():
    with pytest.raises(RoostError, match="cell 2"):
        diff(_nb([_cell("x"), "y"]), _nb([]))


def test_nbformat3_is_read_as_its_cells_not_as_an_empty_notebook(tmp_path):
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "markdown", "source": "# Old", "metadata": {}},
                    {
                        "cell_type": "code",
                        "input": "print(1)",
                        "language": "python",
                        "metadata": {},
                        "outputs": [{"output_type": "stream", "stream": "stdout", "text": "1\n"}],
                    },
                ]
            }
        ],
    }
    (tmp_path / "old.ipynb").write_text(json.dumps(v3))
    one = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    same = _nb([_cell("# Old", cell_type="markdown"), _cell("print(1)", one)])
    (tmp_path / "new.ipynb").write_text(json.dumps(same))
    d = diff(tmp_path / "old.ipynb", tmp_path / "new.ipynb")
    assert len(d.a_cells) == 2 and not d, d.summary()
    same["cells"][1]["source"] = "print(2)"
    (tmp_path / "new.ipynb").write_text(json.dumps(same))
    d = diff(tmp_path / "old.ipynb", tmp_path / "new.ipynb")
    assert [(c.a.index, c.b.index, c.what) for c in d.changes] == [(1, 1, "source")]
    (tmp_path / "v2.ipynb").write_text(json.dumps({"nbformat": 2, "worksheets": []}))
    with pytest.raises(RoostError, match="v2.ipynb"):
        diff(tmp_path / "v2.ipynb", tmp_path / "new.ipynb")


def test_a_cell_that_changed_type_is_reported_as_such():
    a = _nb([_cell("x = 1", cell_type="markdown"), _cell("y")])
    b = _nb([_cell("x = 1"), _cell("y")])
    d = diff(a, b)
    assert len(d.changes) == 1 and "type" in d.changes[0].what and "markdown" in d.changes[0].what
    assert "type" in d.summary() and "()" not in d.summary()
    assert d.to_dict()["changes"][0]["type_changed"] is True


def test_tags_that_are_not_a_list_do_not_hide_a_cell():
    a = _nb([_cell("x = 1", tags="not-papermill-error-cell-tag-really")])
    d = diff(a, _nb([]))
    assert len(d.a_cells) == 1 and [c.status for c in d.changes] == ["removed"]


def _random_nb(rng: random.Random, words: list[str]) -> dict:
    cells = []
    for _ in range(rng.randint(0, 8)):
        src = "\n".join(rng.sample(words, rng.randint(1, 3)))
        if rng.random() < 0.3:
            src = src.replace("\n", "\r\n")  # CRLF
        if rng.random() < 0.3:
            src = src.splitlines(keepends=True)  # a list of lines, as Jupyter writes it
        cells.append(_cell(src, cell_type=rng.choice(["code", "code", "markdown"])))
    return _nb(cells)


def test_self_diff_is_empty_and_unchanged_cells_match_a_difflib_reference():
    rng = random.Random(7)
    words = ["x = 1", "y = 'é ✓ 🎉'", "print(x)", "import os", "z = x + y", "# ノート", "df.head()"]
    for _ in range(400):
        a, b = _random_nb(rng, words), _random_nb(rng, words)
        if rng.random() < 0.5:  # a related notebook: some cells of a, some new
            b["cells"] = [c for c in a["cells"] if rng.random() < 0.7] + b["cells"][:2]
        assert not diff(a, a) and not diff(b, b)
        d = diff(a, b)

        def key(c):
            s = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            return c["cell_type"], s.replace("\r\n", "\n")

        ka, kb = [key(c) for c in a["cells"]], [key(c) for c in b["cells"]]
        ref = difflib.SequenceMatcher(None, ka, kb, autojunk=False)
        assert d.unchanged == sum(blk.size for blk in ref.get_matching_blocks())
        # every cell of B is either unchanged or named in exactly one change
        named_b = [c.b.index for c in d.changes if c.b is not None]
        assert len(named_b) == len(set(named_b)) and len(b["cells"]) - len(named_b) == d.unchanged


# -- notebook run: hostile parameters and output paths, refused before a run starts


@pytest.fixture
def params_nb(tmp_path) -> Path:
    return write(tmp_path / "params.ipynb", [code("a = 1\nc = {}", ["parameters"]), code("print(a, c)")])


def _no_run_and_no_artifacts(ws) -> None:
    import roost

    assert roost.search_runs() == []
    root = Path(ws.artifacts.removeprefix("file://"))
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))


@pytest.mark.parametrize(
    "value",
    [{1, 2}, np.arange(3), datetime.date(2020, 1, 1), {(1, 2): 3}, {"k": [1, {"deep": object()}]}, b"bytes"],
    ids=["set", "ndarray", "date", "tuple-key", "nested-object", "bytes"],
)
def test_params_that_are_not_json_values_are_refused_before_a_run(ws, params_nb, value):
    from roost.notebook.runner import NotebookFailed, run_notebook

    with pytest.raises(RoostError) as ei:
        run_notebook(params_nb, {"c": value})
    assert not isinstance(ei.value, NotebookFailed)
    assert "'c'" in ei.value.message and ei.value.hint
    _no_run_and_no_artifacts(ws)


def test_a_keyword_parameter_name_is_refused_even_when_the_cell_cannot_be_parsed(ws, tmp_path):
    from roost.notebook.runner import NotebookFailed, run_notebook

    src = write(tmp_path / "magic.ipynb", [code("%matplotlib inline\na = 1", ["parameters"]), code("print(a)")])
    with pytest.raises(RoostError) as ei:
        run_notebook(src, {"class": 3})
    assert not isinstance(ei.value, NotebookFailed)
    assert "'class'" in ei.value.message and "keyword" in ei.value.message
    _no_run_and_no_artifacts(ws)


def test_out_that_is_a_directory_or_under_a_file_is_refused_before_a_run(ws, cli, params_nb, tmp_path):
    from roost.notebook.runner import NotebookFailed, run_notebook

    (tmp_path / "a_dir.ipynb").mkdir()
    (tmp_path / "a_file").write_text("x")
    for out in (Path("."), tmp_path / "a_dir.ipynb", tmp_path / "a_file" / "x.ipynb"):
        with pytest.raises(RoostError) as ei:
            run_notebook(params_nb, {"a": 2}, out)
        assert not isinstance(ei.value, NotebookFailed), ei.value
        assert "--out" in ei.value.message and ei.value.hint
    rc, out_text, err = cli("notebook", "run", str(params_nb), "--out", str(tmp_path))
    assert rc == 2 and "--out" in err and "Traceback" not in out_text + err
    _no_run_and_no_artifacts(ws)
    assert (tmp_path / "a_file").read_text() == "x"


# -- notebook run: a kernel that dies, a cell that never ends


def test_kernel_that_dies_names_the_cell_and_keeps_earlier_metrics(ws, tmp_path):
    import roost
    from roost.notebook.runner import NotebookFailed, run_notebook

    src = write(
        tmp_path / "die.ipynb",
        [code('import roost\nroost.log_metric("m", 1.0)'), code("import os\nos._exit(3)"), code("print('after')")],
    )
    with pytest.raises(NotebookFailed) as ei:
        run_notebook(src)
    msg = ei.value.message
    assert "die.ipynb failed in cell 2 `import os`" in msg and "kernel died" in msg, msg
    run = roost.get_run(ei.value.run_id)
    assert run["status"] == "FAILED" and run["metrics"] == {"m": 1.0}


def test_cell_timeout_names_the_cell_and_the_kernel_is_gone(ws, tmp_path, capfd):
    import roost
    from roost.notebook.runner import NotebookFailed, run_notebook

    pid_file = tmp_path / "kernel.pid"
    src = write(
        tmp_path / "forever.ipynb",
        [
            code("x = 1"),
            code(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\nwhile 1: time.sleep(0.05)"),
        ],
    )
    with pytest.raises(NotebookFailed) as ei:
        run_notebook(src, timeout=2)
    msg = ei.value.message
    assert "forever.ipynb failed in cell 2 `import os, time`" in msg and "timed out after 2 s" in msg, msg
    assert "--timeout" in (ei.value.hint or "")
    assert roost.get_run(ei.value.run_id)["status"] == "FAILED"
    # ipykernel's own traceback as it is stopped goes to the run (kernel-stderr.log), not to the user's terminal
    assert "Traceback" not in capfd.readouterr().err
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:  # a zombie not yet reaped by its parent counts as gone
        assert Path(f"/proc/{pid}/status").read_text().count("State:\tZ") == 1, "the kernel still runs"


def test_diff_html_path_that_is_a_folder_or_under_a_file_and_unknown_run_write_nothing(ws, cli, tmp_path):
    a, b = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    a.write_text(json.dumps(_nb([_cell("x = 1")])))
    b.write_text(json.dumps(_nb([_cell("x = 2")])))
    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    for html, phrase in ((tmp_path / "folder", "folder"), (tmp_path / "a_file" / "d.html", "a_file")):
        rc, out, err = cli("notebook", "diff", str(a), str(b), "--html", str(html))
        assert rc == 2 and "--html" in err and phrase in err and "Traceback" not in out + err, err
    page = tmp_path / "new" / "d.html"
    rc, out, err = cli("notebook", "diff", str(a), str(b), "--html", str(page), "--log-to", "nosuchrun")
    assert rc == 2 and "nosuchrun" in err
    assert not page.exists() and not page.parent.exists()  # nothing written for a run that does not exist
    assert (tmp_path / "a_file").read_text() == "x"


def test_a_huge_string_parameter_reaches_the_notebook_whole_and_the_run_records_it_cut(ws, tmp_path):
    import nbformat

    import roost
    from roost.notebook.runner import run_notebook

    src = write(tmp_path / "big.ipynb", [code("s = ''", ["parameters"]), code("print(len(s), s[-3:])")])
    big = "é" * 300_000 + "end"
    res = run_notebook(src, {"s": big}, tmp_path / "out.ipynb")
    printed = nbformat.read(str(res["output"]), as_version=4).cells[-1].outputs[0]["text"]
    assert printed == f"{len(big)} end\n"
    recorded = roost.get_run(res["run_id"])["params"]["s"]
    assert len(recorded) <= 500 and recorded.startswith("éé") and "300,003 characters" in recorded


def test_diff_of_a_folder_says_it_is_a_folder(tmp_path):
    (tmp_path / "nb.ipynb").mkdir()
    with pytest.raises(RoostError, match="nb.ipynb is a folder"):
        diff(tmp_path / "nb.ipynb", _nb([]))


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_a_timeout_that_is_not_a_positive_number_is_refused_before_a_run(ws, params_nb, timeout):
    from roost.notebook.runner import NotebookFailed, run_notebook

    with pytest.raises(RoostError, match="--timeout") as ei:
        run_notebook(params_nb, timeout=timeout)
    assert not isinstance(ei.value, NotebookFailed)
    _no_run_and_no_artifacts(ws)


def test_a_fractional_timeout_is_honoured_in_whole_seconds(ws, params_nb):
    from roost.notebook.runner import run_notebook

    assert run_notebook(params_nb, timeout=2.5)["status"] == "FINISHED"  # papermill takes whole seconds only
