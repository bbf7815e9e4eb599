"""The report as its readers get it: a PDF whose figures and tables stay in their own sections and on
the page, and an HTML file small enough for a phone (its layout on a phone is in test_browser.py).

What to expect is read from report.qmd (headings, figures and tables in source order) and from the
rendered HTML (each table's rows), so the checks follow the report as it changes. The PDF is read
with pypdf (the outline: where each heading is) and poppler's `pdftotext -bbox-layout` (where each
word is); `pdftoppm` draws its pages into the screenshot folder for a person to look at.
"""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser

import numpy as np
import pytest
import yaml
from PIL import Image

from mnist_scratch.store import PROJECT_ROOT

from .conftest import need

HTML_BYTES = 2_500_000  # the most a reader on a slow phone connection should wait for
SOURCE = (PROJECT_ROOT / "report.qmd").read_text()
XHTML = "{http://www.w3.org/1999/xhtml}"


def plain(text: str) -> str:
    """`text` as a reader sees it, for comparing a source, HTML and PDF: no markup, one space."""
    text = re.sub(r"`([^`]*)`", r"\1", text)
    return " ".join(re.sub(r"[*_]", "", text).split())


def source_order(source: str) -> list[tuple[str, str]]:
    """The report's headings, figures and tables in source order: ("heading", title) or
    ("fig" / "tbl", label); labels from code cells (`#| label:`) or attributes (`{#fig-...}`)."""
    events, fenced = [], False
    for line in source.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            label = re.match(r"#\|\s*label:\s*((fig|tbl)-[\w-]+)", line)
            if label:
                events.append((label.group(2), label.group(1)))
            continue
        heading = re.match(r"(#{1,6})\s+(.+?)\s*(\{[^}]*\})?\s*$", line)
        if heading:
            events.append(("heading", plain(heading.group(2))))
        for label in re.findall(r"\{#((fig|tbl)-[\w-]+)", line):
            events.append((label[1], label[0]))
    return events


EVENTS = source_order(SOURCE)
HEADINGS = [title for kind, title in EVENTS if kind == "heading"]


def test_the_source_gives_the_pdf_checks_something_to_check():
    kinds = [kind for kind, _ in EVENTS]
    assert kinds.count("heading") >= 5 and kinds.count("fig") >= 3 and kinds.count("tbl") >= 3, kinds


# --- the PDF, as positions --------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class At:
    """A place in the PDF: page (from 0), then distance from the page's top (points)."""
    page: int
    y: float


@dataclass
class Line:
    at: At
    text: str
    x0: float
    x1: float


@dataclass
class Pdf:
    lines: list[Line]  # in reading order
    headings: list[tuple[str, At]]  # the outline, in order
    captions: dict[tuple[str, int], At]  # ("fig" / "tbl", number) -> where its caption starts
    pages: list[tuple[float, float]]  # width, height


@pytest.fixture(scope="module")
def pdf(rendered) -> Pdf:
    try:
        from pypdf import PdfReader
    except ImportError:
        need("pypdf", "pip install -e '.[test]' (make env)")
    if not shutil.which("pdftotext"):
        need("pdftotext", "install poppler's utilities (apt-get install poppler-utils; .ci/run does)")
    path = rendered["pdf"]
    done = subprocess.run(["pdftotext", "-bbox-layout", str(path), "-"], capture_output=True, text=True, check=True)
    lines, pages = [], []
    for number, page in enumerate(ET.fromstring(done.stdout).iter(f"{XHTML}page")):
        pages.append((float(page.get("width")), float(page.get("height"))))
        for line in page.iter(f"{XHTML}line"):
            words = [w.text or "" for w in line.iter(f"{XHTML}word")]
            lines.append(Line(At(number, float(line.get("yMin"))), " ".join(" ".join(words).split()),
                              float(line.get("xMin")), float(line.get("xMax"))))
    lines.sort(key=lambda line: (line.at, line.x0))
    reader = PdfReader(path)

    def flat(outline):
        for item in outline:
            yield from flat(item) if isinstance(item, list) else [item]

    headings = []
    for item in flat(reader.outline):
        number = reader.get_destination_page_number(item)
        headings.append((plain(item.title), At(number, pages[number][1] - float(item.top))))
    captions = {}
    for line in lines:
        found = re.match(r"(Figure|Table) (\d+):", line.text)
        if found:
            key = ("fig" if found.group(1) == "Figure" else "tbl", int(found.group(2)))
            captions.setdefault(key, line.at)
    return Pdf(lines, headings, captions, pages)


@pytest.fixture(scope="module")
def floats(pdf) -> list[tuple[str, str, int, At]]:
    """Each figure and table of the source: (kind, label, index of its section's heading, caption's
    place in the PDF). Quarto numbers figures and tables separately, in source order."""
    assert [title for title, _ in pdf.headings] == HEADINGS, "the PDF's outline is not the source's headings"
    out, section, counts = [], -1, {"fig": 0, "tbl": 0}
    for kind, name in EVENTS:
        if kind == "heading":
            section += 1
            continue
        counts[kind] += 1
        assert (kind, counts[kind]) in pdf.captions, f"no caption '{kind} {counts[kind]}:' in the PDF for {name}"
        out.append((kind, name, section, pdf.captions[(kind, counts[kind])]))
    return out


def test_pdf_every_figure_and_table_sits_in_its_own_section(pdf, floats):
    """Between its own section's heading and the next heading: a float that wandered (into the next
    section, or ahead of its heading) is out of place for the reader of the printed page."""
    wrong = []
    for kind, name, section, at in floats:
        start = pdf.headings[section][1]
        end = pdf.headings[section + 1][1] if section + 1 < len(pdf.headings) else At(len(pdf.pages), 0)
        if not start < at < end:
            wrong.append(f"{name} (page {at.page + 1}) is not in '{HEADINGS[section]}' "
                         f"(pages {start.page + 1}-{end.page + 1})")
    assert not wrong, "\n".join(wrong)


def test_pdf_keeps_figures_and_tables_in_source_order(floats):
    places = [at for *_, at in floats]
    assert places == sorted(places), [name for _, name, _, _ in sorted(floats, key=lambda f: f[3])]


class Tables(HTMLParser):
    """Each <table> of the HTML: the title of the section it is in (the last of `headings` before it),
    and its rows' first cells (a cell with a formula left out: its text is not what the PDF shows)."""

    def __init__(self, html: str, headings: list[str]):
        super().__init__(convert_charrefs=True)
        self.headings = set(headings)
        self.tables: list[tuple[str, list[str]]] = []
        self._heading: list[str] | None = None
        self._section = ""
        self._cell: list[str] | None = None
        self._number = self._math = self._row_cells = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = []
        elif tag == "span" and "header-section-number" in (attrs.get("class") or ""):
            self._number = 1
        elif tag == "table":
            self.tables.append((self._section, []))
        elif tag == "tr":
            self._row_cells = 0
        elif tag in ("td", "th") and self.tables:
            self._row_cells += 1
            self._cell = [] if self._row_cells == 1 and tag == "td" else None
        elif tag == "math":
            self._math += 1

    def handle_endtag(self, tag):
        if re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            title, self._heading = plain("".join(self._heading)), None
            self._section = title if title in self.headings else self._section
        elif tag == "span":
            self._number = 0
        elif tag == "math":
            self._math -= 1
            if self._cell is not None:
                self._cell = None  # a formula in the cell
        elif tag == "td" and self._cell is not None:
            text = plain("".join(self._cell))
            if text:
                self.tables[-1][1].append(text)
            self._cell = None

    def handle_data(self, data):
        if self._heading is not None and not self._number:
            self._heading.append(data)
        if self._cell is not None and not self._math:
            self._cell.append(data)


def begins_row(line: str, cell: str) -> bool:
    """A PDF line is a table row's first cell `cell`: the whole cell, its first line (a wrapped cell),
    or the cell and a word or two more (pdftotext joins a short next cell when the columns are close)."""
    return (line == cell or len(line) >= 8 and cell.startswith(line)
            or line.startswith(cell + " ") and len(line.split()) <= len(cell.split()) + 2)


def test_pdf_no_table_is_split_by_a_figure_or_a_heading(pdf, rendered):
    """Each table's rows (found by their first cells, after the table's section heading) follow one
    another with no caption of another figure or table, and no heading, among them."""
    tables = [(section, rows) for section, rows in Tables(rendered["html"].read_text(), HEADINGS).tables if len(rows) >= 2]
    assert len(tables) >= 3
    headings = dict((title, at) for title, at in pdf.headings)
    marks = sorted([(at, f"{kind} {n}") for (kind, n), at in pdf.captions.items()]
                   + [(at, f"heading '{title}'") for title, at in pdf.headings])
    for section, rows in tables:
        assert section in headings, f"a table's section '{section}' is not in the PDF's outline"
        places, start = [], headings[section]
        for row in rows:
            text = " ".join(row.split())
            found = next((line for line in pdf.lines if line.at > start and begins_row(line.text, text)), None)
            assert found, f"row '{row}' of a table in '{section}' is not in the PDF after its heading"
            places.append(found.at)
            start = found.at
        between = [what for at, what in marks if places[0] < at < places[-1]]
        assert not between, f"the table in '{section}' starting '{rows[0]}' is split by {between}"


def test_pdf_nothing_runs_off_the_page(pdf):
    """Every line of text, table rows included, lies within the page's side margins (_quarto.yml; 3 pt
    of leeway for a glyph's overhang)."""
    margin = yaml.safe_load((PROJECT_ROOT / "_quarto.yml").read_text())["format"]["typst"]["margin"]["x"]
    value, unit = re.fullmatch(r"([\d.]+)\s*(cm|mm|in|pt)", margin).groups()
    points = float(value) * {"cm": 72 / 2.54, "mm": 72 / 25.4, "in": 72, "pt": 1}[unit]
    outside = [(line.at.page + 1, round(line.x0), round(line.x1), line.text[:60]) for line in pdf.lines
               if line.x0 < points - 3 or line.x1 > pdf.pages[line.at.page][0] - points + 3]
    assert not outside, outside


def test_pdf_pages_drawn_for_a_person_to_look_at_are_not_blank(rendered, screenshots):
    if not shutil.which("pdftoppm"):
        need("pdftoppm", "install poppler's utilities (apt-get install poppler-utils; .ci/run does)")
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(rendered["pdf"]), str(screenshots / "pdf")], check=True)
    pages = sorted(screenshots.glob("pdf-*.png"))
    assert len(pages) >= 5
    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"))
        assert (pixels < 128).mean() > 0.002, f"{page.name} is blank"


def test_html_is_small_enough_for_a_phone(rendered):
    size = rendered["html"].stat().st_size
    assert size <= HTML_BYTES, f"{rendered['html'].name} is {size / 1e6:.2f} MB, over {HTML_BYTES / 1e6:.1f} MB"
