"""`roost runs import-tb DIR`: TensorBoard event files as roost runs, read with the tensorboard package alone (no
TensorFlow, no Keras).

Every folder under DIR that holds event files becomes one run, named by its path under DIR: scalar summaries (the
legacy `simple_value` ones PyTorch's SummaryWriter writes, and TF2 scalar tensors) become metric histories with
their steps and wall times; hyperparameters from the hparams plugin become params. A folder imported before (same
absolute path and same event files, sizes included) is skipped, so importing a growing log folder again adds only
what is new as new runs.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError

if TYPE_CHECKING:
    from roost.registry.interface import MetricPoint, TrackingStore

log = logging.getLogger(__name__)

SOURCE_TAG = "roost.import.tensorboard"  # the folder's absolute path and a digest of its event files
BATCH = 5_000  # points per log_batch


@dataclass
class TbImportReport:
    """What an import did."""

    runs: list[str] = field(default_factory=list)  # run ids created
    skipped: list[str] = field(default_factory=list)  # folders imported before
    metric_points: int = 0
    skipped_nonfinite: int = 0


def event_folders(logdir: Path) -> list[Path]:
    """The folders under `logdir` (itself included) that hold TensorBoard event files, sorted."""
    if not logdir.is_dir():
        raise RoostError(f"{logdir} is not a folder", hint="give the folder TensorBoard was pointed at (--logdir)")
    folders = sorted({p.parent for p in logdir.rglob("events.out.tfevents.*") if p.is_file()})
    if not folders:
        raise RoostError(f"no TensorBoard event files (events.out.tfevents.*) under {logdir}")
    return folders


def _source(folder: Path) -> str:
    files = sorted((p.name, p.stat().st_size) for p in folder.glob("events.out.tfevents.*"))
    digest = hashlib.sha256(repr(files).encode()).hexdigest()[:16]
    return f"{folder.resolve()}#{digest}"


def read_folder(folder: Path) -> tuple[list[MetricPoint], dict[str, Any]]:
    """(metric points (tag, value, step, wall time), hyperparameters) of the event files directly in `folder`."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    points: list[MetricPoint] = []
    for tag in tags.get(ea.SCALARS, []):
        points += [(tag, float(e.value), int(e.step), float(e.wall_time)) for e in acc.Scalars(tag)]
    try:
        scalar_tensors = set(acc.PluginTagToContent("scalars"))  # TF2 scalars: tensors of the scalars plugin
    except KeyError:
        scalar_tensors = set()
    for tag in tags.get(ea.TENSORS, []):
        if tag not in scalar_tensors:
            continue
        for e in acc.Tensors(tag):
            arr = tensor_util.make_ndarray(e.tensor_proto)
            if arr.size == 1:
                points.append((tag, float(arr.reshape(-1)[0]), int(e.step), float(e.wall_time)))
    return points, _hparams(acc)


def _hparams(acc: Any) -> dict[str, Any]:
    from tensorboard.plugins.hparams import metadata

    try:
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:
        return {}
    out: dict[str, Any] = {}
    raw = content.get(metadata.SESSION_START_INFO_TAG)
    if raw is not None:
        info = metadata.parse_session_start_info_plugin_data(raw)
        for k, v in info.hparams.items():
            kind = v.WhichOneof("kind")
            out[k] = getattr(v, kind) if kind else None
    return out


def _imported(store: TrackingStore, experiment: str) -> set[str]:
    from roost.errors import NotFoundError

    try:
        runs = store.search_runs(experiment=experiment, limit=None)
    except NotFoundError:  # a new experiment
        return set()
    return {str(r["tags"][SOURCE_TAG]) for r in runs if SOURCE_TAG in r["tags"]}


def import_tensorboard(
    logdir: str | Path, store: TrackingStore, experiment: str = "tensorboard", prefix: str = ""
) -> TbImportReport:
    """Import every event-file folder under `logdir` as a run of `experiment` (see the module's docstring)."""
    from roost.registry import api

    root = Path(logdir)
    report = TbImportReport()
    seen = _imported(store, experiment)
    for folder in event_folders(root):
        source = _source(folder)
        if source in seen:
            report.skipped.append(str(folder))
            continue
        points, hparams = read_folder(folder)
        finite = [p for p in points if math.isfinite(p[1])]
        report.skipped_nonfinite += len(points) - len(finite)
        rel = folder.relative_to(root).as_posix()
        name = prefix + (root.resolve().name if rel == "." else rel)
        tags = {SOURCE_TAG: source, "roost.source": "tensorboard"}
        with api.start_run(experiment, name=name, params=hparams, tags=tags, store=store) as run:
            for i in range(0, len(finite), BATCH):
                store.log_batch(run.id, metrics=finite[i : i + BATCH])
        report.runs.append(run.id)
        report.metric_points += len(finite)
        log.info("imported %s as run %s (%d points)", folder, run.id, len(finite))
    return report
