"""The team server (`roost server`): the REST API over the store, accounts, roles, an artifact proxy, the audit log,
the MLflow REST subset, and the web UI — one ASGI app for a whole team."""

__all__: list[str] = []  # the parts are imported by module: roost.server.app, .auth, .permissions, …
