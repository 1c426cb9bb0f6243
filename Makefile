# Two self-sufficient entry points: `make study` (the default study, report into reports/) and `make test`.
# Each creates the virtual environment .venv when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: install study test export clean-nbs readme summary ablation

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

## the default study: DCAT on PneumoniaMNIST, rendered into reports/pneumoniamnist/dcat/
study: $(STAMP)
	$(BIN)/dcat study $(ARGS)

## every model arm on PneumoniaMNIST under the same budget and seed, then reports/summary.md
ablation: $(STAMP)
	$(BIN)/dcat study pneumoniamnist -m all $(ARGS)

summary: $(STAMP)
	$(BIN)/dcat summary

## the whole test suite: each notebook's tests, the CLI, papermill end to end
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## developer helpers: export notebooks to dcat/, clean them, regenerate README.md from nbs/index.ipynb
export: $(STAMP)
	$(BIN)/nbdev-export

clean-nbs: $(STAMP)
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-clean --fname nbs/studies

readme: $(STAMP)
	$(BIN)/python tools/make_readme.py
