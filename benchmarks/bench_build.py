"""The cold build of every experiment: this checkout against another (today's engine), and the floor.

    python benchmarks/bench_build.py [--against OTHER_CHECKOUT] [--jobs 2] [--repeats 1]

Each cold build runs `python -m mnist_scratch --cache CACHE --jobs N run` in a fresh cache folder
whose decoded MNIST arrays are copied in first (so the build times training, not PNG decoding),
with this checkout's `src/` or the other's first on `PYTHONPATH` (the same Python). The builds
alternate, `this` first in odd repetitions and `before` first in even ones, so both see the same
machine. Each is timed twice: wall clock, and the CPU seconds of the command and its worker
processes (less disturbed by other jobs on a shared machine than the wall clock).

The third column is the floor: the run time of every step's matrix products alone (forward
products, weight gradients, input gradients but the first layer's, each as `Linear` computes it,
at the batch sizes of every epoch), summed over the build's runs, at this machine's rate for those
small products, measured after the builds (the median of `--floor-repeats` blocks of 100 steps per
architecture and batch size). Its wall-clock figure is the run time spread evenly over the jobs.
Nothing else is in it: no evaluation, no dead-unit trace, no start-up.
"""

import argparse
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
LIST_RUNS = """
import json
from mnist_scratch.experiments import EXPERIMENTS, configs
import sys
runs = {cfg for name in EXPERIMENTS for cfg in configs(name, tiny=sys.argv[1] == "tiny", cached_only=True)}
print(json.dumps([cfg.as_dict() for cfg in runs]))
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


def built_runs(cache: Path, tiny: bool) -> list[dict]:
    """The configs of every run of every experiment, read from a built cache by this checkout."""
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MNIST_SCRATCH_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", LIST_RUNS, "tiny" if tiny else "all"], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def step_products(sizes: list[int], bias: bool, batch: int, repeats: int) -> float:
    """Median seconds of one step's matrix products alone, as `Linear` computes them, for `batch` rows."""
    gen = torch.Generator().manual_seed(0)
    ws = [torch.rand(n_in, n_out, generator=gen) for n_in, n_out in zip(sizes, sizes[1:])]
    bs = [torch.rand(n_out, generator=gen) for n_out in sizes[1:]]
    acts = [torch.rand(batch, n, generator=gen) for n in sizes]  # each layer's input, and the output

    def step():
        for i, (w, b) in enumerate(zip(ws, bs)):
            torch.addmm(b, acts[i], w) if bias else acts[i] @ w
        for i, w in enumerate(ws):
            acts[i].T @ acts[i + 1]
            if i:
                acts[i + 1] @ w.T

    blocks = []
    with torch.inference_mode():
        for _ in range(20):
            step()
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(100):
                step()
            blocks.append((time.perf_counter() - start) / 100)
    return statistics.median(blocks)


def floor_seconds(runs: list[dict], repeats: int) -> tuple[float, int]:
    """The run time of every step's products over `runs`, and the number of steps."""
    from mnist_scratch.train import RunConfig  # this checkout's

    steps: dict[tuple, int] = {}  # (sizes, bias, batch rows) -> steps of that shape in the build
    for fields in runs:
        cfg = RunConfig(**{**fields, "hidden": tuple(fields["hidden"])})
        sizes = tuple(int(n) for n in cfg.architecture.split("-"))
        full, last = divmod(cfg.n_train, cfg.batch_size)
        for rows, count in ((cfg.batch_size, full), (last, 1 if last else 0)):
            key = (sizes, cfg.bias, rows)
            steps[key] = steps.get(key, 0) + cfg.epochs * count
    torch.set_num_threads(1)
    total = sum(count * step_products(list(sizes), bias, rows, repeats) for (sizes, bias, rows), count in steps.items())
    return total, sum(steps.values())


def keep(built: Path, into: Path) -> None:
    """Copy the result files of `built` into `into`, each atomically (a temporary name renamed into place)."""
    for source in built.rglob("*"):
        if source.is_file():
            target = into / source.relative_to(built)
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f".{target.name}.part")
            shutil.copyfile(source, part)
            os.replace(part, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout, timed in the same run (the 'before')")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=1, help="cold builds per checkout")
    parser.add_argument("--floor-repeats", type=int, default=7)
    parser.add_argument("--tiny", action="store_true", help="the shrunk experiments CI runs (a check of this script)")
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "data", help="decoded MNIST arrays to copy in")
    parser.add_argument("--keep", type=Path, help="a cache folder (such as .cache) to copy the runs this checkout built into")
    args = parser.parse_args()
    checkouts = {"this": ROOT} | ({"before": args.against.resolve()} if args.against else {})
    load_start = os.getloadavg()
    walls: dict[str, list[float]] = {name: [] for name in checkouts}
    cpus: dict[str, list[float]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        if args.data.is_dir():
            shutil.copytree(args.data, data)
        else:  # decode once, with this checkout
            cli(ROOT, tmp / "decode", "data")
            shutil.copytree(tmp / "decode" / "data", data)
        for rep in range(args.repeats):
            order = list(checkouts) if rep % 2 == 0 else list(reversed(checkouts))
            for name in order:
                cache = tmp / f"{name}-{rep}"
                shutil.copytree(data, cache / "data")
                wall, cpu = cli(checkouts[name], cache, *(["--tiny"] if args.tiny else []), "--jobs", str(args.jobs), "run")
                walls[name].append(wall)
                cpus[name].append(cpu)
                print(f"build {rep + 1}, {name}: {wall:.1f} s wall, {cpu:.1f} s CPU "
                      f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        runs = built_runs(tmp / "this-0", args.tiny)
        if args.keep:
            keep(tmp / "this-0" / "runs", args.keep / "runs")
    floor, n_steps = floor_seconds(runs, args.floor_repeats)
    load_end = os.getloadavg()

    wall = {name: statistics.median(v) for name, v in walls.items()}
    cpu = {name: statistics.median(v) for name, v in cpus.items()}
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch "
          f"{torch.__version__}; load average {load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f} at "
          f"the start, {load_end[0]:.1f} / {load_end[1]:.1f} / {load_end[2]:.1f} at the end (1 / 5 / 15 min)")
    print(f"{len(runs)} distinct runs, {n_steps:,} steps; median of {args.repeats} cold build(s) per checkout, "
          f"--jobs {args.jobs}\n")
    columns = list(checkouts) + ["floor"]
    print(f"{'':24}" + "".join(f"{c:>10}" for c in columns) + ("    before/this" if args.against else "") + "   this/floor")
    for label, figures, floor_figure in (("cold build, wall (s)", wall, floor / args.jobs), ("cold build, CPU (s)", cpu, floor)):
        row = {**figures, "floor": floor_figure}
        ratios = f"{figures['before'] / figures['this']:>14.2f}x" if args.against else ""
        print(f"{label:24}" + "".join(f"{row[c]:>10.1f}" for c in columns) + ratios + f"{figures['this'] / floor_figure:>12.2f}x")
    if args.repeats > 1:
        for name in checkouts:
            print(f"  {name}: walls {', '.join(f'{w:.1f}' for w in walls[name])} s")


if __name__ == "__main__":
    main()
