# The front door: `make serve` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 3000
RUNTIME   ?= onnx
BENTO     := wine-quality$(if $(filter native,$(RUNTIME)),-native)
IMAGE     ?= $(BENTO):latest
IMAGE_TAR ?= build/wine-quality-image.tar
HOST   ?= 127.0.0.1
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install models train serve test test-unit test-e2e lint load-test bench evaluate bento image image-save clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,tracking]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install the pinned dependencies

models: install ## Train the models the store lacks (pinned in models.lock.json)
	$(BIN)/python -m train

train: install ## Retrain both models and pin the new versions
	$(BIN)/python -m train --all

serve: models ## Install, train if needed, and serve on http://$(HOST):$(PORT)
	$(BIN)/bentoml serve service:WineQuality --host $(HOST) --port $(PORT)

test: install ## Install and run the whole test suite
	$(BIN)/python -m pytest

test-unit: install ## Only the tests that need no server
	$(BIN)/python -m pytest -m "not integration and not load and not e2e"

test-e2e: install ## Only the end-to-end test: bento, image, container vs bentoml serve (minutes)
	$(BIN)/python -m pytest -m e2e

evaluate: install ## Nested repeated CV of every model vs the paper (~10 min on 2 cores): reports/EVALUATION.md
	$(BIN)/python -m train.evaluate $(EVAL_ARGS)

bento: models ## Build the bento of the pinned models (bentoml build; RUNTIME=native adds torch, scikit-learn)
	$(BIN)/python deploy/bento.py --runtime $(RUNTIME)

image: bento ## Build the OCI image with bentoml containerize (Docker, else podman, set up here if needed)
	$(BIN)/python deploy/image.py build --bento $(BENTO):latest

image-save: install ## Write $(IMAGE) as a docker-archive tarball, $(IMAGE_TAR), for docker/podman load
	$(BIN)/python deploy/image.py save --image $(IMAGE) --output $(IMAGE_TAR)

lint: install ## ruff (lint and format check) and mypy on the shared code and service.py
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

load-test: models ## Serve on a free port, run locust headless (LOAD_ARGS="--run-time 60s"), reports in results/
	$(BIN)/python -m load_tests.run $(LOAD_ARGS)

bench: models ## Benchmark every variant side by side (needs wrk); writes BENCHMARKS.md and .png
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean: ## Remove caches and reports (not the venv or the model store)
	rm -rf .pytest_cache results build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
