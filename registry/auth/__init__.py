"""API tokens and roles: who may call the HTTP API, and what each role may do (no web framework here)."""
