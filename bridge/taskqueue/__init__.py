"""The Task Queue REST API v1beta2 front (pull queues), as Google's service answered it.

    discovery   the Discovery document (`api_data/`): routes and parameter checks
    handlers    one handler per method, and the table of them
    wire        JSON resources and bodies: tasks, queues, payload base64, int64 strings
    fields      partial responses (the ``fields`` parameter)
    batch       many calls in one ``multipart/mixed`` POST
    fastpath    the hot methods answered past Flask's per-request machinery

It holds no queue semantics: it translates the wire format to backend calls and back.
"""
