"""The rendered HTML in a real browser (Debian's Chromium driven by Playwright), offline.

The page is opened from the file system with every network request blocked, and used as a
reader would: on a desktop (1280 px) the table of contents, a folded code cell, the lightbox, the
formulas; on a phone (390 px, touch) the width of the page, the contents button, the figures' text
size, the lightbox's pinch-zoom. What to expect is read from report.qmd, as in test_render.py, and
from the page itself (every figure, every table). Screenshots go to _site/screenshots/.
"""

import base64
import re
import urllib.parse
import xml.etree.ElementTree as ET

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


DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
LEGIBLE_PX = 8  # the smallest text a figure may show on a phone, in CSS px


def open_report(browser, html, device: dict):
    """The report open in a new page on `device`, plus what it logged and every network request it tried."""
    # reduced motion: Bootstrap then scrolls at once instead of smoothly, so positions are final
    context = browser.new_context(**device, reduced_motion="reduce")
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
    page.goto(html.as_uri(), wait_until="load")
    page.wait_for_timeout(500)  # scripts run on load (lightbox set-up, scrollspy)
    return {"page": page, "context": context, "requests": requests, "console": console}


@pytest.fixture(scope="module")
def reader(browser, rendered):
    """The report open on a desktop."""
    opened = open_report(browser, rendered["html"], DESKTOP)
    yield opened
    opened["context"].close()


@pytest.fixture(scope="module")
def phone(browser, rendered):
    """The report open on a 390 px touch screen."""
    opened = open_report(browser, rendered["html"], PHONE)
    yield opened
    opened["context"].close()


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


# the lightbox's opening animation (it zooms in from a third of the size) is over
OPENED = "() => document.querySelector('.glightbox-container').getAnimations({subtree: true}).every(a => a.playState === 'finished')"


def lightbox_image(page):
    """The lightbox's image, once it is shown, loaded and done opening."""
    shown = page.locator(".glightbox-container .gslide.current img")
    shown.wait_for(state="visible", timeout=10_000)
    page.wait_for_function("() => { const i = document.querySelector('.glightbox-container .gslide.current img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    page.wait_for_function(OPENED, timeout=10_000)
    return shown


def test_clicking_a_figure_opens_the_lightbox_with_its_image(reader):
    page = reader["page"]
    figure = page.locator(f"#{FIGURES[0]} img")
    figure.scroll_into_view_if_needed()
    figure.click()
    try:
        shown = lightbox_image(page)
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


def test_full_page_screenshot_is_not_blank(reader, screenshots):
    page = reader["page"]
    page.evaluate("window.scrollTo(0, 0)")
    shot = screenshots / "desktop-full.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape[0] > 5 * 900  # the whole page, not the window
    dark = (pixels < 128).mean()  # text, figures and rules on a white page
    assert 0.005 < dark < 0.5 and pixels.std() > 20, (dark, pixels.std())


# --- on a phone ---------------------------------------------------------------------------------

STICKING_OUT = """() => {
    // elements reaching past the window's right edge that no scrolling box of their own holds
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.right <= window.innerWidth + 1) continue;
        let held = false;
        for (let a = el.parentElement; a && !held; a = a.parentElement)
            held = ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX) && a !== document.body
                   && a !== document.documentElement;
        if (!held && getComputedStyle(el).position !== 'fixed')
            out.push(`${el.tagName}#${el.id}.${el.className} right=${Math.round(box.right)}: ${el.textContent.slice(0, 40)}`);
    }
    return out;
}"""


def test_phone_page_never_scrolls_sideways(phone, screenshots):
    """At 390 px the page is 390 px wide: a wide table or formula scrolls in its own box."""
    page = phone["page"]
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshots / "phone-top.png"))
    page.screenshot(path=str(screenshots / "phone-full.png"), full_page=True)
    width = page.evaluate("[window.innerWidth, document.documentElement.scrollWidth, document.body.scrollWidth]")
    assert width == [390, 390, 390], width  # a mobile browser widens its window to fit what sticks out
    assert not page.evaluate(STICKING_OUT)
    tables = page.evaluate("""[...document.querySelectorAll('main table')].map(t => {
        const box = t.getBoundingClientRect();
        return {left: box.left, right: box.right, scrolls: t.scrollWidth > t.clientWidth + 1,
                overflow: getComputedStyle(t).overflowX};
    })""")
    assert tables and any(t["scrolls"] for t in tables)  # the wide ones: this report has some
    for table in tables:
        assert 0 <= table["left"] and table["right"] <= 390 and (not table["scrolls"] or table["overflow"] == "auto"), table


def test_phone_numbers_with_their_spread_stay_on_one_line(phone):
    """A table cell like "90.74 ± 0.05" or "91.2 [90.5, 92.0]" is one line on a phone (they used to take
    two or three)."""
    lines = phone["page"].evaluate("""[...document.querySelectorAll('main td')].filter(td => /\\d\\s*(±|\\[)/.test(td.textContent))
        .map(td => { const range = document.createRange(); range.selectNodeContents(td);
                     return [td.textContent, new Set([...range.getClientRects()].map(r => Math.round(r.top))).size]; })""")
    assert len(lines) >= 10
    assert all(n == 1 for _, n in lines), [text for text, n in lines if n != 1]


def test_phone_table_of_contents_and_pdf_link_are_one_tap_away(phone, screenshots):
    """Anywhere on the page, a button opens the contents (with the PDF link); a tap on an entry
    goes to its section and closes them."""
    page = phone["page"]
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight / 2)")
    page.wait_for_timeout(100)
    button = page.locator("#toc-toggle")
    assert button.count() == 1, "no contents button"
    box = button.bounding_box()
    assert button.is_visible() and box["height"] >= 40 and 0 <= box["y"] and box["y"] + box["height"] <= 844, box
    contents = page.locator("nav#TOC")
    assert not contents.is_visible()
    button.tap()
    contents.wait_for(state="visible", timeout=5_000)
    pdf = page.locator('nav#TOC a[href$=".pdf"]')
    link_box = pdf.bounding_box()
    assert pdf.is_visible() and 0 <= link_box["y"] and link_box["y"] + link_box["height"] <= 844, link_box
    page.screenshot(path=str(screenshots / "phone-contents.png"))
    entries = page.locator("nav#TOC > ul > li > a.nav-link")
    assert entries.count() >= 5
    last = entries.nth(entries.count() - 1)
    href = last.get_attribute("href")
    last.scroll_into_view_if_needed()
    last.tap()
    page.wait_for_timeout(300)
    assert not contents.is_visible()
    where = page.evaluate("""id => [document.getElementById(id).getBoundingClientRect().top, window.innerHeight,
        window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2]""", href[1:])
    assert -2 <= where[0] <= 120 or (where[2] and 0 <= where[0] < where[1]), (href, where)


def glyph_sizes(svg: str) -> tuple[list[float], float]:
    """Each character's font size in a matplotlib SVG, in the SVG's own units, and its width in them.

    Matplotlib draws text as glyph outlines (a <path> defined once per glyph in font units, scaled
    by 1/64) placed with <use> inside groups scaled by font size / 100; as <text>, it states a
    font size. Multiplying the scales from the root down gives each character's size."""
    svg_ns, href = "{http://www.w3.org/2000/svg}", "{http://www.w3.org/1999/xlink}href"
    root = ET.fromstring(svg)
    glyphs = {p.get("id") for p in root.iter(f"{svg_ns}path") if p.get("transform", "").replace(" ", "") == "scale(0.015625)"}
    sizes = []

    def scale_of(transform: str | None) -> float:
        scale = 1.0
        for op, args in re.findall(r"(\w+)\s*\(([^)]*)\)", transform or ""):
            values = [float(v) for v in re.split(r"[\s,]+", args.strip())]
            if op == "scale":
                scale *= abs(values[0] * (values[1] if len(values) > 1 else values[0])) ** 0.5
            elif op == "matrix":
                scale *= abs(values[0] * values[3] - values[1] * values[2]) ** 0.5
        return scale

    def walk(element, scale):
        scale *= scale_of(element.get("transform"))
        if element.tag == f"{svg_ns}use" and element.get(href, "").lstrip("#") in glyphs:
            sizes.append(100 * scale)
        elif element.tag == f"{svg_ns}text":
            size = re.search(r"font(?:-size)?:[^;]*?([\d.]+)px", element.get("style", ""))
            sizes.append(float(size.group(1)) * scale)
        for child in element:
            walk(child, scale)

    walk(root, 1.0)
    return sizes, float(root.get("viewBox").split()[2])


def smallest_text(page) -> dict[str, float]:
    """Each figure's smallest text in CSS px as the page shows it: the SVG's smallest glyph size
    times the width the image is drawn at over the SVG's own width."""
    figures = page.evaluate("""[...document.querySelectorAll('[id^="fig-"] img')].map(i =>
        [i.closest('[id^="fig-"]').id, i.getAttribute('src'), i.getBoundingClientRect().width])""")
    out = {}
    for label, src, width in figures:
        head, _, body = src.partition(",")
        assert head.startswith("data:image/svg+xml"), f"{label} is not an SVG, so its text cannot be measured"
        svg = base64.b64decode(body).decode() if head.endswith(";base64") else urllib.parse.unquote(body)
        sizes, svg_width = glyph_sizes(svg)
        assert sizes, f"{label} has no text"
        out[label] = min(sizes) * width / svg_width
    return out


def test_every_figure_is_legible_on_a_phone_and_larger_on_a_desktop(phone, reader):
    on_phone, on_desktop = smallest_text(phone["page"]), smallest_text(reader["page"])
    assert sorted(on_phone) == sorted(on_desktop) and set(FIGURES) <= set(on_phone), (sorted(on_phone), FIGURES)
    small = {label: round(px, 2) for label, px in on_phone.items() if px < LEGIBLE_PX}
    assert not small, f"figure text under {LEGIBLE_PX} px on a 390 px phone: {small}"
    smaller = {label: round(on_desktop[label], 2) for label in on_phone if on_desktop[label] <= on_phone[label]}
    assert not smaller, f"figure text no larger on a desktop than on a phone: {smaller}"


def test_phone_lightbox_shows_a_figure_screen_wide_and_pinch_zooms_it(phone, screenshots):
    """Tapped, a figure opens at its natural size or the screen's width, whichever is smaller; two
    fingers spread over it zoom in."""
    page = phone["page"]
    figure = page.locator(f"#{FIGURES[0]} img")
    figure.scroll_into_view_if_needed()
    figure.tap()
    try:
        shown = lightbox_image(page)
        natural = shown.evaluate("i => i.naturalWidth")
        before = shown.bounding_box()
        assert before["width"] >= min(natural, 390) - 1, (before, natural)
        page.screenshot(path=str(screenshots / "phone-lightbox.png"))
        cdp = phone["context"].new_cdp_session(page)
        cdp.send("Input.synthesizePinchGesture", {"x": before["x"] + before["width"] / 2, "y": before["y"] + before["height"] / 2,
                                                  "scaleFactor": 2.5, "gestureSourceType": "touch"})
        page.wait_for_timeout(500)
        zoom = page.evaluate("window.visualViewport.scale") * shown.bounding_box()["width"] / before["width"]
        assert zoom >= 1.8, zoom
        page.screenshot(path=str(screenshots / "phone-lightbox-zoomed.png"))
    finally:
        page.keyboard.press("Escape")
    page.locator(".glightbox-container").wait_for(state="detached", timeout=10_000)
