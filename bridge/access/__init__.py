"""Who may do what: the callers' credentials and the queues' definitions.

    auth      authenticators: none, a token file (``--auth token``)
    idtoken   Google-signed ID tokens (``--auth google``)
    queues    queue.yaml: which projects and queues exist, their ACLs and limits
    acl       which identity may call which method on which queue
"""
