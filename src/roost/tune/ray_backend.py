"""`roost tune --backend ray`: each trial is a Ray task; the driver asks, the task trains and tells, one Engine.

The driver process keeps the study: it asks the Engine for a trial per free slot (one client id per slot, so
leases and `abandon` work as with local workers), submits one task per trial and refills slots as tasks end.
A task adopts the driver's workspace from the `runtime_env` variables ROOST_WORKSPACE / ROOST_STORE_URL /
ROOST_ARTIFACTS (/ ROOST_ONLINE_STORE), runs the same `run_trial` as a local worker — so the parent run, the
child trial runs and the best trial are recorded exactly as locally — and tags the trial's run with where it ran
(`roost.tune.host`, `roost.tune.pid`, `roost.tune.ray_node`). Nodes other than the driver's need a store and an
artifact root they can reach (postgresql://, s3:// or a shared file system); a sqlite:/// store only works for
workers on the driver's machine. `ray` is imported only here, and only when this backend is used.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roost.errors import RoostError

log = logging.getLogger(__name__)
WS_VARS = ("ROOST_WORKSPACE", "ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_ONLINE_STORE")
TAG_HOST, TAG_PID, TAG_NODE = "roost.tune.host", "roost.tune.pid", "roost.tune.ray_node"
CANCEL_GRACE_S = 10.0
_adopted: tuple[Any, ...] | None = None


def import_ray() -> Any:
    """The `ray` module, or a RoostError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RoostError(
            f"--backend ray needs the Ray package, which is not importable here ({exc})",
            hint="pip install 'roost[ray]'  (or: pip install ray)",
        ) from None
    return ray


def worker_env(ws: Any) -> dict[str, str]:
    """The environment a trial task needs: the workspace's settings and the driver's import path."""
    env = {
        "ROOST_WORKSPACE": str(ws.root),
        "ROOST_STORE_URL": ws.store_url,
        "ROOST_ARTIFACTS": ws.artifacts,
        "ROOST_ONLINE_STORE": ws.online_store,
    }
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    paths = [
        p for p in (str(Path(x or ".").resolve()) for x in sys.path) if Path(p).is_dir() and not p.startswith(prefixes)
    ]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths]
    if paths:  # objectives given as module:function must import in the worker, as with --parallel
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _adopt_workspace() -> None:
    """Make the workspace named by the ROOST_* variables current in this worker (once per worker process)."""
    global _adopted
    from roost import workspace

    key = tuple(os.environ.get(k, "") for k in WS_VARS)
    if key == _adopted:
        return
    root = Path(key[0] or ".")
    if (root / workspace.CONFIG_NAME).is_file():
        ws = workspace.load(root)
    else:  # a node without the driver's folder: the store and artifact URLs are all a trial needs
        if not key[1] or not key[2]:
            raise RoostError("a Ray trial task got no ROOST_STORE_URL / ROOST_ARTIFACTS")
        ws = workspace.Workspace(
            root=Path.cwd(), store_url=key[1], artifacts=key[2], online_store=key[3] or "sqlite:///.roost/online.db"
        )
    workspace.use(ws)
    _adopted = key


def trial_task(
    sid: str,
    number: int,
    params: dict[str, Any],
    objective: Callable[..., Any],
    parent_run_id: str,
    experiment: str,
    metric: str,
) -> dict[str, Any]:
    """Body of one Ray task: run one leased trial against the shared repository; returns its state and place."""
    import ray

    from roost.registry.backend import default_store
    from roost.tune.remote import open_engine
    from roost.tune.trials import TrialContext, run_trial

    logging.basicConfig(level=logging.WARNING)
    _adopt_workspace()
    engine = open_engine()
    ctx = TrialContext(sid, number, params, parent_run_id, experiment, metric, engine)
    where = {
        TAG_HOST: socket.gethostname(),
        TAG_PID: str(os.getpid()),
        TAG_NODE: ray.get_runtime_context().get_node_id(),
    }
    state = run_trial(engine, ctx, objective)
    if ctx.run_id is not None:
        default_store().log_batch(ctx.run_id, tags=where)
    return {"number": number, "state": state, "run_id": ctx.run_id, **where}


def end_cancelled_runs(parent_run_id: str, sid: str, numbers: list[int]) -> int:
    """End KILLED the runs of these trials still RUNNING: a Ray task cancelled by force dies without ending its
    run (one that heard the soft cancel ended it KILLED itself). Returns how many were ended."""
    if not numbers:
        return 0
    from datetime import UTC, datetime

    from roost.registry.api import search_runs
    from roost.registry.backend import default_store
    from roost.tune.trials import TAG_STUDY, TAG_TRIAL

    wanted, now, n = {str(k) for k in numbers}, datetime.now(UTC), 0
    running = search_runs(f"parent_run_id = '{parent_run_id}' and status = 'RUNNING'", limit=None, warn_unknown=False)
    for r in running:
        if r["tags"].get(TAG_STUDY) == sid and r["tags"].get(TAG_TRIAL) in wanted:
            default_store().log_batch(r["run_id"], finish=("KILLED", now))
            n += 1
    return n


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast when a HOST:PORT address does not answer (ray.init would retry for minutes, then exit)."""
    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise RoostError(
            f"no Ray cluster answers at {address}: {exc}",
            hint="start one with `ray start --head --port PORT`, pass --ray-address HOST:PORT",
        ) from None


class RayBackend:
    """A connection to a Ray cluster that runs a study's trials as tasks."""

    def __init__(self, address: str | None = None) -> None:
        self.ray = import_ray()
        self.address = address
        self.owns = not self.ray.is_initialized()
        if self.owns:
            _check_reachable(address)
            try:
                self.ray.init(
                    address=address,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    include_dashboard=False if address is None else None,
                )
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - ray raises these, or exits, when it cannot
                raise RoostError(
                    f"cannot connect to Ray at {address or 'the default address'}: {exc}",
                    hint="start one with `ray start --head --port 6379` and pass "
                    "--ray-address HOST:6379 (or set RAY_ADDRESS)",
                ) from None
        self.task = self.ray.remote(num_cpus=1, max_retries=0)(trial_task)

    def slots(self) -> int:
        """How many trials the cluster can run at once (its CPUs, at least 1)."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        """Disconnect, if this backend connected."""
        if self.owns and self.ray.is_initialized():
            self.ray.shutdown()

    def run(
        self,
        ws: Any,
        sid: str,
        objective: Any,
        clients: list[str],
        parent_run_id: str,
        experiment: str,
        metric: str,
        engine: Any,
        lease_s: float,
    ) -> int:
        """Run the study to its end with one task in flight per client id; returns how many tasks ran."""
        try:
            self.ray.cloudpickle.dumps(objective)
        except Exception as exc:  # noqa: BLE001 - objects holding locks, sockets, open files
            raise RoostError(
                f"--backend ray needs an objective that can be sent to workers: {exc}",
                hint="use a module-level function (tune.objective: module:function)",
            ) from None
        opts = {"runtime_env": {"env_vars": worker_env(ws)}}
        free, inflight, ran = list(clients), {}, 0
        numbers: dict[Any, int] = {}  # task -> its trial's number
        try:
            while True:
                done, dry = False, False
                while free and not dry:  # fill free slots until the study has nothing to hand out
                    r = engine.ask(sid, client_id=free[0], lease_s=lease_s)
                    t = r["trial"]
                    if t is None:
                        done, dry = bool(r["done"]), True
                        continue
                    ref = self.task.options(**opts).remote(
                        sid, t["number"], t["params"], objective, parent_run_id, experiment, metric
                    )
                    inflight[ref], numbers[ref] = free.pop(0), int(t["number"])
                if not inflight:
                    if done:
                        return ran
                    time.sleep(0.5)  # trials leased by other clients: wait for them to finish or expire
                    continue
                ready: list[Any] = []
                while not ready:
                    ready, _ = self.ray.wait(list(inflight), num_returns=1, timeout=1.0)
                for ref in ready:
                    client = inflight.pop(ref)
                    free.append(client)
                    ran += 1
                    self._collect(ref, client, sid, engine)
        except KeyboardInterrupt:
            try:
                self._cancel(list(inflight))
            finally:
                end_cancelled_runs(parent_run_id, sid, [numbers[r] for r in inflight])
            raise

    def _collect(self, ref: Any, client: str, sid: str, engine: Any) -> None:
        """Take a finished task's result; a task that died has its trial failed."""
        try:
            out = self.ray.get(ref)
            log.info("trial %s %s on %s pid %s", out["number"], out["state"], out[TAG_HOST], out[TAG_PID])
        except Exception as exc:  # noqa: BLE001 - worker crash, node loss, unpicklable result
            reason = f"ray task failed: {type(exc).__name__}: {exc}"[:500]
            log.warning("%s", reason)
            engine.abandon(sid, [client], reason=reason)

    def _cancel(self, refs: list[Any]) -> None:
        """Interrupt running tasks (they tell their trial 'interrupted'), then force those that do not stop.

        Ray's soft cancel only raises KeyboardInterrupt when the task's Python code next runs: an objective blocked
        in C (a sleep, a read, a native training call) stops only when forced, after CANCEL_GRACE_S. A second
        Ctrl-C during that grace forces every task at once instead of leaving them running on the cluster."""
        if not refs:
            return
        left = list(refs)
        log.warning(
            "cancelling %d running trial task(s); waiting up to %.0f s for them (Ctrl-C again to stop them now)",
            len(refs),
            CANCEL_GRACE_S,
        )
        try:
            for ref in refs:
                self.ray.cancel(ref, force=False)
            _, left = self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        finally:
            for ref in left:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception as exc:  # noqa: BLE001 - a task that ended meanwhile; the rest must still be forced
                    log.warning("could not force-cancel a Ray task: %s", exc)
