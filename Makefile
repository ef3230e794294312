# glacier — two commands matter: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The exact versions CI tests; users installing the package get pyproject.toml's ranges.
CONSTRAINTS := requirements/constraints-py311.txt
export WANDB_MODE ?= offline
export HYDRA_FULL_ERROR ?= 0

.PHONY: setup check-deps lock demo demo-docs demo-seeds demo-ensemble demo-change test test-slow test-slurm lint \
	bench clean notebooks gpu-check gpu-bundle

# pip (not uv/poetry): the pinned torch/torchvision wheels come from local files here.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# this project's distribution was called "glacier" before it became hkh-glacier-mapping
	$(BIN)/python -m pip uninstall -q -y glacier 2>/dev/null || true
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev,bench]'
	touch $(STAMP)

setup: $(STAMP)

# A resolver accepts the dependency ranges on Python 3.11-3.14, from wheels (queries the index).
check-deps: setup
	bash .ci/check-deps $(VENV)

# Rewrite $(CONSTRAINTS) from the packages installed in $(VENV).
lock: setup
	bash .ci/lock $(VENV)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -m "not slow" -q

test-slow: setup
	$(BIN)/pytest -m slow -q

# The cluster path on a real one-node Slurm that the tests start and stop (tests/slurm/start.sh:
# munged, slurmctld, slurmd; it installs Debian's slurm-wlm and munge with apt-get when missing).
# Without root or apt-get the tests skip, printing why; SLURM_REQUIRED=1 (CI) makes that a failure.
test-slurm: setup
	$(BIN)/pytest -q -rs tests/slurm

# The whole job on the embedded Everest sample: preprocess (spatially held-out split), train,
# test, predict the full scene with MC dropout against the RGI outlines, summarize. Repeatable:
# two runs give the same metrics (experiment=demo fixes seed, threads and kernels). Everything
# it writes lands under logs/ (the processed sample is shared by every demo run in logs/demo/).
GLACIER := $(BIN)/python -m glacier.cli
DEMO_ROOT := logs/demo
DEMO_DATA := $(DEMO_ROOT)/processed
DEMO_DIR := $(DEMO_ROOT)/$(shell date +%Y-%m-%d_%H-%M-%S)
DEMO_SEEDS ?= 1 2 3
SEEDS_DIR := logs/demo-seeds/$(shell date +%Y-%m-%d_%H-%M-%S)
DEMO_PREPROCESS := $(GLACIER) preprocess split=everest_geographic paths.processed_dir=$(DEMO_DATA)
# Idle OpenMP threads sleep instead of spinning: on a shared, busy CPU spinning threads made
# each training step 4-7x slower; results are the same either way.
export OMP_WAIT_POLICY ?= PASSIVE

demo: setup
	$(DEMO_PREPROCESS) hydra.run.dir=$(DEMO_DIR)/preprocess
	$(GLACIER) train experiment=demo paths.processed_dir=$(DEMO_DATA) hydra.run.dir=$(DEMO_DIR)/train
	$(GLACIER) predict ckpt_path=$(DEMO_DIR)/train/checkpoints/best.ckpt labels=data \
		inventory=data mc_samples=8 out_dir=$(DEMO_DIR)/predict hydra.run.dir=$(DEMO_DIR)/predict
	@$(GLACIER) report run_dir=$(DEMO_DIR)

# Refresh docs/demo_metrics.json (the README's demo table) from the latest `make demo` run.
demo-docs: setup
	@latest=$$(ls -d $(DEMO_ROOT)/20*/ 2>/dev/null | sort | tail -1); \
	test -n "$$latest" || { echo "no run in $(DEMO_ROOT)/: run make demo first" >&2; exit 1; }; \
	$(GLACIER) report run_dir=$${latest%/} json_out=docs/demo_metrics.json markdown=true

# The demo once per seed (DEMO_SEEDS="1 2 3"), then mean ± std over the seeds.
demo-seeds: setup
	$(DEMO_PREPROCESS) hydra.run.dir=$(SEEDS_DIR)/preprocess
	set -e; for seed in $(DEMO_SEEDS); do \
		run=$(SEEDS_DIR)/seed_$$seed; \
		$(GLACIER) train experiment=demo seed=$$seed paths.processed_dir=$(DEMO_DATA) \
			hydra.run.dir=$$run/train; \
		$(GLACIER) predict ckpt_path=$$run/train/checkpoints/best.ckpt labels=data inventory=data mc_samples=8 \
			seed=$$seed out_dir=$$run/predict hydra.run.dir=$$run/predict; \
	done
	@$(GLACIER) report run_dir=$(SEEDS_DIR) json_out=$(SEEDS_DIR)/seeds.json

# Glacier change on the embedded sample against a generated second date: the latest make demo's
# checkpoint maps a copy of the scene dated 2010-11-04 in which its 10 largest glaciers lost a
# 90 m rim (scripts/second_date.py; the known loss in lost.csv), then glacier change compares
# that map with the demo's map of 2000-10-30, per glacier against the RGI outlines.
CHANGE_DIR := logs/demo-change/$(shell date +%Y-%m-%d_%H-%M-%S)

demo-change: setup
	@latest=$$(ls -d $(DEMO_ROOT)/20*/ 2>/dev/null | sort | tail -1); latest=$${latest%/}; \
	test -f "$$latest/predict/per_glacier.csv" || { echo "no make demo run with per-glacier areas in $(DEMO_ROOT)/: run make demo first" >&2; exit 1; }; \
	set -- $$($(BIN)/python scripts/second_date.py $(CHANGE_DIR)/scene); \
	$(GLACIER) predict ckpt_path=$$latest/train/checkpoints/best.ckpt "input=[$$1,$$2]" \
		inventory=$$3 mc_samples=8 out_dir=$(CHANGE_DIR)/predict hydra.run.dir=$(CHANGE_DIR)/predict && \
	$(GLACIER) change before=$$latest/predict after=$(CHANGE_DIR)/predict inventory=$$3 \
		out_dir=$(CHANGE_DIR)/change hydra.run.dir=$(CHANGE_DIR)/change

# Cross-validation on the embedded sample: 5 spatial folds around the same held-out test strip
# (split=everest_folds), each trained as make demo trains; the checkpoint policy chosen on the
# folds' mean dev curve; the 5 folds' ensemble tested (cv.json) and mapping the scene; the report
# prints single models (mean ± std over folds) and the ensemble side by side.
ENSEMBLE_DIR := logs/demo-ensemble/$(shell date +%Y-%m-%d_%H-%M-%S)
ENSEMBLE_DATA := logs/demo-ensemble/processed
DEMO_FOLDS ?= 0,1,2,3,4

demo-ensemble: setup
	$(GLACIER) preprocess split=everest_folds paths.processed_dir=$(ENSEMBLE_DATA) \
		hydra.run.dir=$(ENSEMBLE_DIR)/preprocess
	$(GLACIER) train -m experiment=demo split=everest_folds 'split.fold=$(DEMO_FOLDS)' checkpoint=cv \
		paths.processed_dir=$(ENSEMBLE_DATA) hydra.sweep.dir=$(ENSEMBLE_DIR)/train
	$(GLACIER) predict ckpt_path=$(ENSEMBLE_DIR)/train labels=data mc_samples=8 \
		out_dir=$(ENSEMBLE_DIR)/predict hydra.run.dir=$(ENSEMBLE_DIR)/predict
	@$(GLACIER) report run_dir=$(ENSEMBLE_DIR) json_out=$(ENSEMBLE_DIR)/ensemble.json

# Re-execute notebooks/*.ipynb and save them with their outputs (figures included), so they
# can be read without running them; `make test` executes them too (tests/test_notebooks.py).
notebooks: setup
	$(BIN)/python tests/test_notebooks.py

bench: setup
	$(BIN)/python -m benchmarks.run

# On a machine with a GPU and no network: the CUDA tests, the demo on the GPU (trainer=gpu, then
# predict with 8 MC passes) and the GPU bench rows, in < 5 minutes → $(GPU_CHECK_OUT)/gpu_check.json.
# Uses the machine's own python3 and torch, plus the packages it lacks from .gpu/site.tar.xz
# (made here by `make gpu-bundle`, with the package index; carry it along).
GPU_CHECK_OUT ?= gpu-check
gpu-check:
	bash scripts/gpu_check.sh $(GPU_CHECK_OUT)

gpu-bundle: setup
	bash scripts/gpu_bundle.sh

clean:
	rm -rf data logs outputs multirun wandb
