# Two self-sufficient entry points: `make study` (the default study, report into reports/) and `make test`.
# Each creates the virtual environment .venv when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST_ARGS ?=
## the run scheduler: JOBS=N runs at once on this machine; LAUNCHER=slurm submits one Slurm job per run
JOBS     ?= 1
LAUNCHER ?= local
SCHED    := --jobs $(JOBS) --launcher $(LAUNCHER)

.PHONY: install study test test-quick export clean-nbs readme summary reports ablation comparison evidence covid resolution lessons docs

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

## the evidence: 3 seeds of DCAT, the single backbones, concatenation, DCAT without refinement and DCA, 1 of the other arms
comparison: $(STAMP)
	$(BIN)/dcat study pneumoniamnist --seeds 3 -m dcat -m effnet_only -m resnet_only -m concat -m dcat_norefine -m dca $(SCHED) $(ARGS)
	$(BIN)/dcat study pneumoniamnist --seeds 1 -m dcat_onedir -m drifa $(SCHED) $(ARGS)

## the paper's COVID-19 Radiography data at 96 px (near-duplicate groups kept in one split): 3 seeds of four arms
covid: $(STAMP)
	$(BIN)/dcat study covid19_radiography --seeds 3 -m dcat -m effnet_only -m resnet_only -m concat $(SCHED) $(ARGS)

## the resolution question on the Kermany folders: DCAT against EfficientNet-B4 alone at 48, 96 and 128 px, 3 seeds
## each (reports/kermany_pneumonia_<S>px/), then the summary's resolution figure
resolution: $(STAMP)
	for s in 48 96 128; do $(BIN)/dcat study kermany_pneumonia -p image_size=$$s --seeds 3 -m dcat -m effnet_only $(SCHED) $(ARGS) || exit 1; done
	$(BIN)/dcat summary

## every committed report: the comparison, fusion MC dropout, BreastMNIST, COVID-19, the Kermany resolutions, the
## U-Net study (ours, the authors' plain U-Net, U-Net + DCA), the summary
evidence: comparison covid resolution
	$(BIN)/dcat study pneumoniamnist --seeds 3 -p mc_dropout=fusion --reports-dir reports/mc_fusion $(SCHED) $(ARGS)
	$(BIN)/dcat study breastmnist --seeds 3 -p ood_set=pneumoniamnist.npz $(SCHED) $(ARGS)
	$(BIN)/dcat study kvasir_seg --seeds 3 -m unet -m unet_raw -m unet_dca $(SCHED) $(ARGS)
	$(BIN)/dcat summary

summary: $(STAMP)
	$(BIN)/dcat summary

## every committed run's page drawn again from its files alone (metrics.json, predictions.npz: no model, no checkpoint,
## no data), then the summary; a run whose files predate what its page draws is named and left as it is
reports: $(STAMP)
	$(BIN)/dcat render reports --jobs $(JOBS); status=$$?; $(BIN)/dcat summary; exit $$status

## the whole test suite: each notebook's tests, the CLI, papermill and the executors end to end (before a commit; CI)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## the edit-test loop (a few minutes): import layers, settings, statistics, bad input, data sources
test-quick: $(STAMP)
	$(BIN)/python -m pytest tests/test_layers.py tests/test_settings.py tests/test_bad_input.py tests/test_data_sources.py -q $(PYTEST_ARGS)
	$(BIN)/nbdev-test nbs/08_stats.ipynb

## developer helpers: export notebooks to dcat/, clean them, regenerate README.md from nbs/index.ipynb
export: $(STAMP)
	$(BIN)/nbdev-export

clean-nbs: $(STAMP)
	$(BIN)/python tools/compact_figures.py nbs/*.ipynb   # the figures at 256 colours, as the reports keep theirs
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-clean --fname nbs/studies

readme: $(STAMP)
	$(BIN)/python tools/make_readme.py

## execute every lesson notebook in place (real data from the data directory setting), then strip metadata; the inline
## backend even when MPLBACKEND=Agg is exported (as .ci/run does), so the figures are kept in the outputs
lessons: $(STAMP)
	for nb in nbs/index.ipynb nbs/[0-9]*.ipynb; do \
	  echo "== $$nb"; MPLBACKEND=module://matplotlib_inline.backend_inline $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1200 $$nb || exit 1; \
	done
	$(BIN)/python tools/compact_figures.py nbs/*.ipynb   # the figures at 256 colours, as the reports keep theirs
	$(BIN)/nbdev-clean

## the lesson pages, rendered from the executed notebooks into _docs/ (git-ignored; open _docs/index.html). --strict: a
## warning (a navigation entry without its notebook) fails the build; not -q, which hides the warnings from --strict
## too (mkdocs 1.6). tests/test_docs.py runs the same build
docs: $(STAMP)
	$(BIN)/python -c 'import mkdocs_jupyter, material' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -f mkdocs.yml
