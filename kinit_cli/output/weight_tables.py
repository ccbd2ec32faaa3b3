"""Tables of weights: a model's layers (validate), weight statistics (train), the
inspect-weights report with its check, comparison, values and activations."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from kinit_cli.output.render import warnings
from kinit_cli.output.tables import Column, middle, number, print_fitted


def format_initializer(spec: dict[str, Any] | None, loaded_from: str | None = None) -> str:
    """{class_name: RandomNormal, config: {stddev: 0.05}} -> 'RandomNormal(stddev=0.05)'; a
    variable init_from filled shows where its values came from instead."""
    if loaded_from:
        # A long source path would take a row per line: its middle goes.
        return f"loaded from {middle(loaded_from, 48)}"
    if spec is None:
        return "(initial value)"
    args = ", ".join(f"{k}={v!r}" for k, v in spec["config"].items())
    return f"{spec['class_name'].rpartition('>')[2]}({args})"


def _variable(path: str, layers: Sequence[str]) -> str:
    """A variable's path, with the layers that share it when there are several."""
    return path if len(layers) < 2 else f"{path} ({', '.join(layers)})"


def _shape(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def model_summary(built: Any, title: str, out: Console) -> None:
    """Layers with output shapes and parameter counts, then every weight and its initializer."""
    shared = any(len(info.calls) > 1 for info in built.layers)
    layer_columns = [
        Column("Layer", 100, "left"),
        Column("Class", 100, "left"),
        Column("Output shape", 100, "left"),
        Column("Params", 100),
    ]
    if shared:
        layer_columns.append(Column("Applied at", 100, "left", wrap=True))
    layer_rows = [
        {
            "Layer": info.name,
            "Class": info.class_name,
            "Output shape": "\n".join(_shape(s) for s in info.output_shapes) or "?",
            "Params": f"{info.params:,}",
            "Applied at": ", ".join(info.calls),
        }
        for info in built.layers
    ]
    print_fitted(title, layer_columns, layer_rows, out, wide=False)

    calls = {info.name: info.calls for info in built.layers}

    def used_by(w: Any) -> str:
        return "; ".join(
            f"{name} at {', '.join(calls[name])}" if len(calls.get(name, [])) > 1 else name
            for name in w.layers
        )

    sharing = any(
        len(w.layers) > 1 or len(calls.get(w.layers[0], [])) > 1 for w in built.weights if w.layers
    )
    columns = [
        Column("Variable", 100, "left", shorten=True),
        Column("Shape", 100, "left"),
        Column("Dtype", 60, "left"),
        Column("Trainable", 70, "left"),
        Column("Initializer", 90, "left", wrap=True),
    ]
    if sharing:
        columns.append(Column("Used by", 80, "left", wrap=True))
    rows = [
        {
            "Variable": w.path,
            "Shape": _shape(w.shape),
            "Dtype": w.dtype,
            "Trainable": "yes" if w.trainable else "no",
            "Initializer": format_initializer(w.initializer, w.loaded_from),
            "Used by": used_by(w),
        }
        for w in built.weights
    ]
    print_fitted("Weights (created at build time)", columns, rows, out, wide=False)
    total = built.trainable_params + built.non_trainable_params
    out.print(
        f"Total params: {total:,}  (trainable: {built.trainable_params:,}, "
        f"non-trainable: {built.non_trainable_params:,})"
    )


def _columns(variables: list[dict[str, Any]], more: Sequence[Column] = ()) -> list[Column]:
    """The one weights table's columns, in the order they are left out at a narrow width
    (tables.fitted); those that would say nothing here (every dtype float32, every variable
    trainable, no initial values, no value non-finite) are left off."""
    nonfinite = any(v["nonfinite"] for v in variables)
    say = {
        "Dtype": any(v["dtype"] != "float32" for v in variables),
        "Train": any(not v["trainable"] for v in variables),
        "Std@init": any("initial" in v for v in variables),
    }
    columns = [
        Column("Variable", 100, "left", shorten=True),
        Column("Shape", 100),
        Column("Dtype", 75),
        Column("Train", 76, "left"),
        Column("Initializer", 85, "left", wrap=True),
        Column("Fans", 30),
        Column("Mean", 100),
        Column("Std", 100),
        Column("Std@init", 80),
        Column("Min", 70),
        Column("Max", 69),
        Column("L2", 60),
        Column("σmax", 50),
        Column("Zeros", 45),
        Column("NaN", 87 if nonfinite else 40),
        Column("Histogram", 20, "left"),
        *more,
    ]
    return [c for c in columns if say.get(c.name, True)]


def _row(v: dict[str, Any]) -> dict[str, str]:
    """One variable (its weights-report entry, stats.VariableStats.to_json) as table cells."""
    row = {
        "Variable": _variable(v["path"], v["layers"]),
        "Shape": _shape(tuple(v["shape"])),
        "Dtype": v["dtype"],
        "Train": "yes" if v["trainable"] else "no",
        "Initializer": format_initializer(v["initializer"], v.get("loaded_from")),
        "Fans": f"{v['fan_in']}/{v['fan_out']}",
        "Std@init": number((v.get("initial") or {}).get("std")),
        "σmax": number(v["spectral_norm"]),
        "Zeros": f"{v['zero_fraction']:.1%}",
        "NaN": str(v["nonfinite"]),
        "Histogram": sparkline(v["histogram"]),
    }
    for key in ("mean", "std", "min", "max", "l2"):
        row[key.capitalize() if key != "l2" else "L2"] = number(v[key])
    return row


def weight_stats(
    report: list[Any],
    title: str,
    out: Console,
    changes: dict[str, Any] | None = None,
    wide: bool = False,
) -> None:
    """train's table of the weights (stats.VariableStats): the same table inspect-weights
    shows, with how far training moved each variable when `changes` are given."""
    variables = [v.to_json() for v in report]
    more = [Column("Rel. change", 92), Column("Cosine", 80)] if changes is not None else []
    rows = []
    for v in variables:
        row = _row(v)
        if changes is not None:
            moved = changes[v["path"]]
            row["Rel. change"] = change_cell(moved.relative, moved.absolute)
            row["Cosine"] = number(moved.cosine)
        rows.append(row)
    left_out = print_fitted(title, _columns(variables, more), rows, out, wide)
    if changes is not None:
        note = CHANGE_NOTE.format(reference="the initial weights")
        out.print(note if "Cosine" not in left_out else note.split(" Cosine:")[0])


# The one definition of change, for train's table and --against alike.
CHANGE_NOTE = (
    "Rel. change: ||B - A|| / ||A|| with A = {reference}; where A is all zeros, |Δ| is the "
    "absolute change ||B - A||. Cosine: the cosine of the angle between A and B."
)


def change_cell(relative: float | None, absolute: float | None) -> str:
    """The relative change, or the absolute one (labelled |Δ|) where the reference is zero."""
    return number(relative) if relative is not None else f"|Δ| {number(absolute)}"


_BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    """Histogram counts as one line of block characters (empty bins stay blank)."""
    top = max(counts, default=0)
    if top == 0:
        return ""
    return "".join(_BLOCKS[0 if c == 0 else 1 + round((c / top) * 7)] for c in counts)


def inspection(result: Any, out: Console, wide: bool = False) -> None:
    """inspect-weights: variables, layer totals, then the theory check and the comparison."""
    doc = result.document
    out.print(f"{doc['source']}")
    out.print(_values_line(doc["variables"]))
    variables = doc["variables"]
    columns, rows = _columns(variables), [_row(v) for v in variables]
    print_fitted("Weights", columns, rows, out, wide)
    warnings([d["message"] for d in doc.get("duplicates", [])], out)
    _totals(doc, out, wide)
    if result.values is not None:
        variable_values(result.values, out, full=result.full)
    if "activations" in doc:
        activations(doc["activations"], out)
    if "check" in doc:
        _check(doc, out, wide)
    if "against" in doc:
        _against(doc, out, wide)
    if "plot" in doc:
        out.print(f"Histograms written to {doc['plot']}")


def _values_line(variables: Sequence[dict[str, Any]]) -> str:
    """'values: 2 trained (3 epochs), 2 initializer': where the values came from, counted."""
    kinds: dict[str, int] = {}
    for v in variables:
        kind, detail = v["provenance"]["kind"], v["provenance"]["detail"]
        label = f"{kind} ({detail})" if kind == "trained" and detail else kind
        kinds[label] = kinds.get(label, 0) + 1
    return "values: " + ", ".join(f"{n} {label}" for label, n in kinds.items())


def _totals(doc: dict[str, Any], out: Console, wide: bool) -> None:
    """Each layer's parameters and bytes, then the model's."""
    totals = [Column("Layer", 100, "left")]
    totals += [Column(name, 100) for name in ("Params", "Trainable", "Non-trainable", "Bytes")]
    keys = ("parameters", "trainable", "non_trainable", "bytes")
    rows = [
        {"Layer": item["name"]}
        | {c.name: f"{item[key]:,}" for c, key in zip(totals[1:], keys, strict=True)}
        for item in [*doc["layers"], {"name": "total", **doc["totals"]}]
    ]
    print_fitted("Totals", totals, rows, out, wide)


def _check(doc: dict[str, Any], out: Console, wide: bool) -> None:
    """--check: each variable against its initializer's theory, then the counts."""
    rows = []
    for c in doc["check"]:
        theory, observed = c["theory"] or {}, c["observed"]
        rows.append(
            {
                "Variable": c["path"],
                "Theory": theory.get("description", ""),
                "Expected": _moments(theory),
                "Observed": _moments(observed),
                "Status": c["status"],
                "Why": "; ".join(c["reasons"]),
            }
        )
    columns = [
        Column("Variable", 100, "left", shorten=True),
        Column("Theory", 70, "left", wrap=True),
        Column("Expected", 60, "left", wrap=True),
        Column("Observed", 80, "left", wrap=True),
        Column("Status", 100, "left"),
    ]
    if any(row["Why"] for row in rows):
        columns.append(Column("Why", 65, "left", wrap=True))
    title = "Check against the initializers' theory" + (
        f": {doc['check_of']}" if "check_of" in doc else ""
    )
    print_fitted(title, columns, rows, out, wide)
    out.print(check_summary(doc["check_summary"]))


def _against(doc: dict[str, Any], out: Console, wide: bool) -> None:
    """--against: each shared variable's change, then the variables only one side has."""
    other = doc["against"]
    rows = [_against_row(row) for row in other["variables"]]
    columns = [
        Column("Variable", 100, "left", shorten=True),
        Column("Shape", 95),
        Column("Rel. change", 100),
        Column("Cosine", 90),
    ]
    print_fitted(f"Against {other['source']}", columns, rows, out, wide)
    out.print(CHANGE_NOTE.format(reference=f"the target {doc['source']}, B = the other"))
    for key, label in (
        ("only_in_target", "only in the target"),
        ("only_in_other", "only in the other"),
    ):
        if other[key]:
            out.print(f"{label}: {', '.join(other[key])}")


def _against_row(row: dict[str, Any]) -> dict[str, str]:
    if "other_shape" in row:
        shape = f"{_shape(tuple(row['shape']))} vs {_shape(tuple(row['other_shape']))}"
        return {"Variable": row["path"], "Shape": shape, "Rel. change": "shape differs"}
    return {
        "Variable": row["path"],
        "Shape": _shape(tuple(row["shape"])),
        "Rel. change": change_cell(row["relative_change"], row["change"]),
        "Cosine": number(row["cosine"]),
    }


def variable_values(values: dict[str, Any], out: Console, full: bool = False) -> None:
    """Each variable's values as NumPy prints them: summarised with '...' past 1,000
    values (NumPy's own threshold) unless `full`."""
    import numpy as np

    if not values:
        out.print("--values: no variable matches")
    for path, array in values.items():
        text = np.array2string(
            array, threshold=sys.maxsize if full else 1000, max_line_width=out.width
        )
        out.print(Text(f"{path} {_shape(tuple(array.shape))} {array.dtype}", style="bold"))
        out.print(Text(text))


def _moments(values: dict[str, Any]) -> str:
    """'mean=0, std=0.05' ('' when there is nothing to say)."""
    if not values:
        return ""
    # 'label=number': a cell wrapped at spaces never parts a label from its number.
    return f"mean={number(values.get('mean'))}, std={number(values.get('std'))}"


def check_summary(counts: dict[str, int]) -> str:
    """'3 pass, 0 warn, 1 fail, 2 not checkable' (and loaded ones, when there are any)."""
    parts = [f"{counts['pass']} pass", f"{counts['warn']} warn", f"{counts['fail']} fail"]
    if counts["loaded"]:
        parts.append(f"{counts['loaded']} loaded (identical to their source)")
    parts.append(f"{counts['not_checkable']} not checkable")
    return ", ".join(parts)


def activations(doc: dict[str, Any], out: Console) -> None:
    """The one-batch signal check: layer outputs, then gradient norms."""
    signal = [Column(name, 100, "left") for name in ("Layer", "Class", "Output shape")]
    signal += [Column("Mean", 100), Column("Std", 100)]
    rows = [
        {
            "Layer": layer["name"],
            "Class": layer["class_name"],
            "Output shape": _shape(tuple(layer["shape"])),
            "Mean": number(layer["mean"]),
            "Std": number(layer["std"]),
        }
        for layer in doc["layers"]
    ]
    print_fitted(f"Signal at initialization ({doc['input']})", signal, rows, out, wide=False)
    grads = [Column("Variable", 100, "left"), Column("||grad||", 100)]
    grads.append(Column("||grad|| / ||W||", 100))
    rows = [
        {
            "Variable": g["path"],
            "||grad||": number(g["norm"]),
            "||grad|| / ||W||": number(g["relative"]),
        }
        for g in doc["gradients"]
    ]
    title = f"Gradients of {doc['loss']['name']} = {number(doc['loss']['value'])}"
    print_fitted(title, grads, rows, out, wide=False)
