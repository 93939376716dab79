"""imagebot's HTTP server and what it serves: health, metrics, webhooks, downloads."""
