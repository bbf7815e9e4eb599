"""The result cache: one JSON entry per run, keyed by the run's config and the code that computes it.

Change a learning rate, and only the runs with that learning rate get a new key; change the engine
(any module listed in `CODE`), and every run does. Entries are written atomically and carry a
checksum: a damaged, truncated or stale entry is recomputed, never trusted.
"""

import json
from functools import cache
from pathlib import Path

import torch

from . import data
from .store import atomic_write, cache_root, sha256
from .train import RunConfig

CODE = ("data.py", "modules.py", "objectives.py", "sgd.py", "train.py")


@cache
def code_version() -> str:
    """Hash of the source of every module that determines a run's numbers, and of torch's version."""
    here = Path(__file__).parent
    return sha256(torch.__version__.encode(), *((here / name).read_bytes() for name in CODE))


def run_key(cfg: RunConfig) -> str:
    """Hash of the config, the code and the fingerprint of the images the run trains on."""
    identity = {"config": cfg.as_dict(), "code": code_version(), "data": data.version(cfg.dataset)}
    return sha256(json.dumps(identity, sort_keys=True).encode())[:20]


def entry_path(cfg: RunConfig) -> Path:
    return cache_root() / "runs" / f"{run_key(cfg)}.json"


def _checksum(result: dict) -> str:
    return sha256(json.dumps(result, sort_keys=True, allow_nan=False).encode())


def load(cfg: RunConfig) -> dict | None:
    """The cached result of `cfg`, or None if missing, damaged, or computed from other code or config."""
    try:
        entry = json.loads(entry_path(cfg).read_text())
        ok = (
            entry["config"] == cfg.as_dict()
            and entry["code"] == code_version()
            and entry["data"] == data.version(cfg.dataset)
            and entry["sha256"] == _checksum(entry["result"])
        )
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return entry["result"] if ok else None


def save(cfg: RunConfig, result: dict) -> None:
    entry = {"config": cfg.as_dict(), "code": code_version(), "data": data.version(cfg.dataset),
             "sha256": _checksum(result), "result": result}
    text = json.dumps(entry, sort_keys=True, allow_nan=False)
    atomic_write(entry_path(cfg), lambda f: f.write(text.encode()))
