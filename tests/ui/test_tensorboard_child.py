"""The UI's "Launch TensorBoard" finds an `auto` child's events on its parent run, as `roost tensorboard` does."""

from __future__ import annotations

from pathlib import Path

import roost
from roost import workspace
from roost.training.tensorboard import TB_LOGS_TAG
from roost.ui.tensorboard import run_logdir


def test_an_auto_childs_logdir_is_on_its_parent(tmp_path: Path):
    ws = roost.init(tmp_path / "ws")
    workspace.use(ws)
    with roost.start_run(experiment="auto", name="auto") as parent:
        events = parent.artifact_dir / "tensorboard" / "mlp"
        events.mkdir(parents=True)
        (events / "events.out.tfevents.1").write_bytes(b"x")
        with roost.start_run(
            experiment="auto",
            name="auto:mlp",
            parent_run_id=parent.id,
            tags={TB_LOGS_TAG: f"{parent.id}:tensorboard/mlp"},
        ) as child:
            pass
    found = run_logdir(roost.get_run(child.id))
    assert found is not None and found.resolve() == events.resolve()
    with roost.start_run(experiment="plain") as lone:
        pass
    assert run_logdir(roost.get_run(lone.id)) is None
