"""The built-in plugin pack: serialization round trips, real samples, and .keras files."""

from __future__ import annotations

import contextlib
import math
import signal

import keras
import numpy as np
import pytest

from kinit_cli.model.sources import prepare
from kinit_cli.plugins.initializers import ExampleRandomNormal
from kinit_cli.plugins.layers import Linear, SimpleDense
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.plugins import load_plugins
from tests.conftest import MNIST_LIKE


@pytest.mark.parametrize(
    "obj",
    [
        ExampleRandomNormal(mean=1.0, stddev=0.2, seed=3),
        SimpleDense(units=7, activation="tanh", kernel_regularizer="l2", name="sd"),
        Linear(units=3, input_dim=4, kernel_initializer="ones", name="lin"),
    ],
    ids=["ExampleRandomNormal", "SimpleDense", "Linear"],
)
def test_get_config_from_config_round_trip(obj):
    config = keras.saving.serialize_keras_object(obj)
    assert config["registered_name"] == f"kinit>{type(obj).__name__}"
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is type(obj)
    assert again.get_config() == obj.get_config()


def test_function_initializer_round_trip_and_values():
    load_plugins([])
    cls = Registry().resolve("initializer", "unit_normal").obj
    init = cls()
    config = keras.initializers.serialize(init)
    assert config["registered_name"] == "kinit>unit_normal"
    assert type(keras.initializers.deserialize(config)) is cls
    sample = keras.ops.convert_to_numpy(init((200, 200)))
    bound = 4 / math.sqrt(sample.size)  # four standard errors of the mean
    assert abs(sample.mean()) < bound and abs(sample.std() - 1.0) < 4 / math.sqrt(2 * sample.size)


@pytest.mark.parametrize(("mean", "stddev"), [(0.0, 0.05), (2.0, 0.5)])
def test_example_random_normal_draws_the_moments_it_promises(mean, stddev):
    sample = keras.ops.convert_to_numpy(ExampleRandomNormal(mean, stddev, seed=1)((300, 400)))
    n = sample.size
    assert sample.shape == (300, 400) and sample.dtype == np.float32
    assert abs(sample.mean() - mean) < 4 * stddev / math.sqrt(n)
    assert abs(sample.std() - stddev) < 4 * stddev / math.sqrt(2 * n)


def test_simple_dense_computes_x_w_plus_b():
    layer = SimpleDense(units=2, kernel_initializer="ones", bias_initializer="ones")
    out = layer(np.array([[1.0, 2.0, 3.0]], "float32"))
    assert keras.ops.convert_to_numpy(out).tolist() == [[7.0, 7.0]]
    assert [w.path for w in layer.weights] == [f"{layer.name}/kernel", f"{layer.name}/bias"]
    assert layer.compute_output_shape((None, 3)) == (None, 2)


def test_saved_model_with_plugin_objects_loads_back(write, tmp_path):
    model = prepare(write("c.yaml", MNIST_LIKE)).built.model
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == ["SimpleDense", "Dense"]
    assert type(loaded.layers[0].kernel_initializer).__name__ == "ExampleRandomNormal"
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


# Plugin isolation: a plugin is code that runs, but what it does at import stays its own.

NOISY = """\
import keras
print("hello from the plugin")

class NoisyInit(keras.initializers.Initializer):
    def __call__(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype=dtype)
"""


def test_plugin_prints_at_import_go_to_stderr_so_json_and_yaml_stay_clean(
    runner, write, tmp_path, monkeypatch
):
    import json

    import yaml

    from kinit_cli.cli import cli

    monkeypatch.chdir(tmp_path)
    write("noisy.py", NOISY)
    listed = runner.invoke(cli, ["list-initializers", "--json", "--plugin", "noisy.py"])
    assert listed.exit_code == 0, listed.output
    assert "NoisyInit" in [item["name"] for item in json.loads(listed.stdout)]
    assert listed.stderr == "hello from the plugin\n"

    write("loud.py", NOISY.replace("NoisyInit", "LoudInit"))
    config = write("c.yaml", "plugins: [loud.py]\n" + MNIST_LIKE)
    printed = runner.invoke(cli, ["validate", str(config), "--print-config"])
    assert printed.exit_code == 0, printed.output
    assert yaml.safe_load(printed.stdout)["plugins"] == ["loud.py"]
    assert printed.stderr == "hello from the plugin\n"


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("import sys; sys.exit(3)", "called sys.exit(3)"),
        ("import sys; sys.exit()", "called sys.exit()"),
        ("raise SystemExit('bye')", "called sys.exit('bye')"),
        ("raise KeyboardInterrupt", "raised KeyboardInterrupt"),
    ],
)
def test_plugin_ending_the_program_at_import_is_a_plugin_error(
    runner, write, tmp_path, monkeypatch, line, what
):
    from kinit_cli.cli import cli

    monkeypatch.chdir(tmp_path)
    path = write("bad.py", f"import keras\n{line}\n").resolve()
    result = runner.invoke(cli, ["list-layers", "--plugin", "bad.py"])
    ending = (
        "; a plugin must not end the program" if what.startswith("called") else ""
    ) + " (run with --debug for the traceback)"
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {path}:2: plugin 'bad.py' {what} while being imported{ending}\n",
    )
    assert result.stdout == ""


@pytest.mark.slow
def test_a_real_ctrl_c_during_a_plugin_import_still_aborts(runner, write, tmp_path, monkeypatch):
    from kinit_cli.cli import cli

    monkeypatch.chdir(tmp_path)
    write(
        "slow.py",
        """\
        import os, signal, time
        os.kill(os.getpid(), signal.SIGINT)  # what a Ctrl-C delivers
        time.sleep(5)
        """,
    )
    # As a terminal's Ctrl-C finds it: a process started in the background of a shell
    # without job control (CI's, a `cmd &`) inherits SIGINT ignored, and no Ctrl-C arrives.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = runner.invoke(cli, ["list-layers", "--plugin", "slow.py"])
        assert (result.exit_code, result.stderr) == (130, "error: interrupted by SIGINT\n")
        assert signal_handler_is_default()
    finally:
        signal.signal(signal.SIGINT, previous)


def signal_handler_is_default() -> bool:
    import signal

    return signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """install(name, module_source) -> a real distribution in tmp_path whose `kinit.plugins`
    entry point `name` is the module `kinit_ep_<name>`, found by importlib.metadata."""
    from kinit_cli.registry import plugins as plugin_loading

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugin_loading, "ENTRY_POINT_FAILURES", {})
    monkeypatch.setattr(plugin_loading, "DISABLED", set())
    monkeypatch.setattr(plugin_loading, "UNKNOWN_DISABLED", set())
    monkeypatch.delenv(plugin_loading.DISABLE_ENV, raising=False)

    def install(name, source):
        info = site / f"kinit_ep_{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: kinit-ep-{name}\nVersion: 1.0\n"
        )
        (info / "entry_points.txt").write_text(f"[kinit.plugins]\n{name} = kinit_ep_{name}\n")
        path = site / f"kinit_ep_{name}.py"
        path.write_text(source)
        return path.resolve()

    return install


BROKEN = """\
import keras
class BrokenInit(keras.initializers.Initializer):
    pass
raise RuntimeError("license server unreachable")
"""


def test_a_broken_entry_point_is_a_warning_naming_its_package(runner, installed, write):
    import json

    from kinit_cli.cli import cli

    path = installed("broken", BROKEN)
    installed("fine", NOISY.replace('print("hello from the plugin")\n', ""))
    result = runner.invoke(cli, ["list-initializers", "--json"])
    assert result.exit_code == 0, result.output
    assert "NoisyInit" in [item["name"] for item in json.loads(result.stdout)]
    failure = (
        f"{path}:4: plugin 'broken (entry point kinit_ep_broken)' failed to import: "
        "RuntimeError: license server unreachable"
    )
    assert result.stderr == (
        f"warning: {failure}; kinit goes on without it (installed by the package "
        "kinit-ep-broken). Set KINIT_DISABLE_PLUGINS=broken to skip it.\n"
    )

    # A config that does not need it works; one naming what it would register says why not.
    assert runner.invoke(cli, ["validate", str(write("ok.yaml", MNIST_LIKE))]).exit_code == 0
    needs = write("needs.yaml", MNIST_LIKE.replace("ExampleRandomNormal", "BrokenInit"))
    refused = runner.invoke(cli, ["validate", str(needs)])
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        f"error: {needs}:9:42: model.layers[0].config.kernel_initializer.class_name: unknown "
        "initializer 'BrokenInit'. See `kinit list-initializers` for every initializer kinit "
        "knows (Keras built-ins and loaded plugins). If the installed plugin 'broken' defines "
        f"it, it is missing: {failure}."
    )


def test_kinit_disable_plugins_skips_entry_points_by_name(runner, installed, write, monkeypatch):
    from kinit_cli.cli import cli

    installed("broken", BROKEN)
    monkeypatch.setenv("KINIT_DISABLE_PLUGINS", " broken ,brokn")
    result = runner.invoke(cli, ["list-initializers", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: KINIT_DISABLE_PLUGINS names 'brokn', which no installed kinit.plugins "
        "entry point has\n"
    )
    needs = write("needs.yaml", MNIST_LIKE.replace("ExampleRandomNormal", "BrokenInit"))
    refused = runner.invoke(cli, ["validate", str(needs)])
    assert refused.exit_code == 2
    assert refused.stderr.strip().endswith(
        "(Keras built-ins and loaded plugins). KINIT_DISABLE_PLUGINS skips the installed "
        "plugin(s) 'broken'."
    )


def test_an_entry_point_ending_the_program_is_a_warning_too(runner, installed):
    from kinit_cli.cli import cli

    path = installed("quits", "import sys\nsys.exit(3)\n")
    result = runner.invoke(cli, ["list-losses", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: {path}:2: plugin 'quits (entry point kinit_ep_quits)' called sys.exit(3) "
        "while being imported; a plugin must not end the program; kinit goes on without it "
        "(installed by the package kinit-ep-quits). Set KINIT_DISABLE_PLUGINS=quits to skip it.\n"
    )


def _unblock_after(fifo, seconds: float) -> None:
    """Open `fifo` for writing after `seconds`, ending a read that would otherwise wait
    forever: a regression that opens the FIFO fails the test instead of hanging it."""
    import os
    import threading
    import time

    def unblock() -> None:
        time.sleep(seconds)
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=unblock, daemon=True).start()


@pytest.mark.parametrize(
    ("make", "spec", "kind", "hint"),
    [
        (
            lambda p: p.mkdir(),
            "plugs/",
            "a directory",
            "name the .py file inside it, or the package by its dotted module name",
        ),
        (
            lambda p: __import__("os").mkfifo(p),
            "pipe.py",
            "a named pipe (FIFO)",
            "a plugin is read from a regular .py file",
        ),
    ],
    ids=["directory", "fifo"],
)
def test_a_plugin_path_that_is_not_a_file_says_what_it_is(
    runner, tmp_path, monkeypatch, make, spec, kind, hint
):
    from kinit_cli.cli import cli

    monkeypatch.chdir(tmp_path)
    path = tmp_path / spec.rstrip("/")
    make(path)
    if kind.startswith("a named pipe"):
        _unblock_after(path, 30)
    result = runner.invoke(cli, ["list-layers", "--plugin", spec])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: plugin file '{spec}' is {kind}, not a file ({tmp_path / spec}); {hint}\n"
    )


def test_a_missing_plugin_file_is_not_found(runner, tmp_path, monkeypatch):
    from kinit_cli.cli import cli

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["list-layers", "--plugin", "gone.py"])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: plugin file 'gone.py' not found (looked for {tmp_path / 'gone.py'})\n",
    )
