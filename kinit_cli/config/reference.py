"""README's table of config keys, generated from the one description of the sections
(config/settings.py), so the reference cannot drift from what `validate` checks.

`python -m kinit_cli.config.reference` prints the table; `python -m kinit_cli.config.reference
README.md` rewrites it in place, between BEGIN and END.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from kinit_cli.config.fields import REQUIRED
from kinit_cli.config.settings import Section, Settings

BEGIN = "<!-- keys:begin -->"
END = "<!-- keys:end -->"
HEADER = "| key | type | default | meaning |\n|---|---|---|---|\n"


def markdown_table() -> str:
    """One row per top-level key, per section and per key of a section, in the schema's order."""
    return HEADER + "".join(_rows(Settings, ""))


def _rows(cls: type[Section], prefix: str) -> list[str]:
    out = []
    for f in fields(cls):
        meta, key = f.metadata, prefix + f.name
        if "section" in meta:
            default = "absent" if meta["optional"] else ""
            out.append(_row(key, "mapping", default, meta["doc"], meta["more"]))
            out += _rows(meta["section"], key + ".")
        else:
            rule = meta["field"]
            default = meta["shown"] or _shown(rule.default)
            out.append(_row(key, meta["kind"], default, rule.doc, meta["more"]))
    return out


def _row(key: str, kind: str, default: str, doc: str, more: str) -> str:
    meaning = f"{doc}; {more}" if more else doc
    cells = [f"`{key}`", kind, default, meaning]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |\n"


def _shown(default: Any) -> str:
    """A default as README writes it."""
    if default is REQUIRED:
        return "required"
    if default is None:
        return "none"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, str):
        return f"`{default}`"
    if isinstance(default, list | dict):
        return f"`{default!r}`"
    return str(default)


def with_table(text: str) -> str:
    """`text` (README's) with the table between BEGIN and END generated anew."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


def main(argv: list[str]) -> None:
    """Print the table, or rewrite it in the file given."""
    if not argv:
        sys.stdout.write(markdown_table())
        return
    path = Path(argv[0])
    path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
