"""roost.lightgbm / roost.xgboost autolog on real training: params, per-iteration eval metrics equal the library's
own history, best iteration, feature importance, the model package."""

import numpy as np
import pytest

import roost


@pytest.fixture
def split(cancer):
    X, y, Xh, yh = cancer
    return X.to_numpy(), y.to_numpy(), Xh.to_numpy(), yh.to_numpy()


def _served(rec, run, rows):
    """The logged package's primary output on raw rows (columns named as its signature says)."""
    import pandas as pd

    model = roost.load_model(rec.artifact(run, "model"))
    return model.predict(pd.DataFrame(rows, columns=list(model.inputs)))


def _check_history(rec, run, expected, best=None):
    """Every {data: {metric: [...]}} series equals what roost recorded, step by step; after early stopping (`best`:
    the index of the best iteration in the series) the best iteration's value once more as the step after the last
    (MLflow's convention: the metric's latest value is the kept model's)."""
    n = 0
    for data, by in expected.items():
        for metric, values in by.items():
            want = [float(v) for v in values] + ([] if best is None else [float(values[best])])
            got, steps = rec.history(run["run_id"], f"{data}-{metric}")
            assert got == want, (data, metric)
            assert steps == list(range(len(want)))
            assert run["metrics"][f"{data}-{metric}"] == want[-1]
            n += 1
    assert n > 0


def test_lgb_train(rec, split):
    import lightgbm as lgb

    X, y, Xh, yh = split
    roost.lightgbm.autolog()
    params = {"objective": "binary", "metric": ["auc", "binary_logloss"], "learning_rate": 0.1, "verbose": -1}
    evals = {}
    dtrain = lgb.Dataset(X, y)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=200,
        valid_sets=[dtrain, lgb.Dataset(Xh, yh, reference=dtrain)],
        valid_names=["train", "valid"],
        callbacks=[lgb.record_evaluation(evals), lgb.early_stopping(10, verbose=False)],
    )
    run = rec.only_run()
    assert run["status"] == "FINISHED" and run["tags"]["roost.autolog"] == "lightgbm"
    for k, v in params.items():
        assert run["params"][k] == (str(v) if isinstance(v, list) else v)
    assert run["params"]["num_boost_round"] == 200
    assert 0 < booster.best_iteration < 200
    _check_history(rec, run, evals, best=booster.best_iteration - 1)  # LightGBM counts iterations from 1
    assert run["metrics"]["best_iteration"] == booster.best_iteration
    assert run["metrics"]["stopped_iteration"] == len(evals["valid"]["auc"])  # iterations run, as MLflow
    names = booster.feature_name()
    for kind in ("gain", "split"):
        want = dict(zip(names, booster.feature_importance(importance_type=kind).tolist()))
        assert rec.artifact_json(run, f"feature_importance_{kind}.json") == pytest.approx(want)
    top = max(names, key=lambda n: booster.feature_importance("gain")[names.index(n)])
    assert f"feature_importance.gain.{top}" in run["metrics"]
    np.testing.assert_allclose(_served(rec, run, Xh), booster.predict(Xh), atol=1e-5)


def test_lgbm_classifier_fit(rec, cancer):
    import lightgbm as lgb

    X, y, Xh, yh = cancer
    roost.lightgbm.autolog()
    est = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1)
    est.fit(X, y, eval_X=(Xh,), eval_y=(yh,))
    run = rec.only_run()
    want = {
        k: "None" if v is None else v
        for k, v in est.get_params().items()
        if v is None or isinstance(v, (int, float, str))
    }
    assert {k: run["params"][k] for k in want} == want
    _check_history(rec, run, est.evals_result_)  # no early stopping: no extra step
    assert run["metrics"]["num_iterations"] == 40
    # the booster params its train() call got, beside the estimator's own (as MLflow logs them)
    assert run["params"]["num_boost_round"] == 40 and run["params"]["keep_training_booster"] is False
    assert run["params"]["objective"] == "None"  # the estimator's own value stays
    served = roost.load_model(rec.artifact(run, "model")).predict(Xh)
    np.testing.assert_allclose(served, est.predict_proba(Xh)[:, 1], atol=1e-5)


def test_xgb_train(rec, split):
    import xgboost as xgb

    X, y, Xh, yh = split
    roost.xgboost.autolog()
    params = {"objective": "binary:logistic", "eval_metric": ["auc", "logloss"], "max_depth": 3, "eta": 0.2}
    evals = {}
    dtrain, dvalid = xgb.DMatrix(X, y), xgb.DMatrix(Xh, yh)
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=300,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=10,
        evals_result=evals,
        verbose_eval=False,
    )
    run = rec.only_run()
    for k, v in params.items():
        assert run["params"][k] == (str(v) if isinstance(v, list) else v)
    assert run["params"]["num_boost_round"] == 300 and run["params"]["early_stopping_rounds"] == 10
    assert run["params"]["verbose_eval"] is False  # train()'s other plain arguments, as MLflow logs them
    _check_history(rec, run, evals, best=booster.best_iteration)
    assert run["metrics"]["best_iteration"] == booster.best_iteration
    assert run["metrics"]["stopped_iteration"] == len(evals["valid"]["auc"]) - 1  # the last one run, as MLflow
    gain = booster.get_score(importance_type="gain")
    got = rec.artifact_json(run, "feature_importance_gain.json")
    assert {k: v for k, v in got.items() if v} == pytest.approx(gain)
    assert {k: v for k, v in rec.artifact_json(run, "feature_importance_split.json").items() if v} == pytest.approx(
        booster.get_score(importance_type="weight")
    )
    np.testing.assert_allclose(_served(rec, run, Xh), booster.predict(xgb.DMatrix(Xh)), atol=1e-5)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_xgb_sklearn_fit(rec, cancer, diabetes, kind):
    import xgboost as xgb

    X, y, Xh, yh = cancer if kind == "classifier" else diabetes
    roost.autolog()
    cls = xgb.XGBClassifier if kind == "classifier" else xgb.XGBRegressor
    stop = {"early_stopping_rounds": 3} if kind == "classifier" else {}  # predict then uses the best iteration
    est = cls(n_estimators=200 if stop else 30, max_depth=3, learning_rate=0.3, **stop)
    est.fit(X, y, eval_set=[(X, y), (Xh, yh)], verbose=False)
    run = rec.only_run()
    assert run["name"] == cls.__name__
    for k, v in est.get_params().items():
        if isinstance(v, float) and np.isnan(v):  # XGBoost's `missing`: NaN is kept as the text 'nan'
            assert run["params"][k] == "nan"
        elif isinstance(v, (int, float, str)):
            assert run["params"][k] == v, k
    history = est.evals_result()
    _check_history(rec, run, history, best=est.best_iteration if stop else None)
    # the booster params its train() call got, beside the estimator's own (as MLflow logs them)
    assert run["params"]["num_boost_round"] == est.n_estimators
    if stop:
        assert run["metrics"]["best_iteration"] == est.best_iteration < run["metrics"]["num_iterations"] - 1
        assert run["metrics"]["stopped_iteration"] == len(history["validation_1"]["logloss"]) - 1
    else:
        assert "best_iteration" not in run["metrics"] and "stopped_iteration" not in run["metrics"]
    native = est.predict_proba(Xh)[:, 1] if kind == "classifier" else est.predict(Xh)
    served = roost.load_model(rec.artifact(run, "model")).predict(Xh)
    np.testing.assert_allclose(served, native, atol=1e-5, rtol=1e-6)


def test_raising_training_ends_failed(rec, split):
    import lightgbm as lgb
    import xgboost as xgb

    X, y, _, _ = split
    roost.autolog()
    with pytest.raises(lgb.basic.LightGBMError):
        lgb.train({"objective": "no-such-objective", "verbose": -1}, lgb.Dataset(X, y), 5)
    with pytest.raises(xgb.core.XGBoostError):
        xgb.train({"objective": "no:such"}, xgb.DMatrix(X, y), 5)
    runs = roost.search_runs()
    assert sorted(r["name"] for r in runs) == ["lightgbm.train", "xgboost.train"]
    assert {r["status"] for r in runs} == {"FAILED"}


def test_log_models_false_and_disable(rec, split):
    import lightgbm as lgb
    import lightgbm.sklearn
    import xgboost as xgb
    import xgboost.sklearn

    X, y, _, _ = split
    originals = [
        (lgb, "train", lgb.train),
        (lightgbm.sklearn, "train", lightgbm.sklearn.train),
        (lightgbm.sklearn.LGBMModel, "fit", lightgbm.sklearn.LGBMModel.__dict__["fit"]),
        (lightgbm.sklearn.LGBMClassifier, "fit", lightgbm.sklearn.LGBMClassifier.__dict__["fit"]),
        (xgb, "train", xgb.train),
        (xgboost.sklearn, "train", xgboost.sklearn.train),
        (xgboost.sklearn.XGBModel, "fit", xgboost.sklearn.XGBModel.__dict__["fit"]),
        (xgboost.sklearn.XGBClassifier, "fit", xgboost.sklearn.XGBClassifier.__dict__["fit"]),
    ]
    roost.autolog(log_models=False)
    assert all(vars(owner)[name] is not orig for owner, name, orig in originals)
    lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 5)
    run = rec.only_run()
    assert not rec.artifact(run, "model").exists()
    assert rec.artifact(run, "feature_importance_gain.json").exists()
    roost.autolog(disable=True)
    assert all(vars(owner)[name] is orig for owner, name, orig in originals)
    lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 5)
    xgb.XGBClassifier(n_estimators=3).fit(X, y)
    assert len(roost.search_runs()) == 1
