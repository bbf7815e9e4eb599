"""What knowing the MNIST folder's fingerprint costs: a full scan, and the warm checks that replace it.

    python benchmarks/bench_fingerprint.py [--repeats 5] [--data PATH]

- full scan: `data._scan`, a `stat` of each of the 70,000 images (what a new or changed folder costs);
- first in a process: `data.version()` with empty in-process memos, so it finds the folder, reads
  the remembered fingerprint from `.cache/data/folders.json` and `stat`s the 23 folders (a warm
  command's first run key);
- recheck: finding the folder and the 23 `stat`s, as a process does once a second;
- further run keys: `data.version()` within that second (the in-process memo).

Medians of `--repeats` runs, side by side in one process; the machine's load is printed with them.
Uses a private cache folder, so the project's cache is left alone.
"""

import argparse
import os
import statistics
import tempfile
import time

from mnist_scratch import data, store


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", help="the mnist_png folder (default: as the command line finds it)")
    args = parser.parse_args()
    os.environ[store.CACHE_ENV] = tempfile.mkdtemp(prefix="bench-fingerprint-")
    if args.data:
        os.environ[data.DATA_ENV] = args.data
    root = data.locate()
    data.fingerprint(root)  # remembered in folders.json, as after any earlier command

    def first_in_process():
        data._fingerprints.clear()
        data._versions.clear()
        data.version()

    def recheck():
        data._versions.clear()
        data.version()

    scan = median_seconds(lambda: data._scan(root), args.repeats)
    first = median_seconds(first_in_process, args.repeats * 20)
    rechecked = median_seconds(recheck, args.repeats * 20)
    data.version()
    further = median_seconds(data.version, args.repeats * 200)
    print(f"MNIST folder: {root}  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"full scan (70,000 stats)          {scan * 1e3:9.1f} ms")
    print(f"first in a process                {first * 1e3:9.3f} ms")
    print(f"recheck (once a second)           {rechecked * 1e3:9.3f} ms")
    print(f"each further run key              {further * 1e3:9.3f} ms")

if __name__ == "__main__":
    main()
