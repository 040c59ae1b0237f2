# fairprune: `make demo` installs and opens the dashboard on the built-in demo;
# `make test` installs and runs the whole test suite (what CI runs): Debian's chromium and
# postgresql are installed when missing; the PostgreSQL tests start their own throw-away server.
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

# the dense model and seed 0 at the top FLOPs level (both arms) before the dashboard opens: the
# first chart within 2 minutes; then seed 0's other levels, then the other seeds, in the
# background at a lower CPU priority (the Overview redraws as they land)
demo: install
	$(PY) -m fairprune demo --only-seeds 0 --only-levels 0.96875
	mkdir -p data && (nohup nice -n 10 sh -c '$(PY) -m fairprune demo --only-seeds 0; $(PY) -m fairprune demo' > data/demo-seeds.log 2>&1 &)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

app: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: install
	bash scripts/install-system-deps.sh
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -ra

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/run.py
