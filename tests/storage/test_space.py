"""A write that cannot fit on the disk is refused before it starts, with the figures."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from kinit_cli.errors import WriteError
from kinit_cli.storage import rundir

Usage = namedtuple("Usage", "total used free")


def test_a_write_that_cannot_fit_is_refused_with_both_sizes(tmp_path, monkeypatch):
    asked = []

    def usage(path):
        asked.append(path)
        return Usage(10_000_000, 8_500_000, 1_500_000)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    target = tmp_path / "model.keras"
    with pytest.raises(WriteError) as caught:
        rundir.ensure_space(target, 2_048_000)
    assert str(caught.value) == (
        f"no space left on device writing {target} (it needs about 2.0 MB; 1.5 MB free)"
    )
    assert caught.value.exit_code == 1
    assert asked == [tmp_path]
    assert list(tmp_path.iterdir()) == []
    rundir.ensure_space(target, 1_500_000)  # fits exactly


def test_space_that_cannot_be_read_refuses_nothing(tmp_path):
    rundir.ensure_space(tmp_path / "missing" / "model.keras", 1 << 60)


def test_the_free_space_is_the_systems(tmp_path):
    import os

    st = os.statvfs(tmp_path)
    assert shutil.disk_usage(tmp_path).free == st.f_bavail * st.f_frsize
