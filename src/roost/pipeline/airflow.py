"""Export a pipeline as an Airflow DAG file, and the entry point each Airflow task runs.

Each node becomes a BashOperator that runs `python -m roost.pipeline.entry FILE NODE` with roost's own
interpreter (Airflow lives in its own environment); outputs travel as JSON through XComs (the last stdout line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from roost.pipeline.dsl import Pipeline

TEMPLATE = '''"""Airflow DAG exported by `roost pipeline export` from {source}. Regenerate instead of editing."""
import datetime

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

PYTHON = {python!r}
PIPELINE = {source!r}
WORKSPACE = {workspace!r}
PARAMS = {params!r}

with DAG(dag_id={dag_id!r}, schedule={schedule}, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         tags=["roost"]) as dag:
    tasks = {{}}
{tasks}
{edges}
'''

TASK = """    tasks[{name!r}] = BashOperator(
        task_id={name!r},
        bash_command=f"{{PYTHON}} -m roost.pipeline.entry {{PIPELINE}} {name} ",
        env={{"ROOST_WORKSPACE": WORKSPACE, "ROOST_PIPELINE_PARAMS": PARAMS, "ROOST_AIRFLOW_RUN": "{{{{ run_id }}}}",
{ups}        }},
        append_env=True,
        retries={retries},
        do_xcom_push=True,
    )"""


def export_airflow(
    p: Pipeline,
    source: Path,
    out: Path,
    workspace: Path,
    params: dict[str, Any] | None = None,
    schedule: str = "None",
) -> Path:
    """Write an Airflow DAG file that runs pipeline `p` (defined in `source`) task by task; `schedule`: the DAG's
    schedule as Python source (None: triggered by hand; a cron string or a datetime.timedelta for a cadence)."""
    allp = {**p.params, **(params or {})}
    blocks, edges = [], []
    for level in p.order():
        for name in level:
            node = p.nodes[name]
            ups = "".join(
                f'            "ROOST_UP_{u}": "{{{{ ti.xcom_pull(task_ids={u!r}) }}}}",\n' for u in node.upstream()
            )
            blocks.append(TASK.format(name=name, ups=ups, retries=node.task.retries))
            edges += [f"    tasks[{u!r}] >> tasks[{name!r}]" for u in node.upstream()]
    text = TEMPLATE.format(
        source=str(source.resolve()),
        python=sys.executable,
        workspace=str(workspace.resolve()),
        params=json.dumps(allp, default=str),
        dag_id=_dag_id(p.name),
        schedule=schedule,
        tasks="\n".join(blocks),
        edges="\n".join(edges),
    )
    compile(text, str(out), "exec")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


def _dag_id(name: str) -> str:
    import re

    return "roost_" + re.sub(r"[^A-Za-z0-9_]+", "_", name)
