"""What every autolog flavor shares: patches with a clean undo, its settings, the run a fit logs to, and the rule that
logging never breaks the user's fit."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import queue
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from roost.registry.run import Run

log = logging.getLogger("roost.autologging")

T = TypeVar("T")
MAX_TUNING_RUNS = 100  # search CV: child runs for at most this many candidates (the best ranked first)
PACKAGE_MODES = ("deferred", "now")
ERROR_TAG = "roost.autolog.error"  # what autolog could not log in the background: "what: message" per line


@dataclass(frozen=True)
class Settings:
    """One flavor's autolog settings (the arguments of its `autolog()`)."""

    log_models: bool = True
    log_datasets: bool = True
    silent: bool = False
    max_tuning_runs: int = MAX_TUNING_RUNS
    registered_model_name: str | None = None
    experiment: str = "default"
    package: str = "deferred"  # "deferred": the native model now, its ONNX package on first need; "now": the package

    def __post_init__(self) -> None:
        if self.package not in PACKAGE_MODES:
            from roost.errors import RoostError

            raise RoostError(
                f"autolog(package={self.package!r}) is not a packaging mode",
                hint="package='deferred' (the ONNX package built on first load, the default) or package='now'",
            )


_settings: dict[str, Settings] = {}  # enabled flavors
_patches: dict[str, list[tuple[Any, str, Any]]] = {}  # flavor -> [(owner, attribute, original)]
_local = threading.local()  # .depth: autologged fits running in this thread (the outermost one logs); .notes


def notes(flavor: str) -> dict[str, Any] | None:
    """The notes of the outermost autologged fit of `flavor` running on this thread, for the library calls nested in
    it to leave what its `after` reads (LightGBM's and XGBoost's scikit-learn fits call their library's train(): the
    train wrapper leaves the booster params there); None outside such a fit."""
    held = getattr(_local, "notes", None)
    return held[1] if held is not None and held[0] == flavor else None


def settings(flavor: str) -> Settings | None:
    """The settings of an enabled flavor, or None when it is off."""
    return _settings.get(flavor)


def enable(flavor: str, patches: list[tuple[Any, str, Callable[[Any], Any]]], conf: Settings) -> None:
    """Turn `flavor` on: each (owner, attribute, make_wrapper) replaces owner.attribute by make_wrapper(original).

    Calling it again replaces the settings; the originals stay the ones saved the first time.
    """
    if flavor in _patches:
        disable(flavor)
    done: list[tuple[Any, str, Any]] = []
    try:
        for owner, attr, make in patches:
            original = inspect.getattr_static(owner, attr)
            wrapper = make(original)
            functools.update_wrapper(wrapper, original)
            wrapper.__roost_autolog__ = flavor
            setattr(owner, attr, wrapper)
            done.append((owner, attr, original))
    except BaseException:
        for owner, attr, original in reversed(done):
            setattr(owner, attr, original)
        raise
    _patches[flavor] = done
    _settings[flavor] = conf


def disable(flavor: str) -> None:
    """Turn `flavor` off: every patched attribute gets its original object back (its pending logging finishes)."""
    from roost.registry import deferred

    deferred.wait()
    for owner, attr, original in reversed(_patches.pop(flavor, [])):
        setattr(owner, attr, original)
    _settings.pop(flavor, None)


def switch(
    flavor: str, off: bool, patches: Callable[[], list[tuple[Any, str, Callable[[Any], Any]]]], **settings: Any
) -> None:
    """What a flavor's `autolog(disable, **settings)` does: turn it off, or on with `patches()` and the settings."""
    if off:
        disable(flavor)
        return
    enable(flavor, patches(), Settings(**settings))


def patched(flavor: str) -> list[tuple[Any, str, Any]]:
    """(owner, attribute, original) of each patch `flavor` holds now."""
    return list(_patches.get(flavor, []))


@contextlib.contextmanager
def _outermost() -> Iterator[bool]:
    """True for the outermost autologged fit of this thread; nested fits (a Pipeline's steps, search CV candidates,
    a subclass calling super().fit) run unlogged."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    try:
        yield depth == 0
    finally:
        _local.depth = depth


def warn(conf: Settings, what: str, exc: BaseException) -> None:
    """Say that something could not be logged (a warning, or only a debug line when silent)."""
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    log.log(logging.DEBUG if conf.silent else logging.WARNING, "roost.autolog: could not log %s: %s", what, msg)


def safely(conf: Settings, what: str, fn: Callable[..., T], *args: Any) -> T | None:
    """fn(*args), or None when it raised (warned about): logging never breaks the user's fit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the library's warnings about our own metric/convert calls are noise
            return fn(*args)
    except Exception as exc:  # noqa: BLE001 - any logging failure is reported, the fit goes on
        warn(conf, what, exc)
        return None


def _open_run(conf: Settings, flavor: str, name: str) -> tuple[Run | None, bool]:
    """(run, owned): the active roost run, else one started here (owned: ended when the fit's logging is done)."""
    from roost.registry import api

    active = api.active_run()
    if active is not None:
        return active, False
    run = safely(conf, "the run", lambda: api.start_run(conf.experiment, name=name, tags={"roost.autolog": flavor}))
    return run, run is not None


def end_owned(run: Run | None, owned: bool, exc: BaseException | None = None) -> None:
    """End a run an autolog flavor started, as the run's own `with` block would for `exc` (None: the code returned):
    FINISHED, KILLED for Ctrl-C/SIGTERM, else FAILED with the error described. A run of the user's is left open."""
    if run is None or not owned or run.ended:
        return
    if exc is None:
        run.end("FINISHED")
    else:
        run.end_raised(exc)


Later = list[tuple[str, Callable[[], None]]]
"""Logging an `after` hands to the background worker: (what, fn) steps, e.g. the training metrics, the model."""

_DURING_FIT = "__roost_during_fit__"


_ALONGSIDE = "__roost_alongside__"


def alongside(steps: Later) -> Later:
    """Mark after-fit steps that may run on a thread of their own beside the fit's other steps (the model's
    serialization, which the libraries do in C without the GIL, beside the training metrics' predict): they must not
    share mutable state with the other steps."""
    for _what, fn in steps:
        setattr(fn, _ALONGSIDE, True)
    return steps


def during_fit(steps: Later) -> Later:
    """Mark steps of a `before` that may run while the fit runs (they read only what they were handed: params, a
    private snapshot of the data): the background worker starts them at once instead of after the fit."""
    for _what, fn in steps:
        setattr(fn, _DURING_FIT, True)
    return steps


def autologged(
    flavor: str,
    name: str,
    fit: Callable[[], T],
    before: Callable[[Run, Settings], Later],
    after: Callable[[Run, Settings, T], Later],
    key: object = None,
) -> T:
    """Run `fit` with logging around it: `before` (params) and `after` (summary metrics) on the caller's thread; the
    (what, fn) steps they return (the data fingerprint, training metrics, the model) on the process's background
    worker (roost.registry.deferred), each failure warned about and tagged on the run (`roost.autolog.error`); when
    `fit` raises, the steps `before` returned run at once, before the run ends.

    Steps of `before` marked `during_fit` (the params, a fingerprint over a snapshot) go to the worker before `fit`
    starts, so that they run beside it on another core; the others wait for `fit` to return.

    Nested autologged fits just call `fit`. A run started here is the active run during the fit and ends once its
    background steps are done: FINISHED, or at once FAILED when `fit` raises (KILLED on Ctrl-C/SIGTERM); an active
    run of the user's is used and left open (its end waits for the steps). `key` (the estimator) makes a later fit
    of the same object wait for this one's steps, so that they never see it half refitted.
    """
    from roost.registry import deferred
    from roost.registry.lifecycle import runs

    conf = _settings.get(flavor)
    with _outermost() as outer:
        if conf is None or not outer:
            return fit()
        wait_key = None if key is None else id(key)
        if wait_key is not None:
            deferred.wait(key=wait_key)
        run, owned = _open_run(conf, flavor, name)
        if run is None:
            return fit()
        if owned:
            runs.push(run)
        early: Later = []
        failures: list[str] = []  # of every step of this fit: one tag, written by the last job
        try:
            early = safely(conf, "params", before, run, conf) or []
            beside = [step for step in early if getattr(step[1], _DURING_FIT, False)]
            if beside:
                early = [step for step in early if not getattr(step[1], _DURING_FIT, False)]
                # no warning filters set there (filters=False): they are the process's, and the user's fit runs
                deferred.submit(
                    run, functools.partial(_run_steps, conf, beside, failures, False), f"autolog {flavor}", wait_key
                )
            _local.notes = (flavor, {})  # notes(): what the library calls nested in the fit leave for `after`
            try:
                result = fit()
                later = early + (safely(conf, "metrics and model", after, run, conf, result) or [])
            finally:
                _local.notes = None
        except BaseException as exc:
            if owned:
                runs.pop(run)
            deferred.wait(run.id)  # the steps started beside the fit, so that their failures reach the tag
            _run_later(run, False, conf, early, failures)
            end_owned(run, owned, exc)
            raise
        if owned:
            runs.pop(run)
        if later or owned or failures:
            deferred.submit(run, lambda: _run_later(run, owned, conf, later, failures), f"autolog {flavor}", wait_key)
        return result


def _run_steps(conf: Settings, steps: Later, failures: list[str], filters: bool = True) -> None:
    """Each step, a failure warned about and added to `failures`; its warnings ignored (`filters`: set here, else by
    the thread that started this one and waits for it — the warning filters are the process's, not a thread's)."""
    for what, fn in steps:
        try:
            with _outermost(), warnings.catch_warnings() if filters else contextlib.nullcontext():
                if filters:
                    warnings.simplefilter("ignore")
                fn()  # fits inside the metrics (a LabelEncoder) are not logged: _outermost
        except Exception as exc:  # noqa: BLE001 - recorded on the run; the other steps and the run's end go on
            warn(conf, what, exc)
            failures.append(f"{what}: {getattr(exc, 'message', None) or str(exc) or type(exc).__name__}")


def _run_later(run: Run, owned: bool, conf: Settings, later: Later, failures: list[str] | None = None) -> None:
    """The background part of an autologged fit: each step (a failure warned about and tagged, with the `failures`
    of its steps that ran beside the fit), then the run's end. Steps marked `alongside` run on a thread of their own
    meanwhile (joined before the run ends)."""
    failures = [] if failures is None else failures
    side = [step for step in later if getattr(step[1], _ALONGSIDE, False)]
    if not side:
        _run_steps(conf, later, failures)
    else:
        rest = [step for step in later if not getattr(step[1], _ALONGSIDE, False)]
        with warnings.catch_warnings():  # for both threads, until the side thread's steps are done
            warnings.simplefilter("ignore")
            done = on_side_thread(lambda: _run_steps(conf, side, failures, False))
            try:
                _run_steps(conf, rest, failures, False)
            finally:
                done.wait()
    if failures:
        safely(conf, "the failure tag", run.set_tags, {ERROR_TAG: "\n".join(failures)[:4000]})
    end_owned(run, owned)


_side_lock = threading.Lock()
_side: tuple[threading.Thread, queue.SimpleQueue[tuple[Callable[[], None], threading.Event]]] | None = None


def on_side_thread(fn: Callable[[], None]) -> threading.Event:
    """Run fn() (which must not raise) on the process's one side thread; the event is set once it returned.

    One long-lived thread, not one per fit: a new thread per call cost LightGBM's model save ~2 ms more CPU (7 → 9 ms
    a call). A daemon, so it serves the interpreter's exit (deferred's atexit wait); made again after a fork."""
    global _side
    done = threading.Event()
    with _side_lock:
        if _side is None or not _side[0].is_alive():
            jobs: queue.SimpleQueue[tuple[Callable[[], None], threading.Event]] = queue.SimpleQueue()
            thread = threading.Thread(target=_side_loop, args=(jobs,), name="roost-autolog-side", daemon=True)
            thread.start()
            _side = (thread, jobs)
        _side[1].put((fn, done))
    return done


def _side_after_fork_in_child() -> None:
    """A forked child has no side thread, and the lock may have been held by a thread of the parent."""
    global _side, _side_lock
    _side, _side_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_side_after_fork_in_child)


def _side_loop(jobs: queue.SimpleQueue[tuple[Callable[[], None], threading.Event]]) -> None:
    while True:
        fn, done = jobs.get()
        try:
            fn()
        finally:
            done.set()


def bind(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments | None:
    """The arguments of a call to `fn` by name (defaults left out), or None when they do not bind."""
    try:
        return inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
