"""How the bridge is served: gunicorn's options (`serving`) and the bridge's own workers
(`workers`, with their client sockets in `sockets`), hardened against idle, trickling
and hostile clients; what the workers take from gunicorn is named and checked in
`gunicorn_internals`."""
