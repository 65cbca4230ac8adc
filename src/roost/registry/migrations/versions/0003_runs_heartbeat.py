"""runs: heartbeat_at, the last sign of life of the run's process (stale RUNNING runs are marked LOST)

Existing runs get heartbeat_at = end_time, else start_time: a run left RUNNING by an older roost is marked LOST
once the heartbeat timeout has passed since it started.

Revision ID: 0003_runs_heartbeat
Revises: 0002_runs_experiment_start
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_runs_heartbeat"
down_revision = "0002_runs_experiment_start"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add runs.heartbeat_at (backfilled) and an index for the stale-run scan."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_runs_status_heartbeat", ["status", "heartbeat_at"], unique=False)
    op.execute("UPDATE runs SET heartbeat_at = COALESCE(end_time, start_time)")


def downgrade() -> None:
    """Drop runs.heartbeat_at."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_status_heartbeat")
        batch_op.drop_column("heartbeat_at")
