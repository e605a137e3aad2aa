# syntax=docker/dockerfile:1
# Production image: the locked dependencies in a virtualenv, the app as a non-root user.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.lock

FROM python:3.11-slim-bookworm AS app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=mathia.settings \
    MATHIA_ENV=production \
    DATA_DIR=/data
RUN groupadd --system mathia && useradd --system --gid mathia --home-dir /app --no-create-home mathia \
    && mkdir -p /data && chown mathia:mathia /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=mathia:mathia manage.py pyproject.toml ./
COPY --chown=mathia:mathia mathia ./mathia
COPY --chown=mathia:mathia templates ./templates
COPY --chown=mathia:mathia static ./static
# collectstatic needs settings, not secrets: throwaway values that exist only in this layer.
RUN SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://build:6379/0 \
    python manage.py collectstatic --noinput \
    && chown -R mathia:mathia /app/staticfiles
USER mathia
EXPOSE 8000
# No per-message deflate: it holds ~50 KiB of zlib state per socket for a few bytes saved on
# small chat frames (docs/performance.md).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["uvicorn", "mathia.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--ws-max-size", "65536", "--proxy-headers", "--forwarded-allow-ips", "*", "--no-access-log"]
