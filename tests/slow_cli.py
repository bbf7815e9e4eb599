"""`python tests/slow_cli.py ARGS`: the command line, with every run (or group of runs trained
together) $SLOW_RUN_SECONDS slower.

Worker processes too (they import this script as their main module), so that a test can
interrupt or kill a parallel build while runs are still running and queued.
"""

import os
import sys
import time

from mnist_scratch import cli, runner

_work = runner._work


def slow_work(group, data_path, progress=False):
    time.sleep(float(os.environ["SLOW_RUN_SECONDS"]))
    return _work(group, data_path, progress)


if __name__ == "__main__":
    runner._work = slow_work
    sys.exit(cli.main(sys.argv[1:]))
