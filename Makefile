# The two commands of the README: `make run` (the service on the shipped model) and `make test`.
# Both create the virtual environment .venv and install into it first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint train evaluate export benchmark container-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Service-only install: what `make run` and the container need (no TensorFlow).
$(VENV)/.service-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[service,cpu,client]'
	touch $@

# Everything: training (TensorFlow, tf2onnx), service, client, dev tools.
$(VENV)/.all-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[service,cpu,client,training,dev]'
	touch $@ $(VENV)/.service-installed

run: $(VENV)/.service-installed
	$(BIN)/carmask-serve

test: $(VENV)/.all-installed
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(VENV)/.all-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The shipped model's recipe (see models/README.md).
train: $(VENV)/.all-installed
	$(BIN)/carmask-train --run-dir runs/w8 --epochs 40 --batch-size 8 --base-width 8

evaluate: $(VENV)/.all-installed
	$(BIN)/carmask-evaluate models/carmask-unet.onnx --run-dir runs/w8 --out runs/w8/eval-onnx

benchmark: $(VENV)/.all-installed
	$(BIN)/python benchmarks/model_latency.py
	$(BIN)/python benchmarks/predict_throughput.py
	$(BIN)/python benchmarks/service_latency.py

container-test:
	bash docker/container-test.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
