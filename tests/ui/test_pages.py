"""Server-rendered pages: runs table (filter, sort, pages), run, compare, models, feature views, escaping."""

from __future__ import annotations

import re

import roost


def _row_names(html: str) -> list[str]:
    return re.findall(r'<td class="name"><a href="/runs/\w+">(.*?)</a>', html)


def test_experiments_page_lists_counts(client, populated):
    r = client.get("/")
    assert r.status_code == 200
    assert 'href="/runs?experiment=churn">churn</a>' in r.text
    assert re.search(r"churn</a></td>\s*<td class=\"num\">2</td>", r.text)


def test_runs_table_filter_uses_cli_grammar(client, populated):
    r = client.get("/runs", params={"q": "params.lr >= 0.05 AND NOT status = 'FAILED'"})
    assert r.status_code == 200
    assert _row_names(r.text) == ["wide"]
    assert "1–1 of 1 runs" in r.text
    same = roost.search_runs("params.lr >= 0.05 AND NOT status = 'FAILED'")
    assert [x["name"] for x in same] == ["wide"]


def test_runs_table_bad_filter_shows_message_and_hint(client):
    r = client.get("/runs", params={"q": "metrics.auc >> 3"})
    assert r.status_code == 400
    assert "malformed filter at position 14" in r.text and "(got &#39;&gt;&#39;)" in r.text
    assert "hint: example:" in r.text


def test_runs_table_unknown_experiment_suggests(client):
    r = client.get("/runs", params={"experiment": "chrn"})
    assert r.status_code == 400
    assert "did you mean &#39;churn&#39;?" in r.text


def test_runs_table_sorts_by_metric_and_param(client, populated):
    desc = client.get("/runs", params={"order": "metrics.auc DESC"}).text
    asc = client.get("/runs", params={"order": "metrics.auc ASC"}).text
    # a: auc 0.82 at last step, b: 0.76, c: 0.3
    assert _row_names(desc) == ["&lt;script&gt;alert(1)&lt;/script&gt;", "wide", "failed-one"]
    assert _row_names(asc) == list(reversed(_row_names(desc)))
    by_lr = client.get("/runs", params={"order": "params.lr DESC"}).text
    assert _row_names(by_lr)[0] == "failed-one"
    # the header link flips the direction of the column that is sorted now
    assert 'href="?order=metrics.auc+ASC" data-field="metrics.auc">auc <span class="arrow">▼' in desc


def test_runs_table_columns_and_compare_checkboxes(client, populated):
    html = client.get("/runs", params={"experiment": "churn"}).text
    for col in ('data-field="params.lr"', 'data-field="params.model"', 'data-field="metrics.loss"'):
        assert col in html
    assert f'name="runs" value="{populated["a"]}"' in html


def test_runs_table_pages_in_sql(ws, client):
    with roost.start_run(experiment="many") as parent:
        pass
    for i in range(23):
        with roost.start_run(experiment="many", name=f"r{i:02d}", params={"i": i}):
            pass
    page2 = client.get("/runs", params={"experiment": "many", "per_page": 10, "page": 2, "order": "params.i"})
    assert page2.status_code == 200
    assert "11–20 of 24 runs" in page2.text
    assert _row_names(page2.text) == [f"r{i:02d}" for i in range(10, 20)]
    assert "page 2 of 3" in page2.text
    last = client.get("/runs", params={"experiment": "many", "per_page": 10, "page": 99, "order": "params.i"})
    assert "page 3 of 3" in last.text and "21–24 of 24 runs" in last.text
    assert parent.id in last.text  # the param-less run sorts last


def test_run_page_shows_everything_escaped(client, populated):
    r = client.get(f"/runs/{populated['a']}")
    assert r.status_code == 200
    html = r.text
    assert "<script>alert" not in html and "<i>ads</i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;i&gt;ads&lt;/i&gt;" in html
    assert '<table class="kv" id="params">' in html and "<th>layers</th><td>2</td>" in html
    assert '<pre class="code" tabindex="0" id="config">model: mlp\nlr: 0.01\nnote: &lt;b&gt;not bold&lt;/b&gt;' in html
    assert html.index("config.yaml</p>") < html.index("config.resolved.yaml</p>") and "epochs: 10" in html
    for f in ("notes.txt", "plot.png", "report.ipynb", "tensorboard/"):
        assert f in html
    assert 'id="launch-tb"' in html
    assert 'data-runs=\'[{"id": "' + populated["a"] in html  # JSON for the chart script, single-quoted attr
    assert "\\u003cscript\\u003e" in html  # the run name inside that JSON is escaped too


def test_run_page_by_prefix_and_missing(client, populated):
    assert client.get(f"/runs/{populated['b'][:10]}").status_code == 200
    r = client.get("/runs/ffffffffffff")
    assert r.status_code == 404 and "not found" in r.text


def test_run_without_tb_logs_disables_button(client, populated):
    html = client.get(f"/runs/{populated['c']}").text
    assert 'id="launch-tb"' not in html and "disabled" in html


def test_compare_highlights_param_differences(client, populated):
    r = client.get("/compare", params={"runs": [populated["a"], populated["b"]]})
    assert r.status_code == 200
    rows = {key: cls for cls, key in re.findall(r'<tr class="(differs|same)"><th>(\w+)</th>', r.text)}
    assert rows["lr"] == "differs" and rows["model"] == "differs" and rows["layers"] == "same"
    only = client.get("/compare", params={"runs": f"{populated['a']},{populated['b']}", "diff": "1"}).text
    assert "<th>layers</th>" not in only.split('id="metric-diff"')[0] and "<th>lr</th>" in only
    assert "Launch TensorBoard (2 runs)" in r.text


def test_compare_needs_two_to_a_hundred_runs(client, populated):
    r = client.get("/compare", params={"runs": populated["a"]})
    assert r.status_code == 400 and "select 2 to 100 runs" in r.text


def test_models_pages(client, populated):
    assert "churn-model" in client.get("/models").text
    html = client.get("/models/churn-model").text
    assert '<span class="alias">prod</span>' in html
    assert f'href="/runs/{populated["a"]}"' in html  # which run produced version 1
    assert 'data-col="auc">auc</th>' in html and "0.81" in html  # a metric column (picker: data-col)
    assert client.get("/models/nope").status_code == 404


def test_feature_views_appear_once_defined(client, ws):
    from roost.registry.store import default_store

    assert "Feature views</a>" not in client.get("/runs").text
    default_store().put_object(
        "feature_view",
        "user_stats",
        {  # as roost.features.definitions.FeatureView.spec() stores it
            "name": "user_stats",
            "entities": ["user"],
            "join_keys": {"user_id": "int64"},
            "source": "users",
            "fields": {"clicks_7d": "int64"},
            "ttl_seconds": 7 * 86400.0,
            "transform": None,
            "description": "<script>x</script>",
        },
    )
    html = client.get("/features").text
    assert "user_stats" in html and "clicks_7d" in html and "<script>x" not in html
    page = client.get("/features/user_stats").text
    assert "7.0 days" in page and "&lt;script&gt;x" in page and "<script>x" not in page
    assert "Feature views</a>" in client.get("/runs").text
