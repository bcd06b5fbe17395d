# `make demo` and `make test` each create the virtualenv they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Genuine ImageNet weights beside the checkout (development machines and CI); elsewhere the
# user cache or an explicit STYLEEXP_WEIGHTS_DIR is used.
ifneq ($(wildcard ../shared/weights),)
ifeq ($(STYLEEXP_WEIGHTS_DIR),)
export STYLEEXP_WEIGHTS_DIR := $(abspath ../shared/weights)
endif
endif

.PHONY: demo test test-fast lint docs chromium clean gpu-bundle gpu-check

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The Gram-variant study on two of its style images (6 runs at 64 px, each until converged), then its
# report; a failed run still gets reported. TV on (the study holds it off, a factor of its own): at 64 px
# without it the syntheses are speckled, and the demo shows what a run looks like.
SWEEP := outputs/sweeps/gram_variants_$(shell date +%Y-%m-%d_%H-%M-%S)
demo: $(BIN)/.installed
	$(BIN)/styleexp study=gram_variants style=dark_circle,checkers loss.tv=0.3 hydra.sweep.dir=$(SWEEP) $(ARGS); status=$$?; \
		$(BIN)/styleexp-report $(SWEEP) && exit $$status

# The whole suite (on two workers: pyproject.toml), then the linters and the docs build.
test: $(BIN)/.installed chromium
	$(BIN)/pytest $(ARGS)
	$(MAKE) --no-print-directory lint docs

# Unit tests and tiny in-process runs: what to run after every change.
test-fast: $(BIN)/.installed
	$(BIN)/pytest -m "not slow" $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict --quiet

# A lent GPU machine has its own Python with torch and no network to build a virtualenv with: the GPU targets use
# this checkout's virtualenv where there is one, else $(PYTHON), with the bundle's wheels where it lacks Hydra.
GPU_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
GPU_BUNDLE := .gpu-bundle
GPU_SITE := /tmp/styleexp-site

# What travels to a lent GPU machine (git-ignored, within its 64 MiB): the float16 VGG-19 weights and wheels of the
# packages it lacks (styleexp/bench/bundle.py).
gpu-bundle:
	$(GPU_PYTHON) -m styleexp.bench.bundle $(GPU_BUNDLE)

# On a CUDA GPU, within 6 minutes: the tests marked gpu, the benchmark table and a batched sweep against one by one,
# into outputs/gpu-check/ (ARGS="--out DIR" elsewhere); docs/gpu.md. With the bundle's weights when no others are set.
# The wheels go on PYTHONPATH only where they were installed, so that a stale $(GPU_SITE) never shadows a virtualenv;
# the check's processes (pytest, styleexp-bench, styleexp) inherit it, and find styleexp in the checkout they run in.
gpu-check: export STYLEEXP_WEIGHTS_DIR := $(or $(STYLEEXP_WEIGHTS_DIR),$(if $(wildcard $(GPU_BUNDLE)/weights/*.pth),$(abspath $(GPU_BUNDLE)/weights)))
gpu-check:
	@if [ -d $(GPU_BUNDLE)/wheels ] && ! $(GPU_PYTHON) -c "import hydra, wandb" 2>/dev/null; then \
		echo "installing $(GPU_BUNDLE)/wheels into $(GPU_SITE)"; \
		$(GPU_PYTHON) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
			--target $(GPU_SITE) $(GPU_BUNDLE)/wheels/*.whl || exit 1; \
		export PYTHONPATH=$(GPU_SITE)$${PYTHONPATH:+:$$PYTHONPATH}; \
	fi; \
	echo "$(GPU_PYTHON) -m styleexp.bench.gpu $(ARGS)"; \
	$(GPU_PYTHON) -m styleexp.bench.gpu $(ARGS)

# The report test opens its HTML page in headless Chromium (Debian's package); without it, that test is skipped.
chromium:
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium is not installed: the report page test will be skipped"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache site
