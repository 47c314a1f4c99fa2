"""CloudWatch Logs behaviour the local cloud adds: metrics extracted from embedded metric format (EMF) log events."""
