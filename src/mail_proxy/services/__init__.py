"""Use cases: what the proxy does, whichever door (HTTP API, dashboard, SMTP listener) asks."""
