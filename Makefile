# The two commands: `make run` and `make test`. Both create what is missing
# (virtual environments, the trained model) and skip what is up to date.

SHELL := /bin/bash
PY311 = $(shell scripts/find-python.sh 3.11)
PY310 = $(shell scripts/find-python.sh 3.10)
APP_PY := .venv/bin/python
RASA := PYTHONPATH=$(CURDIR) RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 SQLALCHEMY_SILENCE_UBER_WARNING=1 .venv-rasa/bin/rasa
MODEL := models/ward.tar.gz
TRAINING_INPUTS := config.yml domain.yml $(shell find nlu -name '*.yml' -o -name '*.py' | grep -v __pycache__ | sort)

.PHONY: run test lint eval bench setup model clean

run: setup $(MODEL)
	$(APP_PY) -m bot run

test: setup $(MODEL)
	$(APP_PY) -m ruff check .
	$(APP_PY) -m ruff format --check .
	$(RASA) data validate --data nlu/data --domain domain.yml --config config.yml
	$(APP_PY) -m pytest

lint:
	$(APP_PY) -m ruff check --fix .
	$(APP_PY) -m ruff format .

eval: setup $(MODEL)
	$(APP_PY) tests/eval/evaluate.py --compare-default

bench: setup $(MODEL)
	$(APP_PY) tests/bench/chat_latency.py

setup: .venv/.installed .venv-rasa/.installed

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
