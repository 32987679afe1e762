# The two commands: `make run` and `make test`. Both create what is missing
# (virtual environments, the trained model) and skip what is up to date.

SHELL := /bin/bash
PY311 = $(shell scripts/find-python.sh 3.11)
PY310 = $(shell scripts/find-python.sh 3.10)
APP_PY := .venv/bin/python
RASA := PYTHONPATH=$(CURDIR) RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 SQLALCHEMY_SILENCE_UBER_WARNING=1 .venv-rasa/bin/rasa
RASA_PY := PYTHONPATH=$(CURDIR) RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=3 SQLALCHEMY_SILENCE_UBER_WARNING=1 .venv-rasa/bin/python
MODEL := models/ward.tar.gz
# The held-out NLU floors make test enforces: the targets of docs/nlu.md minus
# a margin for training noise.
NLU_FLOORS := --min-procedure 0.94 --min-procedure-no-diacritics 0.92 --min-procedure-teencode 0.86 \
	--min-topic 0.88 --min-oos-precision 0.88 --min-oos-recall 0.88
TRAINING_INPUTS := config.yml domain.yml $(shell find nlu -name '*.yml' -o -name '*.py' | grep -v __pycache__ | sort)

.PHONY: run test lint eval bench setup model clean postgres chromium faketime

run: setup $(MODEL)
	$(APP_PY) -m bot run

test: setup postgres chromium faketime $(MODEL)
	$(APP_PY) -m ruff check .
	$(APP_PY) -m ruff format --check .
	$(RASA) data validate --data nlu/data --domain domain.yml --config config.yml
	$(APP_PY) -m pytest
	$(RASA_PY) tests/eval/evaluate.py $(NLU_FLOORS)
	$(RASA) test core --stories tests/stories --model $(MODEL) --fail-on-prediction-errors --out var/rasa-test-results

lint:
	$(APP_PY) -m ruff check --fix .
	$(APP_PY) -m ruff format .

eval: setup $(MODEL)
	$(RASA_PY) tests/eval/evaluate.py --compare-default

bench: setup $(MODEL)
	$(APP_PY) tests/bench/chat_latency.py
	$(APP_PY) tests/bench/broadcast.py

setup: .venv/.installed .venv-rasa/.installed

# PostgreSQL binaries (Debian's package) for the tests that need a real server: they start a
# throwaway cluster in a temporary folder (tests/support/postgres.py). Does nothing when initdb is
# already installed; without root or sudo it only warns, and those tests skip saying why.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	else ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
		|| echo "warning: could not install PostgreSQL; its tests will be skipped"; fi

# Chromium (Debian's package) for the staff pages' browser test (Playwright drives /usr/bin/chromium).
# Does nothing when it is already installed; without root or sudo it only warns, and that test skips.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	else ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "warning: could not install chromium; the browser test will be skipped"; fi

# libfaketime (Debian's package) for the reminder restart test: it starts the app with a clock the
# test sets (tests/support/faketime.py). Does nothing when it is already installed; without root or
# sudo it only warns, and that test skips.
faketime:
	@if ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then :; \
	else ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime) \
		|| echo "warning: could not install faketime; the reminder restart test will be skipped"; fi

.venv/.installed: requirements/app.lock requirements/dev.lock
	@test -x .venv/bin/python || $(PY311) -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	touch $@

.venv-rasa/.installed: requirements/rasa.lock
	@test -x .venv-rasa/bin/python || $(PY310) -m venv .venv-rasa
	.venv-rasa/bin/pip install --quiet --disable-pip-version-check -r requirements/rasa.lock
	touch $@

model: $(MODEL)

$(MODEL): .venv-rasa/.installed $(TRAINING_INPUTS)
	$(RASA) train --config config.yml --domain domain.yml --data nlu/data --out models --fixed-model-name ward
	touch $@

clean:
	rm -rf .venv .venv-rasa models var .pytest_cache .ruff_cache
