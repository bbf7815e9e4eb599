"""Compute the runs that are not cached, in worker processes, saving each result the moment it arrives.
Runs that can train together (`group.groups`) go to a worker as one group and arrive together.

Ctrl-C (the terminal sends SIGINT to every process of the command) stops a build within
`GRACE` seconds: queued runs are cancelled, runs that finish meanwhile are still saved, the
workers are ended, and `Interrupted` says what was kept. A second Ctrl-C ends the wait at once.
Workers ignore SIGINT, since their parent decides, and exit when it dies, however it dies.
"""

import multiprocessing
import os
import re
import signal
import threading
import time
import traceback
from collections import deque
from contextlib import contextmanager
from functools import cache
from multiprocessing.connection import wait

from . import data, results
from .errors import Interrupted, UserError, note, out_of_memory
from .group import groups, train_group
from .paths import writable
from .progress import tqdm
from .store import cache_root
from .train import RunConfig

JOBS_ENV = "MNIST_SCRATCH_JOBS"
GRACE = 2.0  # seconds after Ctrl-C in which finishing runs are still collected
POLL = 0.1  # seconds between looks at the Ctrl-C count while waiting for workers


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def requested_jobs(requested: int | None = None) -> tuple[int, str]:
    """The worker processes asked for, and by what: `requested` (`--jobs`), else `$MNIST_SCRATCH_JOBS`,
    else one per core (each trains on one thread). A one-line error for a non-number or less than 1."""
    if requested is None:
        text = os.environ.get(JOBS_ENV, "").strip()
        if not text:
            return cores(), "the default"
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise UserError(f"${JOBS_ENV} must be a whole number of worker processes, got {text!r}")
        requested, source = int(text), f"${JOBS_ENV}"
    else:
        source = "--jobs"
    if requested < 1:
        raise UserError(f"{source} must be at least 1, got {requested}")
    return requested, source


def worker_count(requested: int | None, runs: int) -> int:
    """Workers for `runs` runs: as requested, but at most one per run and one per core; a note
    says when the core count lowered the request."""
    n, source = requested_jobs(requested)
    if n > cores() and runs > cores():
        _note_once(f"{source} {n} lowered to {cores()}, the number of cores (more workers only share them)")
    return min(n, cores(), runs)


@cache
def _note_once(message: str) -> None:
    note(message)


@cache
def _loaded(dataset: str, data_path, version: str) -> data.Splits:
    return data.load(dataset, data=data_path)


def _splits(dataset: str, data_path) -> data.Splits:
    """The images of `dataset`, loaded once per process and data version."""
    return _loaded(dataset, data_path, data.version(dataset))


def _work(group: tuple[RunConfig, ...], data_path, progress: bool = False) -> list[dict]:
    """The results of a group of runs (`group.groups`), trained together."""
    return train_group(group, _splits(group[0].dataset, data_path), progress=progress)


def _cost(cfg: RunConfig) -> float:
    """Rough relative training time, to start the longest runs first."""
    return cfg.epochs * cfg.n_train * (1 + sum(cfg.hidden) / 30)


def run(configs: list[RunConfig], *, force=False, jobs=None, data_path=None, desc="runs", summary=False) -> list[dict]:
    """The results of `configs`, in order: cached ones read (with `summary`, without their number
    arrays: see `results.load`), the rest trained and saved one by one. `force`: True recomputes
    every config, a collection of configs recomputes those.

    Each result is saved the moment it is computed, so an interrupted build keeps what it finished.
    A result that cannot be saved (the disk filled up, ...) is still returned, with a note.
    """
    for dataset in sorted({cfg.dataset for cfg in configs}):
        if data.version(dataset) is None:  # only fastai knows where MNIST is (or can fetch it): ask first
            data.locate(data_path)
    forced = set(configs) if force is True else set(force or ())
    found = {cfg: None if cfg in forced else results.load(cfg, summary=summary) for cfg in dict.fromkeys(configs)}
    todo = sorted((cfg for cfg, r in found.items() if r is None), key=_cost, reverse=True)
    if todo:
        writable(cache_root(), "the cache folder")  # fail now, not after the work
        for dataset in sorted({cfg.dataset for cfg in todo}):  # decode (or fail on damaged data) once, first
            _splits(dataset, data_path)
    n_jobs = worker_count(jobs, len(todo))
    work = sorted(groups(todo, at_least=n_jobs), key=lambda group: sum(map(_cost, group)), reverse=True)
    unsaved: list[str] = []  # why results could not be cached

    def finish(cfg: RunConfig, result: dict) -> None:
        try:
            found[cfg] = results.save(cfg, result)  # as stored: a later load returns exactly this
        except OSError as e:
            found[cfg] = result
            unsaved.append(e.strerror or str(e))
        except (ValueError, TypeError) as e:  # not plain data with finite numbers: a bug, but keep the run
            found[cfg] = result
            unsaved.append(f"{_describe(cfg)}: {e}")
        bar.update()

    try:
        with tqdm(total=len(todo), desc=desc, unit="run", **({} if todo else {"disable": True})) as bar:
            if n_jobs <= 1:  # (no `disable=False` above: $TQDM_DISABLE is honoured)
                for group in work:  # a lone run shows its epochs too
                    group_results = _work(group, data_path, progress=len(todo) == 1)
                    with _sigint_held():
                        for cfg, result in zip(group, group_results):
                            finish(cfg, result)
            else:
                _parallel(work, n_jobs, data_path, finish)
    except KeyboardInterrupt:
        done = sum(found[cfg] is not None for cfg in todo) - len(unsaved)
        raise Interrupted(f"{done} of the {len(todo)} runs to compute finished and are cached; "
                          f"run the same command again to compute the other {len(todo) - done}") from None
    finally:
        if unsaved:
            note(f"{len(unsaved)} result(s) could not be cached ({unsaved[0]}): they are used by this command only")
    return [found[cfg] for cfg in configs]


# --------------------------------------------------------------------------------------------------
# Ctrl-C in the parent


class _SigintCounter:
    """While installed (main thread only), Ctrl-C is counted instead of raised."""

    def __init__(self):
        self.count, self.before = 0, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.before = signal.signal(signal.SIGINT, self._count)
        return self

    def _count(self, signum, frame):
        self.count += 1

    def __exit__(self, *exc):
        if self.before is not None:
            signal.signal(signal.SIGINT, self.before)


@contextmanager
def _sigint_held():
    """Ctrl-C inside the block takes effect when it ends, so a result is never half saved."""
    with _SigintCounter() as sigint:
        yield
    if sigint.count:
        raise KeyboardInterrupt


@contextmanager
def _sigint_blocked():
    """Ctrl-C waits (pending) while worker processes start; they start with it ignored, which, unlike
    a handler or a blocked signal, survives the exec of the new interpreter: a Ctrl-C while a worker
    still imports torch does not reach it."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # while blocked, a Ctrl-C stays pending
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


# --------------------------------------------------------------------------------------------------
# the workers


def _serve(conn, work, data_path, parent: int, facts: dict) -> None:
    """A worker: compute each group of configs received, send back ("ok", result) or ("error", (message, code)),
    until told to stop (None), the parent's end of the pipe closes, or the parent dies. `facts`: what
    the parent established about the data (`data.known`), so the worker trains on the same images."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    data.adopt(facts)
    tqdm.set_lock(threading.RLock())  # not a semaphore, which a terminated worker would leave behind
    while True:
        try:
            cfg = conn.recv()
        except EOFError:
            return
        if cfg is None:
            return
        try:
            conn.send(("ok", work(cfg, data_path)))
        except UserError as e:
            conn.send(("error", (str(e), e.exit_code)))
        except Exception as e:
            if out_of_memory(e):
                conn.send(("error", (f"out of memory while training {_describe(cfg)} (try fewer --jobs)", 1)))
            else:
                conn.send(("crash", traceback.format_exc()))


def _describe(cfg: RunConfig | tuple[RunConfig, ...]) -> str:
    if isinstance(cfg, tuple):  # a group
        others = f" and {len(cfg) - 1} other run{'s' if len(cfg) > 2 else ''} of its group" if len(cfg) > 1 else ""
        return _describe(cfg[0]) + others
    return f"{cfg.architecture} (lr {cfg.lr:g}, {cfg.epochs} epochs, seed {cfg.seed})"


def _exit_with(parent: int) -> None:
    """Exit at once when the parent is gone (SIGKILL and the OOM killer included): we are re-parented."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


class _Worker:
    def __init__(self, context, data_path):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, _work, data_path, os.getpid(), data.known()),
                                       daemon=True)
        self.process.start()
        child.close()
        self.cfg: tuple[RunConfig, ...] | None = None  # the group it is computing

    def give(self, cfg: tuple[RunConfig, ...]) -> None:
        self.cfg = cfg
        try:
            self.conn.send(cfg)
        except OSError:
            self._died()

    def take(self):
        """The reply to the run it was computing; a UserError if it died without one."""
        try:
            reply = self.conn.recv()
        except (EOFError, OSError):
            self._died()
        self.cfg = None
        return reply

    def _died(self):
        self.process.join(1)
        code = self.process.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited (code {code})"
        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
        cfg, self.cfg = self.cfg, None
        raise UserError(f"a worker process {how}{hint} while training {_describe(cfg)}; "
                        "the runs finished before are cached", exit_code=1) from None

    def end(self) -> None:
        """Stop: an idle worker is asked to, a busy one is terminated; killed if it lingers."""
        if self.cfg is None:
            try:
                self.conn.send(None)
            except OSError:
                pass
        else:
            self.process.terminate()
        self.process.join(1)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)
        self.conn.close()


def _parallel(todo: list[tuple[RunConfig, ...]], n_jobs: int, data_path, finish) -> None:
    """Compute the groups `todo` on `n_jobs` workers, calling `finish(cfg, result)` for each run of a
    group as the group arrives.

    Spawned, not forked: forking after torch has started threads can deadlock. Each worker gets
    one group at a time, so nothing is queued where Ctrl-C could not cancel it.
    """
    context = multiprocessing.get_context("spawn")
    queue, workers = deque(todo), []
    with _SigintCounter() as sigint:
        try:
            with _sigint_blocked():
                workers = [_Worker(context, data_path) for _ in range(n_jobs)]
            deadline = None
            while True:
                if sigint.count and deadline is None:
                    queue.clear()  # cancel what has not started; wait a little for what is running
                    deadline = time.monotonic() + GRACE
                if sigint.count > 1 or (deadline is not None and time.monotonic() > deadline):
                    break
                for w in workers:
                    if w.cfg is None and queue:
                        w.give(queue.popleft())
                busy = [w for w in workers if w.cfg is not None]
                if not busy:
                    break
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL)
                for w in busy:
                    if w.conn in ready or w.process.sentinel in ready:
                        cfg = w.cfg
                        try:
                            status, payload = w.take()
                        except UserError:
                            if sigint.count:  # it died of the Ctrl-C too: an interrupt, not an error
                                continue
                            raise
                        if status == "error":
                            raise UserError(*payload)
                        if status == "crash":
                            raise RuntimeError(f"training {cfg} failed in a worker process:\n{payload}")
                        for run, result in zip(cfg, payload):
                            finish(run, result)
        finally:
            for w in workers:
                w.end()
    if sigint.count:
        raise KeyboardInterrupt
