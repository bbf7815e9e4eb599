"""Figures drawn for the column (figures.for_the_column) and their SVG made compact (svg.compact)
without changing what it draws: same glyph sizes, same pixels in every embedded image."""

import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Text
from PIL import Image

from mnist_scratch import figures, svg

from .test_browser import glyph_sizes


def a_figure():
    """Text at several sizes (mathtext too), a log axis, markers, a grid, and two images: a grey one
    and a coloured one with a transparent pixel."""
    with plt.rc_context(figures.STYLE):
        fig, (ax, im) = plt.subplots(1, 2, figsize=(8, 3))
        ax.plot([0.001, 0.01, 0.1, 1], [3, 1, 0.5, 2], "o-", label="line")
        ax.set(xscale="log", title="a title", xlabel=r"$x^2$ label")
        ax.text(0.01, 1, "small", fontsize=6)
        ax.legend()
        grey = np.linspace(0, 1, 28 * 28).reshape(28, 28)
        im.imshow(grey, cmap="gray_r")
        colour = np.arange(16.0).reshape(4, 4)
        colour[0, 0] = np.nan
        im.imshow(colour, cmap="viridis", extent=(0, 10, 0, 10))
    return fig


def images(text: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA"))
            for data in re.findall(r"data:image/png;base64,\s*([A-Za-z0-9+/=\s]+)", text)]


def test_compact_svg_draws_the_same_text_and_pixels_in_fewer_bytes():
    fig = a_figure()
    raw = io.StringIO()
    fig.savefig(raw, format="svg")
    plt.close(fig)
    before = raw.getvalue()
    after = svg.compact(before)
    assert len(after) < 0.8 * len(before)
    sizes_before, width_before = glyph_sizes(before)
    sizes_after, width_after = glyph_sizes(after)
    assert sorted(sizes_after) == sorted(sizes_before) and len(sizes_before) > 20
    assert width_after == width_before
    old, new = images(before), images(after)
    assert len(old) == len(new) == 2
    for a, b in zip(old, new):
        assert np.array_equal(a, b)
    # every reference still points at something defined
    ids = set(re.findall(r' id="([^"]+)"', after))
    assert set(re.findall(r'(?:href="#|url\(#)([^")]+)', after)) <= ids


def test_smallest_png_keeps_the_pixels():
    rng = np.random.default_rng(0)
    cases = {
        "grey": np.repeat(rng.integers(0, 256, (9, 9, 1), dtype=np.uint8), 3, axis=2),
        "few colours": rng.choice(np.array([[255, 0, 0], [0, 0, 255], [9, 9, 9]], dtype=np.uint8), (9, 9)),
        "many colours": rng.integers(0, 256, (30, 30, 3), dtype=np.uint8),
    }
    for name, rgb in cases.items():
        rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
        rgba[0, 0, 3] = 0 if name == "few colours" else 255  # a transparent pixel kept as such
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, format="png")
        out = svg.smallest_png(buf.getvalue())
        assert len(out) <= len(buf.getvalue()), name
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(out)).convert("RGBA")), rgba), name


def test_a_figure_is_held_to_the_column():
    fig = a_figure()
    with plt.rc_context(figures.STYLE):
        figures.for_the_column(fig)
    width, _ = fig.get_size_inches()
    assert width == figures.COLUMN
    texts = [t for t in fig.findobj(Text) if t.get_text()]
    assert min(t.get_fontsize() for t in texts) >= figures.SMALLEST
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert labels and all("$" not in label and "10^" not in label for label in labels), labels
    assert {"0.001", "0.01", "0.1", "1"} <= set(labels)
    plt.close(fig)
