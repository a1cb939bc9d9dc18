# Two entry points, each creating .venv and installing what it needs (torch first, pinned to the CPU build).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint docs tutorials

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

## demo: train IndiSeek on the built-in simulated CITE-seq data, write indiseek_simulated.h5mu
demo: $(VENV)/.installed
	$(BIN)/indiseek fit -o indiseek_simulated.h5mu

## test: run the test suite (unit tests, the method checks on simulated data, the real-data check, doctests)
test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

$(VENV)/.docs-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test,doc]"
	touch $@

## docs: build the Sphinx documentation (API, executed tutorials, benchmarks) with warnings as errors
docs: $(VENV)/.docs-installed
	MPLBACKEND=agg $(BIN)/sphinx-build -W --keep-going -b html -q docs docs/_build/html

## tutorials: re-execute the tutorial notebooks in place (needs ../shared/data for the bone-marrow one); MPLBACKEND
## is unset so that the kernel draws inline and the figures are saved with the outputs
tutorials: $(VENV)/.docs-installed
	cd tutorials && for nb in *.ipynb; do env -u MPLBACKEND ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace $$nb || exit 1; done
