"""SQLAlchemy ORM schema of the model repository (the Alembic migrations create exactly this)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every repository table."""


class Experiment(Base):
    __tablename__ = "experiments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(256), index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # indexed with start_time (migration 0005)
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user: Mapped[str | None] = mapped_column(String(128))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(Text)
    parent_run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    artifact_uri: Mapped[str] = mapped_column(Text, nullable=False)
    # last sign of life of the process that owns the run (written by its flusher thread); see registry.lifecycle
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # retention (registry.retention): 'active' | 'archived' | 'deleted' | 'purging' (gc removing it); hidden_at is
    # when it left 'active' (set exactly when the stage is not 'active', so counts of visible runs use its index)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), nullable=False, server_default=text("'active'"))
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    __table_args__ = (
        Index("ix_runs_experiment_start", "experiment_id", "start_time"),
        Index("ix_runs_status_heartbeat", "status", "heartbeat_at"),
        Index("ix_runs_status_start", "status", "start_time"),
    )


class Param(Base):
    __tablename__ = "params"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    type: Mapped[str] = mapped_column(String(8), nullable=False)  # int | float | str | bool
    num: Mapped[float | None] = mapped_column(Float)  # numeric view for int/float/bool params
    # the run's start_time, copied on insert (migration 0007): a sort by a param reads the runs sharing a value
    # newest first from the index, not by sorting every one of them
    run_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ix_params_key_num_start", "key", "num", "run_start"),
        Index("ix_params_key_value_start", "key", "value", "run_start"),
    )


class Metric(Base):
    """Full metric history: one row per logged point."""

    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(String(256), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    timestamp: Mapped[float] = mapped_column(Float, nullable=False)  # unix seconds
    __table_args__ = (Index("ix_metrics_run_key_step", "run_id", "key", "step"),)


class LatestMetric(Base):
    """The latest value of each metric of a run (by step, then time): what `metrics.X` means in queries."""

    __tablename__ = "latest_metrics"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    timestamp: Mapped[float] = mapped_column(Float, nullable=False)
    __table_args__ = (Index("ix_latest_key_value", "key", "value"),)


class Tag(Base):
    __tablename__ = "tags"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (Index("ix_tags_key_value", "key", "value"),)


class RegisteredModel(Base):
    __tablename__ = "registered_models"
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    name: Mapped[str] = mapped_column(ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)  # 0006
    source: Mapped[str] = mapped_column(Text, nullable=False)  # artifact URI of the model package
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Alias(Base):
    __tablename__ = "model_aliases"
    name: Mapped[str] = mapped_column(ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class AliasHistory(Base):
    """Every alias move (the version 'stages' history)."""

    __tablename__ = "model_alias_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False, index=True)
    alias: Mapped[str] = mapped_column(String(128), nullable=False)
    version: Mapped[int | None] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    user: Mapped[str | None] = mapped_column(String(128))


class StoredObject(Base):
    """Generic named JSON objects (feature definitions, watermarks, studies...) kept in the repository."""

    __tablename__ = "objects"
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_objects_kind_name"),)


# -- the team server (roost.server): accounts, grants, audit, idempotent writes (migration 0008) ------------------
class Account(Base):
    """A person (password login) or a service account (tokens only)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # 'user' | 'service'
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2id; None for service accounts
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Group(Base):
    __tablename__ = "account_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(ForeignKey("account_groups.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True)


class AccessToken(Base):
    """An API token: `roost_<id>_<secret>`; only the SHA-256 of the secret is kept (tokens are 256-bit random)."""

    __tablename__ = "access_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Grant(Base):
    """A role ('read' | 'edit' | 'manage') of an account or group on one experiment or registered model."""

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    principal_kind: Mapped[str] = mapped_column(String(16), nullable=False)  # 'account' | 'group'
    principal_id: Mapped[int] = mapped_column(Integer, nullable=False)
    resource_kind: Mapped[str] = mapped_column(String(16), nullable=False)  # 'experiment' | 'model'
    resource_name: Mapped[str] = mapped_column(String(256), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    __table_args__ = (
        UniqueConstraint("principal_kind", "principal_id", "resource_kind", "resource_name", name="uq_grants_target"),
        Index("ix_grants_resource", "resource_kind", "resource_name"),
    )


class AuditEvent(Base):
    """One attempted write (or login) on the team server: who, what, when, from where, and the answer."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    actor: Mapped[str | None] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    client: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IdempotencyKey(Base):
    """A client's key of a write already applied: a retried batch with the same key is not applied twice."""

    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)


# -- serving fleets and their traffic (roost.registry.fleets; migration 0009) -------------------------------------
class ServeFleet(Base):
    """One `roost serve` process group: where it listens, what it serves, and its last sign of life."""

    __tablename__ = "serve_fleets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(256), nullable=False)
    port: Mapped[int] = mapped_column(Integer, nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    interval_s: Mapped[float] = mapped_column(Float, nullable=False)  # heartbeat period: gone after 3 missed
    log_rate: Mapped[float] = mapped_column(Float, nullable=False)  # fraction of requests logged (0: none)
    # [{model, version, source, role: primary|canary|shadow, share: percent}]
    models: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)


class ServeFleetModel(Base):
    """Which registered model names a fleet serves (the model page's lookup of its fleets)."""

    __tablename__ = "serve_fleet_models"
    fleet_id: Mapped[str] = mapped_column(ForeignKey("serve_fleets.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(256), primary_key=True, index=True)


class TrafficMinute(Base):
    """One minute (span 1), or 10 or 60 minutes (the same counts summed, for long windows), of one model version's
    logged traffic from one fleet (mergeable: histograms add up)."""

    __tablename__ = "serve_traffic"
    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    span: Mapped[int] = mapped_column(Integer, primary_key=True)  # minutes this row covers: 1, 10 or 60
    minute: Mapped[int] = mapped_column(Integer, primary_key=True)  # Unix time // 60 of its first minute
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    fleet_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, nullable=False)  # logged requests (distinct request ids)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)  # predicted rows
    errors: Mapped[int] = mapped_column(Integer, nullable=False)  # error answers (every one, not sampled)
    # requests weighted by 1 / their log sampling rate (migration 0010; None in older rows: read as `requests`)
    est_requests: Mapped[float | None] = mapped_column(Float)
    latency_ms_sum: Mapped[float] = mapped_column(Float, nullable=False)
    latency: Mapped[dict[str, int]] = mapped_column(JSON, nullable=False)  # roost.registry.sketch buckets
    predictions: Mapped[dict[str, int]] = mapped_column(JSON, nullable=False)
    pred_name: Mapped[str | None] = mapped_column(String(256))  # the output the prediction histogram is of


class LogOffset(Base):
    """How many rows of one request-log file are already rolled up into serve_traffic."""

    __tablename__ = "serve_log_offsets"
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
