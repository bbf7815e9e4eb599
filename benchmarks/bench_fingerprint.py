"""What knowing the MNIST folder's fingerprint costs a command: the provenance check, each in a fresh process.

    python benchmarks/bench_fingerprint.py [--against OTHER_CHECKOUT] [--repeats 7] [--data PATH]

Each measurement is a new `python` process (what a command pays), timed inside it:
  warm check     the first `data.version()` of a process whose cache already knows the folder (the
                 memo is warm): what every warm command pays once (now a `stat` of all 70,000 images
                 against the memo; before issue 19, of the 23 folders)
  first sight    the same in a cache that has never seen the folder (no memo): what a new or
                 changed folder costs (now every image read and hashed; before, a `stat` of each)
  list           `python -m mnist_scratch list`, the whole process, warm memo: the check in proportion
                 to a cheap command (imports included; the result cache is empty, which `list` reads
                 as quickly)

`--against` measures another checkout in the same run, with this Python (its `src/` first on
`PYTHONPATH`), interleaved round by round, and prints the medians side by side with their ratios:
the machine is shared and noisy, so only ratios measured together compare. Every checkout gets
private cache folders, so no project cache is touched.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, time
from mnist_scratch import data
start = time.perf_counter()
data.version("subset")
print(json.dumps(time.perf_counter() - start))
"""


def run(checkout: Path, cache: Path, args: list[str]) -> tuple[float, str]:
    """Wall seconds of `python ARGS` with `checkout`'s code and `cache` as its cache, and its output."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "MNIST_SCRATCH_CACHE": str(cache), "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=cache)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed with {checkout}:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def measure(checkout: Path, warm: Path, scratch: Path) -> dict[str, float]:
    """One round for `checkout`: its warm cache `warm`; `scratch`, a folder for caches that are new."""
    first_sight = Path(tempfile.mkdtemp(dir=scratch))
    return {
        "warm check": float(run(checkout, warm, ["-c", PROBE])[1]),
        "first sight": float(run(checkout, first_sight, ["-c", PROBE])[1]),
        "list": run(checkout, warm, ["-m", "mnist_scratch", "list"])[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data", help="the mnist_png folder (default: as the command line finds it)")
    args = parser.parse_args()
    if args.data:
        os.environ["MNIST_DATA"] = args.data
    checkouts = {"this": ROOT, **({"against": args.against.resolve()} if args.against else {})}
    scratch = Path(tempfile.mkdtemp(prefix="bench-fingerprint-"))
    warm = {name: Path(tempfile.mkdtemp(dir=scratch)) for name in checkouts}
    for name, checkout in checkouts.items():  # the memo, as after any earlier command
        run(checkout, warm[name], ["-c", PROBE])
        run(checkout, warm[name], ["-c", PROBE])  # (a first memo's files are racily clean: settled here)
    times: dict[str, dict[str, list[float]]] = {name: {} for name in checkouts}
    try:
        for _ in range(args.repeats):  # interleaved: every round measures every checkout
            for name, checkout in checkouts.items():
                for step, seconds in measure(checkout, warm[name], scratch).items():
                    times[name].setdefault(step, []).append(seconds)
    finally:
        shutil.rmtree(scratch)

    print(f"MNIST: {os.environ.get('MNIST_DATA') or 'as found'}; {args.repeats} rounds; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians in seconds")
    medians = {name: {step: statistics.median(v) for step, v in steps.items()} for name, steps in times.items()}
    header = f"{'step':14}" + "".join(f"{str(c):>32}" for c in checkouts.values())
    print(header + ("    ratio" if args.against else ""))
    for step in medians["this"]:
        row = f"{step:14}" + "".join(f"{medians[name][step]:32.3f}" for name in checkouts)
        if args.against:
            row += f"  {medians['this'][step] / medians['against'][step]:7.2f}x"
        print(row)
    print(json.dumps({"medians": medians, "samples": times}))


if __name__ == "__main__":
    main()
