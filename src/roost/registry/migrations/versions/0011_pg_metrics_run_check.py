"""PostgreSQL: the metric history's link to its run is checked once per statement, not once per point.

A foreign key is checked by PostgreSQL row by row: inserting a 5,000-point batch ran 5,000 lookups of the same run
(about two thirds of the insert's time, see bench/RESULTS.md "Team server"). The same rule is kept by two
statement-level triggers instead: an insert (or update) of metric points checks each distinct run once and locks
it FOR KEY SHARE, as the foreign key's check did (a concurrent delete of that run waits for the insert's commit,
and an insert after the delete's commit is refused); deleting runs deletes their points in the same statement
(ON DELETE CASCADE). Changing a run's id is refused while points name it. SQLite keeps its foreign key (its
check costs nothing there).

Revision ID: 0011_pg_metrics_run_check
Revises: 0010_traffic_est_requests
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011_pg_metrics_run_check"
down_revision = "0010_traffic_est_requests"
branch_labels = None
depends_on = None

_CREATE = [
    """
CREATE FUNCTION roost_metrics_run_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing varchar;
BEGIN
  SELECT n.run_id INTO missing
    FROM (SELECT DISTINCT run_id FROM roost_points) n
    LEFT JOIN LATERAL (SELECT r.id FROM runs r WHERE r.id = n.run_id FOR KEY SHARE) r ON true
   WHERE r.id IS NULL
   LIMIT 1;
  IF FOUND THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('metric points of run %s, which is not in table "runs"', missing);
  END IF;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION roost_runs_delete_metrics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM metrics m USING roost_gone g WHERE m.run_id = g.id;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION roost_runs_id_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM metrics WHERE run_id = OLD.id) THEN
    RAISE foreign_key_violation USING MESSAGE = format('run %s has metric points: its id cannot change', OLD.id);
  END IF;
  RETURN NEW;
END $$""",
    "CREATE TRIGGER metrics_run_exists AFTER INSERT ON metrics REFERENCING NEW TABLE AS roost_points "
    "FOR EACH STATEMENT EXECUTE FUNCTION roost_metrics_run_check()",
    "CREATE TRIGGER metrics_run_exists_upd AFTER UPDATE ON metrics REFERENCING NEW TABLE AS roost_points "
    "FOR EACH STATEMENT EXECUTE FUNCTION roost_metrics_run_check()",
    "CREATE TRIGGER runs_delete_metrics AFTER DELETE ON runs REFERENCING OLD TABLE AS roost_gone "
    "FOR EACH STATEMENT EXECUTE FUNCTION roost_runs_delete_metrics()",
    "CREATE TRIGGER runs_id_kept BEFORE UPDATE OF id ON runs FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) "
    "EXECUTE FUNCTION roost_runs_id_kept()",
]


def upgrade() -> None:
    """PostgreSQL: replace metrics' foreign key on runs by the statement-level triggers (SQLite: nothing)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    names = bind.exec_driver_sql(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'metrics'::regclass AND contype = 'f'"
    ).scalars()
    for name in list(names):
        op.execute(f'ALTER TABLE metrics DROP CONSTRAINT "{name}"')
    for sql in _CREATE:
        op.execute(sql)


def downgrade() -> None:
    """PostgreSQL: the triggers go, the foreign key comes back (checked against every stored point)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for trigger, table in (
        ("metrics_run_exists", "metrics"),
        ("metrics_run_exists_upd", "metrics"),
        ("runs_delete_metrics", "runs"),
        ("runs_id_kept", "runs"),
    ):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for fn in ("roost_metrics_run_check", "roost_runs_delete_metrics", "roost_runs_id_kept"):
        op.execute(f"DROP FUNCTION {fn}()")
    op.execute(
        "ALTER TABLE metrics ADD CONSTRAINT metrics_run_id_fkey FOREIGN KEY (run_id) REFERENCES runs (id) "
        "ON DELETE CASCADE"
    )
