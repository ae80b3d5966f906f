"""The operator bot's routers, one per feature."""
