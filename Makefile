# glacier — two commands matter: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The exact versions CI tests; users installing the package get pyproject.toml's ranges.
CONSTRAINTS := requirements/constraints-py311.txt
export WANDB_MODE ?= offline
export HYDRA_FULL_ERROR ?= 0

.PHONY: setup check-deps lock demo test test-slow lint bench clean notebooks

# pip (not uv/poetry): the pinned torch/torchvision wheels come from local files here.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev,bench]'
	touch $(STAMP)

setup: $(STAMP)

# A resolver accepts the dependency ranges on Python 3.11-3.13 (queries the package index).
check-deps: setup
	bash .ci/check-deps $(VENV)

# Rewrite $(CONSTRAINTS) from the packages installed in $(VENV).
lock: setup
	bash .ci/lock $(VENV)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -m "not slow" -q

test-slow: setup
	$(BIN)/pytest -m slow -q

# The whole job on the embedded Everest sample: preprocess (spatially held-out split), train,
# test, predict the full scene with MC dropout against the RGI outlines, summarize.
DEMO_DIR := logs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)
demo: setup
	$(BIN)/python preprocess.py split=everest_geographic
	$(BIN)/python train.py experiment=demo hydra.run.dir=$(DEMO_DIR)/train
	$(BIN)/python predict.py ckpt_path=$(DEMO_DIR)/train/checkpoints/best.ckpt labels=data \
		mc_samples=8 out_dir=$(DEMO_DIR)/predict hydra.run.dir=$(DEMO_DIR)/predict
	@$(BIN)/glacier report run_dir=$(DEMO_DIR)

# Re-execute notebooks/*.ipynb and save them with their outputs (figures included), so they
# can be read without running them; `make test` executes them too (tests/test_notebooks.py).
notebooks: setup
	$(BIN)/python tests/test_notebooks.py

bench: setup
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf data logs outputs multirun wandb
