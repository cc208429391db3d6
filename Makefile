# Two commands do all set-up on a fresh machine:
#   make demo   -- create .venv, install, train/load the classifier, run examples/quickstart.py
#   make test   -- create .venv, install, run the whole test suite (what .ci/run calls)
# `make test` also installs Debian's chromium + chromium-driver (apt-get) when missing, for the
# end-to-end browser test of the web review queue.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup browser demo test bench eval lint-policy clean

setup: $(VENV)/.installed

browser:
	sh scripts/ensure-chromium.sh

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	# torch 2.13.0 CPU build first, so nothing pulls the multi-GB CUDA build
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test]"
	# telemetry off: guardrails-ai only honours ~/.guardrailsrc
	$(PY) -c "from gatekeeper.telemetry import ensure_guardrails_rc; print('guardrails metrics off:', ensure_guardrails_rc())"
	touch $@

demo: setup
	$(PY) examples/quickstart.py

test: setup browser
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) benchmarks/perf.py

lint-policy: setup
	$(VENV)/bin/gatekeeper policy lint policies

clean:
	rm -rf .gatekeeper .pytest_cache
