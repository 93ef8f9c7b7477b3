"""What operators see: one JSON log line per request (`logs`), Prometheus metrics
(`metrics`), and the health and readiness probes (`health`)."""
