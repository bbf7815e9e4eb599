"""What the tests need from the machine (MNIST, Quarto, Chromium), found one way for all of them.

`need(what, how)` skips a test that lacks something, saying how to provide it; under CI=true it
fails instead, so a CI run can never pass by skipping. The rendered report is built once per session.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_scratch import data
from mnist_scratch.errors import UserError
from mnist_scratch.render import find_quarto
from mnist_scratch.store import PROJECT_ROOT

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_collection_modifyitems(items):
    """A test that reads the rendered report is a `render` test (deselect with -m "not render")."""
    for item in items:
        if {"rendered", "build"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.render)


def need(what: str, how: str):
    """Skip (fail under CI=true) a test for which `what` is missing; `how` says how to provide it."""
    message = f"{what} is missing: {how}"
    if IN_CI:
        pytest.fail(f"CI=true, so not skipped: {message}", pytrace=False)
    pytest.skip(message)


def mnist_root() -> Path | None:
    """The mnist_png folder as the library finds it ($MNIST_DATA, else fastai's data folder,
    which honours $FASTAI_HOME), or None; never downloads."""
    if os.environ.get(data.DATA_ENV):
        try:
            return data.locate()
        except UserError:
            return None
    from fastai.data.external import fastai_path

    root = fastai_path("data") / "mnist_png"  # where untar_data(URLs.MNIST) unpacks it
    return root if (root / "training").is_dir() and (root / "testing").is_dir() else None


@pytest.fixture(scope="session")
def mnist() -> Path:
    """The mnist_png folder (skips, or fails under CI, when it is not there)."""
    root = mnist_root()
    if root is None:
        need("MNIST (mnist_png)", "unpack mnist_png.tgz into $FASTAI_HOME/data (default ~/.fastai/data) "
             f"or set {data.DATA_ENV}=PATH to an mnist_png folder")
    return root


@pytest.fixture(scope="session")
def quarto() -> str:
    """The quarto command (skips, or fails under CI, without it)."""
    found = find_quarto()
    if found is None:
        need("Quarto", "put Quarto 1.7+ on PATH (README: Requirements); CI installs it with "
             "../shared/quarto/install.sh .cache/quarto")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable ($CHROMIUM, else chromium on PATH), and Playwright to drive it."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        need("Chromium", "install Debian's chromium (apt-get install chromium; .ci/run does) or set CHROMIUM=PATH")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need("Playwright for Python", "pip install -e '.[test]' (make env)")
    return found


@pytest.fixture(scope="session")
def rendered(quarto, mnist) -> dict:
    """The README's main command run for real: `python -m mnist_scratch report` (what `make` runs).

    Returns the paths of _site/report.html and report.pdf, and the seconds it took.
    """
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mnist_scratch", "report"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    print(f"\nmnist_scratch report: {seconds:.1f} s", file=sys.stderr)
    return {"html": PROJECT_ROOT / "_site" / "report.html", "pdf": PROJECT_ROOT / "_site" / "report.pdf",
            "seconds": seconds, "log": done.stderr}


@pytest.fixture(scope="session")
def screenshots(rendered) -> Path:
    """_site/screenshots/, emptied once per session: what the browser and PDF tests saw (the page on
    a phone and a desktop, the PDF's pages), for a person to look at."""
    folder = rendered["html"].parent / "screenshots"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
