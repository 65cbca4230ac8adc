"""params: run_start, a copy of the run's start_time, and the indexes (key, num, run_start) and (key, value,
run_start) in place of (key, num) and (key, value), which are their prefixes (filters read them as before).

A sort by a param orders the runs sharing a value newest first. With the run's start time only in `runs`, the
runs of a common value (`depth = 3`, a tenth of a million runs) were all read and sorted before the first page;
with it in the index they are read in that order and the read stops at the page (roost.registry.paging). Filling
the column reads every param once (about a minute per ten million params on SQLite).

Revision ID: 0007_params_run_start
Revises: 0006_model_versions_run_id
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_params_run_start"
down_revision = "0006_model_versions_run_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add and fill params.run_start; index it after (key, num) and (key, value)."""
    op.add_column("params", sa.Column("run_start", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE params SET run_start = (SELECT runs.start_time FROM runs WHERE runs.id = params.run_id)")
    op.create_index("ix_params_key_num_start", "params", ["key", "num", "run_start"], unique=False)
    op.create_index("ix_params_key_value_start", "params", ["key", "value", "run_start"], unique=False)
    op.drop_index("ix_params_key_num", table_name="params")
    op.drop_index("ix_params_key_value", table_name="params")


def downgrade() -> None:
    """Back to the (key, num) and (key, value) indexes, without params.run_start."""
    op.create_index("ix_params_key_num", "params", ["key", "num"], unique=False)
    op.create_index("ix_params_key_value", "params", ["key", "value"], unique=False)
    op.drop_index("ix_params_key_value_start", table_name="params")
    op.drop_index("ix_params_key_num_start", table_name="params")
    with op.batch_alter_table("params") as batch:
        batch.drop_column("run_start")
