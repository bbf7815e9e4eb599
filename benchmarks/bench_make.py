"""Wall-clock time of a warm `make` (every result cached, nothing changed): before and after the
report was executed once for both formats.

    python benchmarks/bench_make.py [--rounds 2]

- after:  what `make` runs now, `python -m mnist_scratch report`: the results (all cached), then
          one execution of report.qmd for the HTML, the PDF from that executed notebook, and
          figures/ from its images.
- before: what `make` ran before, on today's sources: the results, every figure drawn again for
          figures/, then `quarto render report.qmd`, which executes the document once per format.

A first, untimed `report` fills the result cache (and warms Quarto). Then each round times both
commands back to back, in alternating order. Both write the project's _site/ and figures/, as
`make` does. Needs Quarto on PATH.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_FIGURES = """
from mnist_scratch.experiments import EXPERIMENTS, build
from mnist_scratch.figures import FIGURES, save
build(list(EXPERIMENTS))
for name in FIGURES:
    save(name, "figures")
"""


def timed(*commands: list[str]) -> float:
    """Seconds the commands take one after the other; fails loudly if one does."""
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    start = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from mnist_scratch.render import find_quarto

    quarto = find_quarto()
    if quarto is None:
        sys.exit("Quarto is not on PATH (see README: Requirements)")
    after = [sys.executable, "-m", "mnist_scratch", "report"]
    before = ([sys.executable, "-c", BEFORE_FIGURES], [quarto, "render", "report.qmd"])
    load = os.getloadavg()[0]
    print(f"warm-up (fills the result cache): {timed(after):.1f} s", flush=True)
    times = {"before": [], "after": []}
    for i in range(args.rounds):
        for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
            times[name].append(timed(*before) if name == "before" else timed(after))
            print(f"round {i + 1}, {name}: {times[name][-1]:.1f} s", flush=True)

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end")
    print(f"warm `make`, median of {args.rounds} (min-max):")
    for name in ("before", "after"):
        print(f"  {name:7} {statistics.median(times[name]):6.1f} s  ({min(times[name]):.1f}-{max(times[name]):.1f})")
    print(f"  speed-up {statistics.median(times['before']) / statistics.median(times['after']):.2f} x")


if __name__ == "__main__":
    main()
