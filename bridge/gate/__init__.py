"""The gate: what every way in passes through before it reaches the queues.

One pipeline for every front (v1 REST on both of its paths, batch parts, v2beta2 over
HTTP/JSON and gRPC, the console's pages and JSON API), so a protection added here holds
on every surface at once:

    http       the HTTP pipeline, outermost WSGI layer: request id, checks, answer
               (the API's methods past Flask, everything else by Flask), log line, counts
    head       the Host header and query string every HTTP request is checked for (400)
    crosssite  what a page on another origin could make a browser send (403)
    override   X-HTTP-Method-Override, as Google's front end honoured it
    bodies     request bodies read within the body budget, malformed ones refused (400)
    access     the project allow-list, authentication and queue ACLs, asked by every front
    budget     the response budget of a call, and of a batch as a whole
    backend    the one hook every backend call passes: the caller's deadline, the counts
    record     one log line and the counts of a call, HTTP or gRPC

The error mapping is `bridge.errors.as_api_error` (bad input 400 / INVALID_ARGUMENT, a
store that cannot answer 503 / UNAVAILABLE, a bug 500 that leaks nothing); each front
renders its result in its own wire format.
"""
