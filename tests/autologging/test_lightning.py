"""PyTorch Lightning: a real fit logs into roost exactly what Lightning's own CSVLogger writes (the independent
reference: same steps, same values), save_hyperparameters as params, the best checkpoint as an artifact that loads
to the same weights; autolog() adds the logger to a plain Trainer.fit, and a fit that raises ends its run FAILED."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest

L = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")


class Regressor(L.LightningModule):  # type: ignore[misc,name-defined]
    def __init__(self, lr: float = 0.05, hidden: int = 8, fail_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch: Any, i: int) -> Any:
        if self.global_step == self.hparams.fail_at:
            raise ValueError("failing on purpose")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, i: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loaders() -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.randn(256, generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    train, val = torch.utils.data.random_split(ds, [192, 64], generator=g)
    return torch.utils.data.DataLoader(train, batch_size=32), torch.utils.data.DataLoader(val, batch_size=64)


def _trainer(tmp: Path, loggers: list[Any], **kw: Any) -> Any:
    ckpt = L.callbacks.ModelCheckpoint(dirpath=tmp / "ckpt", monitor="val_loss", mode="min")
    return L.Trainer(max_epochs=3, log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                     logger=loggers, callbacks=[ckpt], default_root_dir=tmp, accelerator="cpu", **kw)  # fmt: skip


def test_a_fit_logs_what_lightnings_csv_logger_writes(rec: Any, tmp_path: Path) -> None:
    import roost
    from roost.autologging.lightning import RoostLogger

    torch.manual_seed(0)
    csv_logger = L.loggers.CSVLogger(tmp_path / "csv", name="ref")
    roost_logger = RoostLogger(experiment="pl", run_name="fit")
    model = Regressor(lr=0.05, hidden=8)
    trainer = _trainer(tmp_path, [csv_logger, roost_logger])
    trainer.fit(model, *_loaders())
    roost_logger.close()

    run = rec.only_run()
    assert run["name"] == "fit" and run["status"] == "FINISHED"
    assert run["params"] == {"lr": 0.05, "hidden": 8, "fail_at": -1}
    want: dict[str, list[tuple[int, float]]] = {}
    with open(Path(csv_logger.log_dir) / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k != "step" and v not in ("", None):
                    want.setdefault(k, []).append((int(row["step"]), float(v)))
    assert {"train_loss_step", "train_loss_epoch", "val_loss", "epoch"} <= set(want)
    for key, points in want.items():
        values, steps = rec.history(run["run_id"], key)
        assert steps == [s for s, _ in points], key
        assert all(math.isclose(a, b, rel_tol=1e-6) for a, (_, b) in zip(values, points, strict=True)), key

    # the best checkpoint: uploaded, and it loads to the weights ModelCheckpoint kept
    best = Path(trainer.checkpoint_callback.best_model_path)
    art = rec.artifact(roost.get_run(run["run_id"]), f"checkpoints/{best.name}")
    a, b = torch.load(art, weights_only=False)["state_dict"], torch.load(best, weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_autolog_adds_the_logger_and_a_failing_fit_ends_failed(rec: Any, tmp_path: Path) -> None:
    import roost

    roost.lightning.autolog(experiment="auto-pl")
    _trainer(tmp_path / "a", []).fit(Regressor(), *_loaders())
    with pytest.raises(ValueError, match="failing on purpose"):
        _trainer(tmp_path / "b", []).fit(Regressor(fail_at=3), *_loaders())
    runs = sorted(roost.search_runs(experiment="auto-pl", limit=None), key=lambda r: r["start_time"])
    assert [r["status"] for r in runs] == ["FINISHED", "FAILED"]
    assert runs[0]["metrics"]["val_loss"] > 0 and runs[0]["tags"]["roost.autolog"] == "lightning"
    values, steps = rec.history(runs[1]["run_id"], "train_loss_step")
    assert steps == [0, 1, 2]  # the steps before the failure were kept

    roost.lightning.autolog(disable=True)
    _trainer(tmp_path / "c", []).fit(Regressor(), *_loaders())
    assert len(roost.search_runs(experiment="auto-pl", limit=None)) == 2


class _Stopped(Regressor):
    """Raises what SIGTERM raises (roost's Terminated) at step 2, or a ValueError with fail_at."""

    def training_step(self, batch: Any, i: int) -> Any:
        from roost.registry.lifecycle import Terminated

        if self.global_step == 2:
            raise Terminated(143)
        return super().training_step(batch, i)


def test_sigterm_inside_an_autologged_fit_ends_killed_and_an_error_is_described(rec: Any, tmp_path: Path) -> None:
    """The run's own `with` mapping, for every flavor: Terminated → KILLED; an error → FAILED with its location."""
    import roost
    from roost.registry.lifecycle import Terminated

    roost.lightning.autolog(experiment="pl-stop")
    with pytest.raises(Terminated):
        _trainer(tmp_path / "a", []).fit(_Stopped(), *_loaders())
    with pytest.raises(ValueError):
        _trainer(tmp_path / "b", []).fit(Regressor(fail_at=1), *_loaders())
    runs = sorted(roost.search_runs(experiment="pl-stop", limit=None), key=lambda r: r["start_time"])
    assert [r["status"] for r in runs] == ["KILLED", "FAILED"]
    assert "roost.error" not in runs[0]["tags"]
    error = runs[1]["tags"]["roost.error"]
    assert error.startswith("ValueError: failing on purpose") and "in training_step" in error, error
