"""README's "Train on your own data" commands, run as a newcomer runs them, in a copy of
configs/ (make examples writes its data there)."""

from __future__ import annotations

import csv
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.conftest import KINIT, ROOT, kinit_env


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- own-data:begin -->\n```sh\n(.*?)```\n<!-- own-data:end -->", text, re.S
    )
    assert block is not None, "README lost its own-data block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def as_run(command: str) -> list[str]:
    """The command with this checkout's interpreter and kinit (make examples is its script)."""
    if command == "make examples":
        return [sys.executable, "configs/make_examples.py"]
    words = shlex.split(command)
    assert words[0] == ".venv/bin/kinit", command
    return [str(KINIT), *words[1:]]


@pytest.mark.slow
def test_the_readme_own_data_commands_work_from_a_fresh_copy(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("table.yaml", "images.yaml", "make_examples.py"):
        shutil.copy(ROOT / "configs" / name, configs / name)
    outputs = {}
    for command in readme_commands():
        result = subprocess.run(
            as_run(command),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=kinit_env(),
            timeout=600,
        )
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
        outputs[command] = result.stdout
    with open(tmp_path / "iris-predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["row", "predicted", "prob_setosa", "prob_versicolor", "prob_virginica"]
    assert len(rows) == 151
    assert {row[1] for row in rows[1:]} <= {"setosa", "versicolor", "virginica"}
    # The run's own test part: 10 of each species.
    evaluation = outputs[".venv/bin/kinit evaluate runs/iris"]
    assert "accuracy" in evaluation and "virginica" in evaluation
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "threes.csv", newline="") as f:
        threes = list(csv.reader(f))
    assert threes[0][:2] == ["path", "predicted"]
    assert len(threes) - 1 == len(list((configs / "data" / "digits" / "3").iterdir()))
