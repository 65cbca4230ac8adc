"""Deferred model packages: autolog logs the native model, and the ONNX package is built on first need — it predicts
like the native model, is built once under concurrent loads, and a conversion that fails loses nothing."""

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

import roost
from roost.errors import RoostError


@pytest.fixture
def split():
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=600, n_features=8, n_informative=5, random_state=3)
    return X[:500], y[:500], X[500:]


def _proba(pred, Xh):
    cols = {name: Xh[:, i] for i, name in enumerate(pred.inputs)}  # f0.. (sklearn), Column_0.. (LightGBM)
    return np.asarray(pred.predict(cols), dtype=np.float64)  # a binary model: P(class 1) per row


FITS = {
    "sklearn": lambda: __import__("sklearn.ensemble", fromlist=["x"]).RandomForestClassifier(
        n_estimators=15, max_depth=5, random_state=0, n_jobs=1
    ),
    "lightgbm": lambda: __import__("lightgbm").LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1),
    "xgboost": lambda: __import__("xgboost").XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1),
}


@pytest.mark.parametrize("lib", sorted(FITS))
def test_a_deferred_package_is_built_on_first_load_and_predicts_like_the_native_model(rec, split, lib):
    Xt, yt, Xh = split
    roost.autolog(silent=True)
    model = FITS[lib]().fit(Xt, yt)
    run = rec.only_run()
    folder = rec.artifact(run, "model")
    assert (folder / "deferred.json").is_file() and not (folder / "model.onnx").exists()  # nothing converted yet
    with pytest.raises(RoostError, match="roost models package"):
        roost.modelpkg.load(folder)  # the package layer alone says how to build it
    served = roost.load_model(f"runs:/{run['run_id']}/model")
    assert (folder / "model.onnx").is_file() and (folder / "signature.json").is_file()
    want = model.predict_proba(Xh)[:, 1]
    assert np.max(np.abs(_proba(served, Xh) - want)) <= 1e-5
    meta = roost.modelpkg.read_meta(folder)
    assert meta["packaged"] == "deferred" and meta["run_id"] == run["run_id"] and meta["parity_rows"] > 0
    assert run["params"]["data.fingerprint"] == roost.get_run(run["run_id"])["params"]["data.fingerprint"]


def test_package_now_writes_the_package_at_once(rec, split):
    Xt, yt, Xh = split
    roost.sklearn.autolog(silent=True, package="now")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(Xt, yt)
    folder = rec.artifact(rec.only_run(), "model")
    assert (folder / "model.onnx").is_file() and not (folder / "deferred.json").exists()
    served = roost.modelpkg.load(folder)
    assert np.max(np.abs(_proba(served, Xh) - model.predict_proba(Xh)[:, 1])) <= 1e-5


def test_a_bad_package_mode_is_a_clear_error():
    with pytest.raises(RoostError, match="package='now'"):
        roost.autolog(package="later")


def test_two_concurrent_loads_build_it_once(rec, split, monkeypatch):
    Xt, yt, Xh = split
    roost.lightgbm.autolog(silent=True)
    import lightgbm

    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1).fit(Xt, yt)
    run = rec.only_run()
    from roost.model_import import log as import_log

    real, calls, inside = import_log.build_package, [], threading.Event()

    def counted(*args, **kwargs):
        calls.append(1)
        inside.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(import_log, "build_package", counted)
    results, errors = [], []

    def load():
        try:
            results.append(roost.load_model(run["run_id"]))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2 and len(calls) == 1
    want = model.predict_proba(Xh)[:, 1]
    for served in results:
        assert np.max(np.abs(_proba(served, Xh) - want)) <= 1e-5


def test_two_processes_build_it_once(rec, split, tmp_path):
    Xt, yt, _ = split
    roost.xgboost.autolog(silent=True)
    import xgboost

    xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(Xt, yt)
    folder = rec.artifact(rec.only_run(), "model")
    code = (
        "import sys, roost.model_import.log as L, roost.model_import.deferred as D\n"
        "real = L.build_package\n"
        "def counted(*a, **k):\n"
        "    open(sys.argv[2], 'a').write('built\\n'); return real(*a, **k)\n"
        "L.build_package = counted\n"
        "D.build(sys.argv[1])\n"
    )
    log = tmp_path / "builds.txt"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(folder), str(log)]) for _ in range(2)]
    assert [p.wait(180) for p in procs] == [0, 0]
    assert log.read_text().splitlines() == ["built"]
    assert (folder / "model.onnx").is_file()


def test_a_conversion_that_fails_is_a_clear_error_and_loses_nothing(rec, split, monkeypatch):
    Xt, yt, Xh = split
    roost.sklearn.autolog(silent=True)
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(Xt, yt)
    run = rec.only_run()
    folder = rec.artifact(run, "model")
    before = sorted(p.name for p in folder.rglob("*") if p.is_file())
    from roost.model_import import log as import_log

    def broken(*args, **kwargs):
        raise RoostError("scikit-learn model cannot be converted to ONNX: no converter", hint="register one")

    monkeypatch.setattr(import_log, "build_package", broken)
    with pytest.raises(RoostError) as err:
        roost.package_model(run["run_id"])
    assert "could not be packaged: scikit-learn model cannot be converted" in err.value.message
    assert "native model stays logged" in err.value.hint and "register one" in err.value.hint
    after = sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name != ".package.lock")
    assert after == before and not (folder / "model.onnx").exists()
    monkeypatch.undo()
    from roost.model_import.deferred import load_native

    native, _sample = load_native(folder)
    assert np.array_equal(native.predict_proba(Xh), model.predict_proba(Xh))  # the native model is intact
    roost.package_model(run["run_id"])  # and packages once the cause is gone
    assert (folder / "model.onnx").is_file()


def test_a_changed_native_file_is_not_read(rec, split):
    Xt, yt, _ = split
    roost.sklearn.autolog(silent=True)
    from hashlib import sha256

    from sklearn.linear_model import LogisticRegression

    LogisticRegression(max_iter=300).fit(Xt, yt)
    folder = rec.artifact(rec.only_run(), "model")
    logged = json.loads((folder / "deferred.json").read_text())
    for part in ("model", "sample"):  # both are pickles: each is covered by deferred.json and the run's record
        f = folder / logged[part]
        original = f.read_bytes()
        f.write_bytes(original + b"x")
        with pytest.raises(RoostError, match="changed since it was logged"):
            roost.load_model(folder)
        forged = {**logged, "sha256": {**logged["sha256"], logged[part]: sha256(f.read_bytes()).hexdigest()}}
        (folder / "deferred.json").write_text(json.dumps(forged))  # both rewritten: the run's record still differs
        with pytest.raises(RoostError, match="changed since it was logged"):
            roost.load_model(folder)
        f.write_bytes(original)
        (folder / "deferred.json").write_text(json.dumps(logged))
    assert not (folder / "model.onnx").exists()
    roost.load_model(folder)  # the files as logged: packaged
    assert (folder / "model.onnx").is_file()


def test_registering_builds_the_package_and_the_registry_records_its_signature(rec, split):
    Xt, yt, Xh = split
    roost.sklearn.autolog(silent=True)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(Xt, yt)
    run = rec.only_run()
    v = roost.register_model(run["run_id"], "deferred-clf")
    assert v.signature is not None and v.meta["packaged"] == "deferred"
    roost.set_alias("deferred-clf", v.version, "prod")
    served = roost.load_model("deferred-clf@prod")
    assert np.max(np.abs(_proba(served, Xh) - model.predict_proba(Xh)[:, 1])) <= 1e-5


def _logged_logreg(rec, split):
    Xt, yt, _ = split
    roost.sklearn.autolog(silent=True)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(Xt, yt)
    run = rec.only_run()
    return model, run, rec.artifact(run, "model")


def test_the_cli_packages_a_run_and_says_what_it_built(rec, split, cli):
    model, run, folder = _logged_logreg(rec, split)
    code, out, err = cli("models", "package", run["run_id"][:10])
    assert code == 0, err
    assert "packaged" in out and "LogisticRegression" in out and (folder / "model.onnx").is_file()
    code, out, _ = cli("models", "package", run["run_id"], "--json")  # built already: said again, not rebuilt
    assert code == 0 and json.loads(out)["packaged"] == "deferred"
    code, _, err = cli("models", "package", "no-such-model@prod")
    assert code == 2 and "no-such-model" in err


def test_serve_packages_the_models_it_names_before_starting(rec, split, cli, tmp_path):
    _model, _run, folder = _logged_logreg(rec, split)
    code, out, err = cli("serve", str(folder), "--export", "kserve", str(tmp_path / "bundle"))  # serve's load path
    assert code == 0, err
    assert (folder / "model.onnx").is_file() and (tmp_path / "bundle" / "model" / "model.onnx").is_file()


def test_the_cli_alias_builds_the_version_it_points_at(rec, split, cli):
    _model, run, folder = _logged_logreg(rec, split)
    from roost.registry import api

    v = api.register_model(run["run_id"], "clf-alias")  # the registry's own call: nothing built
    assert not (folder / "model.onnx").exists()
    code, _, err = cli("models", "alias", "clf-alias", str(v.version), "prod")
    assert code == 0, err
    assert (folder / "model.onnx").is_file()


def test_the_consoles_model_page_builds_the_versions_it_shows(rec, split):
    _model, run, folder = _logged_logreg(rec, split)
    from starlette.testclient import TestClient

    from roost.registry import api
    from roost.ui import create_app

    api.register_model(run["run_id"], "clf-page")  # the registry's own call: nothing built
    assert not (folder / "model.onnx").exists()
    with TestClient(create_app(), follow_redirects=False) as client:
        page = client.get("/models/clf-page")
    assert page.status_code == 200 and "not packaged" not in page.text
    assert (folder / "model.onnx").is_file()


@pytest.mark.parametrize("how", ["runs-uri", "run-id", "folder", "cli"])
def test_batch_scoring_builds_the_package_and_scores_like_the_native_model(rec, split, cli, tmp_path, how):
    import pandas as pd

    model, run, folder = _logged_logreg(rec, split)
    _, _, Xh = split
    src = tmp_path / "in.parquet"
    pd.DataFrame({f"f{i}": Xh[:, i] for i in range(Xh.shape[1])}).assign(row=range(len(Xh))).to_parquet(src)
    ref = {"runs-uri": f"runs:/{run['run_id']}/model", "run-id": run["run_id"], "folder": str(folder)}.get(how)
    out = tmp_path / "scored"
    if how == "cli":
        code, _, err = cli("predict", f"runs:/{run['run_id']}/model", "-i", str(src), "-o", str(out), "-q")
        assert code == 0, err
    else:
        roost.predict(ref, src, out, workers=1)
    assert (folder / "model.onnx").is_file()
    got = pd.read_parquet(out).sort_values("row")
    proba = np.array([p[1] if np.ndim(p) else p for p in got["probability"]], dtype=np.float64)
    assert np.max(np.abs(proba - model.predict_proba(Xh)[:, 1])) <= 1e-5
