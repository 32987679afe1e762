# syntax=docker/dockerfile:1
# Two images from one file, as DESIGN.md describes: Rasa (Python 3.10) and
# the app (Python 3.11). Build with --target rasa / --target app, or use
# compose.yaml, which runs both with PostgreSQL.

# ---------- Rasa server: NLU + dialogue, trained at build time ----------
FROM python:3.10-slim-bookworm AS rasa
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 SQLALCHEMY_SILENCE_UBER_WARNING=1 PYTHONPATH=/srv
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY requirements/rasa.lock requirements/rasa.lock
RUN pip install -r requirements/rasa.lock
COPY config.yml domain.yml endpoints.yml credentials.yml ./
COPY nlu/ nlu/
RUN rasa train --config config.yml --domain domain.yml --data nlu/data --out models --fixed-model-name ward
RUN useradd --create-home --uid 10001 rasa && chown -R rasa /srv
USER rasa
EXPOSE 5005
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s CMD curl -fsS http://127.0.0.1:5005/ || exit 1
# ACTION_ENDPOINT_URL, RASA_TRACKER_URL and RASA_TOKEN come from the environment.
CMD ["sh", "-c", "rasa run --enable-api --port 5005 --model models/ward.tar.gz --endpoints endpoints.yml --credentials credentials.yml --auth-token=\"$RASA_TOKEN\""]

# ---------- The app: channels, chat API, actions, staff pages, scheduler ----------
FROM python:3.11-slim-bookworm AS app
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 HOST=0.0.0.0 PORT=8000 VAR_DIR=/srv/var
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY requirements/app.lock requirements/app.lock
RUN pip install -r requirements/app.lock
COPY bot/ bot/
COPY actions/ actions/
COPY nlu/__init__.py nlu/normalize.py nlu/teencode.yml nlu/
COPY faq/ faq/
COPY settings/ settings/
COPY domain.yml ./
RUN useradd --create-home --uid 10001 app && mkdir -p var && chown -R app /srv/var
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
# The app alone; Rasa runs in its own container (RASA_URL).
CMD ["python", "-m", "bot", "serve"]
