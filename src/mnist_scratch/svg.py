"""Matplotlib's SVG made compact for a self-contained page, without changing what it draws.

The report embeds every figure in one HTML file (as base64, a third larger again), so the bytes
of its SVG are the bytes a phone downloads. Matplotlib writes for readability: indentation,
coordinates to a millionth of a point, an id on every group, the same style attribute on every
grid line and marker, and images as RGBA PNGs. `compact` keeps the drawing and drops the rest:

- coordinates (path data, x, y, translate) to a hundredth of a point, invisible at any zoom a
  reader uses; scales and matrices (glyph sizes, image placement) are kept exactly;
- a style used more than once becomes a class in one <style> sheet;
- ids nothing refers to, empty groups, comments, metadata and whitespace between tags go, and
  the ids things refer to (glyphs, markers, clip paths) get short names;
- each embedded PNG is re-encoded losslessly in the smallest exact mode (grey, palette or RGB).
"""

import base64
import io
import re
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
from PIL import Image

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
HREF = f"{{{XLINK_NS}}}href"
NUMBER = re.compile(r"-?\d+\.\d{3,}")
ROUNDED = ("d", "x", "y", "width", "height")
REFERENCE = re.compile(r'(?:href="#|url\(#)([^")]+)')
ID = re.compile(r'(id="|href="#|url\(#)([^")]+)')


def _two_decimals(match: re.Match) -> str:
    text = f"{float(match.group(0)):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _round(text: str) -> str:
    return NUMBER.sub(_two_decimals, " ".join(text.split()))


def _round_translate(transform: str) -> str:
    return re.sub(r"translate\([^)]*\)", lambda m: _round(m.group(0)), transform)


def smallest_png(data: bytes) -> bytes:
    """The same pixels as a PNG in the smallest exact mode (grey; a palette of up to 256 colours,
    transparency included; RGB), or `data` itself when that is not smaller."""
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    pixels = np.asarray(image)
    opaque = bool((pixels[..., 3] == 255).all())
    colours, index = np.unique(pixels.reshape(-1, 4), axis=0, return_inverse=True)
    if opaque and (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all():
        image = Image.fromarray(pixels[..., 0], "L")
    elif len(colours) <= 256:
        image = Image.fromarray(index.reshape(pixels.shape[:2]).astype(np.uint8), "P")
        image.putpalette(colours[:, :3 if opaque else 4].tobytes(), rawmode="RGB" if opaque else "RGBA")
    elif opaque:
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue() if out.tell() < len(data) else data


def compact(svg: str) -> str:
    """`svg` (as matplotlib writes it) drawn the same in fewer bytes (see the module's docstring)."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    short = {name: f"i{i:x}" for i, name in enumerate(dict.fromkeys(REFERENCE.findall(svg)))}
    svg = ID.sub(lambda m: m.group(1) + short.get(m.group(2), m.group(2)), svg)  # short names for what is referred to
    root = ET.fromstring(svg)
    kept = set(short.values())
    styles = Counter(el.get("style") for el in root.iter() if el.get("style"))
    classes = {style: f"s{i}" for i, (style, n) in enumerate(styles.most_common()) if n > 1}

    def tidy(parent: ET.Element) -> None:
        children = []
        for el in parent:
            tidy(el)
            el.text = el.text if el.text and el.text.strip() else None  # whitespace between tags
            el.tail = el.tail if el.tail and el.tail.strip() else None
            if el.tag == f"{{{SVG_NS}}}metadata":
                continue
            if el.get("id") and el.get("id") not in kept:
                del el.attrib["id"]
            for name in ROUNDED:
                if name in el.attrib:
                    el.set(name, _round(el.get(name)))
            if "transform" in el.attrib:
                el.set("transform", _round_translate(el.get("transform")))
                shift = re.fullmatch(r"translate\((\S+) 0\)", el.get("transform"))
                if el.tag == f"{{{SVG_NS}}}use" and shift and "x" not in el.attrib:  # a glyph's advance
                    del el.attrib["transform"]
                    el.set("x", shift.group(1))
            if el.get("style") in classes:
                el.set("class", classes[el.attrib.pop("style")])
            href = el.get(HREF, "")
            if el.tag == f"{{{SVG_NS}}}image" and href.startswith("data:image/png;base64,"):
                png = smallest_png(base64.b64decode(href.split(",", 1)[1]))
                el.set(HREF, "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
            if el.tag == f"{{{SVG_NS}}}g" and not el.attrib:
                children.extend(el)  # a group that says nothing: its children take its place
            elif el.tag != f"{{{SVG_NS}}}g" or len(el) or el.get("id"):  # an empty group draws nothing
                children.append(el)
        parent[:] = children

    tidy(root)
    if classes:
        sheet = ET.Element(f"{{{SVG_NS}}}style", {"type": "text/css"})
        sheet.text = "".join(f".{name}{{{style}}}" for style, name in classes.items())
        root.insert(0, sheet)
    return ET.tostring(root, encoding="unicode")
