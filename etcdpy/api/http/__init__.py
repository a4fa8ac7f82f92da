"""HTTP/1.1 endpoints of the client URL (health, version, metrics, debug)."""
