"""roost: an ML platform from first model to production fleet.

The public API is lazy: `import roost` imports no heavy library; each name loads its module on first use.
"""

from __future__ import annotations

from roost._lazy import lazy_api

__version__ = "0.1.0"

# public name -> "module:attribute"
_API = {
    # workspace
    "init": "roost.registry.api:init",
    "use_workspace": "roost.workspace:use",
    # tracking + registry
    "start_run": "roost.registry.api:start_run",
    "active_run": "roost.registry.api:active_run",
    "log_param": "roost.registry.api:log_param",
    "log_params": "roost.registry.api:log_params",
    "log_metric": "roost.registry.api:log_metric",
    "log_metrics": "roost.registry.api:log_metrics",
    "log_artifact": "roost.registry.api:log_artifact",
    "set_tag": "roost.registry.api:set_tag",
    "search_runs": "roost.registry.api:search_runs",
    "get_run": "roost.registry.api:get_run",
    "delete_run": "roost.registry.api:delete_run",
    "delete_runs": "roost.registry.api:delete_runs",
    "archive_runs": "roost.registry.api:archive_runs",
    "restore_runs": "roost.registry.api:restore_runs",
    "gc": "roost.registry.api:gc",
    "upload_staged": "roost.registry.api:upload_staged",
    "list_experiments": "roost.registry.api:list_experiments",
    "register_model": "roost.model_import.deferred:register_model",  # a deferred package is built first
    "set_alias": "roost.model_import.deferred:set_alias",
    "resolve_model": "roost.registry.api:resolve_model",
    "list_models": "roost.registry.api:list_models",
    "list_versions": "roost.registry.api:list_versions",
    # training / models
    "train": "roost.training.api:train",
    "load_model": "roost.model_import.deferred:load_model",  # builds a deferred package on first load
    "package_model": "roost.model_import.deferred:package_model",
    "log_model": "roost.model_import.log:log_model",
    "predict": "roost.scoring.api:predict",
    # pipelines
    "task": "roost.pipeline.dsl:task",
    "Pipeline": "roost.pipeline.dsl:Pipeline",
    "run_pipeline": "roost.pipeline.runner:run_pipeline",
    # errors
    "RoostError": "roost.errors:RoostError",
    # autolog
    "autolog": "roost.autologging:autolog",
}

# roost.sklearn.autolog() etc.: the per-library autolog modules (not in __all__: `import *` gives functions only)
_FLAVORS = {f: f"roost.autologging:{f}" for f in ("sklearn", "lightgbm", "xgboost", "lightning", "transformers")}

_SUBMODULES = {
    "workspace",
    "artifacts",
    "errors",
    "byom",  # the old name of model_import, kept for code that imports it
    "model_import",
    "features",
    "datasets",
    "training",
    "scoring",
    "serve",
    "tune",
    "pipeline",
    "monitor",
    "lineage",
    "responsible",
    "ann",
    "registry",
    "modelpkg",
    "notebook",
    "ui",
    "autologging",
}

# `from roost import *` gives the API names (each imports its module); subpackages stay explicit imports.
__all__ = ["__version__", *sorted(_API)]

__getattr__, __dir__ = lazy_api(__name__, {**_API, **_FLAVORS}, _SUBMODULES)
