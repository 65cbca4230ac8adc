"""Pipelines: DAGs of ML tasks (`@roost.task` + `roost.Pipeline`), a cached local runner, Airflow export."""

from roost.pipeline.dsl import Param, Pipeline, Ref, Task, task

__all__ = ["Pipeline", "Task", "task", "Ref", "Param"]
