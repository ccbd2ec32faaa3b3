# The whole set-up: `make demo` and `make test` create .venv when needed and install kinit into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two installs: the demo needs kinit alone (TensorFlow); the tests need the JAX and torch
# backends, pytest and the benchmarks' libraries too.
CORE := $(VENV)/.kinit-core
STAMP := $(VENV)/.kinit-installed
# torch as the tests install it: 2.13.0, which pip takes from a CPU wheel where the machine
# keeps one (a find-links folder); elsewhere PyPI's build for the platform. TORCH=torch
# takes pip's own choice.
TORCH ?= torch==2.13.0

.PHONY: install demo examples test test-fast lint format bench clean

install: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kinit needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(CORE)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet '$(TORCH)' -e '.[dev,jax,torch]'
	touch $(STAMP) $(CORE)

demo: $(CORE)
	$(BIN)/kinit train configs/digits.yaml

# The data of configs/table.yaml and configs/images.yaml, in configs/data/ (README, Train on
# your own data).
examples: $(CORE)
	$(BIN)/python configs/make_examples.py

# Tests run in JOBS workers (pytest-xdist), each test file whole in one of them, so a file's
# shared fixtures (a trained run) are made once. test-fast leaves out the tests marked slow
# (those that start kinit or TensorFlow in a process of their own, or train for seconds).
JOBS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(JOBS) --dist loadfile

test: install
	$(PYTEST)

test-fast: install
	$(PYTEST) -m "not slow"

lint: install
	$(BIN)/ruff check kinit_cli tests
	$(BIN)/ruff format --check kinit_cli tests

format: install
	$(BIN)/ruff format kinit_cli tests
	$(BIN)/ruff check --fix kinit_cli tests

# Benchmarks print figures (see BENCHMARKS.md); DATA=/usr/share/datasets/fashion-mnist
# uses real images instead of synthetic ones.
bench: install
	$(BIN)/python bench/train_vs_fit.py $(if $(DATA),--data $(DATA))
	$(BIN)/python bench/inspect_speed.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/printing_overhead.py $(if $(DATA),--data $(DATA))
	$(BIN)/python bench/table_read.py
	$(BIN)/python bench/image_folder.py
	$(BIN)/python bench/predict_speed.py
	$(BIN)/python bench/sweep_speed.py
	$(BIN)/python bench/sequential_build.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
