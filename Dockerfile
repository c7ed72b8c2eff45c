# syntax=docker/dockerfile:1
# One image for every role (web, worker, beat, migrate): see docker/entrypoint.sh.

# --- Front-end assets: GOV.UK Frontend from npm, exactly as package-lock.json pins it
# (not the dev dependencies: axe-core is for the browser tests).
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# --- The application.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var \
    PORT=8000

RUN groupadd --system --gid 1000 tidings \
    && useradd --system --uid 1000 --gid tidings --home-dir /app --shell /usr/sbin/nologin tidings

WORKDIR /app

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY --from=assets /build/node_modules/govuk-frontend/dist node_modules/govuk-frontend/dist
COPY . .

# Settings refuse to start with DEBUG off unless production values are set. These are
# placeholders for this one build step only (collectstatic reads no secret and opens no
# connection); the real values come from the environment at run time.
RUN DEBUG=false \
    SECRET_KEY=build-only \
    SUPPRESSION_KEY=build-only \
    ALLOWED_HOSTS=localhost \
    SITE_URL=https://build.invalid \
    DATABASE_URL=postgres://build@build.invalid/build \
    REDIS_URL=redis://build.invalid:6379/0 \
    MAILER=outbox \
    python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p "$VAR_DIR" \
    && chown tidings:tidings "$VAR_DIR"

USER tidings

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
