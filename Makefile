# The two commands: `make` (results, figures, then the report) and `make test`.
# Both create the virtual environment in .venv first if it is missing.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build pinned here is the one these project machines carry on disk; override elsewhere.
TORCH ?= torch==2.14.1 torchvision==0.29.1
ENV_STAMP := $(VENV)/.installed

.PHONY: all report results figures test clean-cache

all: report

$(ENV_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[report,test]"
	touch $@

env: $(ENV_STAMP)

# Every experiment's results, every figure, then `quarto render` (HTML and PDF).
report: $(ENV_STAMP)
	$(PY) -m mnist_scratch report

results: $(ENV_STAMP)
	$(PY) -m mnist_scratch run

figures: $(ENV_STAMP)
	$(PY) -m mnist_scratch figure --all

test: $(ENV_STAMP)
	$(PY) -m pytest

clean-cache:
	rm -rf .cache/runs
