"""`python -m roost.pipeline.entry FILE NODE`: run one pipeline node outside the local runner (Airflow).

Inputs come from ROOST_PIPELINE_PARAMS (JSON) and ROOST_UP_<task> (upstream outputs as JSON); the output is
printed as JSON on the last stdout line (Airflow's XCom). The execution is recorded as a task run.
"""

from __future__ import annotations

import json
import os
import sys

from roost.pipeline.dsl import Param, Ref
from roost.pipeline.loader import load_pipeline


def main(argv: list[str]) -> int:
    """Run node argv[1] of the pipeline file argv[0]; print its JSON output last."""
    from roost.registry import api

    path, name = argv[0], argv[1]
    p = load_pipeline(path)
    node = p.nodes[name]
    params = {**p.params, **json.loads(os.environ.get("ROOST_PIPELINE_PARAMS") or "{}")}
    inputs = {}
    for k, v in node.inputs.items():
        if isinstance(v, Ref):
            out = json.loads(os.environ[f"ROOST_UP_{v.task}"])
            inputs[k] = out[v.key] if v.key else out
        elif isinstance(v, Param):
            inputs[k] = params[v.name]
        else:
            inputs[k] = v
    with api.start_run(
        experiment="pipelines",
        name=f"{p.name}.{name}",
        tags={
            "roost.kind": "task",
            "roost.task": name,
            "roost.runner": "airflow",
            "roost.airflow_run": os.environ.get("ROOST_AIRFLOW_RUN", ""),
        },
    ) as run:
        out = node.task.fn(**inputs)
        run.set_tag("roost.task.state", "succeeded")
    sys.stdout.write("\n" + json.dumps(out, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
