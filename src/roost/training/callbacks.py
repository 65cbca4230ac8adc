"""Training callbacks: metrics to the run, TensorBoard scalars, a Rich progress bar."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _finite(d: dict[str, float]) -> dict[str, float]:
    """Drop NaN/inf values (the repository refuses them)."""
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and math.isfinite(v)}


class RunLogger:
    """Per-epoch metrics (step = epoch) and the training loss every `every` steps (`train_loss_step`)."""

    def __init__(self, run: Any, every: int = 50) -> None:
        self.run, self.every = run, max(1, every)
        self.told_epoch_size = False

    def on_step(self, state: Any, loss: float) -> None:
        """Log the mini-batch loss now and then (and, once, how many mini-batches make an epoch)."""
        per_epoch = int(getattr(state, "steps_per_epoch", 0) or 0)
        if per_epoch and not self.told_epoch_size:
            self.run.set_tag("roost.steps_per_epoch", str(per_epoch))  # the UI's epoch axis for mini-batch steps
            self.told_epoch_size = True
        if state.step % self.every == 0 and math.isfinite(loss):
            self.run.log_metric("train_loss_step", loss, step=state.step)

    def on_epoch_end(self, state: Any, logs: dict[str, float]) -> None:
        """Log the epoch's metrics."""
        self.run.log_metrics(_finite(logs), step=state.epoch)


class TensorBoard:
    """Scalars to TensorBoard event files in `logdir` (written while training)."""

    def __init__(self, logdir: Path, every: int = 50) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(logdir), flush_secs=5)
        self.every = max(1, every)

    def on_step(self, state: Any, loss: float) -> None:
        """Mini-batch loss every `every` steps."""
        if state.step % self.every == 0:
            self.writer.add_scalar("train/loss_step", loss, state.step)

    def on_epoch_end(self, state: Any, logs: dict[str, float]) -> None:
        """Epoch metrics under `epoch/`."""
        for k, v in _finite(logs).items():
            self.writer.add_scalar(f"epoch/{k}", v, state.epoch)
        self.writer.flush()

    def on_train_end(self, state: Any) -> None:
        """Close the writer."""
        self.writer.close()

    def close(self) -> None:
        """Close the writer (also after an interruption)."""
        self.writer.close()


class Progress:
    """A Rich progress bar per epoch with the live loss; a summary line after each epoch."""

    def __init__(self, console: Any = None, primary: str | None = None, label: str | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console = console or Console(stderr=True)
        self.primary = primary
        self.label = label  # printed once above the first epoch line (e.g. "candidate 1/3: lightgbm")
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=True,
        )
        self.task: Any = None
        self.loss = math.nan

    def _head(self) -> None:
        """Print the label line once, on the stream the epoch lines go to."""
        if self.label:
            self.console.print(self.label, highlight=False)
            self.label = None

    def _new_task(self, state: Any) -> None:
        """Start the bar for the next epoch."""
        if self.task is not None:
            self.bar.remove_task(self.task)
        unit = getattr(state, "unit", "epoch")
        self.task = self.bar.add_task(f"{unit} {state.epoch + 1}/{state.epochs}", total=state.steps_per_epoch, info="")

    def on_train_begin(self, state: Any) -> None:
        """Show the bar."""
        self._head()
        self.bar.start()
        self._new_task(state)

    def on_step(self, state: Any, loss: float) -> None:
        """Advance with an exponentially smoothed loss."""
        self.loss = loss if math.isnan(self.loss) else 0.9 * self.loss + 0.1 * loss
        self.bar.update(self.task, advance=1, info=f"loss {self.loss:.4f}")

    def on_epoch_end(self, state: Any, logs: dict[str, float]) -> None:
        """Print the epoch summary above the bar; restart it for the next epoch."""
        keys = ["train_loss", "val_loss"] + ([f"val_{self.primary}"] if self.primary else [])
        parts = [f"{k} {logs[k]:.4f}" for k in keys if k in logs]
        self._head()
        unit = getattr(state, "unit", "epoch")  # LightGBM counts boosting rounds
        self.console.print(f"{unit} {state.epoch}/{state.epochs}  " + "  ".join(parts), highlight=False)
        if state.steps_per_epoch <= 1:  # boosting rounds: one bar for all
            if self.task is None:
                self._new_task(state)
            self.bar.update(self.task, completed=state.epoch, total=state.epochs, info="")
        elif state.epoch < state.epochs:
            self._new_task(state)

    def on_train_end(self, state: Any) -> None:
        """Hide the bar."""
        self.close()

    def close(self) -> None:
        """Stop the bar (also after an interruption)."""
        self.bar.stop()
