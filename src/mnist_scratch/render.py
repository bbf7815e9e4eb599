"""The main job: every result, then the report in HTML and PDF from ONE execution of report.qmd.

`quarto render` executes a document once per output format. Here Quarto executes report.qmd once,
for the HTML, and keeps the executed notebook (`keep-ipynb`); the PDF is rendered from that
notebook, which Quarto does not execute again (it never executes an .ipynb unless asked to), and
figures/ is filled from the same notebook's images. Nothing is frozen or reused across runs: each
`report` executes the document afresh against the result cache, so a change in src/ shows.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from .errors import UserError
from .experiments import EXPERIMENTS, build
from .figures import FIGURES, png, save, svg
from .store import PROJECT_ROOT, atomic_write

NO_INSTALL_ENV = "MNIST_SCRATCH_NO_QUARTO_INSTALL"  # set to skip the `pip install quarto-cli` attempt
INSTALL_HELP = (
    "Install Quarto (1.7 or later) by one of: `pip install quarto-cli` (needs access to Quarto's "
    "download host), `conda install -c conda-forge quarto`, or the installer from "
    "https://quarto.org/docs/get-started/ ; then run `make` again (cached results make it quick)."
)
DRAW = re.compile(r"""\bdraw\(\s*["']([\w-]+)["']""")  # a report cell showing figure NAME


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


def figure_formats() -> None:
    """In the report's kernel: show every figure as SVG and PNG, each written as `figures.save` does
    (compact SVG, the style's margins and resolution).

    HTML and PDF embed the SVG (Quarto prefers it); `report` copies both into figures/, so no
    figure is drawn twice.
    """
    from IPython import get_ipython
    from matplotlib.figure import Figure
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("svg", "png")
    formatters = get_ipython().display_formatter.formatters
    formatters["image/svg+xml"].for_type(Figure, svg)
    formatters["image/png"].for_type(Figure, png)


def notebook_figures(notebook: Path, out: Path) -> list[str]:
    """Write the images of the executed notebook's `draw("NAME")` cells as out/NAME.svg and .png.

    Returns the names written; a cell whose images do not match its draw calls one for one is left out.
    """
    written = []
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        names = DRAW.findall("".join(cell["source"]))
        images = [o["data"] for o in cell.get("outputs", [])
                  if {"image/svg+xml", "image/png"} <= o.get("data", {}).keys()]
        if not names or len(names) != len(images):
            continue
        for name, image in zip(names, images):
            drawn = {"svg": "".join(image["image/svg+xml"]).encode(), "png": base64.b64decode("".join(image["image/png"]))}
            for ext, data in drawn.items():
                atomic_write(out / f"{name}.{ext}", lambda f: f.write(data))
            written.append(name)
    return written


def pdf_options(config: Path) -> dict:
    """The project's _quarto.yml as document metadata for the PDF: everything but `project`, typst only."""
    options = yaml.safe_load(config.read_text()) or {}
    options.pop("project", None)
    options["format"] = {"typst": (options.get("format") or {}).get("typst") or {}}
    return options


def _quarto(quarto: str, root: Path, *args: str) -> None:
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    done = subprocess.run([quarto, "render", *args], cwd=root, env=env)
    if done.returncode:
        raise UserError(f"`quarto render {' '.join(args)}` failed (exit {done.returncode}); its output is above", 1)


def render_once(quarto: str, figures_dir: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """report.qmd executed once: _site/report.html, _site/report.pdf and figures/; the figures written."""
    kept, notebook, pdf = root / "report.quarto_ipynb", root / "report.ipynb", root / "report.pdf"
    for stale in (kept, notebook, pdf):
        stale.unlink(missing_ok=True)
    try:
        _quarto(quarto, root, "report.qmd", "--to", "html", "-M", "keep-ipynb:true")
        if not kept.exists():
            raise UserError(f"Quarto kept no executed notebook ({kept.name}); is it Quarto 1.5 or later?", 1)
        kept.replace(notebook)  # an .ipynb, so Quarto renders it without executing it
        written = notebook_figures(notebook, figures_dir)
        # Outside the project's render list, report.ipynb renders as a lone file: it gets the
        # project's options as metadata, and its PDF lands beside it.
        with tempfile.TemporaryDirectory() as tmp:
            options = Path(tmp) / "pdf-options.yml"
            options.write_text(yaml.safe_dump(pdf_options(root / "_quarto.yml"), allow_unicode=True))
            _quarto(quarto, root, "report.ipynb", "--to", "typst", "--metadata-file", str(options))
        (root / "_site").mkdir(exist_ok=True)
        pdf.replace(root / "_site" / "report.pdf")
    finally:
        for temporary in (kept, notebook, pdf):
            temporary.unlink(missing_ok=True)
    return written


def report(*, jobs=None, data_path=None, figures_dir: Path = PROJECT_ROOT / "figures") -> Path:
    """Build every experiment, then render report.qmd once to HTML and PDF, and write figures/."""
    build(list(EXPERIMENTS), jobs=jobs, data_path=data_path)
    quarto = find_quarto() or install_quarto()
    if quarto is None:
        for name in FIGURES:
            save(name, figures_dir, jobs=jobs, data_path=data_path)
        print(f"results cached; figures written to {figures_dir}", file=sys.stderr)
        raise UserError(f"Quarto is not available, so the report was not rendered. {INSTALL_HELP}", exit_code=3)
    shown = render_once(quarto, figures_dir)
    for name in FIGURES:
        if name not in shown:  # a figure the report does not show (or not one for one)
            save(name, figures_dir, jobs=jobs, data_path=data_path)
    print(f"figures written to {figures_dir}", file=sys.stderr)
    return PROJECT_ROOT / "_site" / "report.html"
