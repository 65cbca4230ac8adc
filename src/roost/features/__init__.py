"""roost feature store: definitions, point-in-time training sets, materialisation, pushes and online reads.

Names load lazily so `import roost.features` stays fast (no DuckDB, Arrow or pandas until used).
"""

from __future__ import annotations

from roost._lazy import lazy_api

# `apply`, `materialize` and `push` share their names with the submodules that define them. Imported here, with the
# package, each name is bound to its function once its submodule has loaded, so a later `import roost.features.push`
# finds the submodule loaded and leaves the name alone. The three modules import no third-party library.
from roost.features.apply import apply, list_definitions
from roost.features.materialize import materialize
from roost.features.push import Pusher, push

_API = {
    "Entity": "roost.features.definitions:Entity",
    "Source": "roost.features.definitions:Source",
    "FeatureView": "roost.features.definitions:FeatureView",
    "RequestView": "roost.features.ondemand:RequestView",
    "training_set": "roost.features.offline:training_set",
    "online": "roost.features.serving:online",
    "OnlineFetcher": "roost.features.serving:OnlineFetcher",
    "compact": "roost.features.push_compact:compact",
    "open_online_store": "roost.features.online_stores:open_online_store",
    "stream": "roost.features.streaming.consumer:stream",
}

__getattr__, __dir__ = lazy_api(__name__, _API)

__all__ = [
    "Entity",
    "FeatureView",
    "OnlineFetcher",
    "Pusher",
    "RequestView",
    "Source",
    "apply",
    "compact",
    "list_definitions",
    "materialize",
    "online",
    "open_online_store",
    "push",
    "stream",
    "training_set",
]
