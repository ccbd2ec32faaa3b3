"""Strict JSON for every document kinit writes: NaN and infinities become null.

Python's `json` writes bare `NaN` and `Infinity` by default, which JSON forbids: `jq`,
JavaScript's `JSON.parse` and most other readers reject the whole document. kinit writes
`null` in their place (JavaScript's own `JSON.stringify` rule): a reader sees "no finite
value" without a special case, and what was not finite is said beside it where it matters
(a weight's `nonfinite` count, a run's `status: diverged`).
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(data: Any) -> Any:
    """`data` with every non-finite float replaced by None, NumPy scalars and arrays made
    plain Python, tuples made lists; everything else as it is."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    tolist = getattr(data, "tolist", None)  # NumPy scalars and arrays, without importing NumPy
    if callable(tolist) and type(data).__module__ == "numpy":
        return finite(tolist())
    return data


def dumps(data: Any, **options: Any) -> str:
    """json.dumps of finite(data); allow_nan=False, so a value that slips past finite()
    raises instead of writing a document readers reject."""
    return json.dumps(finite(data), allow_nan=False, **options)
