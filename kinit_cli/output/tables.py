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
from dataclasses import dataclass, field

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
    needs: str | None = None  # a column it means nothing without: it goes when that one goes


def fitted(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[dict[str, str]],
    width: int | None,
) -> tuple[Table, list[str]]:
    """A Table of the columns that fit in `width` (all of them when None), and the names of
    those left out, least important first. The table's `width` is set to what it needs."""
    layout = _Layout.measured(columns, rows)
    if width is not None:
        layout.fit(width)
    return layout.table(title), layout.left_out


@dataclass
class _Layout:
    """The columns a table keeps and their widths, while they are fitted to a width."""

    columns: Sequence[Column]
    rows: Sequence[dict[str, str]]
    need: dict[str, int]  # each column's widest cell, its name included
    widths: dict[str, int]
    kept: list[Column]
    left_out: list[str] = field(default_factory=list)

    @classmethod
    def measured(cls, columns: Sequence[Column], rows: Sequence[dict[str, str]]) -> _Layout:
        """Every column at the width its cells need; a wrapping one at most _WRAPPED_TEXT."""
        need = {
            c.name: max([cell_len(c.name)] + [_longest_line(r.get(c.name, "")) for r in rows])
            for c in columns
        }
        widths = {
            c.name: min(need[c.name], _WRAPPED_TEXT) if c.wrap else need[c.name] for c in columns
        }
        return cls(columns, rows, need, widths, list(columns))

    def total(self) -> int:
        return sum(self.widths[c.name] + _EDGE for c in self.kept) + 1

    def fit(self, width: int) -> None:
        """Text gives way first, then columns by priority; then room goes back."""
        for c in self.kept:
            if c.wrap:
                self.widths[c.name] = max(
                    [cell_len(c.name)] + [_longest_word(r.get(c.name, "")) for r in self.rows]
                )
        by_importance = sorted(
            (c for c in self.kept if c.priority < 100),
            key=lambda c: (c.priority, -self.columns.index(c)),
        )
        # Secondary columns go before a path is shortened; core ones only after.
        self._drop(by_importance, CORE, width)
        self._shorten(_SHORT_TEXT, width)
        self._drop(by_importance, 100, width)
        self._shorten(_SHORTEST_TEXT, width)
        self._take_back(width)
        self._widen(width)

    def _drop(self, by_importance: Sequence[Column], below: int, width: int) -> None:
        for c in by_importance:
            if self.total() <= width:
                return
            if c.priority < below and c in self.kept:
                self._leave_out(c)

    def _leave_out(self, column: Column) -> None:
        """Leave out the column, and the kept ones that need it."""
        self.kept.remove(column)
        self.left_out.append(column.name)
        for c in [c for c in self.kept if c.needs == column.name]:
            self._leave_out(c)

    def _shorten(self, floor: int, width: int) -> None:
        for c in self.kept:
            if c.shorten and self.total() > width:
                # Never so short that two rows read the same (blocks.0 / blocks.1).
                texts = [r.get(c.name, "") for r in self.rows]
                least = _distinct_width(texts, min(floor, self.need[c.name]))
                self.widths[c.name] = max(least, self.widths[c.name] - self.total() + width)

    def _take_back(self, width: int) -> None:
        """A wide column left out late can free room for narrower ones left out before it."""
        left_out = [c for c in self.columns if c.name in self.left_out]
        for c in sorted(left_out, key=lambda c: -c.priority):
            if c.needs in self.left_out:
                continue
            if self.total() + self.widths[c.name] + _EDGE <= width:
                self.kept.append(c)
                self.left_out.remove(c.name)
        self.kept.sort(key=lambda c: self.columns.index(c))

    def _widen(self, width: int) -> None:
        """Room back to text that gave way: first every wrapped column up to its usual
        width, most important first, then beyond."""
        for cap in (_WRAPPED_TEXT, None):
            for c in sorted(self.kept, key=lambda c: -c.priority):
                if (c.wrap or c.shorten) and self.total() < width:
                    need = self.need[c.name]
                    most = need if cap is None or c.shorten else min(cap, need)
                    self.widths[c.name] = max(
                        self.widths[c.name], min(most, self.widths[c.name] + width - self.total())
                    )

    def table(self, title: str) -> Table:
        """The kept columns at their widths, paths shortened to fit theirs."""
        table = Table(title=title, title_justify="left", width=self.total())
        for c in self.kept:
            table.add_column(
                c.name,
                justify=c.justify,  # type: ignore[arg-type]
                width=self.widths[c.name],
                no_wrap=not c.wrap,
                overflow="fold" if c.wrap else "ellipsis",
            )
        for row in self.rows:
            cells = []
            for c in self.kept:
                text = row.get(c.name, "")
                if c.shorten and cell_len(text) > self.widths[c.name]:
                    text = shortened(text, self.widths[c.name])
                cells.append(Text(text))  # data, never markup: a path may hold [brackets]
            table.add_row(*cells)
        return table


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
