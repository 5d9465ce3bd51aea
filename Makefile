# Executable Scientific Spaces: `make book` builds the HTML book, `make test` runs the test suite.
# Both create or update the virtual environment .venv from requirements.txt first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Scale of the notebooks for `make book`: smoke | book | full (see README.md).
KEXUE_SCALE ?= book
export KEXUE_SCALE

# Offline data: when a data mirror sits beside the project, loaders read it instead of the network.
ifneq ($(wildcard ../shared/data/MANIFEST.md),)
export KEXUE_DATA_MIRROR ?= $(abspath ../shared/data)
endif

export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONUNBUFFERED := 1
SHELL := /bin/bash

# TensorFlow's C++ start-up lines, printed by every kernel before its logging is configured
# (so TF_CPP_MIN_LOG_LEVEL cannot silence them), its CUDA probe on a machine without a GPU, and
# ipykernel's notice that a local kernel talks over TCP, and tf.data's notice that Keras's
# MapDataset names an attribute this TensorFlow build does not know (ignored, as it says), the
# graph optimiser skipping a pass over tf.recompute_grad's graph, its remapper skipping a fusion
# whose node an earlier pass removed, and oneDNN's int64 fallback.
# Only these exact lines are dropped from the console; every other line, errors included, shows.
TF_NOISE := sed -u -E \
  -e '/^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$$/d' \
  -e '/^I0000 [0-9:. ]+[0-9]+ port\.cc:[0-9]+\] oneDNN custom operations are on\./d' \
  -e '/^I0000 [0-9:. ]+[0-9]+ cudart_stub\.cc:[0-9]+\] Could not find cuda drivers on your machine, GPU will not be used\.$$/d' \
  -e '/^E0000 [0-9:. ]+[0-9]+ cuda_platform\.cc:[0-9]+\] failed call to cuInit: .*(UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE).*$$/d' \
  -e '/^\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption\./d' \
  -e '/^E0000 [0-9:. ]+[0-9]+ node_def_util\.cc:[0-9]+\] NodeDef mentions attribute use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset;.*This may be expected if your graph generating binary is newer  than this binary\..*$$/d' \
  -e '/^E0000 [0-9:. ]+[0-9]+ tfg_optimizer_hook\.cc:[0-9]+\] tfg_optimizer\{.*\} failed: INVALID_ARGUMENT: Node [^ ]+ has an empty op name$$/d' \
  -e "/^E0000 [0-9:. ]+[0-9]+ meta_optimizer\.cc:[0-9]+\] remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout '[^']+' exist for missing node '[^']+'\.$$/d" \
  -e '/^E0000 [0-9:. ]+[0-9]+ util\.cc:[0-9]+\] oneDNN supports DT_INT64 only on platforms with AVX-512\. Falling back to the default Eigen-based implementation if present\.$$/d'
export PYDEVD_DISABLE_FILE_VALIDATION := 1

NOTEBOOKS := $(sort $(wildcard book/*/*.md))
SMOKE     := _smoke
# Where `make book` writes: _build/html at book scale; every other scale gets its own tree and
# execution cache, and no per-cell time limit (a full-scale training cell can run for hours).
ifeq ($(KEXUE_SCALE),book)
BOOK_OUT    := .
BOOK_CONFIG := _config.yml
else
BOOK_OUT    := _build/scale-$(KEXUE_SCALE)
BOOK_CONFIG := $(BOOK_OUT)/_config.yml
endif

.PHONY: help venv book test lint unit notebooks smoke-book dist check-notebooks clean bench

help:
	@echo "make book    execute every notebook at KEXUE_SCALE=$(KEXUE_SCALE) and build the HTML book"
	@echo "make test    lint, unit tests, every notebook at smoke scale (nbmake), book build check,"
	@echo "             two chapters' runnable notebooks in a fresh environment"
	@echo "make check-notebooks READER_CHAPTERS=...   runnable notebooks in a fresh environment"
	@echo "make bench   the benchmark suite (benchmarks/): table in _build/bench/bench.md"
	@echo "make pretrained   pre-train the book's small BERT (NAME=small-albert, small-electra: its twins)"
	@echo "make clean   remove build outputs (keeps .venv)"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-book.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-book.txt
	touch $(STAMP)

# The library as a wheel (published with the book, installed by the runnable notebooks).
dist: $(STAMP)
	rm -rf _build/dist
	$(BIN)/python -m pip wheel --quiet --no-deps -w _build/dist .

# Each chapter's runnable notebook, executed at smoke scale as a reader would run it: in a fresh
# environment with only TensorFlow and the scientific stack, installing the wheel from its first
# cell. `make test` checks READER_CHAPTERS; `make check-notebooks READER_CHAPTERS="$$(ls
# book/*/*.md)"` checks them all.
READER_CHAPTERS ?= book/geometry/angle-distribution.md book/sequence/crf.md
check-notebooks: dist
	@echo "Runnable notebooks in a fresh environment: $(READER_CHAPTERS)"
	@set -o pipefail; $(BIN)/python tests/reader/check_notebooks.py \
	  _build/dist/kexue-*.whl _build/reader $(READER_CHAPTERS) 2>&1 | $(TF_NOISE)

# jupyter-cache re-runs a chapter only when its code changes; a change to the library or to the
# pinned toolchain must re-run them all, so the cache is dropped when their hash changes.
LIB_HASH := $(shell cat $$(find lib/kexue -name '*.py' | sort) requirements-book.txt | sha256sum | cut -c1-16)

book: $(STAMP) dist
ifneq ($(KEXUE_SCALE),book)
	mkdir -p $(BOOK_OUT)
	sed -e 's/^\(  *timeout:\).*/\1 -1/' _config.yml > $(BOOK_CONFIG)
endif
	@if [ "$$(cat $(BOOK_OUT)/_build/.lib-hash 2>/dev/null)" != "$(LIB_HASH)" ]; then \
	  echo "The library changed since the last build: every chapter is executed again."; \
	  rm -rf $(BOOK_OUT)/_build/.jupyter_cache; fi
	@echo "jupyter-book build . -W -n --keep-going --path-output $(BOOK_OUT) --config $(BOOK_CONFIG)"
	@set -o pipefail; $(BIN)/jupyter-book build . -W -n --keep-going --path-output $(BOOK_OUT) \
	  --config $(BOOK_CONFIG) 2>&1 | $(TF_NOISE)
	@echo "Checking the built pages (tests/test_built_html.py)"
	@set -o pipefail; KEXUE_BUILT_HTML=$(BOOK_OUT)/_build/html $(BIN)/python -m pytest -q \
	  -p no:cacheprovider tests/test_built_html.py 2>&1 | $(TF_NOISE)
	mkdir -p $(BOOK_OUT)/_build && echo $(LIB_HASH) > $(BOOK_OUT)/_build/.lib-hash
	@echo
	@echo "Book built at KEXUE_SCALE=$(KEXUE_SCALE). Open $(abspath $(BOOK_OUT))/_build/html/index.html"

test: lint unit unit-jax notebooks smoke-book check-notebooks
	@echo "make test: all checks passed."

lint: $(STAMP)
	$(BIN)/ruff check lib tests _ext

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile

# The library's unit tests again on the JAX backend (JAX_ENABLE_X64: the float64 tests), tests
# that use TensorFlow directly skipped (marker tensorflow_only). The test files that use no Keras
# (the book's files, data, reports, text scoring) run in `unit` only. One file per worker keeps
# module fixtures built once.
JAX_SKIP_FILES := test_book test_built_html test_runnable_notebooks test_data test_report test_text
.PHONY: unit-jax
unit-jax: $(STAMP)
	KERAS_BACKEND=jax JAX_ENABLE_X64=1 $(BIN)/python -m pytest tests -q -p no:cacheprovider \
	  $(foreach f,$(JAX_SKIP_FILES),--ignore=tests/$(f).py) -n 2 --dist loadfile

# Every notebook, converted by jupytext and executed by nbmake at smoke scale (two workers).
# The executed copies keep their outputs, and the smoke book below is built from them.
notebooks: $(STAMP)
	rm -rf $(SMOKE)
	mkdir -p $(SMOKE)/book
	set -e; for nb in $(NOTEBOOKS); do mkdir -p $(SMOKE)/$$(dirname $$nb); \
	  $(BIN)/jupytext --quiet --to ipynb --output $(SMOKE)/$${nb%.md}.ipynb $$nb; done
	@echo "Executing every notebook at smoke scale (nbmake, two workers)"
	@set -o pipefail; KEXUE_SCALE=smoke $(BIN)/python -m pytest --nbmake --overwrite -n 2 \
	  --nbmake-timeout=600 -p no:cacheprovider -v --durations=0 $(SMOKE)/book 2>&1 | $(TF_NOISE)

# Build the book with -W -n from the smoke-executed notebooks, without executing anything again:
# a broken reference, citation, equation label, glue key or toc entry fails here.
smoke-book: $(STAMP) dist
	test -d $(SMOKE)/book || $(MAKE) notebooks
	cp book/intro.md book/claims.md $(SMOKE)/book/
	cp _toc.yml references.bib $(SMOKE)/
	sed -e 's/^\(  *execute_notebooks:\).*/\1 "off"/' _config.yml > $(SMOKE)/_config.yml
	ln -sfn ../lib $(SMOKE)/lib
	ln -sfn ../_ext $(SMOKE)/_ext
	$(BIN)/jupyter-book build $(SMOKE) -W -n --keep-going --quiet
	@echo "Checking the built smoke pages (tests/test_built_html.py)"
	@set -o pipefail; KEXUE_BUILT_HTML=$(SMOKE)/_build/html $(BIN)/python -m pytest -q \
	  -p no:cacheprovider tests/test_built_html.py 2>&1 | $(TF_NOISE)

# The benchmark suite (benchmarks/, not part of `make test`): CPU-time ratios of library
# components to their references, interleaved repeats, table in _build/bench/bench.md.
bench: $(STAMP)
	@set -o pipefail; $(BIN)/python benchmarks/run_all.py 2>&1 | $(TF_NOISE)

# The book's pre-trained small BERT (not part of `make test`): trained from the CLUE training
# texts with a fixed seed and written, with its vocabulary and provenance record, into
# lib/kexue/models/pretrained/$(NAME)/ (commit that folder; NAME=small-albert trains its ALBERT
# twin, NAME=small-electra its ELECTRA twin at the same compute). The chapters load a checkpoint
# only while its record matches the code; tests/test_bert.py fails, naming this target, when it
# does not.
.PHONY: pretrained
pretrained: NAME ?= small-bert
pretrained: $(STAMP)
	@set -o pipefail; $(BIN)/python -m kexue.models.bert pretrain --name $(NAME) 2>&1 | $(TF_NOISE)

clean:
	rm -rf _build $(SMOKE) .pytest_cache .ruff_cache
