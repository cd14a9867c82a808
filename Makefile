# Set-up and everyday commands. Every target builds or reuses the virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## train the default (class-conditional) preset on the embedded digits, then a 10 x 10 grid, a row per digit
	$(BIN)/transgan train --out runs/demo
	$(BIN)/transgan sample runs/demo --num 100 --grid --out runs/demo/final-samples

test: $(STAMP)  ## the test suite (CPU), a test file per core at a time
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/train_speed.py

clean-venv:
	rm -rf $(VENV)
