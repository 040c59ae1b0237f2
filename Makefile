# fairprune: `make demo` installs and opens the dashboard on the built-in demo;
# `make test` installs and runs the whole test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: install demo app test lint bench clean-demo

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m fairprune demo --only-seeds 0
	mkdir -p data && (nohup nice -n 10 $(PY) -m fairprune demo > data/demo-seeds.log 2>&1 &)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

app: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: install
	bash scripts/install-chromium.sh
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -ra

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/run.py
