"""Model repository: experiments, runs, params, metrics, tags, artifacts, registered models and aliases."""

# The public surface is the submodules: `api` (runs, metrics, models — what `roost.*` re-exports), `store`
# (the store interface), `query` (the filter language), `modelreg` (model versions and aliases).
__all__ = ["api", "lifecycle", "modelreg", "query", "run", "store"]
