"""inspect-weights' report as tables, from its document alone: where the values came from,
the copies warned about, the theory check with its reasons, and the comparison with shapes
that differ, a zero reference and the variables only one side has."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

from rich.console import Console

from kinit_cli.output import weight_tables


def _variable(path: str, shape: list[int], kind: str, detail: str) -> dict[str, Any]:
    return {
        "path": path,
        "layers": ["dense"],
        "shape": shape,
        "dtype": "float32",
        "trainable": True,
        "initializer": {"class_name": "Zeros", "config": {}},
        "fan_in": 2,
        "fan_out": 3,
        "spectral_norm": None,
        "zero_fraction": 1.0,
        "nonfinite": 0,
        "histogram": [4],
        **dict.fromkeys(("mean", "std", "min", "max", "l2"), 0.0),
        "provenance": {"kind": kind, "detail": detail},
    }


DOCUMENT = {
    "source": "a.keras",
    "variables": [
        _variable("dense/kernel", [2, 3], "trained", "3 epochs"),
        _variable("dense/bias", [3], "initializer", ""),
    ],
    "duplicates": [{"message": "dense/kernel and dense/bias hold the same values"}],
    "layers": [{"name": "dense", "parameters": 9, "trainable": 9, "non_trainable": 0, "bytes": 36}],
    "totals": {"parameters": 9, "trainable": 9, "non_trainable": 0, "bytes": 36},
    "check_of": "the initial weights",
    "check": [
        {
            "path": "dense/kernel",
            "theory": None,
            "observed": {"mean": 0.0, "std": 0.0},
            "status": "WARN",
            "reasons": ["no theory", "all zeros"],
        },
        {
            "path": "dense/bias",
            "theory": {"description": "Zeros: every value 0", "mean": 0.0, "std": 0.0},
            "observed": {"mean": 0.0, "std": 0.0},
            "status": "PASS",
            "reasons": [],
        },
    ],
    "check_summary": {"pass": 1, "warn": 1, "fail": 0, "loaded": 0, "not_checkable": 0},
    "against": {
        "source": "b.keras",
        "variables": [
            {"path": "dense/kernel", "shape": [2, 3], "other_shape": [3, 2]},
            {
                "path": "dense/bias",
                "shape": [3],
                "relative_change": None,
                "change": 0.5,
                "cosine": None,
            },
        ],
        "only_in_target": [],
        "only_in_other": ["dense_1/kernel", "dense_1/bias"],
    },
    "plot": "w.png",
}


def test_the_report_of_a_document_check_and_comparison_included():
    out = Console(file=io.StringIO(), width=120, color_system=None, highlight=False)
    weight_tables.inspection(SimpleNamespace(document=DOCUMENT, values=None, full=False), out)
    lines = [line.rstrip() for line in out.file.getvalue().splitlines()]
    assert lines[:3] == ["a.keras", "values: 1 trained (3 epochs), 1 initializer", "Weights"]
    assert lines[9] == "warning: dense/kernel and dense/bias hold the same values"
    assert lines[10] == "Totals"
    assert lines[17:] == [
        "Check against the initializers' theory: the initial weights",
        "┏━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┓",
        "┃ Variable     ┃ Theory               ┃ Expected      ┃ Observed      ┃ Status ┃ Why                  ┃",
        "┡━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━┩",
        "│ dense/kernel │                      │               │ mean=0, std=0 │ WARN   │ no theory; all zeros │",
        "│ dense/bias   │ Zeros: every value 0 │ mean=0, std=0 │ mean=0, std=0 │ PASS   │                      │",
        "└──────────────┴──────────────────────┴───────────────┴───────────────┴────────┴──────────────────────┘",
        "1 pass, 1 warn, 0 fail, 0 not checkable",
        "Against b.keras",
        "┏━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━┓",
        "┃ Variable     ┃            Shape ┃   Rel. change ┃ Cosine ┃",
        "┡━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━┩",
        "│ dense/kernel │ (2, 3) vs (3, 2) │ shape differs │        │",
        "│ dense/bias   │              (3) │       |Δ| 0.5 │    n/a │",
        "└──────────────┴──────────────────┴───────────────┴────────┘",
        "Rel. change: ||B - A|| / ||A|| with A = the target a.keras, B = the other; where A is all "
        "zeros, |Δ| is the absolute",
        "change ||B - A||. Cosine: the cosine of the angle between A and B.",
        "only in the other: dense_1/kernel, dense_1/bias",
        "Histograms written to w.png",
    ]
