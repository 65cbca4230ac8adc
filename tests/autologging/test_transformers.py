"""Hugging Face Trainer: a real (tiny, offline: built from a config, nothing downloaded) BERT fit logs into roost
what the Trainer's own log_history holds (the independent reference), its arguments and config as params, the saved
model (which predicts like the trained one); autolog() adds the callback, a training that raises ends FAILED."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


class _Data(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, 60, (n, 12), generator=g)
        self.labels = (self.ids[:, 0] > 30).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long), "labels": self.labels[i]}


class _Boom(transformers.TrainerCallback):  # type: ignore[misc]
    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step == 3:
            raise RuntimeError("failing on purpose")


def _trainer(tmp: Path, callbacks: list[Any], steps: int = 8) -> Any:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=16, num_labels=2)  # fmt: skip
    model = transformers.BertForSequenceClassification(cfg)
    args = transformers.TrainingArguments(output_dir=str(tmp), max_steps=steps, logging_steps=1, eval_strategy="steps",
                                          eval_steps=4, per_device_train_batch_size=8, report_to=[], use_cpu=True,
                                          save_strategy="no", learning_rate=1e-3, disable_tqdm=True)  # fmt: skip
    return transformers.Trainer(model=model, args=args, train_dataset=_Data(64, 0), eval_dataset=_Data(32, 1),
                                callbacks=callbacks)  # fmt: skip


def test_a_training_logs_the_trainers_own_history(rec: Any, tmp_path: Path) -> None:
    import roost
    from roost.autologging.transformers import RoostCallback

    trainer = _trainer(tmp_path, [RoostCallback(experiment="hf", run_name="bert", log_models=True)])
    trainer.train()
    run = rec.only_run()
    assert run["status"] == "FINISHED" and run["name"] == "bert"
    assert run["params"]["args/learning_rate"] == 1e-3 and run["params"]["model/hidden_size"] == 16
    assert not any(k.endswith("hub_token") for k in run["params"])
    want: dict[str, list[tuple[int, float]]] = {}
    for entry in trainer.state.log_history:
        for k, v in entry.items():
            if k != "step" and isinstance(v, int | float) and not isinstance(v, bool):
                want.setdefault(k, []).append((entry["step"], float(v)))
    assert {"loss", "eval_loss", "learning_rate"} <= set(want)
    for key, points in want.items():
        values, steps = rec.history(run["run_id"], key)
        assert steps == [s for s, _ in points], key
        assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, (_, b) in zip(values, points)), key

    saved = rec.artifact(roost.get_run(run["run_id"]), "model")
    again = transformers.BertForSequenceClassification.from_pretrained(saved).eval()
    batch = _Data(4, 2)[:4]
    trainer.model.eval()
    with torch.no_grad():
        a = again(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        b = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_autolog_adds_the_callback_and_a_failing_training_ends_failed(rec: Any, tmp_path: Path) -> None:
    import roost

    roost.transformers.autolog(experiment="hf-auto", log_models=False)
    _trainer(tmp_path / "a", [], steps=4).train()
    with pytest.raises(RuntimeError, match="failing on purpose"):
        _trainer(tmp_path / "b", [_Boom()], steps=6).train()
    runs = sorted(roost.search_runs(experiment="hf-auto", limit=None), key=lambda r: r["start_time"])
    assert [r["status"] for r in runs] == ["FINISHED", "FAILED"]
    assert runs[0]["tags"]["roost.autolog"] == "transformers" and runs[0]["metrics"]["loss"] > 0
    roost.transformers.autolog(disable=True)
    _trainer(tmp_path / "c", [], steps=2).train()
    assert len(roost.search_runs(experiment="hf-auto", limit=None)) == 2
