"""Tools that are clients, not the server: they call a bridge or a backend's service.

    compat   ``python -m bridge compat URL [URL]``: a battery of scenarios run through
             Google's Python client against one endpoint, or two side by side
    smoke    ``python -m bridge smoke --backend cloudtasks://…``: does a real project
             serve Cloud Tasks v2beta2 pull queues as the bridge needs?
    options  the ``--token`` option of the commands that call a bridge
    queue_cli  ``python -m bridge queues|tasks|peek|purge|insert``: look into and act on
             the queues of a running bridge (the v1 API and the console's JSON API)

`bridge.cli` reaches each command by name and imports it only when it is called:
starting the server (`bridge.create_app`, ``python -m bridge serve``) imports nothing
from here. Tools may use `bridge` and `backends`; neither uses them.
"""
