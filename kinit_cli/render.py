"""Output: rich tables for people, JSON for programs; plain data in, text out."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kinit_cli.errors import ConfigError, KinitError


def console(stderr: bool = False) -> Console:
    """A Console on stdout or stderr; rich drops colour for NO_COLOR and non-terminals.

    stderr carries messages, which must not be hard-wrapped mid-sentence.
    """
    stream = sys.stderr if stderr else sys.stdout
    # Piped output has no width to follow; 160 columns keeps the weight tables unwrapped.
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 160
    return Console(file=stream, highlight=False, soft_wrap=stderr, width=width)


def print_json(data: Any, out: Console | None = None) -> None:
    """Exactly one JSON document on stdout, nothing else."""
    (out.file if out else sys.stdout).write(json.dumps(data, indent=2, default=str) + "\n")


def error(exc: KinitError, out: Console) -> None:
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        out.print(Text(f"error: {len(exc.problems)} problems:", style="bold red"))
        for problem in exc.problems:
            out.print(Text(f"  {problem}"))
        return
    out.print(Text("error: ", style="bold red") + Text(str(exc)))


def unexpected(exc: BaseException, out: Console) -> None:
    out.print(
        Text("error: ", style="bold red")
        + Text(
            f"{type(exc).__name__}: {exc}\n(an unexpected failure: run again with --debug for "
            "the traceback)"
        )
    )


def format_initializer(spec: dict[str, Any] | None) -> str:
    """{class_name: RandomNormal, config: {stddev: 0.05}} -> 'RandomNormal(stddev=0.05)'."""
    if spec is None:
        return "(initial value)"
    args = ", ".join(f"{k}={v!r}" for k, v in spec["config"].items())
    return f"{spec['class_name'].rpartition('>')[2]}({args})"


def _shape(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def model_summary(built: Any, title: str, out: Console) -> None:
    """Layers with output shapes and parameter counts, then every weight and its initializer."""
    layers = Table(title=title, title_justify="left")
    for col in ("Layer", "Class", "Output shape", "Params"):
        layers.add_column(col, justify="right" if col == "Params" else "left")
    shared = any(len(info.calls) > 1 for info in built.layers)
    if shared:
        layers.add_column("Applied at")
    for info in built.layers:
        row = [
            info.name,
            info.class_name,
            "\n".join(_shape(s) for s in info.output_shapes) or "?",
            f"{info.params:,}",
        ]
        if shared:
            row.append(", ".join(info.calls))
        layers.add_row(*row)
    out.print(layers)

    weights = Table(title="Weights (created at build time)", title_justify="left")
    calls = {info.name: info.calls for info in built.layers}

    def used_by(w: Any) -> str:
        return "; ".join(
            f"{name} at {', '.join(calls[name])}" if len(calls.get(name, [])) > 1 else name
            for name in w.layers
        )

    sharing = any(
        len(w.layers) > 1 or len(calls.get(w.layers[0], [])) > 1 for w in built.weights if w.layers
    )
    for col in ("Variable", "Shape", "Dtype", "Trainable", "Initializer") + (
        ("Used by",) if sharing else ()
    ):
        weights.add_column(col, overflow="fold")
    for w in built.weights:
        row = [
            w.path,
            _shape(w.shape),
            w.dtype,
            "yes" if w.trainable else "no",
            format_initializer(w.initializer),
        ]
        weights.add_row(*row, *([used_by(w)] if sharing else []))
    out.print(weights)
    total = built.trainable_params + built.non_trainable_params
    out.print(
        f"Total params: {total:,}  (trainable: {built.trainable_params:,}, "
        f"non-trainable: {built.non_trainable_params:,})"
    )


def catalog(kind: str, items: list[dict[str, Any]], out: Console) -> None:
    table = Table(title=f"{len(items)} {kind}s", title_justify="left")
    for col in ("Name", "Aliases", "Source", "Parameters", "Summary"):
        table.add_column(col, overflow="fold")
    for item in items:
        table.add_row(
            item["name"],
            ", ".join(item["aliases"]),
            item["source"],
            _params(item["parameters"]),
            item["summary"],
        )
    out.print(table)


def catalog_detail(item: dict[str, Any], out: Console) -> None:
    out.print(Text(item["name"], style="bold") + Text(f"  ({item['kind']}, {item['source']})"))
    out.print(
        f"Name in configs: {item['qualified_name']}"
        + (f"; aliases: {', '.join(item['aliases'])}" if item["aliases"] else "")
    )
    table = Table("Parameter", "Default")
    for p in item["parameters"]:
        table.add_row(p["name"], "(required)" if p["required"] else repr(p["default"]))
    if item["parameters"]:
        out.print(table)
    if item["doc"]:
        out.print(Text(item["doc"]))


def _params(params: list[dict[str, Any]]) -> str:
    return ", ".join(
        p["name"] if p["required"] else f"{p['name']}={p['default']!r}" for p in params
    )


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.4g}"


def weight_stats(
    report: list[Any],
    title: str,
    out: Console,
    changes: dict[str, tuple[float, float | None]] | None = None,
) -> None:
    """Per-variable statistics; with `changes`, how far training moved each variable."""
    table = Table(title=title, title_justify="left")
    for col in (
        "Variable",
        "Shape",
        "Initializer",
        "Mean",
        "Std",
        "Min",
        "Max",
        "L2",
        "Zeros",
        "NaN/Inf",
    ) + (("Rel. change",) if changes is not None else ()):
        table.add_column(
            col,
            justify="left" if col in ("Variable", "Initializer") else "right",
            overflow="fold",
            no_wrap=col in ("Variable", "Shape"),
        )
    for v in report:
        s = v.stats
        row = [
            v.path + ("" if len(v.layers) < 2 else f" ({', '.join(v.layers)})"),
            _shape(v.shape),
            format_initializer(v.initializer),
            _num(s.mean),
            _num(s.std),
            _num(s.min),
            _num(s.max),
            _num(s.l2),
            f"{s.zero_fraction:.1%}",
            str(s.nonfinite),
        ]
        if changes is not None:
            absolute, relative = changes[v.path]
            row.append(_num(relative) if relative is not None else f"|Δ| {_num(absolute)}")
        table.add_row(*row)
    out.print(table)


def run_header(info: dict[str, Any], out: Console) -> None:
    out.print(" · ".join(f"{k}: {v}" for k, v in info.items()))


def metrics_table(metrics: dict[str, Any], out: Console) -> None:
    """Final metrics per split (train, validation, test)."""
    splits = [s for s in ("train", "validation", "test") if s in metrics]
    names: list[str] = []
    for s in splits:
        names += [n for n in metrics[s] if n not in names]
    table = Table(
        "Metric", *[s.capitalize() for s in splits], title="Results", title_justify="left"
    )
    for n in names:
        table.add_row(n, *[_num(metrics[s].get(n)) for s in splits])
    out.print(table)
