# One tooling story: every task runs inside .venv, created by `make install`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install index serve test test-fast lint typecheck eval eval-beir eval-qa train-reranker calibrate-reranker bench bench-scale bench-ann-recall bench-throughput bench-qps stress clean browser

# torch first, pinned to the CPU wheel available offline (see DEVELOPERS.md); then the project.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

index: install
	$(BIN)/tanya index

var/index/manifest.json: | install
	$(BIN)/tanya index

serve: install var/index/manifest.json
	$(BIN)/tanya serve --host $(HOST) --port $(PORT)

# The end-to-end page test drives Debian's Chromium; install it when missing and we may (root + apt).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser test"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and cannot be installed here: the browser test will be skipped"; fi; \
	fi

test: install browser
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check indexer service eval training bench tests
	$(BIN)/mypy

eval: install
	$(BIN)/tanya eval

# Public benchmarks (minutes to tens of minutes on 2 cores; embeddings are cached in var/bench-cache).
EVAL_DATA ?= ../shared/eval-data
eval-beir: install
	$(BIN)/tanya eval beir $(EVAL_DATA)/scifact
	$(BIN)/tanya eval facqa $(EVAL_DATA)/facqa

# SQuAD-format sets through the engine: reranker on, off, and the bare-e5 baseline (about 15 minutes once indexed).
# The reranker rows abstain by the reader's calibrated P(answer) (eval/README.md's tables).
QA_EVAL := TANYA_RERANKER_ABSTAIN=reranker $(BIN)/tanya eval qa
eval-qa: install
	$(QA_EVAL) $(EVAL_DATA)/tydiqa-id/valid.json
	$(QA_EVAL) $(EVAL_DATA)/idk-mrc/valid.json
	$(QA_EVAL) $(EVAL_DATA)/squad2-en/train-10-articles.json --name squad2-en-valid \
	  --title French_and_Indian_War --title Force
	$(QA_EVAL:qa=crosslingual) --data $(EVAL_DATA)

# Re-train the shipped answer reranker (service/qa/reranker/model/) from ../shared/eval-data in its four
# stages, each calibrated on the valid sets read through Tanya's retrieval: stage 1, every public
# train question once (about 2.5 hours of training on the 2-core machine, into var/reader-stage1);
# stage 2 continues it over the abstract questions (eval/abstracts) mixed with 800 public ones, twice
# (260 steps, 34 minutes with native bf16, into var/reader-stage2); stage 3 continues that over the
# written migration passages (eval/migration) mixed with 1,120 abstract and public questions, one and a
# half times (288 steps, 27 minutes in float32 on the AMD EPYC without bf16, into var/reader-stage3);
# stage 4 continues that over 600 public train questions translated into English (eval/crosslingual,
# asked over their Indonesian passages) mixed with 550 public and written ones, once (143 steps,
# 16 minutes in float32 on the AMD EPYC). Each stage then calibrates (20-40 minutes in float32).
# Each stage is a make target (its model card is written last), so an interrupted `make train-reranker`
# skips the stages already done and resumes the one it was in from its saved state (training or
# calibrating); `rm -rf var/reader-stage*` to start over. The times of the last run are in
# service/qa/reranker/model/MODEL_CARD.md.
STAGE2_QUESTIONS := {"abstracts": null, "tydiqa-id": 300, "idk-mrc": 300, "squad2-en": 200}
STAGE3_QUESTIONS := {"migration": null, "abstracts": 120, "tydiqa-id": 400, "idk-mrc": 400, "squad2-en": 200}
STAGE4_QUESTIONS := {"crosslingual": null, "tydiqa-id": 150, "idk-mrc": 150, "squad2-en": 100, "migration": 100, "abstracts": 50}
TRAIN_READER := $(BIN)/python -m training reranker --data $(EVAL_DATA)
LATER_STAGE := --learning-rate 2e-4 --head-learning-rate 4e-4

var/reader-stage1/MODEL_CARD.md: | install
	$(TRAIN_READER) --out var/reader-stage1

var/reader-stage2/MODEL_CARD.md: var/reader-stage1/MODEL_CARD.md
	$(TRAIN_READER) --init-adapter var/reader-stage1 --seed 15 --epochs 2 $(LATER_STAGE) \
	  --questions '$(STAGE2_QUESTIONS)' --out var/reader-stage2

var/reader-stage3/MODEL_CARD.md: var/reader-stage2/MODEL_CARD.md
	$(TRAIN_READER) --init-adapter var/reader-stage2 --seed 17 --epochs 1.5 $(LATER_STAGE) \
	  --questions '$(STAGE3_QUESTIONS)' --out var/reader-stage3

train-reranker: var/reader-stage3/MODEL_CARD.md
	$(TRAIN_READER) --init-adapter var/reader-stage3 --seed 19 --epochs 1 $(LATER_STAGE) \
	  --questions '$(STAGE4_QUESTIONS)'

# Calibrate the shipped reader again on the valid sets (the adapter is not touched): about 10 minutes,
# more the first time, when the valid sets are indexed into var/train-reranker.
calibrate-reranker: install
	$(BIN)/python -m training calibrate --data $(EVAL_DATA)

bench: install
	$(BIN)/python bench/bench.py

# An index of about N chunks (SciFact + FacQA sentences, fake 384-d vectors): build, load, RSS,
# retrieval latency, dense recall vs exact, add/remove one document, no-op re-index → bench/results/scale-N.json.
N ?= 10000
bench-scale: install
	$(BIN)/python bench/scale.py --chunks $(N) --data $(EVAL_DATA)

# Dense recall@10 against exact search on real USE-m3 vectors of N bench texts (PQ and IVF as the
# retriever searches them, IVF at several probe shares): about 7 minutes of encoding per 10^5 texts, kept in var/.
bench-ann-recall: install
	$(BIN)/python bench/ann_recall.py --chunks $(N) --data $(EVAL_DATA)

# Indexing throughput against the encoders alone on the same texts (real encoders; about 90 s).
bench-throughput: install
	$(BIN)/python bench/throughput.py --data $(EVAL_DATA)

# Hostile input, kill -9 during indexing, a 5-minute 32-client soak, a folder of bad documents
# (about 12 minutes on 2 cores; loopback only). Figures in bench/results/stress.md; exit 1 if any part fails.
# Saturated query throughput of the real server against the encoders' own cost (about 4 minutes; the
# clients are wrk where it is installed, `apt-get install wrk`, else Python's httpx).
bench-qps: install
	$(BIN)/python bench/qps.py

stress: install
	$(BIN)/python bench/stress.py

clean:
	rm -rf var eval/out .pytest_cache .mypy_cache .ruff_cache
