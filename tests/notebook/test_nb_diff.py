"""`nb diff` on hand-built notebooks: noise ignored, real changes found, views escaped and standalone."""

from __future__ import annotations

import copy
import re

import pytest

from roost.notebook import diff

PNG_A = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
PNG_B = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYPgPAAEDAQAIicLsAAAAAElFTkSuQmCC"


def cell(src: str, outputs: list | None = None, n: int | None = 1, **meta) -> dict:
    """A code cell dict."""
    return {"cell_type": "code", "source": src, "metadata": meta, "execution_count": n, "outputs": outputs or []}


def stream(text: str, name: str = "stdout") -> dict:
    """A stream output."""
    return {"output_type": "stream", "name": name, "text": text}


def nb(cells: list, **meta) -> dict:
    """A v4 notebook dict."""
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": cells}


def base() -> dict:
    """Four cells: markdown, a print, an image, a result."""
    return nb(
        [
            {"cell_type": "markdown", "source": "# Title", "metadata": {}},
            cell("print('a')", [stream("a\n")], 1),
            cell(
                "show()",
                [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"image/png": PNG_A, "text/plain": "<Figure>"},
                    }
                ],
                2,
            ),
            cell(
                "1 + 1",
                [{"output_type": "execute_result", "execution_count": 3, "metadata": {}, "data": {"text/plain": "2"}}],
                3,
            ),
        ]
    )


def test_noise_is_ignored():
    a, b = base(), base()
    b["metadata"] = {"papermill": {"duration": 9.9, "start_time": "2030-01-01"}, "kernelspec": {"name": "x"}}
    for i, c in enumerate(b["cells"]):
        c["metadata"] = {
            "execution": {"iopub.execute_input": "2030-01-01T00:00:00Z"},
            "papermill": {"status": "ok"},
            "collapsed": True,
        }
        c["id"] = f"other-{i}"
        if c["cell_type"] == "code":
            c["execution_count"] = (c["execution_count"] or 0) + 10
            for o in c["outputs"]:
                if "execution_count" in o:
                    o["execution_count"] = 99
    b["cells"][1]["outputs"] = [stream("a"), stream("\n")]  # the same text in two chunks
    b["cells"][1]["source"] = ["print(", "'a')"]  # list form of the same source
    d = diff(a, b)
    assert d.changed_cells == [] and not d
    assert d.summary().startswith("no changes in 4 cells")


def test_real_changes_are_found_and_labelled():
    a, b = base(), base()
    b["cells"][1]["outputs"] = [stream("a\n"), stream("oops\n", "stderr")]
    b["cells"][2]["outputs"][0]["data"]["image/png"] = PNG_B
    b["cells"].insert(3, cell("new_cell()", [], 3))
    del b["cells"][0]  # markdown removed
    d = diff(a, b)
    got = [(c.status, c.what, c.a and c.a.index, c.b and c.b.index) for c in d.changed_cells]
    assert got == [
        ("removed", "removed", 0, None),
        ("modified", "outputs", 1, 0),
        ("modified", "outputs", 2, 1),
        ("added", "added", None, 2),
    ]
    assert d.unchanged == 1
    d2 = diff(
        base(), nb(base()["cells"][:2] + [cell("show(dpi=2)", base()["cells"][2]["outputs"])] + base()["cells"][3:])
    )
    assert [(c.what, c.label) for c in d2.changed_cells] == [("source", "cell 3")]


def test_views_escape_content_and_embed_images_only_as_data():
    a = nb(
        [
            cell("s = '<script>alert(1)</script>'", [stream("<img src=x onerror=alert(1)>\n")]),
            cell("img()", [{"output_type": "display_data", "metadata": {}, "data": {"image/png": PNG_A}}]),
        ]
    )
    b = copy.deepcopy(a)
    b["cells"][0]["source"] = "s = '<b>bold</b>'"
    b["cells"][0]["outputs"] = [stream("\x1b[31mred\x1b[0m & more\n")]
    b["cells"][1]["outputs"][0]["data"]["image/png"] = 'not base64 " onerror=alert(1) x="'
    page = diff(a, b).to_html()
    assert "<script" not in page.lower() and "<img src=x" not in page and "onerror=alert(1) x=" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "red &amp; more" in page and "\x1b" not in page
    assert re.findall(r'<img [^>]*src="([^"]{0,30})', page) == ["data:image/png;base64,iVBORw0K"]
    assert "(invalid image data)" in page
    assert "Content-Security-Policy" in page and "http://" not in page and "https://" not in page

    from rich.console import Console

    con = Console(record=True, width=100, color_system=None)
    con.print(diff(a, b))
    text = con.export_text()
    assert "-s = '<script>alert(1)</script>'" in text and "+red & more" in text and "\x1b" not in text
    assert "[image/png" in text and "2 changed cells (source: 1, outputs: 2); 0 unchanged" in text


@pytest.mark.filterwarnings("ignore:Using `httpx` with")
def test_logged_html_page_opens_in_the_ui_artifact_viewer(ws, cli, tmp_path):
    import json

    from starlette.testclient import TestClient

    import roost
    from roost.ui.app import create_app

    a, b = base(), base()
    b["cells"][3]["outputs"][0]["data"]["text/plain"] = "<3>"
    for name, n in (("a", a), ("b", b)):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(n))
    with roost.start_run(experiment="notebooks") as run:
        pass
    rc, out, err = cli("notebook", "diff", str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb"), "--log-to", run.id)
    assert rc == 0, err
    r = TestClient(create_app()).get(f"/runs/{run.id}/artifacts/view", params={"path": "diffs/a-vs-b.html"})
    assert r.status_code == 200
    assert "&lt;!doctype html&gt;" in r.text and "&amp;lt;3&amp;gt;" in r.text  # shown as escaped page source
