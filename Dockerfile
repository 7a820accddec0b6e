# Wingman Gateway container image: `docker build -t wingman .` (README, "Docker").
# The same image runs the gateway (default command), the Celery worker and beat, and the
# one-shot `wingman gateway migrate` (deploy/compose.yaml).

# --- build: the locked production requirements in a virtualenv -------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/production.txt
COPY . .
# editable: the templates and static folders stay where the code finds them (/app)
RUN pip install --no-deps -e . \
 && WINGMAN_STATE_DIR=/tmp/build-state WINGMAN_STATIC_ROOT=/app/static \
    python manage.py collectstatic --noinput --verbosity 0 \
 && rm -rf /tmp/build-state

# --- runtime -----------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 wingman \
 && useradd --system --uid 10001 --gid wingman --home-dir /var/lib/wingman \
      --shell /usr/sbin/nologin wingman \
 && install -d -o wingman -g wingman -m 0700 /var/lib/wingman
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=wingman.settings \
    WINGMAN_STATE_DIR=/var/lib/wingman \
    WINGMAN_STATIC_ROOT=/app/static \
    WINGMAN_HOST=0.0.0.0 \
    WINGMAN_PORT=18789 \
    WINGMAN_AUTH_MODE=token
# WINGMAN_AUTH_MODE=token: the gateway listens on every interface and refuses to start
# (exit 2, one line) until WINGMAN_GATEWAY_TOKEN is given (`wingman gateway token --generate`).
WORKDIR /app
USER wingman:wingman
VOLUME ["/var/lib/wingman"]
EXPOSE 18789 18790
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:18789/health', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["wingman", "gateway", "run"]
