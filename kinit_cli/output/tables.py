"""Tables that fit the terminal: whole columns left out by priority, never numbers split.

rich shrinks every column of a table too wide for the console, which folds numbers across
lines (`0.00918` / `9`) and squeezes columns to nothing. Here each column is measured first;
text columns (paths, initializers) give way first (shortened in the middle or wrapped at
spaces), then the least important columns are left out, and the table says which. Where
even the columns that always stay do not fit, each row is printed as a block of
`Column: value` lines instead (records()), so nothing promised is dropped or cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

# Per column: one border character and one space of padding on each side.
_EDGE = 3
_SHORT_TEXT = 20  # a path is shortened to this before core columns are left out
_SHORTEST_TEXT = 12  # and to this at the very least
CORE = 80  # columns of this priority or more go only after paths have been shortened
_WRAPPED_TEXT = 36  # a wrapping column (an initializer's arguments) starts this wide


@dataclass(frozen=True)
class Column:
    name: str
    priority: int  # higher stays longer; 100 and more: never left out
    justify: str = "right"
    wrap: bool = False  # text that may wrap at spaces
    shorten: bool = False  # a path, shortened segment by segment to fit (shortened())


def fitted(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[dict[str, str]],
    width: int | None,
) -> tuple[Table, list[str]]:
    """A Table of the columns that fit in `width` (all of them when None), and the names of
    those left out, least important first. The table's `width` is set to what it needs."""
    need = {
        c.name: max([cell_len(c.name)] + [_longest_line(r.get(c.name, "")) for r in rows])
        for c in columns
    }
    widths = {c.name: min(need[c.name], _WRAPPED_TEXT) if c.wrap else need[c.name] for c in columns}
    kept = list(columns)

    def total() -> int:
        return sum(widths[c.name] + _EDGE for c in kept) + 1

    left_out: list[str] = []
    if width is not None:
        for c in kept:  # text gives way first
            if c.wrap:
                widths[c.name] = max(
                    [cell_len(c.name)] + [_longest_word(r.get(c.name, "")) for r in rows]
                )
        by_importance = sorted(
            (c for c in kept if c.priority < 100), key=lambda c: (c.priority, -columns.index(c))
        )

        def drop(below: int) -> None:
            for c in by_importance:
                if total() <= width:
                    return
                if c.priority < below and c in kept:
                    kept.remove(c)
                    left_out.append(c.name)

        def shorten(floor: int) -> None:
            for c in kept:
                if c.shorten and total() > width:
                    # Never so short that two rows read the same (blocks.0 / blocks.1).
                    texts = [r.get(c.name, "") for r in rows]
                    least = _distinct_width(texts, min(floor, need[c.name]))
                    widths[c.name] = max(least, widths[c.name] - total() + width)

        # Secondary columns go before a path is shortened; core ones only after.
        drop(below=CORE)
        shorten(_SHORT_TEXT)
        drop(below=100)
        shorten(_SHORTEST_TEXT)
        # A wide column left out late can free room for narrower ones left out before it.
        for c in sorted((c for c in columns if c.name in left_out), key=lambda c: -c.priority):
            if total() + widths[c.name] + _EDGE <= width:
                kept.append(c)
                left_out.remove(c.name)
        kept.sort(key=lambda c: columns.index(c))
        # Room back to text that gave way: first every wrapped column up to its usual
        # width, most important first, then beyond.
        for cap in (_WRAPPED_TEXT, None):
            for c in sorted(kept, key=lambda c: -c.priority):
                if (c.wrap or c.shorten) and total() < width:
                    most = need[c.name] if cap is None or c.shorten else min(cap, need[c.name])
                    widths[c.name] = max(
                        widths[c.name], min(most, widths[c.name] + width - total())
                    )
    table = Table(title=title, title_justify="left", width=total())
    for c in kept:
        table.add_column(
            c.name,
            justify=c.justify,  # type: ignore[arg-type]
            width=widths[c.name],
            no_wrap=not c.wrap,
            overflow="fold" if c.wrap else "ellipsis",
        )
    for row in rows:
        cells = []
        for c in kept:
            text = row.get(c.name, "")
            if c.shorten and cell_len(text) > widths[c.name]:
                text = shortened(text, widths[c.name])
            cells.append(text)
        table.add_row(*cells)
    return table, left_out


def left_out_note(names: Sequence[str], width: int | None) -> str:
    """One line naming the columns a narrow terminal left out, and how to see them."""
    return (
        f"({len(names)} column{'s' if len(names) > 1 else ''} left out at {width} columns: "
        f"{', '.join(names)}; --wide shows every column)"
    )


def shortened(text: str, width: int) -> str:
    """A variable path shortened to `width` segment by segment, the longest first, each in
    its middle (`residual_tower_blocks.0` -> `resid…ks.0`): the ends of the segments, where
    the numbers that tell rows apart are, stay; plain middle() when that is not enough."""
    if cell_len(text) <= width:
        return text
    parts = text.split("/")
    while cell_len("/".join(parts)) > width:
        i = max(range(len(parts)), key=lambda k: cell_len(parts[k]))
        if cell_len(parts[i]) <= 5:
            return middle("/".join(parts), width)
        excess = cell_len("/".join(parts)) - width
        parts[i] = middle(parts[i], max(5, cell_len(parts[i]) - excess))
    return "/".join(parts)


def middle(text: str, width: int) -> str:
    """`text` shortened to `width` characters by an ellipsis in the middle."""
    if cell_len(text) <= width:
        return text
    if width < 3:
        return text[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return f"{text[:head]}…{text[len(text) - tail :]}"


def _distinct_width(texts: Sequence[str], start: int) -> int:
    """The least width from `start` at which shortening keeps distinct texts distinct."""
    wanted = len(set(texts))
    longest = max((cell_len(t) for t in texts), default=0)
    width = start
    while width < longest and len({shortened(t, width) for t in texts}) < wanted:
        width += 1
    return width


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def number(x: float | None, digits: int = 4) -> str:
    """A table cell for a number: 4 significant digits, n/a for none."""
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}"


def print_fitted(
    title: str, columns: list[Column], rows: list[dict[str, str]], out: Console, wide: bool
) -> list[str]:
    """A table at the console's width (columns left out by priority, and said so), or,
    with `wide`, every column however wide that makes it; one block per row (records())
    where the columns that always stay are wider than the console."""
    width = None if wide else out.width
    table, left_out = fitted(title, columns, rows, width)
    if width is not None and table.width is not None and table.width > width:
        records(title, columns, rows, out)
        return []
    if wide and table.width and table.width > out.width:
        saved, out.width = out.width, table.width  # rich never prints wider than its console
        try:
            out.print(table)
        finally:
            out.width = saved
    else:
        out.print(table)
    if left_out:
        out.print(left_out_note(left_out, width))
    return left_out


def records(
    title: str, columns: Sequence[Column], rows: Sequence[dict[str, str]], out: Console
) -> None:
    """Every row as its first cell, then one indented `Column: value` line per other cell
    (empty ones left off): a layout that holds every column at any width. A value that does
    not fit beside its name goes on the lines below it, wrapped at its spaces if it must,
    never inside a number."""
    if title:
        out.print(Text(title, style="italic"))
    first, *rest = columns
    for row in rows:
        out.print(Text(row.get(first.name, ""), style="bold"))
        for c in rest:
            value = row.get(c.name, "")
            if not value:
                continue
            if 2 + cell_len(c.name) + 2 + _longest_line(value) <= out.width:
                out.print(Padding(Text(f"{c.name}: {value}"), (0, 0, 0, 2), expand=False))
            else:
                out.print(Padding(Text(f"{c.name}:"), (0, 0, 0, 2), expand=False))
                out.print(Padding(Text(value), (0, 0, 0, 4), expand=False))
