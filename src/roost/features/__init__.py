"""roost feature store: definitions, point-in-time training sets, materialisation, pushes and online reads.

Names load lazily so `import roost.features` stays fast (no DuckDB, Arrow or pandas until used).
"""

from __future__ import annotations

import sys
import types

from roost._lazy import lazy_api

_API = {
    "Entity": "roost.features.definitions:Entity",
    "Source": "roost.features.definitions:Source",
    "FeatureView": "roost.features.definitions:FeatureView",
    "RequestView": "roost.features.ondemand:RequestView",
    "training_set": "roost.features.offline:training_set",
    "online": "roost.features.serving:online",
    "OnlineFetcher": "roost.features.serving:OnlineFetcher",
    "apply": "roost.features.apply:apply",
    "list_definitions": "roost.features.apply:list_definitions",
    "materialize": "roost.features.materialize:materialize",
    "push": "roost.features.push:push",
    "Pusher": "roost.features.push:Pusher",
    "compact": "roost.features.push_compact:compact",
    "open_online_store": "roost.features.online_stores:open_online_store",
    "stream": "roost.features.streaming.consumer:stream",
}

__all__ = sorted(_API)


__getattr__, __dir__ = lazy_api(__name__, _API)


class _Package(types.ModuleType):
    """This package, whose public functions `apply`, `materialize` and `push` share their names with the submodules that
    define them: importing a submodule (`from roost.features.apply import ...`) must not replace the function."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
