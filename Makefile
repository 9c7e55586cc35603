# The two commands of the README: `make lab` (set up, open the course) and
# `make test` (set up, run every test). Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
SITE_STAMP := $(VENV)/.installed-site
PORT ?= 8888
export PYTHONWARNINGS := ignore
# nbgrader calls `alembic` and `jupyter` by name: the venv's come first
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: site setup lab test bench-room bench-install test-fast generate check-generated grade bench train doctor progress scoreboard slides grade-class bench-grading bench-notebooks record record-variants clean mutants

setup: $(STAMP)

# Re-install only when the pins or the package metadata change. tools/install.py
# uses uv (bootstrapped into the venv; pip when uv cannot be had): seconds, not minutes.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/install.py $(VENV)
	$(BIN)/python -m ipykernel install --sys-prefix --name nopos --display-name "Python (nopos course)" \
		--env OMP_WAIT_POLICY PASSIVE  # idle OpenMP threads sleep: see nopos/threads.py
	touch $(STAMP)

# the test suite's packages (pytest, xdist, playwright) on top of the course's,
# and the website's (the tests build it)
$(TEST_STAMP): $(STAMP) requirements-test.txt requirements-site.txt
	$(BIN)/python tools/install.py $(VENV) --test
	touch $(TEST_STAMP) $(SITE_STAMP)

# the website's packages (Sphinx, MyST, the book theme) on top of the course's
$(SITE_STAMP): $(STAMP) requirements-site.txt
	$(BIN)/python tools/install.py $(VENV) --site
	touch $(SITE_STAMP)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=course --port=$(PORT)

# two workers share the 2 cores CI has; a test file stays on one worker, so
# its module fixtures (a JupyterLab, the hostile battery) are built once, and so
# does a chapter's graded class, shared by files (xdist groups: tests/conftest.py)
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -n $(or $(JOBS),2) --dist loadgroup --no-loadscope-reorder

test-fast: $(TEST_STAMP)  ## skip the tests that execute notebooks or run nbgrader
	$(BIN)/python -m pytest -m "not slow and not browser"

generate: setup  ## rebuild course/, solutions/ and autograder/source/ from chapters/*.md
	$(BIN)/python tools/build_course.py

check-generated: setup
	$(BIN)/python tools/build_course.py --check

grade: setup  ## make grade NB=course/01_dataset/01_dataset.ipynb
	@test -n "$(NB)" || { echo "usage: make grade NB=course/01_dataset/01_dataset.ipynb"; exit 2; }
	$(BIN)/python -m nopos.learner.selfgrade "$(NB)"

bench: setup
	$(BIN)/python -m tests.bench.recipe

grade-class: setup  ## make grade-class AID=01_dataset [WORKERS=2]: autograde autograder/submitted/*, sandboxed
	@test -n "$(AID)" || { echo "usage: make grade-class AID=01_dataset [WORKERS=2]"; exit 2; }
	$(BIN)/python -m nopos.grading.batch autograder $(AID) --workers $(or $(WORKERS),2)

bench-notebooks: setup  ## every solution notebook, full size, against its header's promise
	$(BIN)/python -m tests.bench.notebooks

bench-grading: setup  ## 30 synthetic submissions, serial vs parallel
	$(BIN)/python -m tests.bench.grading --n 30 --workers 2

bench-room: setup  ## a live room: commit -> facilitator's count latency, a 30-commit burst
	$(BIN)/python -m tests.bench.room

mutants: $(TEST_STAMP)  ## every graded exercise's mutants through its checks: make mutants [CHAPTER=02] [SEED=0]
	$(BIN)/python tools/mutants.py $(if $(CHAPTER),--chapter $(CHAPTER)) --seed $(or $(SEED),0)

train: setup  ## make train ARGS="--steps 600 --seed 0 --out my.pt"
	$(BIN)/python -m nopos_reference.train $(ARGS)

slides: setup  ## offline slides -> build/slides/<id>.slides.html  (CHAPTER=01 for one)
	$(BIN)/python tools/build_slides.py $(if $(CHAPTER),--chapter $(CHAPTER))

site: $(SITE_STAMP)  ## the course website -> build/site/ (offline; runs each chapter once, cached)
	$(BIN)/python tools/build_site.py $(if $(NO_EXECUTE),--no-execute)

record-variants: setup  ## retrain chapter 6's variant models -> nopos/data/{learned_positions,no_bos,attention_only,seed_1,seed_2,seed_3}.pt (~4 min)
	$(BIN)/python -m tools.variants

record: setup  ## re-record the slow demonstration runs -> nopos/data/recorded_runs.json (minutes)
	$(BIN)/python -m tools.record

doctor:  ## session 0: is this machine ready? (no setup dependency: it diagnoses the install)
	@test -x $(BIN)/python || { echo "MISSING  .venv: run make setup first"; exit 1; }
	$(BIN)/python -m nopos.learner.doctor

progress: setup  ## which exercises of your course/ notebooks pass (CHAPTER=03 for one)
	$(BIN)/python -m nopos.learner.progress $(if $(CHAPTER),--chapter $(CHAPTER))

scoreboard: setup  ## your prediction scoreboard (CHAPTER=ch2; RESET=1 to clear)
	$(BIN)/python -m nopos.learner.scoreboard $(if $(CHAPTER),--chapter $(CHAPTER)) $(if $(RESET),--reset)

bench-install:  ## pip vs uv: set-up time and venv size on a fresh clone, cold and warm cache
	$(PYTHON) -m tests.bench.install

clean:
	rm -rf .grading .artifacts .bench build

# ---- a class on a server (root, Linux): see docs/hub.md
.PHONY: hub hub-stop hub-grade bench-hub
hub: setup  ## build the hub's environment under /opt/nopos-hub, lay out, start JupyterHub on 127.0.0.1
	$(BIN)/python -m nopos.hub.server start

hub-stop:  ## stop the hub, every user's server and the proxy
	$(BIN)/python -m nopos.hub.server stop

hub-grade: setup  ## make hub-grade AID=01_dataset [STEP=release|collect|autograde|feedback|publish|report] [STUDENT=bob] [WORKERS=2]
	@test -n "$(AID)" || { echo "usage: make hub-grade AID=01_dataset [STEP=collect] [STUDENT=bob: regrade one learner]"; exit 2; }
	$(BIN)/python -m nopos.hub.instructor $(or $(STEP),autograde) $(AID) --workers $(or $(WORKERS),2) $(if $(STUDENT),--student $(STUDENT))

bench-hub: $(TEST_STAMP)  ## N simulated learners through the hub: time per phase, peak memory, parallel vs serial grading (root)
	$(BIN)/python -m tests.bench.hub --n $(or $(N),30) --workers $(or $(WORKERS),2)

# ---- a class on a server (docs/hub.md): the roster and grade exports
.PHONY: roster export-grades
# the course the exports read: COURSE_ROOT=..., else the hub's (nopos.hub.settings) if
# this machine has one, else autograder/
COURSE_ROOT ?= $(shell $(BIN)/python -c 'import os; from nopos.hub.settings import COURSE_ROOT as c; print(c if os.path.isdir(c) else "autograder")' 2>/dev/null || echo autograder)

# (as root on the hub's machine: also the learners' OS accounts; OS_USERS=0 skips them)
roster: setup  ## make roster ROSTER=hub/roster.csv [DRY_RUN=1] [REMOVE_MISSING=1] [OS_USERS=0]: sync into the hub and gradebook
	@test -n "$(ROSTER)" || { echo "usage: make roster ROSTER=hub/roster.csv [DRY_RUN=1] [REMOVE_MISSING=1] [OS_USERS=0]  (columns: id,name,role; see hub/roster.example.csv)"; exit 2; }
	$(BIN)/python -m nopos.hub.roster sync "$(ROSTER)" $(if $(DRY_RUN),--dry-run) $(if $(REMOVE_MISSING),--remove-missing) $(if $(filter 0,$(OS_USERS)),,--os-users)

export-grades: setup  ## nbgrader's CSV + Canvas- and Moodle-shaped CSVs -> build/grades/ (COURSE_ROOT=..., SECTION=...)
	$(BIN)/python -m nopos.grading.export "$(COURSE_ROOT)" --out $(or $(OUT),build/grades) $(if $(SECTION),--section "$(SECTION)")

# ---- grading past one machine (docs/grading-at-scale.md): Celery + Redis workers, PostgreSQL gradebook
.PHONY: grade-queue queue-worker bench-queue
# NOPOS_BROKER_URL, NOPOS_GRADEBOOK_URL, PGPASSWORD and NOPOS_QUEUE_KEYS come from the environment
grade-queue: $(TEST_STAMP)  ## make grade-queue AID=01_dataset [COURSE_ROOT=...]: send the class to the workers, show done/failed/queued
	@test -n "$(AID)" || { echo "usage: make grade-queue AID=01_dataset [COURSE_ROOT=autograder] (RUN=... to watch a run again)"; exit 2; }
	$(BIN)/python -m nopos.grading.distributed.submit "$(COURSE_ROOT)" $(AID) $(if $(RUN),--watch $(RUN))

queue-worker: $(TEST_STAMP)  ## one grading worker on this host (root, for the sandbox): NAME=w1
	$(BIN)/python -m nopos.grading.distributed.worker --name $(or $(NAME),$(shell hostname))

bench-queue: $(TEST_STAMP)  ## the queue's throughput with 1, 2, 4 namespaced workers vs the one-machine batch (root)
	$(BIN)/python -m tests.bench.queue --n $(or $(N),12) --workers $(or $(WORKERS),1 2 4)
