"""In Chromium: nested runs expand under their parent, the column picker is remembered, no lone-dot charts."""

from __future__ import annotations

import pytest
from tests.ui.test_browser import browser, ui_server  # noqa: F401 - fixtures shared with the main browser test

import roost

pytestmark = pytest.mark.browser


@pytest.fixture
def child(populated):
    """A trial-like child run under run b."""
    with roost.start_run(experiment="churn", name="trial-0", parent_run_id=populated["b"], params={"lr": 0.3}) as r:
        r.log_metric("auc", 0.5)
        return r.id


def test_nesting_picker_and_single_value_metrics(child, ui_server, browser):  # noqa: F811
    base, b, c = ui_server["base"], ui_server["b"], ui_server["c"]
    page = browser.new_page(viewport={"width": 800, "height": 900})
    page.goto(base + "/runs")
    row = page.locator(f"tr[data-run-id='{child}']")
    assert row.is_hidden()
    page.click(f"button.expand[data-run='{b}']")
    assert row.is_visible() and row.get_attribute("data-parent") == b

    # params.layers holds 2 in every run that sets it: hidden, offered in the picker, remembered once chosen
    col = page.locator("th[data-col='params.layers']")
    assert col.is_hidden()
    page.click("#col-picker summary")
    page.check("#col-picker input[data-col='params.layers']")
    assert col.is_visible()
    page.reload()
    assert page.locator("th[data-col='params.layers']").is_visible()
    page.click("#col-picker summary")
    page.click("#col-reset")
    assert page.locator("th[data-col='params.layers']").is_hidden()
    page.reload()
    assert page.locator("th[data-col='params.layers']").is_hidden()

    # run c logged auc once: a number in the table, not a lone dot on a chart
    page.goto(base + f"/runs/{c}")
    page.wait_for_selector("#charts[data-ready='1']")
    assert page.locator("figure.chart").count() == 0
    assert "auc" in page.locator("#charts .final-note").inner_text()
    page.close()
