"""Wall-clock time to build every experiment from a cold result cache, serial vs parallel, and warm.

    python benchmarks/bench_build.py [--jobs 2]

Each cold build runs `python -m mnist_scratch --jobs N run` in a fresh cache folder whose decoded
MNIST arrays are copied in first (so the build times training, not PNG decoding; the cold decode is
timed on its own, in a third fresh folder). The warm figure is the time a fresh process takes to
load every experiment's results from the full cache (imports excluded).
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARM = """
import time
from mnist_scratch.findings import load_all
start = time.perf_counter()
results = load_all()
print(time.perf_counter() - start, sum(map(len, results.values())))
"""


def cli(cache: Path, *args: str) -> float:
    """Seconds `python -m mnist_scratch --cache CACHE ARGS` takes; fails loudly if the command does."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnist_scratch", "--cache", str(cache), *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        decode = cli(tmp / "decode", "data")
        timings = {}
        for jobs in (1, args.jobs):
            cache = tmp / f"jobs{jobs}"
            shutil.copytree(tmp / "decode" / "data", cache / "data")
            timings[jobs] = cli(cache, "--jobs", str(jobs), "run")
        env = {**os.environ, "MNIST_SCRATCH_CACHE": str(tmp / f"jobs{args.jobs}")}
        out = subprocess.run([sys.executable, "-c", WARM], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        warm, n_runs = out.stdout.split()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"cold decode of all MNIST splits (70,000 + 15,000 images): {decode:7.1f} s")
    print(f"cold build of every experiment, 1 job:      {timings[1]:7.1f} s")
    print(f"cold build of every experiment, {args.jobs} jobs:     {timings[args.jobs]:7.1f} s")
    print(f"parallel speed-up:                          {timings[1] / timings[args.jobs]:7.2f} x")
    print(f"warm load of all {n_runs} results:             {float(warm):7.2f} s")


if __name__ == "__main__":
    main()
