# Every target bootstraps .venv by itself: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-ui bench bench-scale bench-hosts bench-floor lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/magsag demo

# Tests mostly wait on servers, agents and subprocesses, so TEST_PROCESSES pytest-xdist
# workers (each with its own Temporal dev server) share the cores: on 2 cores 3 is as fast
# as 4, the rest being CPU (mostly CLI start-ups). Tests go out one at a time, longest
# first (tests/conftest.py). Tests marked `serial` measure time and run alone afterwards.
# Both passes run; either failing fails the target.
TEST_PROCESSES ?= 3

test: setup
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist load --maxschedchunk 1 -m 'not serial'; \
	parallel=$$?; $(BIN)/python -m pytest -m serial; serial=$$?; \
	[ $$parallel -eq 0 ] && [ $$serial -eq 0 ]

# The Web UI seen by a browser: headless Chromium (Debian's chromium package) opens a
# finished run. Not part of `make test`: it needs the browser, which is installed apart.
test-ui: setup
	@command -v chromium >/dev/null || { echo "make test-ui needs chromium (apt-get install -y chromium)" >&2; exit 2; }
	MAGSAG_UI_TESTS=1 $(BIN)/python -m pytest tests/ui -q

bench: setup
	$(BIN)/python bench/run.py

# How a run's cost grows with its tasks (history per task, status latency, worker RSS).
bench-scale: setup
	$(BIN)/python bench/scale.py --tasks $(or $(TASKS),1000) $(ARGS)

# A run on a git:// URL on one host and on three, against a local path; and how long a
# lost host's task takes to start elsewhere (bench/README.md, "Hosts").
bench-hosts: setup
	$(BIN)/python bench/hosts.py

# What Temporal's own steps cost in the bench's scenario: a bare parent/child/activity
# program against bench/baseline.sh (bench/README.md, "The floor").
bench-floor: setup
	$(BIN)/python bench/floor.py $(if $(TASKS),--tasks $(TASKS)) $(if $(SLEEP),--sleep $(SLEEP)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY))

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
