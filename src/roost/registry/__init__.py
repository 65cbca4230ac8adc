"""Model repository: experiments, runs, params, metrics, tags, artifacts, registered models and aliases."""

# The public surface is the submodules: `api` (runs, metrics, models — what `roost.*` re-exports), `interface`
# (TrackingStore, the store interface), `backend` (which store a client uses), `store` / `sqlstore` (SQL),
# `rest` (a roost server), `query` (the filter language), `modelreg` (model versions and aliases).
__all__ = ["api", "backend", "interface", "lifecycle", "modelreg", "query", "rest", "run", "sqlstore", "store"]
