# `make demo` and `make test` each create the virtualenv they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Genuine ImageNet weights beside the checkout (development machines and CI); elsewhere the
# user cache or an explicit STYLEEXP_WEIGHTS_DIR is used.
ifneq ($(wildcard ../shared/weights),)
export STYLEEXP_WEIGHTS_DIR ?= $(abspath ../shared/weights)
endif

.PHONY: demo test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/styleexp $(ARGS)

test: $(BIN)/.installed
	$(BIN)/pytest $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
