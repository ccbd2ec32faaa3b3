"""The switches a command's flags set for everything it does: --ignore-memory-check and --debug.

They govern checks and noise deep below anything a command calls (every declared size a
file or a model is checked against memory, the one quiet import of Keras), as
`numpy.errstate` governs floating-point errors: the CLI makes one frozen `Switches` per
command and holds it for the command's duration (`using()`), and those places read
`current()`. Held per command, not set on the process: a flag given to one invocation does
not stick to the next one in the same process (CliRunner runs many).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Switches:
    """One command's switches; outside a command, the defaults (KINIT_DEBUG for debug)."""

    ignore_memory_check: bool = False  # the memory checks estimate nothing, refuse nothing
    debug: bool = False  # TensorFlow's native logs and Keras's build warnings shown


_held: ContextVar[Switches | None] = ContextVar("kinit_switches", default=None)


def current() -> Switches:
    """The switches of the command running, else the defaults."""
    held = _held.get()
    return held if held is not None else Switches(debug=bool(os.environ.get("KINIT_DEBUG")))


@contextmanager
def using(switches: Switches) -> Iterator[Switches]:
    """Hold `switches` for the duration (a command's, or a test's)."""
    token = _held.set(switches)
    try:
        yield switches
    finally:
        _held.reset(token)
