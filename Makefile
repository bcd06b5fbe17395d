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

.PHONY: demo test test-fast lint docs chromium clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The Gram-variant study on two of its style images (6 runs at 64 px, each until converged), then its
# report; a failed run still gets reported.
SWEEP := outputs/sweeps/gram_variants_$(shell date +%Y-%m-%d_%H-%M-%S)
demo: $(BIN)/.installed
	$(BIN)/styleexp study=gram_variants style=dark_circle,checkers hydra.sweep.dir=$(SWEEP) $(ARGS); status=$$?; \
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

# The report test opens its HTML page in headless Chromium (Debian's package); without it, that test is skipped.
chromium:
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium is not installed: the report page test will be skipped"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache site
