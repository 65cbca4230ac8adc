"""`roost notebook run`: params, executed notebook and in-notebook metrics land in one run; `diff` of two runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nb_helpers import code, demo, failing, write


def test_run_records_params_artifact_metric_and_diff_shows_only_changed_cells(ws, cli, tmp_path):
    import roost
    from roost.notebook import diff, run_notebook

    src = demo(tmp_path / "demo.ipynb")
    rc, out, err = cli("notebook", "run", str(src), "-p", "x=1", "--out", str(tmp_path / "x1.ipynb"), "--json")
    assert rc == 0, err
    r1 = json.loads(out)
    r2 = run_notebook(src, {"x": 2}, tmp_path / "x2.ipynb")

    for res, x in ((r1, 1), (r2, 2)):
        run = roost.get_run(res["run_id"])
        assert run["status"] == "FINISHED"
        assert run["experiment"] == "notebooks"
        assert run["params"] == {"x": x}
        assert run["metrics"]["score"] == 10.0 * x  # logged by the notebook's own kernel process
        assert run["tags"]["roost.kind"] == "notebook"
        art = Path(run["artifact_uri"].removeprefix("file://")) / Path(res["output"]).name
        logged = nbformat.read(str(art), as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in logged.cells)
        assert f"score <b> {10 * x}" in "".join(o.get("text", "") for o in logged.cells[3].outputs)

    d = diff(r1["output"], r2["output"])
    got = {(c.a.index, c.b.index, c.what) for c in d.changed_cells}
    # the injected parameter cell, the printed score, the x-dependent image; not the constant image, not metadata
    assert got == {(2, 2, "source"), (3, 3, "outputs"), (5, 5, "outputs")}
    page = d.to_html()
    assert page.count('src="data:image/png;base64,') == 2  # cell 6's side by side; the constant image is not shown
    assert "score &lt;b&gt; 10" in page and "score <b>" not in page
    assert "<script" not in page and "Content-Security-Policy" in page

    rc, out, _ = cli(
        "notebook",
        "diff",
        str(r1["output"]),
        str(r2["output"]),
        "--html",
        str(tmp_path / "d.html"),
        "--log-to",
        r2["run_id"],
    )
    assert rc == 0
    assert "cell 3: source" in out and "cell 4: outputs" in out and "cell 6: outputs" in out
    assert "cell 7" not in out and "-x = 1" in out and "+x = 2" in out
    assert (tmp_path / "d.html").read_text() == page
    run2 = roost.get_run(r2["run_id"])
    assert (Path(run2["artifact_uri"].removeprefix("file://")) / "diffs" / "d.html").read_text() == page
    assert run2["status"] == "FINISHED"  # logging the page leaves the run as it was


def test_failing_notebook_marks_run_failed_and_logs_partial_notebook(ws, cli, tmp_path):
    import roost
    from roost.notebook.runner import NotebookFailed, run_notebook

    src = failing(tmp_path / "bad.ipynb")
    with pytest.raises(NotebookFailed) as ei:
        run_notebook(src, {"x": 3})
    msg = ei.value.message
    assert "\n" not in msg
    assert "bad.ipynb failed in cell 3 `y = x / 0`: ZeroDivisionError" in msg
    run = roost.get_run(ei.value.run_id)
    assert run["status"] == "FAILED"
    assert run["params"] == {"x": 3}
    assert run["metrics"] == {"before": 1.5}
    partial = nbformat.read(str(ei.value.output), as_version=4)
    by_src = {c.source: c for c in partial.cells if c.cell_type == "code"}
    assert by_src["y = x / 0"].outputs[0]["ename"] == "ZeroDivisionError"
    assert by_src['print("never")'].execution_count is None


def test_params_need_a_parameters_cell_and_known_names(ws, cli, tmp_path):
    import roost

    plain = write(tmp_path / "plain.ipynb", [code("x = 1"), code("print(x)")])
    rc, _, err = cli("notebook", "run", str(plain), "-p", "x=2")
    assert rc == 2
    assert "plain.ipynb has no cell tagged 'parameters'" in err and "property inspector" in err

    src = demo(tmp_path / "demo.ipynb")
    rc, _, err = cli("notebook", "run", str(src), "-p", "xx=2")
    assert rc == 2 and "parameter 'xx' is not set" in err and "did you mean 'x'" in err
    rc, _, err = cli("notebook", "run", str(tmp_path / "missing.ipynb"))
    assert rc == 2 and "does not exist" in err
    assert roost.search_runs() == []  # nothing was started for bad input


def test_parse_params_types():
    from roost.notebook.runner import parse_params

    assert parse_params(["a=1", "b=0.5", "c=true", "d=True", "e=None", "f=hello", "g=[1, 2]", 'h="7"', "i="]) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": True,
        "e": None,
        "f": "hello",
        "g": [1, 2],
        "h": "7",
        "i": "",
    }
    from roost.errors import RoostError

    with pytest.raises(RoostError, match="not key=value"):
        parse_params(["novalue"])
