"""HTTP API under /api/v1, plus /health and /metrics, served by each worker's Faust web server."""
