# Two entry points: `make demo` and `make test`. Both set up .venv from scratch when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install browser lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.13.0 CPU is the pinned build (a local wheel on these machines); install it first so nothing
	# pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all]"
	# timm's metadata pulls PyPI's torchvision, which is built against CUDA torch and cannot load beside the
	# CPU build (and a broken torchvision breaks `import transformers`). hf_iis imports timm without it.
	$(PY) -m pip uninstall -y -q torchvision
	# ...and a start-up hook so that any `import timm` in this venv works too (the `accelerate` CLI imports it).
	$(PY) -m hf_iis.install_timm_hook
	touch $(STAMP)

install: $(STAMP)

# Chromium drives the Space's real-browser test (Debian package; playwright never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

demo: install
	$(VENV)/bin/hf-iis demo --out outputs/demo

test: install browser
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check hf_iis scripts tests spaces
