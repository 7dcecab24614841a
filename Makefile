# Two commands: `make run` serves the app, `make test` runs the whole suite. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# Which torch build: the default takes the CPU wheel this project is developed with. Elsewhere, e.g.
#   make run TORCH_INDEX=https://download.pytorch.org/whl/cpu      (CPU only, small)
#   make run TORCH_INDEX=https://download.pytorch.org/whl/cu128    (CUDA 12.8)
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
DATA ?= ../shared/data/cifar10-jpeg.tar.gz
EPOCHS ?= 160
# Both cores of the 2-core development machine: 5.4 s an epoch idle, against 7.4 s on one thread.
THREADS ?= 2
WEIGHTS ?= app/weights/cifar_net.pth

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint typecheck unit explore browser-deps train subsets report wheel accuracy bench soak mutants format messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m app --host $(HOST) --port $(PORT)

test: lint typecheck unit

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Hypothesis and schemathesis run the derandomised "ci" profile (tests/conftest.py): the same
# examples on every run, so a red run is reproducible. `make explore` hunts with fresh random
# examples, ten times as many, in the tests that use hypothesis; failures it finds are kept in
# .hypothesis/ and replayed first next time (HYPOTHESIS_PROFILE=explore works with any pytest).
unit: $(VENV)/.dev browser-deps
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest

explore: $(VENV)/.dev
	HYPOTHESIS_PROFILE=explore $(BIN)/pytest -m hypothesis

# The browser tests drive Debian's chromium (and CJK fonts, so Chinese pages render in screenshots);
# install them when missing and we may (root on Debian).
browser-deps:
	@command -v chromium >/dev/null 2>&1 && { dpkg -s fonts-noto-cjk >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and fonts-noto-cjk for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else echo "chromium not found: the browser tests will be skipped (apt-get install chromium)"; fi; }

train: $(VENV)/.installed
	$(BIN)/python -m app.train --data $(DATA) --epochs $(EPOCHS) --seed 0 --threads $(THREADS) --out $(WEIGHTS)

# The CIFAR-10 subsets shipped in app/training/subsets (the only use of $(DATA) outside training).
subsets: $(VENV)/.installed
	$(BIN)/python -m app.training.subset build --data $(DATA)

# The HTML training report (train writes it too) for the metrics beside WEIGHTS, without training.
report: $(VENV)/.installed
	$(BIN)/python -m app.training.report $(WEIGHTS:.pth=.json)

# The wheel (templates/, static/ and the weights inside) in dist/.
wheel: $(VENV)/.dev
	$(PIP) wheel --no-deps --no-build-isolation --wheel-dir dist .

# Test accuracy of the served weights, through POST /predict, on the 10,000 test images.
accuracy: $(VENV)/.dev
	$(BIN)/python -m bench.accuracy --data $(DATA)

bench: $(VENV)/.dev
	$(BIN)/python -m bench

soak: $(VENV)/.dev
	$(BIN)/python -m bench.soak

# Mutation testing (mutmut): each small change to the code in MUTATE (folders or .py files) must
# make a test in TESTS fail. It runs in a copy of the tree in MUTMUT_DIR, so the checkout is left
# alone; `cd $(MUTMUT_DIR) && mutmut show NAME` shows a mutant. bench/README.md has the last run.
#   make mutants MUTATE=app/model/images.py TESTS=tests/model
MUTATE ?= app/engine
TESTS ?= tests/engine
MUTMUT_DIR ?= $(or $(TMPDIR),/tmp)/cross-entropy-mutants
MUTMUT_CHILDREN ?= 2
comma := ,

mutants: $(VENV)/.dev
	rm -rf $(MUTMUT_DIR) && mkdir -p $(MUTMUT_DIR)
	tar -c --exclude=__pycache__ app tests templates static pyproject.toml | tar -x -C $(MUTMUT_DIR)
	printf '%s\n' '' '[tool.mutmut]' 'source_paths = ["app"]' \
	  'only_mutate = [$(foreach m,$(MUTATE),"$(if $(filter %.py,$(m)),$(m),$(m:%/=%)/*)"$(comma))]' \
	  'pytest_add_cli_args_test_selection = [$(foreach t,$(TESTS),"$(t)"$(comma))]' \
	  'pytest_add_cli_args = ["-x", "-q", "-p", "no:cacheprovider"]' \
	  'also_copy = ["templates", "static"]' 'process_isolation = "forkserver"' \
	  >> $(MUTMUT_DIR)/pyproject.toml
	cd $(MUTMUT_DIR) && OMP_NUM_THREADS=1 $(abspath $(BIN))/mutmut run --max-children $(MUTMUT_CHILDREN)
	cd $(MUTMUT_DIR) && $(abspath $(BIN))/mutmut results

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Translations (app/web/i18n.py): extract every message of the templates and app/web (babel.cfg),
# update the catalogues (new messages come in untranslated, changed ones fuzzy, gone ones are
# dropped) and compile them. Translate what zh_CN lacks, then run it again: the .mo are committed.
LOCALE := app/web/locale
messages: $(VENV)/.dev
	$(BIN)/pybabel -q extract -F babel.cfg -o $(LOCALE)/messages.pot -w 100 --sort-output \
	  --add-location=file --project=cross-entropy-explainer --version=0.1.0 .
	$(BIN)/pybabel -q update -i $(LOCALE)/messages.pot -d $(LOCALE) -w 100 --ignore-obsolete
	$(BIN)/pybabel compile -d $(LOCALE) --statistics

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
