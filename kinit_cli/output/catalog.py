"""`kinit list-*`: the catalog of what a config can name, as tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from kinit_cli.output.tables import Column, print_fitted


def catalog(kind: str, items: list[dict[str, Any]], out: Console) -> None:
    columns = [
        Column("Name", 100, "left", wrap=True),
        Column("Aliases", 60, "left", wrap=True),
        Column("Source", 70, "left", wrap=True),
        Column("Parameters", 90, "left", wrap=True),
        Column("Summary", 50, "left", wrap=True),
    ]
    rows = [
        {
            "Name": item["name"],
            "Aliases": ", ".join(item["aliases"]),
            "Source": item["source"],
            "Parameters": _params(item["parameters"]),
            "Summary": item["summary"],
        }
        for item in items
    ]
    print_fitted(f"{len(items)} {kind}s", columns, rows, out, wide=False)


def catalog_detail(item: dict[str, Any], out: Console) -> None:
    out.print(Text(item["name"], style="bold") + Text(f"  ({item['kind']}, {item['source']})"))
    out.print(
        f"Name in configs: {item['qualified_name']}"
        + (f"; aliases: {', '.join(item['aliases'])}" if item["aliases"] else "")
    )
    columns = [Column("Parameter", 100, "left"), Column("Default", 100, "left", wrap=True)]
    rows = [
        {"Parameter": p["name"], "Default": "(required)" if p["required"] else repr(p["default"])}
        for p in item["parameters"]
    ]
    if rows:
        print_fitted("", columns, rows, out, wide=False)
    if item["doc"]:
        out.print(Text(item["doc"]))


def _params(params: list[dict[str, Any]]) -> str:
    return ", ".join(
        p["name"] if p["required"] else f"{p['name']}={p['default']!r}" for p in params
    )
