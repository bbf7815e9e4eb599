"""The report without Quarto: execute every cell of report.qmd headless, as Quarto would.

jupytext reads a copy of the .qmd saved as .Rmd (same chunk syntax) into a notebook; nbclient runs
it in a python3 kernel from the project root, against the real result cache (built on first use,
a few minutes cold). Inline `{python} ...` expressions are evaluated in the same kernel afterwards.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from mnist_scratch.figures import FIGURES

from .conftest import need

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "report.qmd"
INLINE = re.compile(r"(?<!`)`\{python\}[ \t]+([^`]+)`")  # inline, not a ```{python} chunk


@pytest.fixture(scope="module")
def source() -> str:
    return REPORT.read_text()


@pytest.fixture(scope="module")
def executed(tmp_path_factory, source):
    """The report as an executed notebook, plus the values of its inline expressions."""
    copy = tmp_path_factory.mktemp("report") / "report.Rmd"
    copy.write_text(source)
    nb = jupytext.read(copy)
    expressions = INLINE.findall(source)
    probe = "import json as _json\nprint(_json.dumps([str(eval(e)) for e in %r]))" % (expressions,)
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    values = json.loads("".join(o.get("text", "") for o in nb.cells[-1].outputs))
    return nb, dict(zip(expressions, values))


def _outputs(nb) -> list[str]:
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", ""))
            texts += [str(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
    return texts


@pytest.mark.slow
def test_every_cell_runs_and_draws(executed):
    nb, _ = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 25
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0]["ename"] + ": " + errors[0]["evalue"]
    for cell in code:
        if "draw(" in cell.source:
            assert any("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {}) for o in cell.outputs), cell.source


@pytest.mark.slow
def test_tables_and_inline_numbers_have_no_nan(executed):
    nb, values = executed
    tables = [t for t in _outputs(nb) if t.lstrip().startswith("|")]
    labelled = [c for c in nb.cells if c.cell_type == "code" and re.search(r"#\|\s*label:\s*tbl-", c.source)]
    assert len(tables) == len(labelled) >= 10  # every table cell printed its table
    for text in tables + list(values.values()):
        assert not re.search(r"\bnan\b|\binf\b", text, re.IGNORECASE), text
    assert all(v.strip() for v in values.values())
    assert len(values) > 150


def test_every_cross_reference_has_a_label(source):
    labels = set(re.findall(r"#\|\s*label:\s*((?:fig|tbl)-[\w-]+)", source))
    labels |= set(re.findall(r"\{#(sec-[\w-]+)[^}]*\}", source))
    refs = set(re.findall(r"@((?:fig|tbl|sec)-[\w-]+)", source))
    assert refs, "the report cross-references nothing"
    assert refs <= labels, f"references without a label: {sorted(refs - labels)}"


def test_every_figure_the_report_draws_is_a_cli_figure(source):
    used = re.findall(r'draw\("([^"]+)"\)', source)
    assert used and set(used) <= set(FIGURES), set(used) - set(FIGURES)
    assert set(FIGURES) <= set(used), f"figures the report never shows: {set(FIGURES) - set(used)}"


def test_figure_cells_have_labels_and_captions(source):
    for chunk in re.findall(r"```\{python\}\n(.*?)```", source, re.DOTALL):
        if "draw(" in chunk:
            assert re.search(r"#\|\s*label:\s*fig-", chunk) and "#| fig-cap:" in chunk, chunk
        if "tables." in chunk and "Markdown(" in chunk:
            assert re.search(r"#\|\s*label:\s*tbl-", chunk) and "#| tbl-cap:" in chunk, chunk


def test_plumbing_cells_are_hidden_and_the_answers_come_first(source):
    """Cells that only draw, tabulate or print a listing show their output, not their code (View
    source still shows the .qmd); the first section is the answers."""
    for chunk in re.findall(r"```\{python\}\n(.*?)```", source, re.DOTALL):
        if re.search(r"\bdraw\(|\bMarkdown\(|\bshow\(", chunk):
            assert re.search(r"#\|\s*(echo|include):\s*false", chunk), chunk
    headings = re.findall(r"^# (.+)$", re.sub(r"```.*?```", "", source.split("---", 2)[2], flags=re.DOTALL), re.MULTILINE)
    assert headings[0].startswith("Answers {#sec-answers}"), headings[0]
    appendix = [i for i, h in enumerate(headings) if ".appendix" in h]
    assert appendix and appendix == list(range(appendix[0], len(headings))), "the appendices come last, together"


def test_the_shown_code_is_read_from_src(source):
    """Listings are printed from the library's source as the page is built, never typed into it."""
    shown = re.findall(r"^show\((.*)\)$", source, re.MULTILINE)
    assert len(shown) >= 6
    for call in shown:
        assert re.fullmatch(r"(listings\.(source|excerpt)\([^()]*(\([^()]*\))?[^()]*\),?\s*)+", call), call
    assert not re.search(r"^\s*def (forward|backward)\(", source, re.MULTILINE), "code typed into the report"


def test_captions_cross_reference_nothing(source):
    """A caption is printed as written in the PDF's figure list checks; a @ref inside it would not be."""
    for caption in re.findall(r"#\|\s*(?:fig|tbl)-cap:\s*(.*)", source):
        assert "@" not in caption, caption


def test_every_figure_has_alt_text(source):
    for chunk in re.findall(r"```\{python\}\n(.*?)```", source, re.DOTALL):
        if "draw(" in chunk:
            alt = re.search(r"#\|\s*fig-alt:\s*\"(.+)\"", chunk)
            assert alt and len(alt.group(1).split()) >= 8, chunk


def _prose(source: str) -> str:
    """The report's text without front matter, code, inline expressions, math, citations or labels."""
    text = source.split("---", 2)[2]
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.DOTALL)
    text = re.sub(r"\[?@[\w-]+(;\s*@[\w-]+)*\]?|\{#[\w-]+\}", " ", text)
    return text


def test_prose_types_no_measured_number(source):
    """Decimals and percentages in the text come from inline code, never typed by hand."""
    prose = _prose(source)
    typed = re.findall(r"(?<![\w.-])\d+\.\d+(?![\w-])|\d+(?:\.\d+)?\s?%", prose)
    assert not typed, typed


def test_every_citation_is_in_the_bibliography(source):
    bib = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([\w-]+),", bib, re.MULTILINE))
    cited = set(re.findall(r"@([a-z][\w-]*\d{4}[\w]*|assignment|pytorchlinear|cs231n)\b", _cited_text(source)))
    assert {"lecun1998", "nielsen2015", "he2015", "fastai2022course", "assignment"} <= cited
    assert cited <= keys, cited - keys
    front = yaml.safe_load(source.split("---")[1])
    assert front["bibliography"] == "references.bib"
    assert "#refs" in source  # the reference list is placed, in both formats


def _cited_text(source: str) -> str:
    text = source.split("---", 2)[2]
    return re.sub(r"```.*?```", " ", text, flags=re.DOTALL)


def test_quarto_config_renders_html_and_typst_pdf():
    config = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    html, typst = config["format"]["html"], config["format"]["typst"]
    assert html["embed-resources"] is True and html["toc"] and html["code-fold"] and html["lightbox"]
    assert typst["toc"]
    assert typst["citeproc"] is True  # the same reference list and citation style as the HTML
    assert config["execute"]["freeze"] is False
    front = yaml.safe_load(REPORT.read_text().split("---")[1])
    assert front["jupyter"] == "python3"


def test_report_command_without_quarto_says_so_and_keeps_figures(tmp_path):
    """No quarto on PATH and no install attempt: a plain message, exit 3, results and figures built."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bin_dir), "MNIST_SCRATCH_NO_QUARTO_INSTALL": "1"}
    beside = Path(sys.executable).parent / "quarto"  # where find_quarto looks besides PATH
    if beside.exists():
        need("a Python without Quarto beside it", f"{beside} (pip's quarto-cli) cannot be hidden from the "
             "report command; run this test from an environment without quarto-cli")
    done = subprocess.run([sys.executable, "-m", "mnist_scratch", "report"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "Quarto is not available" in done.stderr and "conda-forge quarto" in done.stderr
    for name in FIGURES:
        assert (ROOT / "figures" / f"{name}.png").stat().st_size > 1000
        assert (ROOT / "figures" / f"{name}.svg").exists()


def test_engine_speed_comes_from_the_benchmark_record(tmp_path):
    """The reflection's speed-up is read from bench_engine.py's record, and a missing or damaged
    record gives "?" rather than a stale number or a traceback."""
    from mnist_scratch.findings import engine_speedup

    record = tmp_path / "engine.json"
    record.write_text(json.dumps({"date": "2031-02-03 04:05 UTC",
                                  "speedup_vs_torch_nn": {"784-10": 2.345, "784-30-10": 3.0}}))
    assert engine_speedup(record) == ("2.35", "3.00", "2031-02-03")
    for damaged in ("{", json.dumps({"date": "x"}), json.dumps({"date": "x", "speedup_vs_torch_nn": {"784-10": "fast"}})):
        record.write_text(damaged)
        assert engine_speedup(record) == ("?", "?", "?")
    assert engine_speedup(tmp_path / "absent.json") == ("?", "?", "?")
    assert engine_speedup()[0] != "?", "benchmarks/engine.json is missing: run benchmarks/bench_engine.py"
