"""Reading every cached result: one file per run (the store) against one SQLite table of the same bytes.

    python benchmarks/bench_store.py [--repeats 5]

Copies the entries of the warm cache (`.cache/runs/*.result`) into a SQLite database in a temporary
folder (WAL mode, one row per run: key, bytes), then times, each in a fresh process, reading and
checking every entry both ways: read the bytes, verify the checksum, decode the arrays
(`results._decode`). The difference between the two is the cost of the container, which is what
the choice in `results.py` weighed.
"""

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READ = """
import sys, time, json, sqlite3
from pathlib import Path
from mnist_scratch import results
from mnist_scratch.train import RunConfig
how, where = sys.argv[1], Path(sys.argv[2])
start = time.perf_counter()
if how == "files":
    blobs = [p.read_bytes() for p in sorted(where.glob("*.result"))]
else:
    with sqlite3.connect(where) as db:
        blobs = [row[0] for row in db.execute("SELECT data FROM runs ORDER BY key")]
read = time.perf_counter()
for data in blobs:  # the config comes from the entry itself here: this times the check, not the look-up
    header = json.loads(data.split(b"\\n", 3)[2])
    assert results._decode(data, RunConfig(**header["config"])) is not None
print(len(blobs), read - start, time.perf_counter() - read)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = Path(os.environ.get("MNIST_SCRATCH_CACHE") or ROOT / ".cache") / "runs"
    entries = sorted(runs.glob("*.result"))
    if not entries:
        sys.exit(f"no entries in {runs}: build the results first (python -m mnist_scratch run)")
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "results.sqlite"
        with sqlite3.connect(db_path) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE runs (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
            db.executemany("INSERT INTO runs VALUES (?, ?)", ((p.stem, p.read_bytes()) for p in entries))
        times = {"files": [], "sqlite": []}
        for rep in range(args.repeats):
            for how in ("files", "sqlite") if rep % 2 == 0 else ("sqlite", "files"):
                where = runs if how == "files" else db_path
                out = subprocess.run([sys.executable, "-c", READ, how, str(where)], capture_output=True, text=True,
                                     check=True, cwd=ROOT)
                n, read, check = out.stdout.split()
                times[how].append((float(read), float(check)))
    size = sum(p.stat().st_size for p in entries)
    load = os.getloadavg()
    print(f"{n} entries, {size / 1e6:.1f} MB; {args.repeats} fresh processes each, interleaved; "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"{'container':10} {'read (ms)':>10} {'check + decode (ms)':>20}")
    for how, values in times.items():
        read, check = (statistics.median(v) * 1e3 for v in zip(*values))
        print(f"{how:10} {read:10.1f} {check:20.1f}")


if __name__ == "__main__":
    main()
