"""Redis online store: one key per (view, entity) holding the entity's row (`redis_rows`), the views' definitions in
one hash, each view's newest event time in one key; every write is one atomic script call (expiry: `redis_scan`)."""

from __future__ import annotations

import json
import logging
from typing import Any

from roost.errors import RoostError
from roost.features.online_stores import redis_legacy as legacy
from roost.features.online_stores import redis_rows as rows
from roost.features.online_stores import redis_scan as scan
from roost.features.online_stores.base import OnlineStore, ViewData, ViewReader, decode

__all__ = ["RedisOnlineStore"]

log = logging.getLogger(__name__)

SCAN = 5000  # keys per DEL when a view's rows are dropped
INT_KEYS = ("int64", "int32")  # join key types whose values are Python ints here
WATCH_TRIES = 50  # transactions of a redefinition/migration retried when a watched key changed


class RedisOnlineStore(OnlineStore):
    """Online store in Redis: key `<prefix>:@<view>:<keys>:<values>` holds one entity's row of one view."""

    per_project = True

    @classmethod
    def from_url(cls, url: str, project: str) -> RedisOnlineStore:
        """Open `redis://`, `rediss://` or `unix://` with keys namespaced by the project."""
        return cls(url, prefix=f"roost:{project}")

    def __init__(self, url: str, prefix: str = "roost") -> None:
        try:
            import redis
        except ImportError as exc:
            raise RoostError(
                "the Redis online store needs the redis package",
                hint="pip install 'roost[redis]' (or pip install redis)",
            ) from exc
        self.url = url
        self.prefix = prefix
        self._script: Any = None
        self._noscript = redis.exceptions.NoScriptError
        self._pack = _hiredis_packer()
        self.expire_script: Any = None  # (redis_scan.expire registers it on first use)
        self.r = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            self.r.ping()
        except redis.RedisError as exc:
            from roost.errors import redact_url

            raise RoostError(
                f"cannot reach the Redis online store at {redact_url(url)}: {exc}",
                hint="start redis-server, or set online_store in roost.yaml",
            ) from exc

    def hkey(self, keys: list[str], values: tuple[Any, ...]) -> str:
        """The hash key of one entity."""
        if len(values) == 1:
            return f"{self.prefix}:{keys[0]}:{values[0]}"
        esc = (str(v).replace("\\", "\\\\").replace("|", "\\|") for v in values)  # "a|b","c" != "a","b|c"
        return f"{self.prefix}:{','.join(keys)}:" + "|".join(esc)

    def row_key_of(self, view: str, ident: str) -> str:
        """The key of an entity's row of `view` (`ident`: the hash key without the prefix; '@' starts no key of the
        legacy layout, whose entity keys start with a join key name)."""
        return f"{self.prefix}:@{view}:{ident}"

    def row_keys(self, view: str, keys: list[str], cols: list[list[Any]]) -> list[str]:
        """Row keys of `view` for entities given as one value list per join key."""
        if len(keys) == 1:
            head = f"{self.prefix}:@{view}:{keys[0]}:"
            return [f"{head}{x}" for x in cols[0]]  # (f-string: ~20% faster than head + str(x))
        skip = len(self.prefix) + 1
        return [self.row_key_of(view, self.hkey(keys, t)[skip:]) for t in zip(*cols)]

    def idx_key(self, view: str) -> str:
        """The view's index of the earlier layouts: a sorted set of its entities' keys scored by event time."""
        return f"{self.prefix}:__idx:{view}"

    def tops_key(self, view: str) -> str:
        """The view's newest event time written (µs as text: an in-order write reads no row; set by every write)."""
        return f"{self.prefix}:__newest:{view}"

    def meta_key(self) -> str:
        """The hash of the views' stored definitions."""
        return f"{self.prefix}:__views"

    def write(self, views: list[ViewData]) -> dict[str, int]:
        """Upsert each view's rows not older than the stored ones: one script call for one view whose stored
        definition is this one (or its rows-json-1 form); else one transaction (drops, a legacy view's migration, the
        writes). Then rows older than `expire_before` are deleted, in SCAN chunks of one atomic script call each."""
        if len(views) == 1:
            n = self._call(self.r, views[0])
            if n >= 0:  # -1: the stored definition differs (the script wrote nothing): the general path below
                return self._expired(views, {views[0].name: n})
        import redis

        for _ in range(WATCH_TRIES):
            try:
                return self._expired(views, self._write_all(views))
            except redis.WatchError:  # a definition or index changed between the read and the transaction: again
                continue
        raise RoostError(
            f"Redis online store {self.url}: views {[v.name for v in views]} changed under {WATCH_TRIES} tries "
            "of this write (other writers redefining or migrating them); nothing was written",
            hint="retry when the other writers of these views have switched to the new definition",
        )

    def _expired(self, views: list[ViewData], written: dict[str, int]) -> dict[str, int]:
        """Expire each view's rows older than its `expire_before` once the write is done (chunked, see redis_scan)."""
        for v in views:
            if v.expire_before is not None:
                gone = scan.expire(self, v.name, int(v.expire_before))
                log.debug("expired %d rows of %s", gone, v.name)
        return written

    def _write_all(self, views: list[ViewData]) -> dict[str, int]:
        """Every view in one MULTI/EXEC watched on the definitions: a redefined view is dropped first, a legacy view
        of the same definition is migrated to the row layout (its rows written first, then this write's)."""
        with self.r.pipeline(transaction=True) as p:
            pipe: Any = p  # (redis-py's watch is untyped)
            pipe.watch(self.meta_key(), *(k for v in views for k in (self.idx_key(v.name), self.tops_key(v.name))))
            stored: dict[str, Any] = {v.name: pipe.hget(self.meta_key(), v.name) for v in views}
            moves = {}
            for v in views:
                old = stored[v.name]
                if legacy.is_legacy(old) and json.loads(old) == {"keys": v.keys, "fields": v.fields}:
                    moves[v.name] = legacy.legacy_rows(self, v.name, old)
            pipe.multi()
            at: dict[str, int] = {}
            for v in views:
                old = stored[v.name]  # the same view in the rows-json-1 layout: the script converts it
                same = (rows.definition(v.keys, v.fields), rows.indexed_definition(v.keys, v.fields))
                if old is not None and legacy.text(old) not in same:
                    if legacy.is_legacy(old):
                        legacy.queue_legacy_drop(self, pipe, v.name, old)
                    else:
                        self._queue_drop(pipe, v.name)
                if v.name in moves:
                    self._call(pipe, v, moves[v.name])
                at[v.name] = len(pipe.command_stack)  # this view's reply: the next command's
                self._call(pipe, v)
            out = pipe.execute()
        return {v.name: int(out[at[v.name]]) for v in views}

    def _call(self, client: Any, v: ViewData, move: Any = None) -> Any:
        """The upsert script for one view (on the connection or queued in a transaction); `move`: a legacy view's
        rows to write instead of the view's table."""
        if self._script is None:
            self._script = self.r.register_script(rows.UPSERT)
        dtypes, keys_json = list(v.fields.values()), b""
        if move is not None:
            rkeys, et, ct, cols = move
        else:
            kcols, et, ct, cols = rows.table_lists(v.columns(), len(v.keys))
            names, ids = list(v.keys), kcols[0]
            one_int = len(names) == 1 and v.keys[names[0]] in INT_KEYS and v.table.column(names[0]).null_count == 0
            if one_int and ids and len(set(ids)) == len(ids):
                # one integer key, each entity once (the usual push): the keys' JSON straight from the ids' text
                rkeys, keys_json = [], rows.int_keys_json(f"{self.prefix}:@{v.name}:{names[0]}:", ids)
            else:
                rkeys = self.row_keys(v.name, names, kcols)
        encoded = rows.encode(rkeys, et, ct, cols, dtypes, keys_json)
        defs = (rows.definition(v.keys, v.fields), rows.indexed_definition(v.keys, v.fields))
        args = [v.name, self.meta_key(), self.tops_key(v.name), *defs, self.idx_key(v.name), *encoded]
        if client is not self.r:  # a transaction: redis-py's Script queues the script's loading with it
            return self._script(args=args, client=client)
        try:
            return int(self._evalsha(args))
        except self._noscript:  # a restarted or flushed server: Script loads it again
            return int(self._script(args=args))

    def _evalsha(self, args: list[Any]) -> Any:
        """EVALSHA of the upsert script with `args`, packed by hiredis in one call: redis-py's `execute_command`
        adds ~10-20 µs a call (its per-argument encoding, its bookkeeping). On a pool connection with redis-py's
        retry and disconnect on connection errors, as `execute_command` does."""
        cmd = ("EVALSHA", self._script.sha, 0, *args)
        client: Any = self.r  # (redis-py's connection methods are untyped)
        if self._pack is None:  # (hiredis without pack_command: redis-py's own packing)
            return client.execute_command(*cmd)
        packed = [self._pack(cmd)]
        pool = client.connection_pool
        conn = pool.get_connection()

        def once() -> Any:
            conn.send_packed_command(packed)
            return conn.read_response()

        try:
            return conn.retry.call_with_retry(once, lambda _error: conn.disconnect())
        finally:
            pool.release(conn)

    def _queue_drop(self, pipe: Any, view: str) -> None:
        """Queue deletion of every row of `view` (either row layout: found by SCAN), its index (rows-json-1), its
        definition and its newest time."""
        found = scan.row_keys_of(self, view)
        for lo in range(0, len(found), SCAN):
            pipe.delete(*found[lo : lo + SCAN])
        pipe.delete(self.idx_key(view))
        pipe.hdel(self.meta_key(), view)
        pipe.delete(self.tops_key(view))

    def reader(
        self,
        view: str,
        keys: dict[str, str],
        fields: dict[str, str],
        with_time: bool = False,
        with_created: bool = False,
    ) -> ViewReader:
        """An MGET reader for `fields` of `view` (then __et / __ct when asked); a legacy view's HMGET reader."""
        raw = self.r.hget(self.meta_key(), view)
        if raw is None:
            raise RoostError(
                f"view {view!r} has not been materialised into {self.url}", hint="run `roost features materialize`"
            )
        schema = json.loads(raw)
        if any(f not in schema["fields"] for f in fields) or list(schema["keys"]) != list(keys):
            raise RoostError(
                f"online store {self.url} holds an older definition of view {view!r}",
                hint="run `roost features materialize` after `roost features apply`",
            )
        times = (["__et"] if with_time else []) + (["__ct"] if with_created else [])
        if legacy.is_legacy(raw):
            return legacy.LegacyReader(self, view, list(keys), fields, times)
        return self.row_reader(view, list(keys), fields, raw, times)

    def row_reader(
        self, view: str, keys: list[str], fields: dict[str, str], stored: Any, times: list[str]
    ) -> ViewReader:
        """The reader of a view stored in the row layout (`stored`: its definition)."""
        order = list(json.loads(stored)["fields"]) if stored is not None else list(fields)
        picks = [2 + order.index(f) if f in order else -1 for f in fields]
        return _RowReader(self, view, keys, picks, [0 if t == "__et" else 1 for t in times])

    def has_view(self, view: str) -> bool:
        """True when the view has been materialised here."""
        return bool(self.r.hexists(self.meta_key(), view))

    def drop_view(self, view: str) -> None:
        """Delete every stored row of the view, atomically."""
        stored = self.r.hget(self.meta_key(), view)
        pipe = self.r.pipeline(transaction=True)
        if legacy.is_legacy(stored):
            legacy.queue_legacy_drop(self, pipe, view, stored)
        else:
            self._queue_drop(pipe, view)
        pipe.execute()

    def stats(self, view: str) -> dict[str, Any] | None:
        """Rows and newest event time: a SCAN of the view's keys (row layout), the index (earlier layouts)."""
        stored = self.r.hget(self.meta_key(), view)
        if stored is None:
            return None
        if rows.layout_of(stored) == rows.LAYOUT:
            n = scan.count(self, view)
            return {"rows": n, "newest_event": scan.newest(self, view) if n else None}
        n = int(str(self.r.zcard(self.idx_key(view))))
        top = self.r.zrevrange(self.idx_key(view), 0, 0, withscores=True)
        newest = float(top[0][1]) if top else None
        ok = newest is not None and newest not in (float("inf"), float("-inf"))
        return {"rows": n, "newest_event": int(newest) if ok and newest is not None else None}

    def ident_row(self, schema: dict[str, Any], ident: str) -> dict[str, Any]:
        """The join key value(s) of an entity key's identity part (one key decoded, several as stored)."""
        keys = list(schema["keys"])
        if len(keys) == 1:
            return {keys[0]: decode(ident, schema["keys"][keys[0]])}
        return {",".join(keys): ident}

    def sample(self, view: str, n: int) -> list[dict[str, Any]]:
        """Up to `n` rows (join keys as stored in the entity key): the first found by SCAN (row layout), the newest
        by event time (earlier layouts, from their index)."""
        raw = self.r.hget(self.meta_key(), view)
        if raw is None:
            return []
        schema = json.loads(raw)
        if legacy.is_legacy(raw):
            return legacy.legacy_sample(self, view, schema, n)
        if rows.layout_of(raw) == rows.LAYOUT:
            return scan.sample_rows(self, view, schema, int(n))
        rk = [legacy.text(h) for h in self.r.zrevrange(self.idx_key(view), 0, max(0, int(n) - 1))]
        return scan.rows_at(self, view, schema, rk, self.r.mget(rk)) if rk else []

    def close(self) -> None:
        """Close the connection pool."""
        self.r.close()


def _hiredis_packer() -> Any:
    """hiredis's `pack_command` (a whole command in one C call), or None where hiredis lacks it."""
    try:
        import hiredis
    except ImportError:
        return None
    return getattr(hiredis, "pack_command", None)


class _RowReader(ViewReader):
    """One MGET of the entities' rows of the view (row layout)."""

    def __init__(self, store: RedisOnlineStore, view: str, keys: list[str], picks: list[int], times: list[int]) -> None:
        self.store, self.view, self.keys, self.picks, self.times = store, view, keys, picks, times

    def read(self, key_cols: list[list[Any]]) -> list[list[Any]]:
        """One list per field aligned with the requested keys (None where absent)."""
        st = self.store
        rk = st.row_keys(self.view, self.keys, key_cols)
        return rows.decode_rows(st.r.mget(rk) if rk else [], self.picks, self.times)
