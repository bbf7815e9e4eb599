"""The main job: every result, every figure, then `quarto render` (or a plain word on why not)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import UserError
from .experiments import EXPERIMENTS, build
from .figures import FIGURES, save
from .store import PROJECT_ROOT

NO_INSTALL_ENV = "MNIST_SCRATCH_NO_QUARTO_INSTALL"  # set to skip the `pip install quarto-cli` attempt
INSTALL_HELP = (
    "Install Quarto (1.7 or later) by one of: `pip install quarto-cli` (needs access to Quarto's "
    "download host), `conda install -c conda-forge quarto`, or the installer from "
    "https://quarto.org/docs/get-started/ ; then run `make` again (cached results make it quick)."
)


def find_quarto() -> str | None:
    """`quarto` on PATH or beside this Python (where `pip install quarto-cli` puts it), if it runs."""
    for candidate in (shutil.which("quarto"), str(Path(sys.executable).parent / "quarto")):
        if candidate and Path(candidate).exists():
            try:
                subprocess.run([candidate, "--version"], check=True, capture_output=True, timeout=120)
                return candidate
            except (OSError, subprocess.SubprocessError):
                continue
    return None


def install_quarto() -> str | None:
    """Try the usual route, `pip install quarto-cli`; the Quarto command if it then works."""
    if os.environ.get(NO_INSTALL_ENV):
        return None
    print("Quarto not found; trying `pip install quarto-cli` ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "quarto-cli"],
                       timeout=600, check=True, capture_output=True)
    except (OSError, subprocess.SubprocessError):
        print("`pip install quarto-cli` failed.", file=sys.stderr)
        return None
    return find_quarto()


def report(*, jobs=None, data_path=None, figures_dir: Path = PROJECT_ROOT / "figures") -> Path:
    """Build every experiment and figure, then render report.qmd to HTML and PDF."""
    build(list(EXPERIMENTS), jobs=jobs, data_path=data_path)
    for name in FIGURES:
        save(name, figures_dir, jobs=jobs, data_path=data_path)
    print(f"results cached; figures written to {figures_dir}", file=sys.stderr)
    quarto = find_quarto() or install_quarto()
    if quarto is None:
        raise UserError(f"Quarto is not available, so the report was not rendered. {INSTALL_HELP}", exit_code=3)
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    done = subprocess.run([quarto, "render", "report.qmd"], cwd=PROJECT_ROOT, env=env)
    if done.returncode:
        raise UserError(f"`quarto render report.qmd` failed (exit {done.returncode}); its output is above", 1)
    return PROJECT_ROOT / "_site" / "report.html"
