# Two commands matter: `make run` (everything, then the service with its dashboard) and
# `make test` (everything the tests need, then the tests). The rest are their steps.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PORT   ?= 8000
STREAM_PORT ?= 5001

.PHONY: run test venv system-deps data eda model compare bench check-deploy clean help

help:
	@echo "make run    - set up, generate data, train, start stream + app (dashboard on :$(PORT))"
	@echo "make test   - set up (incl. Postgres, Chromium) and run the whole test suite"
	@echo "make bench  - measure speed and memory, print the table"

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# System packages the tests use (Postgres server, Chromium, shellcheck, wrk, nginx, systemd-analyze,
# curl, DejaVu fonts: see scripts/system-deps.sh); root only.
system-deps:
	bash scripts/system-deps.sh

data/synthetic.json: synth.py | $(STAMP)
	$(BIN)/python synth.py --n 14337 --seed 0 --out $@

data/stream_events.json: synth.py | $(STAMP)
	$(BIN)/python synth.py --n 2000 --seed 7 --live --out $@

data: data/synthetic.json data/stream_events.json

eda: venv
	$(BIN)/python eda.py

# `make run` and `make bench` train only when there is no model; `make model` always retrains.
models/model.pkl: | $(STAMP)
	$(BIN)/python model.py --out $@

model: venv
	$(BIN)/python model.py --out models/model.pkl

compare: venv
	$(BIN)/python model.py --compare

run: venv data eda models/model.pkl
	PORT=$(PORT) STREAM_PORT=$(STREAM_PORT) bash scripts/run-local.sh

test: venv system-deps
	$(BIN)/python -m pytest

bench: venv system-deps models/model.pkl
	$(BIN)/python bench.py

check-deploy: venv system-deps
	$(BIN)/python -m pytest tests/test_deploy.py

clean:
	rm -rf instance/ models/ test-artifacts/ .pytest_cache
