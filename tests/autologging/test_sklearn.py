"""roost.sklearn.autolog on real fits: recorded params, training metrics, search CV children, the model package."""

import logging

import numpy as np
import pytest

import roost


def _expected_params(est):
    """get_params(deep=True) values roost stores as they are (numbers, text, bools; None reads back as 'None')."""
    return {
        k: "None" if v is None else v
        for k, v in est.get_params(deep=True).items()
        if v is None or isinstance(v, (bool, int, float, str))
    }


def test_classifier_params_metrics_model_and_fingerprint(rec, cancer):
    from sklearn import metrics
    from sklearn.ensemble import RandomForestClassifier

    from roost.datasets import fingerprint

    X, y, Xh, _ = cancer
    roost.sklearn.autolog()
    est = RandomForestClassifier(n_estimators=30, max_depth=5, random_state=0).fit(X, y)
    run = rec.only_run()
    assert run["status"] == "FINISHED" and run["name"] == "RandomForestClassifier"
    want = _expected_params(est)
    assert {k: run["params"][k] for k in want} == want
    assert run["params"]["data.rows"] == len(X)
    assert run["params"]["data.fingerprint"] == fingerprint(X.assign(__target__=y.to_numpy()))
    pred, proba = est.predict(X), est.predict_proba(X)
    ref = {
        "training_accuracy_score": metrics.accuracy_score(y, pred),
        "training_precision_score": metrics.precision_score(y, pred, average="weighted"),
        "training_recall_score": metrics.recall_score(y, pred, average="weighted"),
        "training_f1_score": metrics.f1_score(y, pred, average="weighted"),
        "training_log_loss": metrics.log_loss(y, proba),
        "training_roc_auc": metrics.roc_auc_score(y, proba[:, 1]),
        "training_score": est.score(X, y),
    }
    assert {k: run["metrics"][k] for k in ref} == pytest.approx(ref, rel=1e-12, abs=1e-15)
    served = roost.load_model(rec.artifact(run, "model")).predict(Xh)
    np.testing.assert_allclose(served, est.predict_proba(Xh)[:, 1], atol=1e-5)


def test_regressor_metrics_and_model(rec, diabetes):
    from sklearn import metrics
    from sklearn.linear_model import Ridge

    X, y, Xh, _ = diabetes
    w = np.linspace(0.5, 2.0, len(y))
    roost.autolog()
    est = Ridge(alpha=0.3).fit(X, y, sample_weight=w)
    run = rec.only_run()
    pred = est.predict(X)
    mse = metrics.mean_squared_error(y, pred, sample_weight=w)
    ref = {
        "training_mean_squared_error": mse,
        "training_root_mean_squared_error": mse**0.5,
        "training_mean_absolute_error": metrics.mean_absolute_error(y, pred, sample_weight=w),
        "training_r2_score": metrics.r2_score(y, pred, sample_weight=w),
        "training_score": est.score(X, y, sample_weight=w),
    }
    assert {k: run["metrics"][k] for k in ref} == pytest.approx(ref, rel=1e-12)
    served = roost.load_model(rec.artifact(run, "model")).predict(Xh)
    np.testing.assert_allclose(served, est.predict(Xh), atol=1e-5, rtol=1e-6)


def test_pipeline_is_one_run_with_nested_params(rec, cancer):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, Xh, _ = cancer
    roost.sklearn.autolog()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.5, max_iter=500))]).fit(X, y)
    run = rec.only_run()  # the steps' own fits are not separate runs
    assert run["name"] == "Pipeline"
    assert run["params"]["clf__C"] == 0.5 and run["params"]["clf__max_iter"] == 500
    assert run["params"]["scale__with_mean"] is True
    assert run["metrics"]["training_accuracy_score"] == pytest.approx(pipe.score(X, y), rel=1e-12)
    served = roost.load_model(rec.artifact(run, "model")).predict(Xh)
    np.testing.assert_allclose(served, pipe.predict_proba(Xh)[:, 1], atol=1e-5)


@pytest.mark.parametrize("cap", [None, 2])
def test_search_cv_parent_and_child_runs(rec, cancer, cap):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, Xh, _ = cancer
    roost.sklearn.autolog(**({} if cap is None else {"max_tuning_runs": cap}))
    grid = {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), grid, cv=3).fit(X, y)
    runs = roost.search_runs()
    parents = [r for r in runs if not r.get("parent_run_id")]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.get("parent_run_id") == parent["run_id"]]
    cv = search.cv_results_
    ranked = sorted(range(4), key=lambda i: (cv["rank_test_score"][i], i))
    assert len(children) == (4 if cap is None else cap)
    assert parent["params"]["best_logisticregression__C"] == search.best_params_["logisticregression__C"]
    assert parent["metrics"]["best_cv_score"] == search.best_score_
    assert parent["params"]["cv"] == 3
    by_c = {c["params"]["logisticregression__C"]: c for c in children}
    for i in ranked[: len(children)]:
        child = by_c[cv["params"][i]["logisticregression__C"]]
        assert child["status"] == "FINISHED"
        assert child["metrics"]["mean_test_score"] == cv["mean_test_score"][i]
        assert child["metrics"]["rank_test_score"] == cv["rank_test_score"][i]
    if cap is not None:
        assert parent["tags"]["roost.autolog.candidates_not_logged"] == "2"
    served = roost.load_model(rec.artifact(parent, "model")).predict(Xh)
    np.testing.assert_allclose(served, search.predict_proba(Xh)[:, 1], atol=1e-5)


def test_fit_inside_an_active_run_logs_there_and_leaves_it_open(rec, cancer):
    from sklearn.tree import DecisionTreeClassifier

    X, y, _, _ = cancer
    roost.sklearn.autolog(log_models=False)
    with roost.start_run(name="mine") as mine:
        DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
        assert roost.get_run(mine.id)["status"] == "RUNNING"
    run = rec.only_run()
    assert run["run_id"] == mine.id and run["params"]["max_depth"] == 3
    assert "training_accuracy_score" in run["metrics"]


def test_log_models_false_writes_no_model(rec, cancer):
    from sklearn.tree import DecisionTreeClassifier

    X, y, _, _ = cancer
    roost.autolog(log_models=False)
    DecisionTreeClassifier(max_depth=2).fit(X, y)
    assert not rec.artifact(rec.only_run(), "model").exists()


def test_a_raising_fit_ends_its_run_failed(rec, cancer):
    from sklearn.linear_model import LogisticRegression

    X, y, _, _ = cancer
    bad = X.copy()
    bad.iloc[0, 0] = np.nan
    roost.sklearn.autolog()
    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit(bad, y)
    run = rec.only_run()
    assert run["status"] == "FAILED"
    assert run["params"]["C"] == 1.0


def test_disable_restores_the_original_methods_and_stops_logging(rec, cancer):
    from sklearn.ensemble._forest import BaseForest
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection._search import BaseSearchCV
    from sklearn.pipeline import Pipeline

    owners = [LogisticRegression, BaseForest, Pipeline, BaseSearchCV]
    before = {o: o.__dict__["fit"] for o in owners}
    roost.sklearn.autolog()
    assert all(o.__dict__["fit"] is not before[o] for o in owners)
    roost.sklearn.autolog(disable=True)
    assert all(o.__dict__["fit"] is before[o] for o in owners)
    X, y, _, _ = cancer
    LogisticRegression(max_iter=500).fit(X, y)
    assert roost.search_runs() == []


def test_silent_logs_nothing_to_the_console(rec, cancer, capsys, caplog):
    """A param that cannot be logged (the active run already holds another value) is a warning, or nothing when
    silent."""
    from sklearn.linear_model import LogisticRegression

    X, y, _, _ = cancer
    caplog.set_level(logging.DEBUG, logger="roost")
    for silent in (False, True):
        caplog.clear()
        roost.sklearn.autolog(silent=silent, log_models=False)
        with roost.start_run(params={"C": "taken"}):
            LogisticRegression(max_iter=500).fit(X, y)
        loud = [r for r in caplog.records if r.levelno >= logging.INFO]
        assert bool(loud) is not silent, [r.getMessage() for r in loud]
    assert capsys.readouterr() == ("", "")


def test_entry_points_stay_apart_from_the_package():
    """roost.autolog stays the function after the package's modules are imported; roost.sklearn is the flavor."""
    import roost.autologging.sklearn

    assert roost.sklearn is roost.autologging.sklearn
    assert callable(roost.autolog) and roost.autolog is roost.autologging.autolog
    assert roost.lightgbm.autolog is roost.autologging.lightgbm.autolog


def test_search_cv_with_worker_processes_logs_only_the_search(rec, cancer):
    """n_jobs=2 fits the candidates in joblib's worker processes: they log nothing of their own."""
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X, y, _, _ = cancer
    roost.sklearn.autolog(log_models=False)
    search = RandomizedSearchCV(
        DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3, 4, 5]}, n_iter=3, cv=3, n_jobs=2, random_state=0
    ).fit(X, y)
    runs = roost.search_runs()
    parent = [r for r in runs if not r.get("parent_run_id")]
    assert [r["name"] for r in parent] == ["RandomizedSearchCV"]
    assert len(runs) == 1 + 3
    assert parent[0]["params"]["best_max_depth"] == search.best_params_["max_depth"]
