# Actiondesk: one image for the web process (Daphne) and the job worker (manage.py db_worker).
FROM python:3.13-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    LOG_FORMAT=json

RUN groupadd --system actiondesk && useradd --system --gid actiondesk --home /app actiondesk
WORKDIR /app

COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install .

COPY --chown=actiondesk:actiondesk . .

# collectstatic needs settings that load; these build-time values never reach a running container.
RUN DJANGO_SECRET_KEY=build-only-build-only-build-only-build-only-build-only \
    DJANGO_ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --no-input --verbosity 0

USER actiondesk
EXPOSE 8000

# Checks run first (Daphne does not run them); WebSocket frames are capped at 64 KiB, above
# the chat's 32 KiB frame limit so the application answers with an error frame instead.
CMD ["sh", "-c", "python manage.py check --deploy --fail-level ERROR && exec python -m config.server --bind 0.0.0.0 --port 8000 --proxy-headers --websocket_timeout 86400 --websocket_connect_timeout 10 --websocket-max-message-size 65536 --websocket-max-frame-size 65536 --application-close-timeout 10 config.asgi:application"]
