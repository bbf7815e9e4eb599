"""The warm path: seconds each cheap command takes on a fully cached result store, each in a fresh process.

    python benchmarks/bench_warm.py [--against OTHER_CHECKOUT] [--repeats 3] [--make]

Steps, each a new `python` process timed from start to exit:
  bare import          `import torch, matplotlib.pyplot`: the floor every command pays
  import figures       `import mnist_scratch.figures`
  list                 `python -m mnist_scratch list`
  figure loss-curves   `python -m mnist_scratch figure loss-curves` (into a temporary folder)
  figure --all         `python -m mnist_scratch figure --all`
  load every result    `findings.load_all()` in a fresh process: the load alone (imports excluded)
                       and the whole process
  warm make            `python -m mnist_scratch report` (what `make` runs), with `--make` and Quarto

`--against` measures another checkout in the same run, interleaved step by step, with this Python
(its `src/` first on `PYTHONPATH`) and its own `.cache/`: a `git worktree add` of an older commit
gives the before/after table. Every checkout's cache must be warm: run `python -m mnist_scratch
run` in it first; the benchmark checks with `list` and refuses otherwise.
"""

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUARTO = "/work/quarto/bin/quarto"  # where this project's machines have it, if not on PATH
LOAD_ALL = """
import time
start = time.perf_counter()
from mnist_scratch.findings import load_all
loaded = time.perf_counter()
results = load_all()
print(time.perf_counter() - loaded, loaded - start, sum(map(len, results.values())))
"""


def cache_megabytes(checkout: Path) -> float:
    """Size of the result entries in `checkout`'s cache (either store format)."""
    runs = checkout / ".cache" / "runs"
    return sum(f.stat().st_size for f in runs.iterdir() if f.suffix in (".result", ".json")) / 1e6


def env_for(checkout: Path, quarto: str | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "MNIST_SCRATCH_CACHE": str(checkout / ".cache"),
           "TQDM_DISABLE": "1", "QUARTO_PYTHON": sys.executable}
    env.pop("MNIST_SCRATCH_JOBS", None)
    if quarto:
        env["PATH"] = f"{Path(quarto).parent}{os.pathsep}{env['PATH']}"
    return env


def timed(args: list[str], checkout: Path, env: dict) -> tuple[float, str]:
    """Wall-clock seconds of `python ARGS` run in `checkout`, and its output; fails loudly if it fails."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=checkout, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed in {checkout}:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def check_warm(checkout: Path, env: dict) -> None:
    _, out = timed(["-m", "mnist_scratch", "list"], checkout, env)
    for line in out.splitlines():
        m = re.search(r"(\d+)/(\d+) runs cached", line)
        if m is None or m[1] != m[2]:
            sys.exit(f"{checkout}: the cache is not warm ({line.strip()}); "
                     "run `python -m mnist_scratch run` there first")


def steps(figures: Path) -> dict[str, list[str]]:
    return {
        "bare import (torch + matplotlib)": ["-c", "import torch, matplotlib.pyplot"],
        "import mnist_scratch.figures": ["-c", "import mnist_scratch.figures"],
        "list": ["-m", "mnist_scratch", "list"],
        "figure loss-curves": ["-m", "mnist_scratch", "figure", "loss-curves", "--out", str(figures)],
        "figure --all": ["-m", "mnist_scratch", "figure", "--all", "--out", str(figures)],
        "load every result (whole process)": ["-c", LOAD_ALL],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, help="another checkout, measured side by side (the 'before')")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per step and checkout")
    parser.add_argument("--make", action="store_true", help="also time the warm `make` (needs Quarto)")
    args = parser.parse_args()

    quarto = shutil.which("quarto") or (QUARTO if Path(QUARTO).exists() else None)
    checkouts = {"this": ROOT} | ({"before": args.against.resolve()} if args.against else {})
    envs = {name: env_for(path, quarto) for name, path in checkouts.items()}
    for name, path in checkouts.items():
        check_warm(path, envs[name])

    times: dict[tuple[str, str], list[float]] = {}
    n_results: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        plan = steps(Path(tmp))
        for rep in range(args.repeats):  # interleaved: step by step, the checkouts in turn
            for step, cmd in plan.items():
                order = list(checkouts)[rep % len(checkouts):] + list(checkouts)[: rep % len(checkouts)]
                for name in order:
                    seconds, out = timed(cmd, checkouts[name], envs[name])
                    times.setdefault((step, name), []).append(seconds)
                    if cmd[-1] == LOAD_ALL:
                        load, imports, n = out.split()
                        n_results[name] = int(n)
                        times.setdefault(("load every result (load alone)", name), []).append(float(load))
        if args.make:
            if quarto is None:
                print("warm make: skipped, Quarto not found")
            for name in checkouts if quarto else ():
                seconds, _ = timed(["-m", "mnist_scratch", "report"], checkouts[name], envs[name])
                times[("warm make (report, Quarto)", name)] = [seconds]

    uptime = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average at the end {uptime[0]:.1f} / {uptime[1]:.1f} / {uptime[2]:.1f} (1 / 5 / 15 min)")
    print(f"{args.repeats} fresh processes per step and checkout, interleaved; median seconds [min-max]")
    for name, path in checkouts.items():
        print(f"  {name}: {n_results[name]} results loaded, {cache_megabytes(path):.1f} MB of entries")
    print()
    names = list(checkouts)
    header = f"{'step':36}" + "".join(f"{n:>22}" for n in names) + ("   before/this" if len(names) > 1 else "")
    print(header + "\n" + "-" * len(header))
    med = {k: statistics.median(v) for k, v in times.items()}
    for step in dict.fromkeys(s for s, _ in times):
        cells = "".join(f"{_cell(times[(step, n)]):>22}" for n in names)
        ratio = f"{med[(step, 'before')] / med[(step, 'this')]:13.1f}x" if len(names) > 1 else ""
        print(f"{step:36}{cells}{ratio}")

    bare = med[("bare import (torch + matplotlib)", "this")]
    print("\ngoals (this checkout):")
    if "before" in checkouts:
        load = {n: med[("load every result (load alone)", n)] for n in checkouts}
        speedup = load["before"] / load["this"]
        per_result = (load["before"] / n_results["before"]) / (load["this"] / n_results["this"])
        print(f"  loading every result at least 10x faster than before: {speedup:.1f}x  {_verdict(speedup >= 10)}"
              f"  (per result loaded: {per_result:.1f}x)")
    extra = med[("figure loss-curves", "this")] - bare
    print(f"  figure loss-curves within 2 s of the bare import: +{extra:.2f} s  {_verdict(extra <= 2)}")
    ratio = med[("list", "this")] / bare
    print(f"  list under 2x the bare import: {ratio:.2f}x  {_verdict(ratio < 2)}")


def _cell(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:.2f}" if len(values) == 1 else f"{med:.2f} [{min(values):.2f}-{max(values):.2f}]"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
