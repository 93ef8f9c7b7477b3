"""gunicorn's configuration for the bridge, as the container runs it:

    gunicorn --config gunicorn.conf.py 'bridge:create_app()'

Every value comes from the BRIDGE_* environment through `bridge.settings.Settings`
and `bridge.server.serving.gunicorn_options`, the same table ``python -m bridge serve``
uses, so this file only exports it: BRIDGE_HOST, BRIDGE_PORT, BRIDGE_GRPC_PORT,
BRIDGE_WORKERS, BRIDGE_THREADS, BRIDGE_WORKER_CLASS, BRIDGE_HEAD_TIMEOUT and
BRIDGE_LOG_LEVEL set the server; the others set the app. SIGTERM stops gracefully:
in-flight requests get `bridge.server.serving.GRACEFUL_TIMEOUT` seconds.

The worker model (gthread, the bridge's own subclass in `bridge.server.workers`) and
the measurements behind it are in bench/README.md, "Worker model and slow clients".
"""

# The master imports the app's modules before it forks, so that workers share them and
# boot at once (`bridge` itself imports the app factory only when asked for it).
import bridge.app  # noqa: F401
from bridge.server.serving import gunicorn_options
from bridge.settings import Settings

globals().update(gunicorn_options(Settings.from_env()))
