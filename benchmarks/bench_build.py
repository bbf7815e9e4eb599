"""Time to build every experiment from a cold result cache, serial vs parallel, and to load it warm.

    python benchmarks/bench_build.py [--jobs 2] [--against OTHER_CHECKOUT]

Each cold build runs `python -m mnist_scratch --jobs N run` in a fresh cache folder whose decoded
MNIST arrays are copied in first (so the build times training, not PNG decoding; the cold decode is
timed on its own, in another fresh folder). Every build is timed twice: wall clock, and the CPU
seconds of the command and its worker processes, which other jobs on a shared machine disturb far
less. The warm figure is the time a fresh process takes to load every experiment's results from
the full cache (imports excluded).

`--against` times another checkout (its `src/` first on `PYTHONPATH`, this Python) in the same run,
build by build in turn: a `git worktree add` of an older commit gives the before/after table.
"""

import argparse
import os
import platform
import resource
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli(checkout: Path, cache: Path, *args: str) -> tuple[float, float]:
    """Wall and CPU seconds of `python -m mnist_scratch --cache CACHE ARGS` in `checkout`; fails loudly."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    env.pop("MNIST_SCRATCH_JOBS", None)
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnist_scratch", "--cache", str(cache), *args], cwd=checkout, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, children_cpu() - cpu


def warm_load(checkout: Path, cache: Path) -> tuple[float, int]:
    env = {**os.environ, "MNIST_SCRATCH_CACHE": str(cache), "PYTHONPATH": str(checkout / "src")}
    out = subprocess.run([sys.executable, "-c", WARM], cwd=checkout, env=env, capture_output=True, text=True,
                         check=True)
    seconds, n_runs = out.stdout.split()
    return float(seconds), int(n_runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--against", type=Path, help="another checkout, timed in the same run (the 'before')")
    args = parser.parse_args()
    checkouts = {"this": ROOT} | ({"before": args.against.resolve()} if args.against else {})
    rows: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, checkout in checkouts.items():
            wall, cpu = cli(checkout, tmp / name / "decode", "data")
            rows.setdefault("cold decode of all MNIST splits", {})[name] = f"{wall:.1f} s"
        walls: dict[tuple[str, int], float] = {}
        for jobs in (1, args.jobs):
            for name, checkout in checkouts.items():  # in turn, so both see the same machine
                cache = tmp / name / f"jobs{jobs}"
                shutil.copytree(tmp / name / "decode" / "data", cache / "data")
                wall, cpu = cli(checkout, cache, "--jobs", str(jobs), "run")
                walls[(name, jobs)] = wall
                rows.setdefault(f"cold build, {jobs} job{'s' if jobs > 1 else ''}: wall", {})[name] = f"{wall:.1f} s"
                rows.setdefault(f"cold build, {jobs} job{'s' if jobs > 1 else ''}: CPU", {})[name] = f"{cpu:.1f} s"
        for name, checkout in checkouts.items():
            rows.setdefault("parallel speed-up (wall)", {})[name] = f"{walls[(name, 1)] / walls[(name, args.jobs)]:.2f} x"
            seconds, n_runs = warm_load(checkout, tmp / name / f"jobs{args.jobs}")
            rows.setdefault(f"warm load of all {n_runs} results", {})[name] = f"{seconds:.2f} s"
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)\n")
    print(f"{'':40}" + "".join(f"{name:>12}" for name in checkouts))
    for label, cells in rows.items():
        print(f"{label:40}" + "".join(f"{cells[name]:>12}" for name in checkouts))


if __name__ == "__main__":
    main()
