"""runs: index (experiment_id, start_time) for paging one experiment's runs newest-first

Revision ID: 0002_runs_experiment_start
Revises: 0001_initial
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002_runs_experiment_start"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_experiment_start", ["experiment_id", "start_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_experiment_start")
