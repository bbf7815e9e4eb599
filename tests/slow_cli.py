"""`python tests/slow_cli.py ARGS`: the command line, with every run (or group of runs trained
together) $SLOW_RUN_SECONDS slower.

Worker processes too (they import this script as their main module), so that a test can
interrupt or kill a parallel build while runs are still running and queued. With
$SLOW_START_SECONDS, each worker also takes that long to start (as importing torch does on a busy
machine), so that a test can interrupt a build while its workers start.
"""

import os
import sys
import time

from mnist_scratch import cli, runner

if __name__ == "__mp_main__":  # a worker process, still starting
    time.sleep(float(os.environ.get("SLOW_START_SECONDS", "0")))

_work = runner._work


def slow_work(group, data_path, progress=False):
    time.sleep(float(os.environ.get("SLOW_RUN_SECONDS", "0")))
    return _work(group, data_path, progress)


if __name__ == "__main__":
    runner._work = slow_work
    sys.exit(cli.main(sys.argv[1:]))
