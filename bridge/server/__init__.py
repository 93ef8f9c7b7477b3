"""How the bridge is served: gunicorn's options (`serving`) and the bridge's own workers
(`workers`), hardened against idle, trickling and hostile clients."""
