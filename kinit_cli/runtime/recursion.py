"""Room for Keras to recurse through a deep model.

Keras 3.15 maps a model's graph (`Function._build_map_helper`) with one Python frame per
layer of depth, so a chain of about 990 layers exceeds Python's default recursion limit of
1,000. Python 3.11 makes Python-to-Python calls without growing the C stack, so the limit
can rise with the model: a chain of 6,000 layers was built, serialized, saved and loaded at
a limit of 1,000,000 (measured on Keras 3.15.1). The limit rises only while a model is
built or read, and only as far as its size needs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Frames Keras needs per layer (measured: one), with room for the calls around it.
FRAMES_PER_LAYER = 3
MARGIN = 2_000


@contextmanager
def room_for(layers: int) -> Iterator[None]:
    """Python's recursion limit raised to what a model of `layers` layers needs, then put
    back as it was."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, MARGIN + FRAMES_PER_LAYER * layers))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def mappings_in(value: Any) -> int:
    """How many mappings `value` holds at any depth (counted without recursion): a bound on
    the layers a serialized model or a model spec describes."""
    count, stack = 0, [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            count += 1
            stack += node.values()
        elif isinstance(node, list | tuple):
            stack += node
    return count
