# LabelLoop. `make run` and `make test` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
PYTEST_ARGS ?=

# Ultralytics never pip-installs at run time; its settings stay in the repo. Base weights are
# downloaded when online and missing from models/base/ (YOLO_OFFLINE=1 turns that off).
export YOLO_AUTOINSTALL := false
export YOLO_CONFIG_DIR ?= $(CURDIR)/.yolo_config

.PHONY: setup run demo test test-fast bench clean

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Opens the GUI on ./workspace (the demo project, built on first run). Without a display it says
# so and runs the headless demo instead, so a newcomer on a server still sees the loop work.
run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  test -f workspace/project.db || $(PY) main.py --project workspace demo --no-train; \
	  $(PY) main.py --project workspace; \
	else \
	  echo "No display found (DISPLAY/WAYLAND_DISPLAY unset): running the headless demo instead."; \
	  $(PY) main.py --project workspace demo; \
	fi

demo: setup
	$(PY) main.py --project workspace demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/video.py
	$(PY) benchmarks/gui.py
	$(PY) benchmarks/datasets.py
	$(PY) benchmarks/training.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .yolo_config
