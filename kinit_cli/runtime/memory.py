"""The memory this process can still take, and the one switch that lets a user try anyway.

Every check of a declared size against memory (a config's model, a `.keras` file's layers
and datasets, a data file's arrays) asks `refusal()`: it answers from the same figures and
is silenced by the same flag (--ignore-memory-check, held in runtime.switches: `ignored()`).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from rich import filesize

from kinit_cli.runtime import switches

FLAG = "--ignore-memory-check"


def ignored() -> bool:
    """Whether the command running was given --ignore-memory-check: the memory checks then
    estimate nothing and refuse nothing."""
    return switches.current().ignore_memory_check


def available_bytes() -> int | None:
    """Memory this process can still take: the kernel's MemAvailable, or what is left under
    a cgroup (container) limit or this process's address-space limit (ulimit -v) when that
    is less; the physical memory where there is no /proc (macOS); None when nothing tells."""
    found = [*_meminfo(), *_cgroup(), *_address_space()]
    if not found:
        try:
            found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    return min(found) if found else None


def _meminfo() -> list[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return [int(line.split()[1]) * 1024]
    except (OSError, ValueError, IndexError):
        pass
    return []


def _cgroup() -> list[int]:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            return [max(0, int(limit) - used)]
    except (OSError, ValueError):
        pass
    return []


def _address_space() -> list[int]:
    """RLIMIT_AS less what is mapped already (VmSize): past it an allocation fails."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return []
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return [max(0, soft - int(line.split()[1]) * 1024)]
    except (OSError, ValueError, IndexError):
        pass
    return [soft]


def refusal(needed: int, available: int | None = None) -> int | None:
    """The bytes available when `needed` bytes do not fit in them, else None (fits, memory
    unknown, or the user passed --ignore-memory-check)."""
    if ignored():
        return None
    if available is None:
        available = available_bytes()
    if available is None or needed <= available:
        return None
    return available


def size_text(n: int) -> str:
    """Bytes in decimal units, one decimal (120.0 GB, 512.0 MB, 999 bytes): every size kinit
    reports, memory and disk alike, is written by this one function."""
    return filesize.decimal(n)
