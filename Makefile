# Suqiu — two commands on a fresh machine: `make run` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SHARED  ?= ../shared/corpora
MODEL   := models/registry/demo

.PHONY: run test bench bench-trends bench-hostile bench-digest bench-retrain bench-backends mutation notebooks fonts venv model clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (set PY=...)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# Train on the shipped corpus when no model exists yet (or the model code or rules changed).
$(MODEL)/manifest.json: $(STAMP) $(wildcard models/*.py corpora/*.py corpora/data/*)
	$(BIN)/suqiu train --data corpora/data/demo_appeals.csv --out $(MODEL) --set-current --folds 3

model: $(MODEL)/manifest.json

HOST    ?= 127.0.0.1
PORT    ?= 8000

run: $(STAMP) $(MODEL)/manifest.json fonts
	$(BIN)/suqiu classify --model $(MODEL) --input corpora/data/sample_new_appeals.csv --output var/sample_tags.jsonl -q
	@$(BIN)/python -m service.show var/sample_tags.jsonl
	$(BIN)/suqiu ingest --model $(MODEL) --input corpora/data/demo_appeals.csv -q
	@test -s var/demo_admin.key || { umask 077; $(BIN)/suqiu keys create --role admin --name demo-admin > var/demo_admin.key; }
	@echo ""
	@echo "Suqiu is starting on http://$(HOST):$(PORT)  (API docs: http://$(HOST):$(PORT)/docs; Ctrl-C stops it)"
	@echo "Try it (the demo admin key is in var/demo_admin.key):"
	@echo "  curl -s -X POST http://$(HOST):$(PORT)/v1/classify -H \"X-API-Key: \$$(cat var/demo_admin.key)\" \\"
	@echo "       -H 'Content-Type: application/json' -d '{\"text\": \"小区楼道里有很浓的煤气味\"}'"
	@echo "  curl -s 'http://$(HOST):$(PORT)/v1/appeals?urgency=urgent&limit=5' -H \"X-API-Key: \$$(cat var/demo_admin.key)\""
	@echo "  the weekly digest: curl -s http://$(HOST):$(PORT)/v1/digests/2025-12-28 -H 'Accept: text/html' -H \"X-API-Key: \$$(cat var/demo_admin.key)\" > digest.html"
	@echo "Dashboard (sign in with the key in var/demo_admin.key): http://$(HOST):$(PORT)/dashboard"
	$(BIN)/suqiu serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

REAL    := $(SHARED)/tipdm2020c/appeals_labelled_dev.csv
REALURG := $(SHARED)/urgency/labels_dev.csv

# Benchmarks the model trained on the real corpus when ../shared is there, else the demo model.
bench: $(STAMP) $(MODEL)/manifest.json
	@if [ -f $(REAL) ]; then \
	  test -f models/registry/tipdm/manifest.json || \
	    $(BIN)/suqiu train --data $(REAL) --urgency-data $(REALURG) --out models/registry/tipdm; \
	  $(BIN)/suqiu bench --model models/registry/tipdm --input $(REAL) --report var/bench.json; \
	  BENCH_MODEL=models/registry/tipdm; BENCH_INPUT="--input $(REAL)"; \
	else \
	  $(BIN)/suqiu bench --model $(MODEL) --report var/bench.json; \
	  BENCH_MODEL=$(MODEL); BENCH_INPUT=""; \
	fi; \
	PG=$$(bash .ci/postgres.sh 2>/dev/null | tail -1) || PG=""; \
	$(BIN)/suqiu bench-api --model $$BENCH_MODEL $$BENCH_INPUT $${PG:+--postgres-url $$PG} --report var/bench_api.json

# Hostile requests in a loop against a real server: /healthz latency and the server's RSS.
bench-hostile: $(STAMP) $(MODEL)/manifest.json
	$(BIN)/python -m service.bench_hostile --model $(MODEL) --report var/bench_hostile.json

# Mutation testing (issue 13; not in CI: minutes per module): mutmut on each of MODULES in its own
# scratch copy under $TMPDIR/suqiu-mutation, so mutated files never touch the work tree. Prints
# killed / survived / timeout / no tests / total and the score per module, then each surviving
# mutant (file:line, the change); diffs in $TMPDIR/suqiu-mutation/report.md.
#   make mutation MODULES="corpora/text.py corpora/dedup.py"
#   make mutation MODULES=models/urgency.py TESTS="tests/test_urgency.py -k reason"
#   make mutation MUTATION_PG=1    # the PostgreSQL cases too, as CI runs them (starts .ci/postgres.sh)
MODULES ?= service/auth.py service/store.py
MUTSTAMP := $(VENV)/.mutation-installed

$(MUTSTAMP): $(STAMP) requirements-mutation.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-mutation.txt -c constraints.txt
	touch $(MUTSTAMP)

mutation: $(MUTSTAMP)
	@if [ -n "$(MUTATION_PG)" ]; then \
	  SUQIU_TEST_POSTGRES_URL=$$(bash .ci/postgres.sh 2>/dev/null | tail -1); export SUQIU_TEST_POSTGRES_URL; \
	fi; \
	$(BIN)/python -m training.mutation $(MODULES) $(if $(TESTS),--tests "$(TESTS)") $(MUTATION_ARGS)

# Early warning on simulated streams with known truth, and on the real data when present.
bench-trends: $(STAMP)
	$(BIN)/python -m training.bench_trends

# The weekly digest: ~10,000 appeals a week, two years of history; from a file and from SQLite.
bench-digest: $(STAMP)
	$(BIN)/python -m training.bench_digest

# Retraining on the real labelled data (issue 16): corrections in batches of 200 through the API,
# review-queue order vs random, a poisoned batch; writes var/bench_retrain.json and .svg. Then the
# time of one `suqiu retrain` on the full data.
bench-retrain: $(STAMP)
	$(BIN)/python -m training.bench_retrain
	$(BIN)/python -m training.bench_retrain --time-full-retrain

# The category backends (issue 17, ADR 0009) on grouped 3-fold CV of the real appeals: tfidf and the
# baseline, frozen embeddings, then one fine-tuned fold in a 10-minute budget; var/bench_backends.json.
bench-backends: $(STAMP)
	$(BIN)/python -m training.bench_backends --backends baseline tfidf embed --folds 3
	$(BIN)/python -m training.bench_backends --backends finetune --folds 3 --fold 0 --finetune-budget-s 600
	$(BIN)/python -m training.bench_backends --summarise --folds 3 --report var/bench_backends.json

# The digest's charts (and the notebooks' plots) need a CJK font: Debian's fonts-noto-cjk.
fonts:
	@fc-list 2>/dev/null | grep -q "Noto Sans CJK" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    { apt-get install -y -qq fonts-noto-cjk || { apt-get update -qq && apt-get install -y -qq fonts-noto-cjk; }; } >/dev/null; \
	  else echo "note: install Debian's fonts-noto-cjk (sudo apt-get install fonts-noto-cjk) for the digest's charts"; fi; }

# The notebooks (issue 18), run top to bottom in full (real data from $(SHARED) when present);
# executed copies and times.json go to var/notebooks/, never into notebooks/. The tests run them in CI mode.
notebooks: $(STAMP) fonts
	$(BIN)/python notebooks/run.py --mode full --shared "$(SHARED)" --out var/notebooks

clean:
	rm -rf var models/registry
