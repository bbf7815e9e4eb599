"""The report rendered for real by Quarto, HTML and PDF, checked as a reader would find them.

Two builds are checked the same way: `python -m mnist_scratch report` (what `make` runs: one
execution for both formats) and a plain `quarto render` (the project's own command, which executes
once per format). What to expect (figures, tables, sections, captions, headings, formulas) is read
from report.qmd itself, so the checks follow the report as it grows.
"""

import base64
import os
import re
import subprocess
import sys
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mnist_scratch.store import PROJECT_ROOT

from .conftest import need

SOURCE = (PROJECT_ROOT / "report.qmd").read_text()
PROSE = re.sub(r"^```.*?^```", "", SOURCE, flags=re.DOTALL | re.MULTILINE)  # without code blocks
FIGURES = re.findall(r"^#\|\s*label:\s*(fig-[\w-]+)", SOURCE, re.MULTILINE)
TABLES = re.findall(r"^#\|\s*label:\s*(tbl-[\w-]+)", SOURCE, re.MULTILINE)
SECTIONS = re.findall(r"\{#(sec-[\w-]+)[^}]*\}", PROSE)
APPENDIX = re.findall(r"\{#(sec-[\w-]+)[^}]*\.appendix[^}]*\}", PROSE)
REFERENCES = sorted(set(re.findall(r"(?<![\w@])@((?:fig|tbl|sec)-[\w-]*\w)", PROSE)))
CAPTIONS = [m.strip().strip("\"'") for m in re.findall(r"^#\|\s*(?:fig|tbl)-cap:\s*(.+)$", SOURCE, re.MULTILINE)]
HEADINGS = [re.sub(r"\s*\{[^}]*\}\s*$", "", h) for h in re.findall(r"^# (.+)$", PROSE, re.MULTILINE)]
FORMULAS = re.findall(r"(?<![\\$])\$[^$\n]+\$", re.sub(r"`[^`\n]*`", "", PROSE))
NAN_INF = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)
WRITTEN_NAN_INF = len(NAN_INF.findall(PROSE + " ".join(CAPTIONS)))  # words the prose itself uses ("turns NaN")
REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


def test_the_report_source_gives_the_checks_something_to_check():
    assert FIGURES and TABLES and SECTIONS and REFERENCES and CAPTIONS and HEADINGS and FORMULAS
    assert APPENDIX and set(APPENDIX) < set(SECTIONS)
    assert len(CAPTIONS) == len(FIGURES) + len(TABLES)


@pytest.fixture(scope="module", params=["make", "quarto render"])
def build(request, tmp_path_factory) -> dict:
    """The outputs of `make`'s route (shared with the browser test) or of a plain `quarto render`."""
    if request.param == "make":
        return request.getfixturevalue("rendered")
    quarto = request.getfixturevalue("quarto")
    request.getfixturevalue("mnist")
    out = tmp_path_factory.mktemp("quarto-render")
    done = subprocess.run([quarto, "render", "--output-dir", str(out)], cwd=PROJECT_ROOT,
                          env={**os.environ, "QUARTO_PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return {"html": out / "report.html", "pdf": out / "report.pdf", "log": done.stderr}


class Page(HTMLParser):
    """What the checks need from an HTML file: elements by id (with the tags inside them), every
    src/href, style sheets and scripts, and the visible text outside code, math and scripts."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    HIDDEN = {"script", "style", "pre", "code", "math", "svg", "template"}

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self.ids: dict[str, str] = {}
        self.inside: dict[str, list[tuple[str, dict]]] = {}
        self.links: list[tuple[str, str, str, dict]] = []  # (tag, attribute, value, attributes)
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self.math = 0
        self.text: list[str] = []
        self.table_text: list[str] = []
        self._open: list[tuple[str, str | None]] = []
        self._hidden = 0
        self._raw: list[str] | None = None
        self.feed(path.read_text())

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        for opened_tag, opened_id in self._open:
            if opened_id:
                self.inside[opened_id].append((tag, attrs))
        for attr in ("src", "href", "srcset", "poster", "data"):
            if attr in attrs:
                self.links.append((tag, attr, attrs[attr], attrs))
        self.math += tag == "math"
        if tag in self.VOID:
            return
        if attrs.get("id"):
            self.ids[attrs["id"]] = tag
            self.inside[attrs["id"]] = []
        self._open.append((tag, attrs.get("id")))
        self._hidden += tag in self.HIDDEN
        if tag in ("style", "script"):
            self._raw = []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if not any(t == tag for t, _ in self._open):
            return
        while self._open:
            opened, _ = self._open.pop()
            self._hidden -= opened in self.HIDDEN
            if opened in ("style", "script") and self._raw is not None:
                (self.styles if opened == "style" else self.scripts).append("".join(self._raw))
                self._raw = None
            if opened == tag:
                break

    def handle_data(self, text):
        if self._raw is not None:
            self._raw.append(text)
        elif not self._hidden:
            self.text.append(text)
            if any(tag == "table" for tag, _ in self._open):
                self.table_text.append(text)

    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture(scope="module")
def page(build) -> Page:
    assert build["html"].stat().st_size > 100_000
    return Page(build["html"])


@pytest.fixture(scope="module")
def pdf_text(build) -> list[str]:
    try:
        from pypdf import PdfReader
    except ImportError:
        need("pypdf", "pip install -e '.[test]' (make env)")

    reader = PdfReader(build["pdf"])
    return [p.extract_text() for p in reader.pages]


def _css_of_data_url(url: str) -> str:
    head, _, body = url.partition(",")
    return base64.b64decode(body).decode(errors="replace") if head.endswith(";base64") else urllib.parse.unquote(body)


# --- HTML --------------------------------------------------------------------------------------


def test_html_loads_nothing_from_another_host_or_file(page, build):
    """Every src, and every href but a hyperlink's, is embedded (data:) or within the page (#...)."""
    assert page.links
    for tag, attr, value, attrs in page.links:
        if tag == "a" and attr == "href":
            # a hyperlink may go to another site or to the PDF rendered beside the page; a lightbox
            # trigger's href names no file that exists (Quarto's script shows the embedded <img>)
            lightbox = "lightbox" in attrs.get("class", "").split()
            beside = not REMOTE.match(value) and ":" not in value and (build["html"].parent / value).is_file()
            assert lightbox or beside or value.startswith(("#", "http://", "https://", "mailto:", "javascript:void(0)")), value[:120]
            continue
        assert value.startswith(("data:", "#")), f"<{tag} {attr}={value[:120]!r}>"
    sheets = page.styles + [_css_of_data_url(v) for t, a, v, _ in page.links if t == "link" and v.startswith("data:text/css")]
    for css in sheets:
        assert not re.search(r"@import\s+(url\()?\s*['\"]?\s*(https?:)?//", css), "a style sheet imports from the web"
        assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", css), "a style sheet loads from the web"
    for script in page.scripts:
        assert not re.search(r"\.src\s*=\s*['\"](https?:)?//", script), "a script loads a script from the web"


def test_html_links_the_pdf_beside_it_by_the_name_pdf(page, build):
    """One "PDF" link in the margin, to the PDF rendered beside the page; Quarto's own label for the
    format ("Typst") means nothing to a reader."""
    pdf_links = [value for tag, attr, value, _ in page.links if tag == "a" and attr == "href" and value.endswith(".pdf")]
    assert pdf_links == ["report.pdf"] and (build["html"].parent / "report.pdf").is_file(), pdf_links
    assert re.search(r'<a href="report\.pdf"><i class="bi bi-file-pdf"></i>PDF</a>', build["html"].read_text())
    assert "Typst" not in page.visible()


def test_every_figure_is_an_embedded_image(page):
    for label in FIGURES:
        assert label in page.ids, f"figure {label} is missing"
        images = [a["src"] for tag, a in page.inside[label] if tag == "img"]
        assert len(images) == 1, (label, len(images))
        assert re.match(r"data:image/(svg\+xml|png);base64,", images[0]) and len(images[0]) > 5000, label


def test_every_table_is_there_with_rows(page):
    for label in TABLES:
        assert label in page.ids, f"table {label} is missing"
        tags = [tag for tag, _ in page.inside[label]]
        assert tags.count("table") == 1 and tags.count("tr") >= 2, (label, tags.count("table"), tags.count("tr"))


def test_every_section_anchor_and_cross_reference_resolves(page, build):
    html = build["html"].read_text()
    for section in SECTIONS:
        assert page.ids.get(section) == "section", section
    assert "?@" not in page.visible(), "an unresolved cross-reference (?@...)"
    for ref in REFERENCES:
        assert ref in page.ids, ref
        link = re.search(rf'<a href="#{ref}" class="quarto-xref">([^<]+)</a>', html)
        assert link, f"@{ref} is not a link to it"
        assert re.fullmatch(r"(Figure|Table|Section)\s+\d+(\.\d+)*", link.group(1).strip()), link.group(1)


def test_no_inline_code_nan_or_inf_is_left_in_the_text(page):
    text = page.visible()
    assert len(text) > 10_000
    assert "{python}" not in text
    tables = " ".join(page.table_text)
    assert not NAN_INF.search(tables), NAN_INF.search(tables)
    assert len(NAN_INF.findall(text)) <= WRITTEN_NAN_INF, [m.group() for m in NAN_INF.finditer(text)]


def test_math_is_mathml_not_raw_tex(page):
    assert page.math >= len(FORMULAS), (page.math, len(FORMULAS))
    text = page.visible()
    tex = re.search(r"\\[A-Za-z]+|\\[(\[]|\$\S[^$]*\$", text)
    assert not tex, text[max(0, tex.start() - 80):tex.end() + 80]


# --- the main body as a reader reads it --------------------------------------------------------------

MAX_WORDS = 2_500  # the model answer: a fifteen-minute read
MAX_NUMBERS = 12  # per paragraph
MAX_SENTENCE = 50  # words
MIN_LINKED_SECTIONS = 6  # the answers link to the sections that show them


class Reading(HTMLParser):
    """The report as prose: its paragraphs and list items (blocks), each with the sections it sits in,
    without code, formulas, figures' captions, tables or the title block. `main` blocks are outside
    Quarto's appendix. Numbers are counted on the text without cross-reference and citation links
    (their section numbers and years are not quantities). `code` holds every <pre>: whether it is a
    cell's own code, a cell's output, folded in a <details>, and where it sits."""

    SKIP = {"pre", "code", "math", "svg", "script", "style", "figcaption", "table", "header", "nav", "button"}
    BLOCKS = {"p", "li", "dd", "dt", "blockquote"}
    VOID = Page.VOID

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self._open: list[tuple[str, dict]] = []
        self._text: list[tuple[list[str], list[str]]] = []  # per open block: all text, text without links
        self.blocks: list[dict] = []
        self.links: list[tuple[str, str]] = []  # (section the link sits in, target id)
        self.code: list[dict] = []  # <pre> blocks: text, whether shown as cell code, in a <details>, in the appendix
        self.appendix_sections: set[str] = set()
        self._pre: list[str] | None = None
        self.feed(path.read_text())

    def _ids(self):
        return [a.get("id") for _, a in self._open]

    def _classes(self):
        return [c for _, a in self._open for c in (a.get("class") or "").split()]

    def _where(self) -> dict:
        ids = self._ids()
        sections = [a.get("id") for t, a in self._open if t == "section"]
        return {"main": "quarto-document-content" in ids and "quarto-appendix" not in ids,
                "appendix": "quarto-appendix" in ids, "sections": sections}

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag in self.VOID:
            return
        if tag == "section" and self._where()["appendix"]:
            self.appendix_sections.add(attrs.get("id"))
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(((self._where()["sections"][:1] or [None])[0], attrs["href"][1:]))
        self._open.append((tag, attrs))
        if tag in self.BLOCKS:
            self._text.append(([], []))
        if tag == "pre":
            self._pre = []

    def handle_endtag(self, tag):
        if not any(t == tag for t, _ in self._open):
            return
        while self._open:
            opened, attrs = self._open[-1]
            if opened == "pre" and self._pre is not None:
                classes = self._classes()
                self.code.append({"text": "".join(self._pre), "cell": "cell-code" in classes, "output": "cell-output" in classes,
                                  "folded": any(t == "details" for t, _ in self._open), **self._where()})
                self._pre = None
            if opened in self.BLOCKS:
                text, plain = ("".join(parts) for parts in self._text.pop())
                if text.strip():
                    self.blocks.append({"text": " ".join(text.split()), "plain": " ".join(plain.split()), **self._where()})
            self._open.pop()
            if opened == tag:
                break

    def handle_data(self, data):
        if self._pre is not None:
            self._pre.append(data)
        if not self._text or any(t in self.SKIP for t, _ in self._open):
            return
        self._text[-1][0].append(data)
        if not any(t == "a" and ("quarto-xref" in a.get("class", "") or a.get("role") == "doc-biblioref")
                   for t, a in self._open):
            self._text[-1][1].append(data)

    def main(self) -> list[dict]:
        return [b for b in self.blocks if b["main"]]


def words(text: str) -> int:
    return len(re.findall(r"[\w][\w'’.,%±≈-]*", text))


def numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:[.,]\d+)*", text)


def sentences(text: str) -> list[str]:
    return [s for s in re.sub(r'([.!?][”"’)]*)\s+(?=[A-Z“"(\[0-9])', "\\1\n", text).split("\n") if s.strip()]


@pytest.fixture(scope="module")
def reading(build) -> Reading:
    return Reading(build["html"])


def test_the_reading_checks_see_the_report(reading):
    """The parser finds both layers: a main body of some length, and the appendix."""
    assert sum(words(b["text"]) for b in reading.main()) > 1_000
    assert sum(words(b["text"]) for b in reading.blocks if b["appendix"]) > 1_000
    assert reading.appendix_sections >= set(APPENDIX), set(APPENDIX) - reading.appendix_sections


def test_main_body_prose_is_a_fifteen_minute_read(reading):
    total = sum(words(b["text"]) for b in reading.main())
    assert total <= MAX_WORDS, f"{total} words of prose outside the appendix (at most {MAX_WORDS})"


def test_no_main_body_paragraph_carries_more_than_12_numbers(reading):
    crowded = [(len(numbers(b["plain"])), b["text"][:100]) for b in reading.main() if len(numbers(b["plain"])) > MAX_NUMBERS]
    assert not crowded, crowded


def test_no_sentence_runs_over_50_words(reading):
    long = [(words(s), s[:120]) for b in reading.blocks for s in sentences(b["text"]) if words(s) > MAX_SENTENCE]
    assert not long, long


def test_the_first_section_answers_and_links_the_sections_that_show_it(reading):
    first = next(s for b in reading.main() for s in b["sections"][:1])
    assert first == "sec-answers"
    sections = {target for where, target in reading.links if where == first and target.startswith("sec-")}
    assert len(sections) >= MIN_LINKED_SECTIONS, sections
    answers = [b["text"] for b in reading.main() if b["sections"][:1] == [first] and b["text"].startswith(("Does", "Is"))]
    assert answers and "held-out" in answers[0] and "validation" not in answers[0], answers[:1]  # held-out numbers first


SOURCES = {path.name: path.read_text().splitlines() for path in (PROJECT_ROOT / "src" / "mnist_scratch").glob("*.py")}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _in_source(part: str) -> str | None:
    """The module whose source holds `part`'s lines, contiguous and in order, each indented as in
    `part` up to one shift for the whole (a method is shown dedented)."""
    lines = part.strip("\n").splitlines()
    for name, source in SOURCES.items():
        for i in range(len(source) - len(lines) + 1):
            window = source[i:i + len(lines)]
            if [w.strip() for w in window] != [line.strip() for line in lines]:
                continue
            shift = _indent(window[0]) - _indent(lines[0])
            if all(not line.strip() or _indent(w) - _indent(line) == shift for w, line in zip(window, lines)):
                return name
    return None


def _parts(block: str) -> list[str]:
    """A listing's pieces: it shows one or more definitions (or one excerpt), a blank line between."""
    return re.split(r"\n\n(?=(?:def|class|@)\s)", block.strip("\n"))


def test_the_from_scratch_code_is_shown_unfolded_and_verbatim_from_src(reading):
    shown = [c for c in reading.code if c["main"] and not c["cell"] and not c["output"]]
    assert sum(c["text"].count("def backward(") for c in shown) >= 3
    loop = [c for c in shown if "for epoch in" in c["text"] and "model.backward(" in c["text"] and "opt.step()" in c["text"]]
    assert loop, "the training loop is not shown"
    found = set()
    for c in shown:
        assert not c["folded"], c["text"][:80]
        for part in _parts(c["text"]):
            name = _in_source(part)
            assert name, f"shown code is not in src/mnist_scratch/ as shown: {part[:300]}"
            found.add(name)
    assert {"modules.py", "sgd.py", "train.py"} <= found, found


def test_plumbing_code_is_hidden(reading):
    cells = [c["text"] for c in reading.code if c["cell"]]
    plumbing = [t for t in cells if re.search(r"\bdraw\(|\bMarkdown\(|\bshow\(", t)]
    assert not plumbing, plumbing[0][:200]


def test_the_evidence_the_issue_asks_for_is_there(page, reading):
    """Calibration, the nearest-class-mean baseline and early stopping in the report; the statistics
    method, calibration and full MNIST's caveats in the appendix."""
    main_sections = {s for b in reading.main() for s in b["sections"]}
    appendix_sections = reading.appendix_sections
    assert {"sec-baselines", "sec-early", "sec-compare"} <= main_sections
    assert {"sec-stats", "sec-calibration", "sec-full", "sec-mse-claims", "sec-learned"} <= appendix_sections
    for label in ("fig-calibration", "tbl-calibration", "tbl-baselines", "tbl-early", "fig-unit-ablation"):
        assert label in page.ids, label
    text = " ".join(b["text"] for b in reading.blocks)
    for phrase in ("pixel similarity", "Early stopping", "expected calibration error", "never-used half"):
        assert phrase in text, phrase
    assert "McNemar" not in text and "t-interval" not in text


# --- PDF ---------------------------------------------------------------------------------------


def _letters(text: str) -> str:
    """Only letters and digits: robust to line breaks, hyphenation, quotes and symbols in a PDF."""
    return re.sub(r"[^0-9A-Za-z]", "", text)


def test_pdf_has_a_table_of_contents_with_every_section(pdf_text):
    assert len(pdf_text) >= 3
    front = "\n".join(pdf_text[:2])
    assert "Table of contents" in front
    toc = front[front.index("Table of contents"):]
    for heading in HEADINGS:  # "3 Method . . . . 4": number (if numbered), title, dot leaders, page
        assert re.search(rf"^(\d+\s+)?{re.escape(heading)}\s*[ .]*\d+\s*$", toc, re.MULTILINE), heading


def test_pdf_has_every_figure_and_table_with_its_caption(pdf_text):
    text = "\n".join(pdf_text)
    numbers = {kind: sorted({int(n) for n in re.findall(rf"{kind}\s+(\d+):", text)}) for kind in ("Figure", "Table")}
    assert numbers["Figure"] == list(range(1, len(FIGURES) + 1)), numbers
    assert numbers["Table"] == list(range(1, len(TABLES) + 1)), numbers
    body = _letters(text)
    for caption in CAPTIONS:
        assert _letters(caption) in body, caption


def test_pdf_resolves_every_reference(pdf_text):
    text = "\n".join(pdf_text)
    assert "?@" not in text
    assert "{python}" not in text
    assert len(NAN_INF.findall(text)) <= WRITTEN_NAN_INF, [m.group() for m in NAN_INF.finditer(text)]


# --- the one-execution route, with a stand-in for Quarto -----------------------------------------

FAKE_QUARTO = '''#!{python}
"""Stands in for `quarto render`: logs its arguments, writes what Quarto would."""
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open("calls.log", "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[1] == "report.qmd":
    if os.environ.get("FAKE_QUARTO_FAILS"):
        sys.exit(2)
    image = {{"image/svg+xml": ["<svg>", "loss</svg>"], "image/png": "UE5HIQ==", "text/plain": "fig"}}
    cells = [
        {{"cell_type": "markdown", "source": "draw('sample-digits') in prose"}},
        {{"cell_type": "code", "source": ["#| label: fig-loss-curves\\n", "fig = draw('loss-curves')"],
         "outputs": [{{"output_type": "display_data", "data": image}}]}},
        {{"cell_type": "code", "source": "draw('lr-sweep'); draw('hidden-size')",
         "outputs": [{{"output_type": "display_data", "data": image}}]}},  # two draws, one image
    ]
    Path("report.quarto_ipynb").write_text(json.dumps({{"cells": cells}}))
    Path("_site").mkdir(exist_ok=True)
    Path("_site/report.html").write_text("html")
else:
    assert Path("report.ipynb").exists()
    Path("pdf-options.json").write_text(json.dumps(Path(args[args.index("--metadata-file") + 1]).read_text()))
    Path("report.pdf").write_text("pdf")
'''


@pytest.fixture
def fake_project(tmp_path):
    """A project folder with a _quarto.yml, and a stand-in `quarto` that writes what Quarto would."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "_quarto.yml").write_text(
        "project:\n  output-dir: _site\nbibliography: refs.bib\nformat:\n  html:\n    toc: true\n"
        "  typst:\n    toc: true\n    papersize: a4\n")
    quarto = tmp_path / "quarto"
    quarto.write_text(FAKE_QUARTO.format(python=sys.executable))
    quarto.chmod(0o755)
    return root, str(quarto)


def test_one_execution_makes_html_pdf_and_figures_and_leaves_nothing_behind(fake_project, tmp_path):
    import json

    import yaml

    from mnist_scratch.render import render_once

    root, quarto = fake_project
    figures = tmp_path / "figures"
    assert render_once(quarto, figures, root) == ["loss-curves"]
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert calls[0] == ["render", "report.qmd", "--to", "html", "-M", "keep-ipynb:true"]
    assert calls[1][:4] == ["render", "report.ipynb", "--to", "typst"] and len(calls) == 2
    assert (figures / "loss-curves.svg").read_text() == "<svg>loss</svg>"
    assert (figures / "loss-curves.png").read_bytes() == b"PNG!"
    assert sorted(p.name for p in figures.iterdir()) == ["loss-curves.png", "loss-curves.svg"]
    assert (root / "_site" / "report.pdf").read_text() == "pdf"
    options = yaml.safe_load(json.loads((root / "pdf-options.json").read_text()))
    assert options == {"bibliography": "refs.bib", "format": {"typst": {"toc": True, "papersize": "a4"}}}
    for left in ("report.ipynb", "report.quarto_ipynb", "report.pdf"):
        assert not (root / left).exists(), left


def test_a_failed_execution_renders_no_pdf_from_an_old_notebook(fake_project, tmp_path, monkeypatch):
    from mnist_scratch.errors import UserError
    from mnist_scratch.render import render_once

    root, quarto = fake_project
    for stale in ("report.ipynb", "report.quarto_ipynb", "report.pdf"):
        (root / stale).write_text("from an earlier run")
    monkeypatch.setenv("FAKE_QUARTO_FAILS", "1")
    with pytest.raises(UserError, match="failed"):
        render_once(quarto, tmp_path / "figures", root)
    assert len((root / "calls.log").read_text().splitlines()) == 1  # the PDF step never ran
    assert not (root / "_site" / "report.pdf").exists() and not (tmp_path / "figures").exists()
    for stale in ("report.ipynb", "report.quarto_ipynb", "report.pdf"):
        assert not (root / stale).exists(), stale
