"""The team server (`roost server`): the REST API over the store, accounts, roles, an artifact proxy, the audit log,
the MLflow REST subset, and the web UI — one ASGI app for a whole team."""

# The public surface is the submodules: `app` (create_server_app, app_from_env), `settings` (ServerSettings),
# `identity` (Identity, roles), `permissions`, and the route modules.
__all__ = ["api_v1", "app", "identity", "permissions", "proxy", "settings"]
