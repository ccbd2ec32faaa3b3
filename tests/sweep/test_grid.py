"""The grid, the seeds and sweep.yaml, without training."""

from __future__ import annotations

import pytest

from kinit_cli.errors import UsageError
from kinit_cli.sweep import grid, spec

KEY = "model.layers[0].config.kernel_initializer"
CONFIG = "model:\n  input_shape: [4]\n  layers: [{class_name: Dense, config: {units: 2}}]\n"


def test_axes_take_yaml_lists_and_make_every_combination_first_axis_slowest():
    axes = grid.parse_axes(
        [
            f"{KEY}=[glorot_uniform, {{class_name: RandomNormal, config: {{stddev: 0.5}}}}]",
            "compile.optimizer.config.learning_rate=[1e-3, 0.01]",
        ]
    )
    combos = grid.combinations(axes)
    assert [c.index for c in combos] == [0, 1, 2, 3]
    assert [c.label for c in combos] == [
        "glorot_uniform-0.001",
        "glorot_uniform-0.01",
        "RandomNormal-0.001",
        "RandomNormal-0.01",
    ]
    assert combos[2].overrides == (
        f'{KEY}={{"class_name": "RandomNormal", "config": {{"stddev": 0.5}}}}',
        "compile.optimizer.config.learning_rate=0.001",
    )
    assert dict(combos[3].settings) == {
        KEY: {"class_name": "RandomNormal", "config": {"stddev": 0.5}},
        "compile.optimizer.config.learning_rate": 0.01,
    }


def test_no_axis_is_one_combination_of_the_config_as_it_is():
    assert [(c.index, c.settings, c.label) for c in grid.combinations(())] == [(0, (), "config")]


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("3", (1, 2, 3)), ("1,7,9", (1, 7, 9)), (" 4 , 2 ", (4, 2)), ("1", (1,))],
)
def test_seeds_are_a_count_or_a_list(text, seeds):
    assert grid.parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "--seeds 0: a sweep needs at least one seed"),
        ("1,1", "a seed is listed twice"),
        ("-2", "expected a count"),
        ("two", "expected a count"),
        ("1,99999999999", "a seed is at most 4294967295"),
    ],
)
def test_bad_seeds_are_refused(text, message):
    with pytest.raises(UsageError, match=message):
        grid.parse_seeds(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train.epochs", "expected KEY=\\[VALUE, ...\\]"),
        ("train.epochs=3", "the values must be a YAML list"),
        ("train.epochs=[]", "the values must be a YAML list with at least one value"),
        ("train..epochs=[1]", "malformed key path"),
        ("train.epochs=[1, 2, 1]", "1 is listed twice"),
    ],
)
def test_bad_axes_are_refused(text, message):
    with pytest.raises(UsageError, match=message):
        grid.parse_axis(text)


def test_one_key_in_two_grids_is_refused():
    with pytest.raises(UsageError, match="given twice"):
        grid.parse_axes(["train.epochs=[1]", "train.epochs=[2]"])


def _spec(text: str = CONFIG) -> spec.SweepSpec:
    return spec.SweepSpec(
        config_file="/data/configs/model.yaml",
        config_text=text,
        overrides=("train.epochs=2",),
        axes=grid.parse_axes([f"{KEY}=[he_normal, {{class_name: Orthogonal}}]"]),
        seeds=(3, 1),
        backend="jax",
        plugins=("/data/plugins/inits.py",),
    )


def test_trials_are_named_by_combination_value_and_seed():
    assert [(t.name, t.seed, t.combination.index) for t in _spec().trials()] == [
        ("1-he_normal-seed3", 3, 0),
        ("1-he_normal-seed1", 1, 0),
        ("2-Orthogonal-seed3", 3, 1),
        ("2-Orthogonal-seed1", 1, 1),
    ]


@pytest.mark.parametrize("text", [CONFIG, "# tabs\tand trailing spaces   \n" + CONFIG, "a: 1"])
def test_sweep_yaml_reads_back_as_written(tmp_path, text):
    written = _spec(text)
    spec.write(written, tmp_path)
    assert spec.read(tmp_path) == written
    # The config reads as it was written where YAML can keep it as a block (not with
    # trailing spaces: those come back quoted).
    block = "config: |\n  model:\n    input_shape: [4]\n"
    assert (block in (tmp_path / "sweep.yaml").read_text()) == (text == CONFIG)


def test_a_trial_config_is_the_text_then_set_then_the_grid():
    s = _spec()
    config = s.config(s.combinations[1])
    assert config.data["train"] == {"weight_history": True, "epochs": 2}
    assert config.data["model"]["layers"][0]["config"]["kernel_initializer"] == {
        "class_name": "Orthogonal"
    }
    assert config.file == "/data/configs/model.yaml"


def test_a_damaged_sweep_yaml_is_one_message(tmp_path):
    (tmp_path / "sweep.yaml").write_text("config_file: /x.yaml\nconfig: 3\ngrid: []\nseeds: [1]\n")
    with pytest.raises(
        UsageError, match="is not a sweep record kinit wrote .`config` must be text"
    ):
        spec.read(tmp_path)
