# The bridge as operators run it: gunicorn with gunicorn.conf.py, configured by BRIDGE_*
# variables (README.md lists them). docker-compose.yml runs it next to Redis.
#
#   docker build -t task-queue-bridge --build-arg SOURCE_URL=https://… --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run -p 8080:8080 -e BRIDGE_BACKEND=redis://redis-host:6379/0 -e BRIDGE_WORKERS=2 task-queue-bridge
#
# tests/test_container.py starts the bridge with this file's ENV and CMD and runs its
# HEALTHCHECK, and lints the file with hadolint.
FROM python:3.11-slim-trixie

# VERSION follows bridge/version.py (a test checks it); a release sets SOURCE_URL and REVISION.
ARG VERSION=0.1.0
ARG SOURCE_URL=""
ARG REVISION=""
LABEL org.opencontainers.image.title="Task Queue Bridge" \
      org.opencontainers.image.description="The App Engine Task Queue REST API v1beta2 (pull queues) over Redis or Google Cloud Tasks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${REVISION}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid bridge --no-create-home --shell /usr/sbin/nologin bridge

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

WORKDIR /app
COPY api_data/ api_data/
COPY backends/ backends/
COPY bridge/ bridge/
COPY bridge_tools/ bridge_tools/
COPY gunicorn.conf.py ./

# Numeric, so that a cluster can verify "not root" without reading /etc/passwd.
USER 10001:10001

# memory:// (the default backend) serves one worker; with redis:// set BRIDGE_WORKERS to
# the cores you give the container. The metrics folder must be private to this server:
# gunicorn.conf.py empties it at start.
ENV BRIDGE_HOST=0.0.0.0 \
    BRIDGE_PORT=8080 \
    BRIDGE_LOG_LEVEL=info \
    PROMETHEUS_MULTIPROC_DIR=/tmp/bridge-metrics
EXPOSE 8080

# Liveness only (/healthz): a Redis outage shows on /readyz, and restarting the bridge
# would not cure it. The image's own Python does the probe, so no curl is installed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BRIDGE_PORT', '8080'), timeout=2)"]

# Exec form: gunicorn is PID 1 and receives SIGTERM itself, then stops gracefully.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "bridge:create_app()"]
