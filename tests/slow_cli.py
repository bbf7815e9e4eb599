"""`python tests/slow_cli.py ARGS`: the command line, with every run $SLOW_RUN_SECONDS slower.

Worker processes too (they import this script as their main module), so that a test can
interrupt or kill a parallel build while runs are still running and queued.
"""

import os
import sys
import time

from mnist_scratch import cli, runner

_work = runner._work


def slow_work(cfg, data_path, progress=False):
    time.sleep(float(os.environ["SLOW_RUN_SECONDS"]))
    return _work(cfg, data_path, progress)


if __name__ == "__main__":
    runner._work = slow_work
    sys.exit(cli.main(sys.argv[1:]))
