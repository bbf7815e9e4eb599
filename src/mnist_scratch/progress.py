"""Progress bars: tqdm as plain text on stderr, and none inside a Jupyter kernel.

In a kernel (the report's execution under Quarto), tqdm's `auto` would draw a notebook widget,
which Quarto embeds together with scripts fetched from the web: the report would stop being one
self-contained file. There, work is silent instead.
"""

import sys

from tqdm import std


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (IPython's shell of ipykernel)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__module__.startswith("ipykernel")


class tqdm(std.tqdm):  # noqa: N801 (tqdm's own name, so `tqdm(...)` reads as usual)
    """`tqdm.std.tqdm` (text, honours $TQDM_DISABLE), switched off inside a Jupyter kernel."""

    def __init__(self, *args, **kwargs):
        if in_kernel():
            kwargs["disable"] = True
        super().__init__(*args, **kwargs)
