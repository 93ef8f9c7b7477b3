"""gunicorn's configuration for the bridge, as the container runs it:

    gunicorn --config gunicorn.conf.py 'bridge:create_app()'

Every value comes from the BRIDGE_* environment through `bridge.settings.Settings`
and `bridge.serving.gunicorn_options`, the same table ``python -m bridge serve`` uses,
so this file only exports it: BRIDGE_HOST, BRIDGE_PORT, BRIDGE_WORKERS, BRIDGE_THREADS,
BRIDGE_WORKER_CLASS and BRIDGE_LOG_LEVEL set the server; the others set the app.
SIGTERM stops gracefully: in-flight requests get `bridge.serving.GRACEFUL_TIMEOUT`.

Worker model: gthread (BRIDGE_WORKER_CLASS), as ``python -m bridge serve`` has always
run; the comparison with sync and gevent is to be recorded here.
"""

from bridge.serving import gunicorn_options
from bridge.settings import Settings

globals().update(gunicorn_options(Settings.from_env()))
