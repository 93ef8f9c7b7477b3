"""The Cloud Tasks v2beta2 front: the same queues as the v1beta2 API, over gRPC and HTTP/JSON.

    convert       names and messages to backend values and back; errors to status codes
    methods       one handler per RPC and the table of them (each written once)
    grpc_server   the gRPC transport (``--grpc-port``)
    rest          the HTTP/JSON transport, under ``/v2beta2/`` on the main port

Like the v1 front it holds no queue semantics: it translates, calls the backend and
translates back.
"""
