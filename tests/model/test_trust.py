"""A run, a checkpoint or an init_from source from elsewhere is data: the plugins its files
name run only when the user asks (--trust-plugins, or their own copy with --plugin); a run
records the plugins it used; an init_from chain that comes back to itself is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kinit_cli.cli import cli
from kinit_cli.errors import ConfigError
from kinit_cli.model import sources
from tests.conftest import forget

PLUGIN = """\
import keras


class MyDense(keras.layers.Layer):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], self.units))

    def call(self, x):
        return keras.ops.matmul(x, self.w)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class MyCb(keras.callbacks.Callback):
    pass
"""

CONFIG = """\
name: trusty
seed: 1
data: {name: digits, validation_split: 0.1}
model:
  input_shape: [64]
  layers:
    - {class_name: MyDense, config: {units: 8}}
    - {class_name: Dense, config: {units: 10, activation: softmax}}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
train: {epochs: 1, batch_size: 64, callbacks: [{class_name: MyCb}]}
"""

REFUSAL = (
    "{what} names plugins that kinit does not import unless asked, since they are code: "
    "{helper}; its model uses MyDense, which kinit cannot rebuild without them. Add "
    "--trust-plugins to import them (only for files you trust), or --plugin FILE to load a "
    "copy of your own"
)
RUN_WARNING = (
    "warning: {what} is a kinit run's config: kinit train imported the plugins it names, and "
    "their code ran with your permissions: {helper}. To run a copy of your own instead, give "
    "it with --plugin FILE\n"
)
WARNING = (
    "warning: --trust-plugins: imported the plugins {what} names, and their code ran with "
    "your permissions: {helper}\n"
)
SHOWN = (
    ". Shown without the model: each variable {file} stores, by its path in the file (the "
    "run's names where weights-init.json records its shape); --activations and --check of the "
    "run's initial weights need the model"
)
CHECKPOINT = "backup/epoch-00001.weights.h5"
STORED = [("dense/kernel", [8, 10]), ("dense/bias", [10]), ("my_dense/variable", [64, 8])]


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained with `--plugin layers.py`, given relative to the folder it was run in."""
    base = tmp_path_factory.mktemp("trust")
    (base / "layers.py").write_text(PLUGIN)
    (base / "c.yaml").write_text(CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(base)
        result = CliRunner().invoke(
            cli, ["train", "c.yaml", "--plugin", "layers.py", "-o", "run", "-q"]
        )
    assert result.exit_code == 0, result.output
    forget({"layers"})  # loaded before forget_plugins looks: every test imports it afresh
    return base / "run"


def downloaded(run: Path, tmp_path: Path, folder: str = "downloaded") -> tuple[Path, Path]:
    """A copy of `run` as someone else may hand it over: a helper.py beside its config, named
    in its plugins:, that leaves a sentinel file when it is imported."""
    copy = tmp_path / folder
    shutil.copytree(run, copy)
    sentinel = tmp_path / "SENTINEL"
    code = f"import pathlib\npathlib.Path({str(sentinel)!r}).write_text('ran')\n"
    (copy / "helper.py").write_text(code + PLUGIN)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["plugins"] = ["helper.py"]
    (copy / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return copy, sentinel


def transfer(tmp_path: Path) -> Path:
    """A config of the user's that starts its Dense layer from downloaded/'s."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        "model:\n"
        "  input_shape: [8]\n"
        "  layers:\n"
        "    - {class_name: Dense, config: {units: 10, name: dense}}\n"
        "init_from: {source: downloaded, layers: [dense]}\n"
    )
    return path


def _where(config: Path, text: str) -> str:
    """file:line:column of `text` in the config, as kinit's messages locate a value."""
    for number, line in enumerate(config.read_text().splitlines(), start=1):
        if text in line:
            return f"{config}:{number}:{line.index(text) + 1}"
    raise AssertionError(text)


def test_a_run_records_the_plugins_it_was_trained_with(plugin_run):
    config = yaml.safe_load((plugin_run / "config.yaml").read_text())
    assert config["plugins"] == [str((plugin_run.parent / "layers.py").resolve())]


def test_resume_finds_the_classes_of_plugin_given_on_the_command_line(runner, plugin_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(plugin_run, run)
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=2", "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["status"], metrics["epochs"]) == ("completed", 2)


@pytest.mark.parametrize("target", ["run", "checkpoint"])
def test_reading_a_run_never_imports_its_plugins(runner, plugin_run, tmp_path, target):
    run, sentinel = downloaded(plugin_run, tmp_path)
    path = run if target == "run" else run / CHECKPOINT
    # The run is read as typed; a checkpoint's run is found from its resolved path.
    what = run / "config.yaml" if target == "run" else run.resolve() / "config.yaml"
    helper = run.resolve() / "helper.py"
    file = run / "model.keras" if target == "run" else path
    # Without leave: the values the file stores, by their paths, and no code run.
    result = runner.invoke(cli, ["inspect-weights", str(path), "--json", "--values", "*"])
    assert (result.exit_code, result.stderr) == (
        0,
        "warning: " + REFUSAL.format(what=what, helper=helper) + SHOWN.format(file=file) + "\n",
    )
    assert not sentinel.exists()
    stored = json.loads(result.stdout)
    assert stored["kind"] == target
    assert [(v["path"], v["shape"]) for v in stored["variables"]] == STORED
    assert [v["initializer"]["class_name"] for v in stored["variables"]] == [
        "GlorotUniform",
        "Zeros",
        "GlorotUniform",
    ]
    trusted = runner.invoke(
        cli, ["inspect-weights", str(path), "--trust-plugins", "--json", "--values", "*"]
    )
    assert trusted.exit_code == 0, trusted.output
    assert trusted.stderr == WARNING.format(what=what, helper=helper)
    assert sentinel.read_text() == "ran"
    rebuilt = json.loads(trusted.stdout)
    assert rebuilt["kind"] == target
    # The same values as the model rebuilt with the plugin holds, variable for variable.
    assert stored["values"] == rebuilt["values"]
    assert {v["path"]: v["sha256"] for v in stored["variables"]} == {
        v["path"]: v["sha256"] for v in rebuilt["variables"]
    }


def test_without_its_record_a_run_is_shown_by_the_paths_its_file_holds(
    runner, plugin_run, tmp_path
):
    """With no weights-init.json to name them, the variables are the HDF5 paths Keras wrote
    (layer name, then the index of the variable), in the file's order."""
    run, sentinel = downloaded(plugin_run, tmp_path)
    (run / "weights-init.json").unlink()
    result = runner.invoke(cli, ["inspect-weights", str(run), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.endswith(SHOWN.format(file=run / "model.keras") + "\n")
    document = json.loads(result.stdout)
    assert [(v["path"], v["shape"], v["initializer"]) for v in document["variables"]] == [
        ("dense/vars/0", [8, 10], None),
        ("dense/vars/1", [10], None),
        ("my_dense/vars/0", [64, 8], None),
    ]
    assert not sentinel.exists()


def test_a_run_read_without_its_model_checks_declared_sizes_first(runner, plugin_run, tmp_path):
    """A checkpoint whose dataset declares more than it stores is refused before any of it is
    read (64 MB declared, nothing stored), as when Keras reads it."""
    import h5py

    run, sentinel = downloaded(plugin_run, tmp_path)
    (run / CHECKPOINT).unlink()
    with h5py.File(run / CHECKPOINT, "w") as store:
        store.create_dataset("layers/dense/vars/0", shape=(4000, 4000), dtype="float32")
    result = runner.invoke(cli, ["inspect-weights", str(run / CHECKPOINT)])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {run / CHECKPOINT}: the dataset layers/dense/vars/0 declares shape "
        "(4000, 4000) of float32 (64.0 MB) but stores 0 bytes; the file is damaged or was not "
        "written by Keras\n"
    )
    assert not sentinel.exists()


def test_a_truncated_checkpoint_is_one_line_naming_it(runner, plugin_run, tmp_path):
    """A checkpoint cut short in a copy is the file's fault, named as such, not an unexpected
    failure."""
    run, sentinel = downloaded(plugin_run, tmp_path)
    data = (run / CHECKPOINT).read_bytes()
    (run / CHECKPOINT).write_bytes(data[: len(data) // 2])
    result = runner.invoke(cli, ["inspect-weights", str(run / CHECKPOINT)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(
        f"error: {run / CHECKPOINT} is not a readable weights file (Unable to synchronously "
        "open file (truncated file"
    )
    assert result.stderr.endswith("); was it copied or downloaded in full?\n")
    assert "unexpected" not in result.stderr and not sentinel.exists()


def test_check_of_a_run_read_without_its_model_says_what_it_cannot_check(
    runner, plugin_run, tmp_path
):
    run, sentinel = downloaded(plugin_run, tmp_path)
    result = runner.invoke(cli, ["inspect-weights", str(run), "--check", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [(c["path"], c["status"], c["reasons"]) for c in document["check"]] == [
        (
            path,
            "NOT CHECKABLE",
            [
                "trained values (1 epoch): checking the run's initial weights needs its model "
                "rebuilt, which needs the plugins it names (see the warning)"
            ],
        )
        for path, _ in STORED
    ]
    assert not sentinel.exists()


@pytest.mark.parametrize("target", ["run", "checkpoint"])
def test_a_copy_of_the_plugin_of_ones_own_reads_a_run(runner, plugin_run, tmp_path, target):
    run, sentinel = downloaded(plugin_run, tmp_path)
    mine = tmp_path / "my_layers.py"
    mine.write_text(PLUGIN)
    path = run if target == "run" else run / CHECKPOINT
    result = runner.invoke(cli, ["inspect-weights", str(path), "--plugin", str(mine), "--json"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert [v["path"] for v in json.loads(result.stdout)["variables"]] == [
        "my_dense/variable",
        "dense/kernel",
        "dense/bias",
    ]
    assert not sentinel.exists()


def test_a_plugin_the_user_names_is_the_users_to_run(runner, plugin_run, tmp_path):
    """--plugin naming the run's own helper.py is the user asking for that code: it runs,
    and it is the user's choice, so there is nothing to warn of."""
    run, sentinel = downloaded(plugin_run, tmp_path)
    plugin = str(run / "helper.py")
    result = runner.invoke(cli, ["inspect-weights", str(run), "--plugin", plugin, "--json"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert sentinel.read_text() == "ran"


def test_a_keras_file_names_the_classes_it_needs_a_plugin_for(runner, plugin_run, tmp_path):
    model = plugin_run / "model.keras"
    result = runner.invoke(cli, ["inspect-weights", str(model)])
    # Exit 2, as for the same model read through its run: a matter of leave, not a failure.
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: cannot load {model}: its model uses MyDense (module layers), which no loaded "
        "plugin or library defines (kinit imports no code a file names); load the file that "
        "defines it with --plugin layers.py (or, if layers is a library, pip install layers "
        "and add --plugin layers)\n",
    )
    mine = tmp_path / "mine" / "layers.py"  # the file the class was registered from, by name
    mine.parent.mkdir()
    mine.write_text(PLUGIN)
    result = runner.invoke(cli, ["inspect-weights", str(model), "--plugin", str(mine), "--json"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout)["kind"] == "model"


def test_validate_with_init_from_a_run_never_imports_its_plugins(runner, plugin_run, tmp_path):
    run, sentinel = downloaded(plugin_run, tmp_path)
    config = transfer(tmp_path)
    what = run.resolve() / "config.yaml"
    helper = run.resolve() / "helper.py"
    result = runner.invoke(cli, ["validate", str(config)])
    where = _where(config, "downloaded")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {where}: init_from.source: " + REFUSAL.format(what=what, helper=helper) + "\n",
    )
    assert not sentinel.exists()
    trusted = runner.invoke(cli, ["validate", str(config), "--trust-plugins"])
    assert trusted.exit_code == 0, trusted.output
    assert trusted.stdout.startswith(f"{config}: valid on backend tensorflow\n")
    assert trusted.stderr == WARNING.format(what=what, helper=helper)
    assert sentinel.read_text() == "ran"


def test_a_failure_after_trusted_code_ran_still_warns(runner, plugin_run, tmp_path):
    run, sentinel = downloaded(plugin_run, tmp_path)
    config = transfer(tmp_path)
    config.write_text(config.read_text().replace("units: 10", "units: 3"))
    result = runner.invoke(cli, ["validate", str(config), "--trust-plugins"])
    helper = run.resolve() / "helper.py"
    assert result.exit_code == 2
    assert result.stderr.startswith(
        WARNING.format(what=run.resolve() / "config.yaml", helper=helper) + "error: "
    )
    assert sentinel.read_text() == "ran"


@pytest.mark.parametrize("trusted", [False, True])
def test_a_checkpoint_outside_a_kinit_run_is_not_read_with_an_ancestors_config(
    runner, plugin_run, tmp_path, trusted
):
    """A config.yaml further up, or in a folder without kinit's marker (a metrics.json naming
    kinit proves nothing: anyone can write one), is not the checkpoint's run: its plugins
    never run, --trust-plugins or not."""
    run, sentinel = downloaded(plugin_run, tmp_path)
    (run / ".kinit-run").unlink()
    assert "kinit" in json.loads((run / "metrics.json").read_text())["versions"]
    deep = run / "sub" / "deep"
    deep.mkdir(parents=True)
    shutil.copy(run / CHECKPOINT, deep / "x.weights.h5")
    flag = ["--trust-plugins"] if trusted else []
    head = (
        "a checkpoint holds weights only; kinit finds the model in the config.yaml of the run "
        "directory it lies in (RUN/NAME.weights.h5 or RUN/backup/NAME.weights.h5), and"
    )
    result = runner.invoke(cli, ["inspect-weights", str(deep / "x.weights.h5"), *flag])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {deep / 'x.weights.h5'}: {head} {deep.resolve()} is not one\n",
    )
    result = runner.invoke(cli, ["inspect-weights", str(run / CHECKPOINT), *flag])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {run / CHECKPOINT}: {head} {run.resolve()} has a config.yaml but is not a "
        "kinit run directory (it has no .kinit-run), so kinit does not build the model it "
        "describes\n",
    )
    result = runner.invoke(cli, ["inspect-weights", str(run), *flag])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {run} is not a kinit run directory (it has no .kinit-run), so kinit does not "
        f"read it as one; give its files instead: kinit inspect-weights {run / 'config.yaml'}\n",
    )
    assert not sentinel.exists()


CYCLE_MODEL = (
    "model:\n  input_shape: [4]\n  layers:\n    - {class_name: Dense, config: {units: 2}}\n"
)


@pytest.mark.parametrize(
    ("files", "chain"),
    [
        ({"a.yaml": "a.yaml"}, "a.yaml -> a.yaml"),
        ({"a.yaml": "sub/b.yaml", "sub/b.yaml": "../a.yaml"}, "a.yaml -> sub/b.yaml -> a.yaml"),
    ],
)
def test_an_init_from_cycle_is_refused_from_the_yaml_alone(runner, write, files, chain):
    for name, source in files.items():
        write(name, CYCLE_MODEL + f"init_from: {{source: {source}}}\n")
    config = Path(write("a.yaml", CYCLE_MODEL + f"init_from: {{source: {files['a.yaml']}}}\n"))
    expected = (
        f"{_where(config, files['a.yaml'])}: init_from.source: init_from goes round in a "
        f"circle: {chain}; each config starts from the next one's weights, so none can be built"
    )
    # The structural check finds it: before any plugin, Keras or TensorFlow is imported.
    with pytest.raises(ConfigError) as raised:
        sources.check(config)
    assert str(raised.value) == expected
    result = runner.invoke(cli, ["validate", str(config)])
    assert (result.exit_code, result.stderr) == (2, f"error: {expected}\n")


def _reading_commands(run: Path, tmp_path: Path) -> dict[str, list[str]]:
    config = str(run / "config.yaml")
    return {
        "inspect": ["inspect-weights", config],
        "against": ["inspect-weights", config, "--against", str(run)],
        "validate": ["validate", config],
        "schema": ["schema", "--config", config, "-o", str(tmp_path / "s.json")],
    }


@pytest.mark.parametrize("command", ["inspect", "against", "validate", "schema"])
def test_a_runs_own_config_is_the_runs_not_the_users(runner, plugin_run, tmp_path, command):
    """RUN/config.yaml given directly is still that run's: reading it imports none of its
    plugins, exactly as reading RUN does."""
    run, sentinel = downloaded(plugin_run, tmp_path)
    what, helper = run / "config.yaml", run.resolve() / "helper.py"
    refusal = REFUSAL.format(what=what, helper=helper)
    if command == "schema":
        refusal = refusal.replace(
            "its model uses MyDense, which kinit cannot rebuild without them",
            "the schema would miss their names",
        )
    result = runner.invoke(cli, _reading_commands(run, tmp_path)[command])
    assert (result.exit_code, result.stderr, result.stdout) == (2, f"error: {refusal}\n", "")
    assert not sentinel.exists()
    assert not (tmp_path / "s.json").exists()


def test_a_runs_own_config_is_read_with_the_users_leave(runner, plugin_run, tmp_path):
    run, sentinel = downloaded(plugin_run, tmp_path)
    mine = tmp_path / "mine" / "helper.py"
    mine.parent.mkdir()
    mine.write_text(PLUGIN)
    command = _reading_commands(run, tmp_path)["schema"]
    result = runner.invoke(cli, [*command, "--plugin", str(mine)])
    assert (result.exit_code, result.stderr) == (0, f"Wrote the config schema to {command[-1]}\n")
    assert not sentinel.exists()
    forget({"helper"})
    result = runner.invoke(cli, [*_reading_commands(run, tmp_path)["validate"], "--trust-plugins"])
    assert result.exit_code == 0, result.output
    what, helper = run / "config.yaml", run.resolve() / "helper.py"
    assert result.stderr == WARNING.format(what=what, helper=helper)
    assert sentinel.read_text() == "ran"


@pytest.mark.slow  # trains for seconds
def test_training_a_runs_own_config_runs_its_plugins_and_says_so(runner, plugin_run, tmp_path):
    """kinit train RUN/config.yaml reruns the run (the README's recipe): its plugins run, and
    stderr names them."""
    run, sentinel = downloaded(plugin_run, tmp_path)
    out = tmp_path / "again"
    result = runner.invoke(cli, ["train", str(run / "config.yaml"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    what, helper = run / "config.yaml", run.resolve() / "helper.py"
    assert result.stderr == RUN_WARNING.format(what=what, helper=helper)
    assert sentinel.read_text() == "ran"
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow  # trains for seconds
def test_resume_runs_the_runs_plugins_and_says_so(runner, plugin_run, tmp_path):
    run, sentinel = downloaded(plugin_run, tmp_path)
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=2", "-q"])
    assert result.exit_code == 0, result.output
    helper = run.resolve() / "helper.py"
    assert result.stderr == RUN_WARNING.format(what=run / "config.yaml", helper=helper)
    assert sentinel.read_text() == "ran"


@pytest.mark.slow  # trains for seconds
def test_resume_with_a_copy_of_ones_own_never_runs_the_runs(runner, plugin_run, tmp_path):
    """--plugin mine/helper.py takes the module name 'helper' first: the run's helper.py is
    that copy, so it is neither imported nor a clash."""
    run, sentinel = downloaded(plugin_run, tmp_path)
    mine = tmp_path / "mine" / "helper.py"
    mine.parent.mkdir()
    mine.write_text(PLUGIN)
    result = runner.invoke(
        cli,
        ["train", "--resume", str(run), "--plugin", str(mine), "--set", "train.epochs=2", "-q"],
    )
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert not sentinel.exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["status"], metrics["epochs"]) == ("completed", 2)
    # The run records the copy it used, not the file that never ran.
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["plugins"] == [str(mine.resolve())]


def test_an_init_from_chain_longer_than_the_limit_is_refused(runner, write):
    """A chain of 17 configs (none coming back) is refused from the YAML alone; 16 pass."""
    for i in range(1, 17):
        write(f"c{i}.yaml", CYCLE_MODEL + f"init_from: {{source: c{i + 1}.yaml}}\n")
    write("c17.yaml", CYCLE_MODEL)
    sixteen = write("c2.yaml", CYCLE_MODEL + "init_from: {source: c3.yaml}\n")
    assert sources.check(sixteen).settings.init_from.source == "c3.yaml"
    config = Path(write("c1.yaml", CYCLE_MODEL + "init_from: {source: c2.yaml}\n"))
    expected = (
        f"{_where(config, 'c2.yaml')}: init_from.source: init_from chains more than 16 "
        "configs, starting at c1.yaml (each builds its model in turn); start from a trained "
        "run directory or a .keras file instead of a config"
    )
    with pytest.raises(ConfigError) as raised:
        sources.check(config)
    assert str(raised.value) == expected
    result = runner.invoke(cli, ["validate", str(config)])
    assert (result.exit_code, result.stderr) == (2, f"error: {expected}\n")


TUTORIAL_LINEAR = """\
import pathlib
import tensorflow as tf
from tensorflow import keras

pathlib.Path(__file__).with_name("SENTINEL").write_text("ran")


class Linear(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        return tf.nn.relu(tf.matmul(inputs, self.w) + self.b)
"""


@pytest.mark.slow
def test_a_plugins_class_named_like_a_kinit_example_is_not_built_as_the_example(runner, tmp_path):
    """The Keras guide's Linear in a run's own plugin, which the reader did not allow: kinit's
    example of the same name (units=32) is not put in its place; the stored values are shown
    by their paths, and the plugin never runs."""
    (tmp_path / "tut.py").write_text(TUTORIAL_LINEAR)
    (tmp_path / "c.yaml").write_text(
        CONFIG.replace("MyDense", "Linear")
        .replace("  callbacks: [{class_name: MyCb}]", "")
        .replace(", callbacks: [{class_name: MyCb}]", "")
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        trained = runner.invoke(cli, ["train", "c.yaml", "--plugin", "tut.py", "-o", "run", "-q"])
    assert trained.exit_code == 0, trained.output
    forget({"tut"})
    (tmp_path / "SENTINEL").unlink()
    result = runner.invoke(cli, ["inspect-weights", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    assert "its model uses Linear, which kinit cannot rebuild without them" in result.stderr
    assert not (tmp_path / "SENTINEL").exists()
    shapes = {v["path"]: v["shape"] for v in json.loads(result.stdout)["variables"]}
    assert shapes == {
        "linear/variable": [64, 8],
        "linear/variable_1": [8],
        "dense/kernel": [8, 10],
        "dense/bias": [10],
    }
