"""Data-parallel training: `roost train CONFIG --nproc N`, or any launcher that sets torch's rendezvous variables.

`--nproc N` starts N worker processes on this machine through torch's elastic launcher (what `torchrun` runs);
`torchrun --nnodes M --nproc-per-node N -m roost.cli train CONFIG` spans machines the same way. Each worker loads
the same data and cuts every global mini-batch into N equal shares; DistributedDataParallel sums the gradients
(gloo on CPU, NCCL on GPU), scaled so that a step equals the single-process step on the whole batch. Rank 0
alone evaluates, checkpoints, logs to the repository and exports the package; early stopping follows rank 0.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from roost.errors import RoostError

GROUP_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Context:
    """This process's place in the training group (world 1 = not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"
    backend: str = ""

    @property
    def active(self) -> bool:
        """True inside a group of more than one process."""
        return self.world > 1

    @property
    def leader(self) -> bool:
        """Rank 0: the process that logs, checkpoints and exports."""
        return self.rank == 0


def launched() -> bool:
    """True when a launcher (torchrun, `--nproc`) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def context() -> Context:
    """The current group, or the single-process context when none was joined."""
    if not launched():
        return Context()
    import torch.distributed as dist

    if not dist.is_initialized():
        return Context()
    backend = str(dist.get_backend())
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return Context(
        dist.get_rank(), dist.get_world_size(), local, f"cuda:{local}" if backend == "nccl" else "cpu", backend
    )


def setup() -> Context:
    """Join the process group when launched as one of several (NCCL when this worker has a GPU, else gloo)."""
    if not launched():
        return Context()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")) or 1)
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        backend = group_backend(gpus, local_world, os.environ.get("ROOST_TRAIN_DEVICE", "auto"))
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=GROUP_TIMEOUT)
    return context()


def group_backend(gpus: int, local_world: int, requested: str = "auto") -> str:
    """NCCL when every worker on this machine has a GPU of its own, else gloo on CPU.

    NCCL refuses two ranks on one GPU, and a rank whose GPU index does not exist would crash, so fewer GPUs than
    workers trains on CPU (with a warning) rather than failing; `ROOST_TRAIN_DEVICE=cpu` always means gloo.
    """
    if requested == "cpu" or gpus == 0:
        return "gloo"
    if gpus < local_world:
        import logging

        logging.getLogger(__name__).warning(
            "%d workers on this machine but %d GPU(s): training on CPU with gloo (use --nproc %d for NCCL)",
            local_world,
            gpus,
            gpus,
        )
        return "gloo"
    return "nccl"


def teardown() -> None:
    """Leave the process group (after the last collective)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast_float(ctx: Context, value: float) -> float:
    """Rank 0's `value` on every rank."""
    if not ctx.active:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.broadcast(t, src=0)
    return float(t.item())


def all_sum(ctx: Context, *values: float) -> list[float]:
    """Element-wise sums of `values` over the group."""
    if not ctx.active:
        return list(values)
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


def wrap(net: Any, ctx: Context) -> Any:
    """The module to call for training steps: DistributedDataParallel around `net` in a group, else `net`."""
    if not ctx.active:
        return net
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    dev = [ctx.local_rank] if ctx.device.startswith("cuda") else None
    # no buffer sync in forward: torch 2.13 names it forward_sync_buffers; older GPU images' torch broadcast_buffers
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return DistributedDataParallel(net, device_ids=dev, forward_sync_buffers=False)
    return DistributedDataParallel(net, device_ids=dev, broadcast_buffers=False)


def check_nproc(nproc: Any) -> int:
    """`--nproc` as a positive int, or a clear error."""
    try:
        n = int(nproc)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(nproc).strip() != str(n):
        raise RoostError(
            f"--nproc {nproc!r}: must be a whole number of processes ≥ 1",
            hint="e.g. --nproc 2 (at most the number of cores or GPUs on this machine)",
        )
    return n


def threads_per_worker(nproc: int) -> int:
    """Compute threads for each of `nproc` workers: the single-process default shared out, at least 1."""
    from roost.training.base import default_threads

    return max(1, default_threads() // nproc)


def launch(nproc: int, target: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run `target(**kwargs)` (`roost.training.api.train`, passed in by it) in `nproc` processes (torch elastic); rank
    0's TrainResult. `target` must be a module-level function: the spawned workers import it by name.

    A worker's own error (a RoostError with its hint, Ctrl-C's Interrupted) is re-raised here as it was raised.
    """
    import logging
    import shutil
    import signal
    import tempfile

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from roost import workspace
    from roost.training.tensorboard import free_port

    ws = workspace.current()  # the workers use this process's workspace, however it was chosen
    wanted = {
        "ROOST_TRAIN_THREADS": str(threads_per_worker(nproc)),
        "OMP_NUM_THREADS": str(threads_per_worker(nproc)),
        "ROOST_WORKSPACE": str(ws.root),
        "ROOST_STORE_URL": ws.store_url,
        "ROOST_ARTIFACTS": ws.artifacts,
        "ROOST_ONLINE_STORE": ws.online_store,
    }
    env_before = {k: os.environ.get(k) for k in wanted}
    for k, v in wanted.items():  # inherited by the spawned workers; the user's own setting wins
        os.environ.setdefault(k, v)
    conf = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"roost-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint=f"127.0.0.1:{free_port()}",
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    quiet = [
        lg
        for name, lg in logging.root.manager.loggerDict.items()
        if name.startswith(("torch.distributed", "torch.multiprocessing")) and isinstance(lg, logging.Logger)
    ]
    levels = [lg.level for lg in quiet]
    for lg in quiet:  # a worker's error is re-raised below as itself; the launcher's reports would repeat it
        lg.setLevel(logging.CRITICAL)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    errdir = tempfile.mkdtemp(prefix="roost-ddp-")
    try:
        out = elastic_launch(conf, _worker)(target, {**kwargs, "_errdir": errdir})
    except SignalException as exc:  # Ctrl-C reached the workers too; rank 0 marks its run KILLED
        err = _saved_error(errdir, 0, wait=10.0)
        raise (err if isinstance(err, KeyboardInterrupt) else KeyboardInterrupt(str(exc))) from None
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        err = _saved_error(errdir, rank)
        if isinstance(err, (KeyboardInterrupt, RoostError)):
            raise err from None
        why = f"{type(err).__name__}: {err}" if err is not None else _worker_message(failure)
        raise RoostError(
            f"training worker rank {rank} of {nproc} failed: {why}",
            hint="the same config with --nproc 1 shows the full traceback",
        ) from None
    finally:
        for sig, h in handlers.items():  # the launcher leaves its own handlers installed
            signal.signal(sig, h)
        for lg, lv in zip(quiet, levels):
            lg.setLevel(lv)
        shutil.rmtree(errdir, ignore_errors=True)
        for k, old in env_before.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
    return out[0]


def _interrupt_once() -> None:
    """Ctrl-C reaches a worker twice (from the terminal, then forwarded by the launcher): act on the first only."""
    import signal

    def first(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, first)


def _saved_error(errdir: str, rank: int, wait: float = 0.0) -> BaseException | None:
    """The exception a worker saved before failing (waiting up to `wait` s for it), else None."""
    import pickle
    import time

    path = os.path.join(errdir, f"rank{rank}.pickle")
    deadline = time.monotonic() + wait
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        with open(path, "rb") as f:
            err: BaseException | None = pickle.load(f)
            return err
    except (OSError, EOFError, pickle.UnpicklingError):
        return None


def _worker_message(failure: Any) -> str:
    """The one-line reason of a failed worker (its exception, else its exit code)."""
    msg = getattr(failure, "message", None)
    if isinstance(msg, dict):
        msg = (msg.get("message") or {}).get("message") if isinstance(msg.get("message"), dict) else msg.get("message")
    text = str(msg or "").strip()
    if not text or text.startswith("To enable traceback"):
        code = getattr(failure, "exitcode", None)
        return f"exit code {code}" + (" (killed by a signal)" if code is not None and code < 0 else "")
    return text.splitlines()[-1]


def _worker(target: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """One spawned worker: join the group, train, leave. Rank 0 returns its result (TensorBoard by pid).

    A failing worker raises: `record` writes its error for the launcher, which stops the other workers.
    """
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(_work)(target, kwargs)


def _work(target: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """The worker's body (see _worker)."""
    import pickle

    errdir = kwargs.pop("_errdir", None)
    _interrupt_once()
    setup()
    try:
        res = target(**kwargs)
    except BaseException as exc:
        if errdir:  # the parent re-raises this worker's own error (with its hint), not a launcher report
            try:
                blob = pickle.dumps(exc)
            except Exception:  # noqa: BLE001 - an unpicklable error travels as text
                blob = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
            with open(os.path.join(errdir, f"rank{context().rank}.pickle"), "wb") as f:
                f.write(blob)
        if isinstance(exc, KeyboardInterrupt):  # saved for the parent: leave without a traceback per worker
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)  # (a normal exit would tear down a process group whose peers are gone: abort())
        raise
    teardown()
    if res is not None and res.tensorboard_process is not None:
        res.tensorboard_pid = res.tensorboard_process.pid
        res.tensorboard_process = None  # a Popen does not cross processes; the parent attaches by pid
    return res
