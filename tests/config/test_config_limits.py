"""Hostile and edge-case configs: size, depth and alias limits, run names, seeds, layer counts,
and structural problems reported before TensorFlow is imported (no TensorFlow needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kinit_cli.cli import cli
from kinit_cli.config import schema
from kinit_cli.config import source as config
from kinit_cli.errors import ConfigError
from tests.conftest import DIGITS

MODEL = "model: {input_shape: [3], layers: [{class_name: Dense}]}\n"
DEPTH = "lists and mappings nested more than 100 levels deep (kinit's limit for a config)"


def problems_of(text: str, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg = config.loads(text, "c.yaml")
        config.apply_overrides(cfg, overrides)
        schema.validate(cfg)
    return [str(p) for p in info.value.problems]


def bounded(
    code: str, memory: int | None = 1 << 30, timeout: float = 60, cwd: Path | None = None
) -> str:
    """Run `code` in a fresh Python with at most `memory` bytes of address space; its stdout."""
    probe = textwrap.dedent(code)
    if memory is not None:
        limit = f"resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))\n"
        probe = "import resource\n" + limit + probe
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- file size ---------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused(write):
    path = write("big.yaml", "# padding\n" * 1_000_001)  # 10,000,010 bytes
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value) == (
        f"{path}: the file is larger than 10,000,000 bytes, kinit's limit for a config "
        "(set KINIT_MAX_CONFIG_BYTES to raise it)"
    )


def test_the_size_limit_comes_from_the_environment(write, monkeypatch):
    path = write("c.yaml", MODEL)  # 57 bytes
    monkeypatch.setenv("KINIT_MAX_CONFIG_BYTES", "57")
    assert config.load(path).data["model"]["input_shape"] == [3]
    monkeypatch.setenv("KINIT_MAX_CONFIG_BYTES", "56")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value) == (
        f"{path}: the file is larger than 56 bytes, kinit's limit for a config "
        "(set KINIT_MAX_CONFIG_BYTES to raise it)"
    )


@pytest.mark.parametrize("value", ["abc", "0", "-5", ""])
def test_a_bad_size_limit_is_a_usage_error(runner, write, monkeypatch, value):
    path = write("c.yaml", MODEL)
    monkeypatch.setenv("KINIT_MAX_CONFIG_BYTES", value)
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: KINIT_MAX_CONFIG_BYTES must be a positive number of bytes. "
        f"Received: KINIT_MAX_CONFIG_BYTES={value!r}"
    )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_is_read_no_further_than_the_limit():
    # Read without a limit, /dev/zero would exhaust the 1 GiB the probe may use.
    out = bounded(
        """\
        from kinit_cli.config import source as config
        from kinit_cli.errors import ConfigError
        try:
            config.load("/dev/zero")
        except ConfigError as exc:
            print(exc)
        """
    )
    assert out == "/dev/zero: not a text file (it contains binary data)\n"


# --- nesting depth -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Today's RecursionError: 600 levels of flow lists.
        ("model: " + "[" * 600 + "]" * 600 + "\n", f"c.yaml:1:107: {DEPTH}"),
        # The top-level mapping is the first level: the 100th list is the 101st level.
        ("model: " + "[" * 100 + "]" * 100 + "\n", f"c.yaml:1:107: {DEPTH}"),
        ("a: " + "{b: " * 100 + "1" + "}" * 100 + "\n", f"c.yaml:1:400: {DEPTH}"),
        (
            "a:\n" + "".join("  " * i + f"- x{i}:\n" for i in range(1, 60)),
            # A list and a mapping per line: the mapping at x50 is the 101st level.
            f"c.yaml:51:103: {DEPTH}",
        ),
    ],
    ids=["600 flow lists", "101 levels", "flow mappings", "block style"],
)
def test_deep_nesting_is_refused_where_it_gets_too_deep(text, expected):
    with pytest.raises(ConfigError) as info:
        config.loads(text, "c.yaml")
    assert str(info.value) == expected


def test_a_hundred_levels_are_read():
    cfg = config.loads("model: " + "[" * 99 + "7" + "]" * 99 + "\n", "c.yaml")
    value = cfg.data["model"]
    for _ in range(99):
        (value,) = value
    assert value == 7
    assert config.loads(config.dump(cfg.data)).data == cfg.data


def test_an_override_nested_too_deep_points_at_the_set():
    text = "x=" + "[" * 150 + "]" * 150
    assert problems_of(MODEL, (text,)) == [f"--set {text}: {DEPTH}"]


# --- aliases -------------------------------------------------------------------------------

# Nine levels of nine aliases each: 9^9 (387 million) "lol"s from 430 bytes.
BILLION_LAUGHS = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
)


def test_an_alias_bomb_is_refused_fast_in_bounded_memory():
    out = bounded(
        f"""\
        import time
        from kinit_cli.config import source as config
        from kinit_cli.errors import ConfigError
        start = time.perf_counter()
        try:
            config.loads({BILLION_LAUGHS!r}, "c.yaml")
        except ConfigError as exc:
            print(exc)
        print(time.perf_counter() - start < 5)
        """,
        memory=1 << 30,
        timeout=30,
    )
    # a1..a4 copy in 74,718 values; a5's first alias passes 100,000.
    assert out == (
        "c.yaml:6:10: aliases copy in more than 100,000 values by the alias *a4 "
        "(kinit's limit for a config)\nTrue\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: &a [1, *a]\n",
            "c.yaml:1:11: the alias *a is inside the value it refers to; a config cannot "
            "contain itself",
        ),
        (
            "a: &a {b: {c: *a}}\n",
            "c.yaml:1:15: the alias *a is inside the value it refers to; a config cannot "
            "contain itself",
        ),
        (
            "x: &x " + "[" * 60 + "1" + "]" * 60 + "\ny: " + "[" * 50 + "*x" + "]" * 50 + "\n",
            "c.yaml:2:54: the alias *x nests lists and mappings more than 100 levels deep "
            "(kinit's limit for a config)",
        ),
    ],
)
def test_recursive_and_deepening_aliases_are_refused(text, expected):
    with pytest.raises(ConfigError) as info:
        config.loads(text, "c.yaml")
    assert str(info.value) == expected


def test_ordinary_anchors_and_merge_keys_still_work():
    text = textwrap.dedent(
        """\
        dense: &dense {class_name: Dense, config: &cfg {units: 4, activation: relu}}
        model:
          input_shape: [3]
          layers: [*dense, *dense, &two {class_name: Dense, config: {<<: *cfg, units: 2}}, *two]
        twice: {units: 1, units: 2}
        """
    )
    with pytest.raises(ConfigError) as info:
        config.loads(text, "c.yaml")
    assert str(info.value) == "c.yaml:5:19: invalid YAML: duplicate key 'units'"
    layers = config.loads(text.replace("twice", "# twice"), "c.yaml").data["model"]["layers"]
    four = {"class_name": "Dense", "config": {"units": 4, "activation": "relu"}}
    assert layers[0] == layers[1] == four
    # A key written beside a merge replaces the merged one, also where the mapping is aliased.
    two = {"class_name": "Dense", "config": {"units": 2, "activation": "relu"}}
    assert layers[2] == layers[3] == two


# --- the run name --------------------------------------------------------------------------

PATTERN = (
    "expected a name matching [A-Za-z0-9][A-Za-z0-9_.-]* (ASCII letters, digits, '_', '.' "
    "and '-', a letter or digit first, at most 100 characters), as it names the run "
    "directory and the Keras model; got "
)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("name: 12345", 'expected text, got the number 12345 (quote it: name: "12345")'),
        (
            "name: 2024-01-01",
            'expected text, got the date 2024-01-01 (quote it: name: "2024-01-01")',
        ),
        # YAML 1.1 reads 007 as the octal number 7: the hint quotes what was written.
        ("name: 007", 'expected text, got the number 7 (quote it: name: "007")'),
        ("name: yes", 'expected text, got a boolean (true) (quote it: name: "yes")'),
        ("name: [a]", "expected text, got a list"),
        ('name: "../../escaped"', PATTERN + "'../../escaped'"),
        ("name: /tmp/abs", PATTERN + "'/tmp/abs'"),
        ("name: a/b", PATTERN + "'a/b'"),
        ("name: '..'", PATTERN + "'..'"),
        ("name: _private", PATTERN + "'_private'"),
        ("name: -x", PATTERN + "'-x'"),
        ("name: .hidden", PATTERN + "'.hidden'"),
        ("name: naïve", PATTERN + "'naïve'"),
        ("name: two words", PATTERN + "'two words'"),
        ("name: ''", PATTERN + "''"),
        ("name: " + "x" * 101, PATTERN + repr("x" * 101)),
    ],
)
def test_bad_run_names(line, message):
    assert problems_of(f"{line}\n{MODEL}") == [f"c.yaml:1:7: name: {message}"]


@pytest.mark.parametrize("name", ["'12345'", "my-run.v2", "A_1", "1abc", "x" * 100])
def test_good_run_names(name):
    resolved = schema.validate(config.loads(f"name: {name}\n{MODEL}", "c.yaml"))
    assert resolved["name"] == name.strip("'")


def test_a_run_name_from_set_points_at_the_set():
    assert problems_of(MODEL, ("name=12345",)) == [
        '--set name=12345: name: expected text, got the number 12345 (quote it: name: "12345")'
    ]


@pytest.mark.parametrize(
    ("file", "name"),
    [("my-run.yaml", "my-run"), ("_my run.yaml", "my_run"), ("été.yaml", "t_"), ("_.yaml", "run")],
)
def test_a_name_from_the_file_name_is_made_safe(write, file, name):
    assert schema.validate(config.load(write(file, MODEL)))["name"] == name


def test_other_text_keys_get_the_quote_hint_too():
    assert problems_of(f"data: {{name: 2024}}\n{MODEL}") == [
        'c.yaml:1:14: data.name: expected text, got the number 2024 (quote it: name: "2024")'
    ]


# --- seeds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [-1, 2**32, 10**30])
def test_a_seed_outside_numpys_range_is_refused(seed):
    assert problems_of(f"seed: {seed}\n{MODEL}") == [
        f"c.yaml:1:7: seed: expected an integer from 0 to 4294967295, got {seed}"
    ]


@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_seeds_at_the_ends_of_the_range(seed):
    assert schema.validate(config.loads(f"seed: {seed}\n{MODEL}", "c.yaml"))["seed"] == seed


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_flag_outside_numpys_range_is_a_usage_error(runner, write, seed):
    path = write("c.yaml", MODEL)
    result = runner.invoke(cli, ["train", str(path), "--seed", seed])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--seed': {seed} is not in the range 0<=x<=4294967295."
    )


# --- layer count ---------------------------------------------------------------------------


def _layers(n: int, functional: bool = False) -> str:
    if functional:
        lines = ["model:", "  inputs: [{name: x, shape: [2]}]", "  layers:"]
        lines += [
            f"    - {{name: l{i}, class_name: Dense, config: {{units: 2}}, "
            f"inputs: {'x' if i == 0 else f'l{i - 1}'}}}"
            for i in range(n)
        ]
        return "\n".join([*lines, f"  outputs: l{n - 1}"]) + "\n"
    lines = ["model:", "  input_shape: [2]", "  layers:"]
    return "\n".join(lines + ["    - {class_name: Dense, config: {units: 2}}"] * n) + "\n"


@pytest.mark.parametrize("functional", [False, True])
def test_any_number_of_layers_passes_the_schema(functional):
    resolved = schema.validate(config.loads(_layers(2000, functional), "c.yaml"))
    assert len(resolved["model"]["layers"]) == 2000


# --- structural problems come before TensorFlow ----------------------------------------------


def test_structural_problems_are_reported_without_importing_tensorflow(tmp_path):
    bad = {
        "yaml.yaml": "model: [1, 2\n",
        "key.yaml": f"sed: 1\n{MODEL}",
        "type.yaml": f"train: {{epochs: zero}}\n{MODEL}",
        "names.yaml": "model: {input_shape: [3], layers: [{class_name: Dens}]}\n"
        "compile: {optimizer: adamm}\ntrain: {epochs: zero}\n",
        "run-name.yaml": f"name: ../../escaped\n{MODEL}",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    out = bounded(
        f"""\
        import contextlib, io, sys
        from kinit_cli.cli import cli
        for name in {list(bad)!r}:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    cli.main(["validate", name], prog_name="kinit")
                except SystemExit as exc:
                    print(exc.code, err.getvalue().strip())
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
        """,
        memory=None,
        cwd=tmp_path,
    )
    assert out.splitlines() == [
        "2 error: yaml.yaml:2:1: invalid YAML: while parsing a flow sequence: expected ',' or "
        "']', but got '<stream end>'",
        "2 error: key.yaml:1:1: sed: unknown key 'sed'. Did you mean 'seed'?",
        "2 error: type.yaml:1:17: train.epochs: expected an integer, got 'zero'",
        "2 error: names.yaml:3:17: train.epochs: expected an integer, got 'zero'",
        f"2 error: run-name.yaml:1:7: name: {PATTERN}'../../escaped'",
        "[]",
    ]


def test_names_are_checked_once_the_structure_is_sound(runner, write):
    path = write(
        "c.yaml",
        "model: {input_shape: [3], layers: [{class_name: Dens}]}\n"
        "compile: {optimizer: adamm}\ntrain: {epochs: zero}\n",
    )
    first = runner.invoke(cli, ["validate", str(path)])
    assert first.exit_code == 2
    assert first.stderr.strip() == (
        f"error: {path}:3:17: train.epochs: expected an integer, got 'zero'"
    )
    second = runner.invoke(cli, ["validate", str(path), "--set", "train.epochs=1"])
    assert second.exit_code == 2
    lines = second.stderr.splitlines()
    assert lines[0] == "error: 2 problems:"
    assert lines[1].startswith(
        f"  {path}:1:49: model.layers[0].class_name: unknown layer 'Dens'. Did you mean 'Dense'?"
    )
    assert lines[2].startswith(
        f"  {path}:2:22: compile.optimizer: unknown optimizer 'adamm'. Did you mean 'Adam'"
    )


def test_a_model_name_keras_cannot_train_under_is_refused_at_validate(runner):
    result = runner.invoke(cli, ["validate", DIGITS, "--set", "model.name=_x"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --set model.name=_x: model.name: expected a model name of ASCII letters, "
        "digits and . _ - / > (a letter, digit or '.' first: TensorFlow's rule for the name "
        "scope a Keras model trains in); got '_x'\n"
    )
