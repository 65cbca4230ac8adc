"""model_versions: index run_id — the retention guard ("model versions registered from these runs", asked for each
batch of runs deleted or gc'd) and gc's unlinking of versions from purged runs read model_versions by run_id, a
scan of every model version per batch without it; ON DELETE SET NULL from runs needs it as well.

Revision ID: 0006_model_versions_run_id
Revises: 0005_runs_status_start
Create Date: 2026-12-04
"""

from alembic import op

revision = "0006_model_versions_run_id"
down_revision = "0005_runs_status_start"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ix_model_versions_run_id."""
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"], unique=False)


def downgrade() -> None:
    """Drop ix_model_versions_run_id."""
    op.drop_index("ix_model_versions_run_id", table_name="model_versions")
