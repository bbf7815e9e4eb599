"""The memory this process may use: the least of the machine's RAM, the address space its limit
(`ulimit -v`, RLIMIT_AS) leaves free, and its control group's limit (cgroup v2 `memory.max`, v1
`memory.limit_in_bytes`). A run too large for it is refused before any work starts."""

import os
from functools import cache
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")  # where the control groups are mounted
OWN_CGROUP = Path("/proc/self/cgroup")  # which of them this process belongs to
UNLIMITED = 2**62  # cgroup v1 says "no limit" with a number near 2**63


def gb(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:,.1f} GB" if n_bytes < 1e15 else f"{n_bytes / 1e9:.1e} GB"


def physical_memory() -> int | None:
    """Bytes of RAM in this machine (None where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def address_space_left() -> tuple[int, int] | None:
    """(bytes of address space this process may still map, its limit) under RLIMIT_AS, or None
    without a limit. The process already maps its libraries (torch alone: about a GB)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        return None
    if limit == resource.RLIM_INFINITY or limit < 0:
        return None
    try:
        status = Path("/proc/self/status").read_text()
        used = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError, IndexError):
        used = 0
    return max(limit - used, 0), limit


def _number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) < UNLIMITED else None


@cache
def cgroup_limit() -> int | None:
    """The memory limit of this process's control group (the least along its path), or None."""
    try:
        lines = OWN_CGROUP.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, where = line.split(":", 2)
        if controllers == "":  # cgroup v2: the unified hierarchy
            base, name = CGROUP, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = CGROUP / "memory", "memory.limit_in_bytes"
        else:
            continue
        folder = base / where.lstrip("/")
        while True:  # every level of the path limits, and so does the mount's root (in a container)
            limits.append(_number(folder / name))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
        limits.append(_number(base / name))
    found = [n for n in limits if n is not None]
    return min(found) if found else None


def usable_memory() -> tuple[int, str] | None:
    """The bytes this process may use for a run, and what sets that bound, in words; None if unknown."""
    bounds = []
    ram = physical_memory()
    if ram is not None:
        bounds.append((ram, f"this machine's {gb(ram)}"))
    group = cgroup_limit()
    if group is not None:
        bounds.append((group, f"the {gb(group)} its control group may use (cgroup memory limit)"))
    space = address_space_left()
    if space is not None:
        left, limit = space
        bounds.append((left, f"the {gb(left)} of address space left to this process "
                             f"(ulimit -v {limit // 1024}, of which it maps {gb(limit - left)} already)"))
    return min(bounds) if bounds else None
