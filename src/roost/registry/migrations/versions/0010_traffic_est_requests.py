"""The traffic rows' estimated requests: the logged requests weighted by 1 / their sampling rate (--log-requests),
so error rates and requests per minute are unbiased when only a sample of the successes is logged (every error
answer is counted). Older rows have none: they read as their logged count.

Revision ID: 0010_traffic_est_requests
Revises: 0009_serve_fleets
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_traffic_est_requests"
down_revision = "0009_serve_fleets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add serve_traffic.est_requests (nullable)."""
    with op.batch_alter_table("serve_traffic") as batch:
        batch.add_column(sa.Column("est_requests", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop serve_traffic.est_requests."""
    with op.batch_alter_table("serve_traffic") as batch:
        batch.drop_column("est_requests")
