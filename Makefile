# The front door: `make serve` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 3000
RUNTIME   ?= onnx
BENTO     := wine-quality$(if $(filter native,$(RUNTIME)),-native)
IMAGE     ?= $(BENTO):latest
IMAGE_TAR ?= build/wine-quality-image.tar
HOST   ?= 127.0.0.1
OVERLAY   ?= dev
K8S_IMAGE ?=
REPLICAS  ?= 3
K8S_TAG   = $(lastword $(subst :, ,$(K8S_IMAGE)))
K8S_NAME  = $(patsubst %:$(K8S_TAG),%,$(K8S_IMAGE))
K8S_CHALLENGER_IMAGE ?=
K8S_CHALLENGER_TAG  = $(lastword $(subst :, ,$(K8S_CHALLENGER_IMAGE)))
K8S_CHALLENGER_NAME = $(patsubst %:$(K8S_CHALLENGER_TAG),%,$(K8S_CHALLENGER_IMAGE))
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install models train serve test test-unit test-e2e lint load-test bench bench-peers evaluate bento image \
	image-save k8s k8s-measure replicas replicas-down rollout rollback loop fuzz soak chaos stall docs migrate clean

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,tracking,docs]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install the pinned dependencies

models: install ## Train the models the store lacks (pinned in model-pins.json)
	$(BIN)/python -m train

train: install ## Retrain every model kind (regressors and classifier) and pin the new versions
	$(BIN)/python -m train --all

serve: models ## Install, train if needed, and serve on http://$(HOST):$(PORT)
	$(BIN)/bentoml serve service:WineQuality --host $(HOST) --port $(PORT)

migrate: install ## Upgrade the capture database (WINE_CAPTURE_URL, else var/capture.db); serving also does it
	$(BIN)/python -m wine_quality.capture migrate

test: install ## Install and run the whole test suite
	$(BIN)/python -m pytest

test-unit: install ## Only the tests that need no server
	$(BIN)/python -m pytest -m "not integration and not load and not e2e"

test-e2e: install ## Only the end-to-end test: bento, image, container vs bentoml serve (minutes)
	$(BIN)/python -m pytest -m e2e

evaluate: install ## Nested repeated CV of every model vs the paper (~30 min on 2 cores): reports/EVALUATION.md
	$(BIN)/python -m train.evaluate $(EVAL_ARGS)

.PHONY: train-feedback promote
train-feedback: install ## Retrain every kind with the capture database's tasted wines, pinning none (then make promote)
	$(BIN)/python -m train --with-feedback

promote: install ## Gate a challenger, pin it if no worse: make promote TAG=name:version [KIND=sklearn] [PROMOTE_ARGS=--force]
	@test -n "$(TAG)" || { echo "give TAG=name:version (and KIND=, default sklearn)" >&2; exit 2; }
	$(BIN)/python -m train.promote --kind $(or $(KIND),sklearn) --challenger $(TAG) $(PROMOTE_ARGS)

bento: models ## Build the bento of the pinned models (bentoml build; RUNTIME=native adds torch, scikit-learn)
	$(BIN)/python deploy/bento.py --runtime $(RUNTIME)

image: bento ## Build the OCI image with bentoml containerize (Docker, else podman, set up here if needed)
	$(BIN)/python deploy/image.py build --bento $(BENTO):latest

image-save: install ## Write $(IMAGE) as a docker-archive tarball, $(IMAGE_TAR), for docker/podman load
	$(BIN)/python deploy/image.py save --image $(IMAGE) --output $(IMAGE_TAR)

k8s: ## Print the manifests of OVERLAY=dev|prod|canary; K8S_IMAGE=REGISTRY/wine-quality:VERSION pins the image
ifeq ($(K8S_IMAGE)$(K8S_CHALLENGER_IMAGE),)
	@kubectl kustomize deploy/k8s/overlays/$(OVERLAY)
else
	@for image in $(K8S_IMAGE) $(K8S_CHALLENGER_IMAGE); do echo "$$image" | grep -Eq '^[^@]+:[^:/@]+$$' || \
	  { echo "K8S_IMAGE and K8S_CHALLENGER_IMAGE must be NAME:TAG, e.g. registry.example.com/team/wine-quality:1.0" >&2; \
	    exit 2; }; done
	@mkdir -p build/k8s/$(OVERLAY)
	@{ echo "resources: [../../../deploy/k8s/overlays/$(OVERLAY)]"; echo "images:"; \
	  if [ -n "$(K8S_IMAGE)" ]; then \
	    echo '  - {name: wine-quality, newName: "$(K8S_NAME)", newTag: "$(K8S_TAG)"}'; fi; \
	  if [ -n "$(K8S_CHALLENGER_IMAGE)" ]; then \
	    echo '  - {name: wine-quality-challenger, newName: "$(K8S_CHALLENGER_NAME)", newTag: "$(K8S_CHALLENGER_TAG)"}'; fi; \
	} > build/k8s/$(OVERLAY)/kustomization.yaml
	@kubectl kustomize build/k8s/$(OVERLAY)
endif

k8s-measure: install ## CPU and memory of one replica of IMAGE, idle and under load: the pod's resources (~1 min)
	$(BIN)/python deploy/measure.py --image $(IMAGE)

replicas: install ## REPLICAS=3 containers of IMAGE behind HAProxy, one PostgreSQL for capture; Ctrl-C removes them
	$(BIN)/python deploy/replicas.py up --image $(IMAGE) --replicas $(REPLICAS) $(REPLICAS_ARGS)

replicas-down: ## Remove what `make replicas REPLICAS_ARGS=--detach` left running
	$(BIN)/python deploy/replicas.py down

rollout: install ## Move the replicas to IMAGE one at a time, each drained first, under load: counts; exit 1 on a failure
	$(BIN)/python deploy/replicas.py rollout --image $(IMAGE) $(ROLLOUT_ARGS)

rollback: install ## Move the replicas back to the image they ran before the last rollout, the same way
	$(BIN)/python deploy/replicas.py rollback $(ROLLOUT_ARGS)

loop: models ## Serve replicas, grade held-back wines, send their grades, retrain and gate, roll out: a table (~6 min)
	$(BIN)/python deploy/loop.py $(LOOP_ARGS)

lint: install ## ruff (lint and format check) and mypy on the shared code and service.py
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

load-test: models ## Serve on a free port, run locust headless (LOAD_ARGS="--run-time 60s"), reports in results/
	$(BIN)/python -m load_tests.run $(LOAD_ARGS)

bench: models bench-peers ## Ours, its variants, the seed and MLServer in one run (~11 min): BENCHMARKS.md, .json, .png
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-peers: install ## MLServer 1.7.1 in its own venv, .venv-peers/mlserver (make bench does this when missing)
	$(BIN)/python -m benchmarks.peers

docs: install ## Build the docs site (mkdocs, strict: a broken link fails) into build/site
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir build/site

clean: ## Remove caches and reports (not the venv or the model store)
	rm -rf .pytest_cache results build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +

fuzz: models ## A longer schemathesis campaign (all checks) against a real server: FUZZ_EXAMPLES per operation
	$(BIN)/python -m load_tests.fuzz --max-examples $(or $(FUZZ_EXAMPLES),2000)

soak: models ## Ten minutes at ~70 % of measured capacity, mixed load: failures, RSS growth, p99; then make chaos
	$(BIN)/python -m load_tests.soak $(SOAK_ARGS)

chaos: models ## SIGKILL the model services 30 times in turn under mixed load (5 s clients): recovery, failures
	$(BIN)/python -m load_tests.chaos $(CHAOS_ARGS)

stall: models ## 2,000 connections stall mid-body, then mid-headers (60 s each) beside 8 clients: 408s, p99 (~3 min)
	$(BIN)/python -m load_tests.stall $(STALL_ARGS)
