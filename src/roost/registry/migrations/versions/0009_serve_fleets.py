"""Serving fleets (registration and heartbeat), their per-minute traffic rolled up from the request logs, and the
rolled-up offset of each request-log file (so the aggregator never reads a row twice).

Revision ID: 0009_serve_fleets
Revises: 0008_team_server
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_serve_fleets"
down_revision = "0008_team_server"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the fleet and traffic tables (empty)."""
    op.create_table(
        "serve_fleets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("heartbeat_at", _TS, nullable=False),
        sa.Column("stopped_at", _TS),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("log_rate", sa.Float(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
    )
    op.create_index("ix_serve_fleets_heartbeat_at", "serve_fleets", ["heartbeat_at"])
    op.create_table(
        "serve_fleet_models",
        sa.Column("fleet_id", sa.String(32), sa.ForeignKey("serve_fleets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model", sa.String(256), primary_key=True),
    )
    op.create_index("ix_serve_fleet_models_model", "serve_fleet_models", ["model"])
    op.create_table(
        "serve_traffic",
        sa.Column("model", sa.String(256), primary_key=True),
        sa.Column("span", sa.Integer(), primary_key=True),
        sa.Column("minute", sa.Integer(), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("fleet_id", sa.String(32), primary_key=True),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.Column("latency", sa.JSON(), nullable=False),
        sa.Column("predictions", sa.JSON(), nullable=False),
        sa.Column("pred_name", sa.String(256)),
    )
    op.create_table(
        "serve_log_offsets",
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_serve_log_offsets_updated_at", "serve_log_offsets", ["updated_at"])


def downgrade() -> None:
    """Drop the fleet and traffic tables."""
    for table in ("serve_log_offsets", "serve_traffic", "serve_fleet_models", "serve_fleets"):
        op.drop_table(table)
