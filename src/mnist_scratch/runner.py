"""Compute the runs that are not cached, in parallel worker processes, saving each as it finishes."""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import cache

from tqdm.auto import tqdm

from . import data, results
from .train import RunConfig, train

JOBS_ENV = "MNIST_SCRATCH_JOBS"


def default_jobs() -> int:
    """`$MNIST_SCRATCH_JOBS`, else one worker per core (each trains on one thread)."""
    return int(os.environ.get(JOBS_ENV) or os.cpu_count() or 1)


@cache
def _splits(dataset: str, data_path) -> data.Splits:
    return data.load(dataset, data=data_path)


def _work(cfg: RunConfig, data_path, progress: bool = False) -> dict:
    return train(cfg, _splits(cfg.dataset, data_path), progress=progress)


def _cost(cfg: RunConfig) -> float:
    """Rough relative training time, to start the longest runs first."""
    n = cfg.max_train or (60_000 if cfg.dataset == "full" else 5_000)
    return cfg.epochs * n * (1 + sum(cfg.hidden) / 30)


def run(configs: list[RunConfig], *, force=False, jobs=None, data_path=None, desc="runs") -> list[dict]:
    """The results of `configs`, in order: cached ones read, the rest trained and saved one by one.

    Each result is saved the moment it is computed, so an interrupted build keeps what it finished.
    """
    found = {cfg: None if force else results.load(cfg) for cfg in dict.fromkeys(configs)}
    todo = sorted((cfg for cfg, r in found.items() if r is None), key=_cost, reverse=True)
    jobs = min(jobs or default_jobs(), len(todo))
    for dataset in sorted({cfg.dataset for cfg in todo}):  # decode (or fail on missing data) first
        _splits(dataset, data_path)
    with tqdm(total=len(todo), desc=desc, unit="run", disable=not todo) as bar:
        if jobs <= 1:
            for cfg in todo:  # a lone run shows its epochs too
                found[cfg] = _finish(cfg, _work(cfg, data_path, progress=len(todo) == 1), bar)
        else:  # spawn, not fork: forking after torch has started threads can deadlock
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(_work, cfg, data_path): cfg for cfg in todo}
                for future in as_completed(futures):
                    found[futures[future]] = _finish(futures[future], future.result(), bar)
    return [found[cfg] for cfg in configs]


def _finish(cfg: RunConfig, result: dict, bar) -> dict:
    result = results.save(cfg, result)  # as stored: a later load returns exactly this
    bar.update()
    return result
