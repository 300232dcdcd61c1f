# One command to set up and test (`make test`), one to run the main job (`make demo`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STORE ?= demo.duckdb
FASHION_MNIST_DIR ?= $(wildcard ../shared/data/fashion-mnist)
export FASHION_MNIST_DIR

.PHONY: install test lint typecheck pytest demo bench bench-lenet clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,keras,plot,ray,serve]"
	touch $(STAMP)

lint: install
	$(BIN)/ruff check hpostore analysis tests examples benchmarks
	$(BIN)/ruff format --check hpostore analysis tests examples benchmarks

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# The main job: LeNet on Fashion-MNIST, random search on a short budget,
# logged to $(DEMO_STORE); then the trials as the log holds them.
demo: install
	$(BIN)/python examples/lenet_fashion_mnist.py --store $(DEMO_STORE) --study demo-random \
		--trials 4 --epochs 1 --train-subset 12000
	$(BIN)/hpostore trials $(DEMO_STORE) demo-random
	$(BIN)/python examples/analyse_study.py $(DEMO_STORE) demo-random --out-dir .

# Every benchmark with its targets beside Optuna's figures, measured in the same run (README,
# "Performance"): about 35 minutes on the 2-core machine, 10 of them scale.py's 1M-trial case.
# Run it on a quiet machine. LeNet's seconds per epoch: `make bench-lenet` (~10 minutes).
bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/read_path.py
	$(BIN)/python benchmarks/parallel.py
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/search_quality.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/scale.py --sizes 1000,10000,100000,1000000
	$(BIN)/python benchmarks/scheduler_scaling.py --study
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/large_categorical.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/serve.py --ask-tell 50

# Seconds per LeNet epoch on the full Fashion-MNIST ($(FASHION_MNIST_DIR); Keras downloads it
# when unset), textbook fit vs tf.data vs tf.data + XLA, 1 worker x 2 threads vs 2 x 1.
bench-lenet: install
	$(BIN)/python benchmarks/lenet_epoch.py $(if $(FASHION_MNIST_DIR),--data-dir $(FASHION_MNIST_DIR)) --epochs 3

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
