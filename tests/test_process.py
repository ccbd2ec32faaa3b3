"""kinit as a process: closed streams, a reader that leaves, a plugin's thread left running."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DIGITS, KINIT, ROOT, RUN_FILES, kinit_env


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """`command` in bash (closed streams and pipes are written as a shell writes them)."""
    # Wide enough that the run header's path never wraps, however long the temporary folder.
    env = kinit_env(columns=1000)
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def _train(run: Path, *args: str) -> str:
    words = [KINIT, "train", DIGITS, "--set", "train.epochs=1", "--output", run, *args]
    return " ".join(shlex.quote(str(w)) for w in words)


@pytest.mark.slow
def test_train_with_stdout_closed_trains_and_writes_the_run(tmp_path):
    run = tmp_path / "run"
    result = _shell(f"{_train(run)} >&-", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("epoch 1/1  accuracy ")  # the progress still shows
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_train_with_stderr_closed_prints_its_json(tmp_path):
    run = tmp_path / "run"
    result = _shell(f"{_train(run, '--json')} 2>&-", tmp_path)
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["run_dir"] == str(run)
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_train_into_a_reader_that_leaves_finishes_the_run(tmp_path):
    run = tmp_path / "run"
    result = _shell(f"{_train(run)} | head -1; exit ${{PIPESTATUS[0]}}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"run: {run} · backend: ")
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "error" not in result.stderr
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_a_broken_pipe_is_neither_a_failure_nor_a_traceback(tmp_path):
    # Megabytes of values: far more than a pipe holds, so the writes after `head` left fail.
    command = [KINIT, "inspect-weights", ROOT / "configs" / "mnist.yaml", "--values", "*"]
    command.append("--full")
    quoted = " ".join(shlex.quote(str(w)) for w in command)
    result = _shell(f"{quoted} | head -1; exit ${{PIPESTATUS[0]}}", tmp_path)
    assert result.returncode == 0
    assert result.stdout.endswith("(built, not trained)\n")
    assert result.stderr == ""


@pytest.mark.slow
def test_validate_with_both_streams_closed_keeps_its_exit_status(tmp_path):
    result = _shell(f"{shlex.quote(str(KINIT))} validate missing.yaml >&- 2>&-", tmp_path)
    assert result.returncode == 2
    assert (result.stdout, result.stderr) == ("", "")


@pytest.mark.slow
def test_a_plugin_thread_left_running_does_not_hang_kinit(tmp_path):
    plugin = tmp_path / "uploader.py"
    plugin.write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(3600,), name='uploader').start()\n"
    )
    result = _shell(f"{shlex.quote(str(KINIT))} list-activations --plugin uploader.py", tmp_path)
    assert result.returncode == 0
    assert "relu" in result.stdout
    assert result.stderr == (
        "warning: a plugin's thread ('uploader') was still running when the command was "
        "done; kinit exits without waiting for it\n"
    )


@pytest.mark.slow
def test_a_plugin_thread_that_ends_soon_is_waited_for(tmp_path):
    plugin = tmp_path / "brief.py"
    plugin.write_text(
        "import threading, time\n"
        "def work():\n"
        "    time.sleep(0.2)\n"
        "    open('done.txt', 'w').write('done')\n"
        "threading.Thread(target=work, name='brief').start()\n"
    )
    result = _shell(f"{shlex.quote(str(KINIT))} list-activations --plugin brief.py", tmp_path)
    assert result.returncode == 0
    assert result.stderr == ""
    assert (tmp_path / "done.txt").read_text() == "done"
