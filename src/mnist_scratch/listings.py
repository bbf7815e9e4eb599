"""The library's own code as the report shows it: read from `src/` when the report renders, so what
the reader sees is what ran, never a copy that could drift."""

import inspect
import textwrap


def source(obj) -> str:
    """The source of a function, method or class as it stands in its module, dedented."""
    return textwrap.dedent(inspect.getsource(obj)).rstrip("\n")


def excerpt(obj, first: str, last: str) -> str:
    """The lines of `obj`'s source from the first one containing `first` through the next one
    containing `last`, dedented. Raises ValueError when either is missing: the report then fails
    to render rather than show something else."""
    lines = inspect.getsource(obj).splitlines()
    start = next((i for i, line in enumerate(lines) if first in line), None)
    if start is None:
        raise ValueError(f"no line of {obj.__qualname__} contains {first!r}")
    end = next((i for i in range(start, len(lines)) if last in lines[i]), None)
    if end is None:
        raise ValueError(f"no line of {obj.__qualname__} after {first!r} contains {last!r}")
    return textwrap.dedent("\n".join(lines[start : end + 1]))


def where(obj) -> str:
    """`file.py, lines a-b` of `obj` in the package."""
    lines, start = inspect.getsourcelines(obj)
    return f"{inspect.getsourcefile(obj).rsplit('/', 1)[-1]}, lines {start}–{start + len(lines) - 1}"


def listing(*parts: str) -> str:
    """Markdown for one Python code block holding `parts`, a blank line between them."""
    return "```python\n" + "\n\n".join(parts) + "\n```\n"
