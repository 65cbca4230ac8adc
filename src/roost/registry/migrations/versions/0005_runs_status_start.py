"""runs: index (status, start_time) instead of (status): a status filter reads its runs newest first, unsorted

With an index on status alone, `status = 'FINISHED'` (most runs) made SQLite read every such run and sort them
before returning the first page; (status, start_time) gives them in the default order. The old index was a
prefix of this one and of ix_runs_status_heartbeat, so it is dropped (one index fewer to write per run).

Revision ID: 0005_runs_status_start
Revises: 0004_runs_lifecycle
Create Date: 2026-12-04
"""

from alembic import op

revision = "0005_runs_status_start"
down_revision = "0004_runs_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ix_runs_status_start, drop ix_runs_status."""
    op.create_index("ix_runs_status_start", "runs", ["status", "start_time"], unique=False)
    op.drop_index("ix_runs_status", table_name="runs")


def downgrade() -> None:
    """Back to an index on status alone."""
    op.create_index("ix_runs_status", "runs", ["status"], unique=False)
    op.drop_index("ix_runs_status_start", table_name="runs")
