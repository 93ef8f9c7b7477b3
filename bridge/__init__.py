"""Task Queue Bridge, the server: the App Engine Task Queue REST API v1beta2 (pull
queues) over the storage of `backends`.

`create_app` is the only way to build it (tests, ``python -m bridge serve`` and
``gunicorn 'bridge:create_app()'`` all call it). The v1beta2 front translates the wire
format to backend calls and back: routes and parameter checks come from the Discovery
document (`discovery`), bodies and resources from `wire`, the handlers are in `api`,
errors are rendered by `errors`. The Cloud Tasks v2beta2 front (`cloudtasks`) serves the
same queues over gRPC and HTTP/JSON. Around them: `settings`, `cli`, `serving` (gunicorn),
`auth`/`idtoken`/`acl` (who may do what), `metrics`, `health`, `logs`, `fields`
(partial responses), `queues` (queue.yaml) and `console` (the web console and its JSON
admin API). `client` is for the other side: workers build Google's client for a bridge
with it (``from bridge.client import connect``); the server never imports it. Tools
that call a bridge live in `bridge_tools`, outside the server.
"""

from bridge.app import create_app
from bridge.version import __version__

__all__ = ["__version__", "create_app"]
