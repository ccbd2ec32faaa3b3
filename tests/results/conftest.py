"""Four real runs of configs/digits.yaml (one epoch: two initializers x two seeds), trained
once per test process, that compare's tests set side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import train

KEY = "model.layers[0].config.kernel_initializer"
# A name against a whole initializer dict: one setting, not the dict's leaves.
INITIALIZERS = ("glorot_uniform", "{class_name: RandomNormal, config: {stddev: 0.05}}")
SEEDS = (1, 2)


@pytest.fixture(scope="session")
def digits_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The runs in the order trained: each initializer over both seeds, seed by seed."""
    folder = tmp_path_factory.mktemp("compare")
    runs = []
    for seed in SEEDS:
        for i, initializer in enumerate(INITIALIZERS):
            run = folder / f"init{i}-seed{seed}"
            result = train(
                CliRunner(),
                *("-q", "-o", str(run), "--seed", str(seed), "--set", "train.epochs=1"),
                *("--set", f"{KEY}={initializer}"),
            )
            assert result.exit_code == 0, result.output
            runs.append(run)
    return runs
