"""The team server's tables: accounts, groups, tokens (hashed), grants per experiment/model, the audit log, and
idempotency keys of applied client writes (a retried metric batch is not applied twice).

Revision ID: 0008_team_server
Revises: 0007_params_run_start
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_team_server"
down_revision = "0007_params_run_start"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the team server's tables (empty: a store without accounts works as before)."""
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text()),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "account_groups",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("account_groups.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_group_members_account_id", "group_members", ["account_id"])
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128)),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS),
        sa.Column("revoked_at", _TS),
        sa.Column("last_used_at", _TS),
    )
    op.create_index("ix_access_tokens_account_id", "access_tokens", ["account_id"])
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("resource_kind", sa.String(16), nullable=False),
        sa.Column("resource_name", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.UniqueConstraint(
            "principal_kind", "principal_id", "resource_kind", "resource_name", name="uq_grants_target"
        ),
    )
    op.create_index("ix_grants_resource", "grants", ["resource_kind", "resource_name"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(128)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource", sa.Text()),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(128)),
        sa.Column("detail", sa.JSON()),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    """Drop the team server's tables."""
    for table in ("idempotency_keys", "audit_events", "grants", "access_tokens", "group_members"):
        op.drop_table(table)
    op.drop_table("account_groups")
    op.drop_table("accounts")
