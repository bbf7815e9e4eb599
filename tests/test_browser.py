"""The rendered HTML in a real browser (Debian's Chromium driven by Playwright), offline.

The page is opened from the file system with every network request blocked, and used as a
reader would: the table of contents, a folded code cell, the lightbox, the formulas. What to
expect is read from report.qmd, as in test_render.py.
"""

import re

import numpy as np
import pytest
from PIL import Image

from mnist_scratch.store import PROJECT_ROOT

SOURCE = (PROJECT_ROOT / "report.qmd").read_text()
FIGURES = re.findall(r"^#\|\s*label:\s*(fig-[\w-]+)", SOURCE, re.MULTILINE)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def reader(browser, rendered):
    """The report open in a page, plus what it logged and every network request it tried."""
    # reduced motion: Bootstrap then scrolls at once instead of smoothly, so positions are final
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    requests, console = [], []

    def offline(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            requests.append(url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    page.on("console", lambda m: console.append((m.type, m.text)))
    page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
    page.goto(rendered["html"].as_uri(), wait_until="load")
    page.wait_for_timeout(500)  # scripts run on load (lightbox set-up, scrollspy)
    yield {"page": page, "requests": requests, "console": console}
    context.close()


def test_no_console_error_and_no_network_request(reader):
    errors = [(kind, text) for kind, text in reader["console"] if kind in ("error", "pageerror")]
    assert not errors, errors
    assert not reader["requests"], reader["requests"]


def test_every_image_is_loaded_with_a_size(reader):
    page = reader["page"]
    images = page.evaluate(
        "[...document.images].map(i => ({src: i.src.slice(0, 40), done: i.complete, w: i.naturalWidth, h: i.naturalHeight}))")
    assert len(images) >= len(FIGURES)
    for image in images:
        assert image["done"] and image["w"] > 0 and image["h"] > 0, image
    for label in FIGURES:
        size = page.evaluate("id => { const i = document.getElementById(id).querySelector('img');"
                             " return [i.naturalWidth, i.getBoundingClientRect().width]; }", label)
        assert size and size[0] > 100 and size[1] > 100, (label, size)


def test_table_of_contents_links_scroll_to_their_sections(reader):
    page = reader["page"]
    links = page.evaluate("[...document.querySelectorAll('#TOC a.nav-link')].map(a => a.getAttribute('href'))")
    assert len(links) >= 5 and all(link.startswith("#") for link in links), links
    for href in links:
        page.evaluate("window.scrollTo(0, 0)")
        link = page.locator(f'#TOC a.nav-link[href="{href}"]')
        if link.is_visible():
            link.click()
        else:  # a subsection's entry is folded until its section is in view: click it as a script would
            link.evaluate("a => a.click()")
        page.wait_for_timeout(50)
        where = page.evaluate("""id => {
            const top = document.getElementById(id).getBoundingClientRect().top;
            const bottom = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2;
            return {top, bottom, height: window.innerHeight, hash: location.hash};
        }""", href[1:])
        assert where["hash"] == href, (href, where)
        # the section starts at the top of the window, unless the page cannot scroll further
        assert -2 <= where["top"] <= 120 or (where["bottom"] and 0 <= where["top"] < where["height"]), (href, where)


def test_the_code_is_shown_open_and_only_echoed_cells_fold(reader):
    """The from-scratch listings are visible without a click; a cell folds its code only when
    report.qmd echoes it without unfolding it (plumbing cells are hidden; View source shows the .qmd)."""
    page = reader["page"]
    chunks = re.findall(r"```\{python\}\n(.*?)```", SOURCE, re.DOTALL)
    folded = [c for c in chunks if not re.search(r"#\|\s*(echo|include):\s*false|#\|\s*code-fold:\s*false", c)]
    assert page.locator("details.code-fold").count() == len(folded)
    listing = page.locator("#quarto-document-content div.sourceCode:not(.cell-code) pre").first
    listing.scroll_into_view_if_needed()
    assert listing.is_visible() and "def " in listing.inner_text()
    assert listing.bounding_box()["height"] > 10


def test_clicking_a_figure_opens_the_lightbox_with_its_image(reader):
    page = reader["page"]
    figure = page.locator(f"#{FIGURES[0]} img")
    figure.scroll_into_view_if_needed()
    figure.click()
    try:
        shown = page.locator(".glightbox-container .gslide.current img")
        shown.wait_for(state="visible", timeout=10_000)
        page.wait_for_function("() => { const i = document.querySelector('.glightbox-container .gslide.current img');"
                               " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
        assert shown.get_attribute("src") == figure.get_attribute("src")  # the embedded image itself
        box, natural = shown.bounding_box(), shown.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        assert box["width"] > 200 and abs(box["width"] / box["height"] - natural[0] / natural[1]) < 0.05, (box, natural)
    finally:
        page.keyboard.press("Escape")
    page.locator(".glightbox-container").wait_for(state="detached", timeout=10_000)


def test_formulas_are_laid_out_as_mathml(reader):
    page = reader["page"]
    sizes = page.evaluate("""[...document.querySelectorAll('math')].map(m => {
        const r = m.getBoundingClientRect();
        return {text: m.textContent.slice(0, 40), w: r.width, h: r.height};
    })""")
    assert sizes
    for size in sizes:
        assert size["w"] > 3 and size["h"] > 5, size
    # MathML layout stacks a fraction's numerator above its denominator (as plain text they would
    # sit side by side on one line)
    fractions = page.evaluate("""[...document.querySelectorAll('math mfrac')].map(f => {
        const [num, den] = [...f.children].map(c => c.getBoundingClientRect());
        return {text: f.textContent, num_bottom: num.bottom, den_top: den.top, overlap: num.right > den.left};
    })""")
    assert fractions
    for fraction in fractions:
        assert fraction["num_bottom"] <= fraction["den_top"] + 1 and fraction["overlap"], fraction


def test_full_page_screenshot_is_not_blank(reader, tmp_path):
    page = reader["page"]
    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape[0] > 5 * 900  # the whole page, not the window
    dark = (pixels < 128).mean()  # text, figures and rules on a white page
    assert 0.005 < dark < 0.5 and pixels.std() > 20, (dark, pixels.std())
