"""runs: lifecycle_stage ('active' | 'archived' | 'deleted' | 'purging') and hidden_at, for retention

hidden_at is when a run left 'active' (archived or deleted); NULL exactly for active runs. Existing runs become
'active'. The columns have constant defaults, so the upgrade is a metadata change on SQLite (ALTER TABLE ADD
COLUMN) and PostgreSQL 11+ (no table rewrite), even at a million runs. hidden_at is indexed for `roost gc`
(deleted runs older than a cutoff) and for counting hidden runs. lifecycle_stage has no index of its own: nearly
every run is 'active', and such an index would tempt SQLite's planner away from the start_time indexes.

Revision ID: 0004_runs_lifecycle
Revises: 0003_runs_heartbeat
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_runs_lifecycle"
down_revision = "0003_runs_heartbeat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add runs.lifecycle_stage (default 'active') and runs.hidden_at (indexed)."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default=sa.text("'active'"))
        )
        batch_op.add_column(sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_runs_hidden_at", ["hidden_at"], unique=False)


def downgrade() -> None:
    """Drop runs.lifecycle_stage and runs.hidden_at."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_hidden_at")
        batch_op.drop_column("hidden_at")
        batch_op.drop_column("lifecycle_stage")
