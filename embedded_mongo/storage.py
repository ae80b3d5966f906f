"""Documents and indexes in SQLite: the catalog, per-collection document tables and ordered index tables.

Each collection is a table `d<cid>` of (rid, id, doc) where id is the order-preserving key of the
document's `_id` (so `_id` is the primary key) and doc its BSON. Secondary indexes share one table
`idx` of (xid, k, id, rid) ordered by (xid, k, id), k being the encoded index key: one ordered
range per index, and one statement writes a document's entries of every index. Every change also
goes into the oplog in the same transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument

from . import keys
from .diff import changed_fields, update_description
from .errors import CommandError
from .indexes import DocumentKeys, IndexSpec, KeyMaker, id_duplicate_error
from .oplog import History, Oplog
from .wire import CODEC

logger = logging.getLogger(__name__)

DB_FILE = "mongo.sqlite3"
FORMAT = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS collections (
    cid INTEGER PRIMARY KEY AUTOINCREMENT,
    db TEXT NOT NULL,
    name TEXT NOT NULL,
    options BLOB NOT NULL,
    uuid BLOB NOT NULL,
    UNIQUE (db, name)
);
CREATE TABLE IF NOT EXISTS indexes (
    xid INTEGER PRIMARY KEY AUTOINCREMENT,
    cid INTEGER NOT NULL,
    name TEXT NOT NULL,
    spec BLOB NOT NULL,
    multikey INTEGER NOT NULL DEFAULT 0,
    UNIQUE (cid, name)
);
CREATE TABLE IF NOT EXISTS idx (
    xid INTEGER NOT NULL,
    k BLOB NOT NULL,
    id BLOB NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (xid, k, id)
) WITHOUT ROWID;
"""
_INSERT_KEY = "INSERT INTO idx (xid, k, id, rid) VALUES (?, ?, ?, ?)"
_DELETE_KEY = "DELETE FROM idx WHERE xid = ? AND k = ? AND id = ?"
_CONFLICT = "SELECT id FROM idx WHERE xid = ? AND k = ? AND id != ? LIMIT 1"

_BUILD_CHUNK = 1000


class Index:
    """One secondary index of a collection and its SQLite table."""

    def __init__(self, xid: int, spec: IndexSpec, namespace: str, multikey: int) -> None:
        self.xid = xid
        self.spec = spec
        self.maker = KeyMaker(spec, namespace)
        self.multikey = multikey
        self.dropped = False

    @property
    def name(self) -> str:
        """The index name."""
        return self.spec.name

    def is_multikey(self, position: int | None = None) -> bool:
        """Whether any (or the given) field of the key pattern has held an array."""
        if position is None:
            return self.multikey != 0
        return bool(self.multikey >> position & 1)


class Collection:
    """One collection: its catalog entry, its indexes and its document table's statements."""

    def __init__(self, cid: int, db: str, name: str, options: dict, collection_uuid: bytes) -> None:
        self.cid = cid
        self.db = db
        self.name = name
        self.options = options
        self.uuid = collection_uuid
        self.indexes: list[Index] = []
        self.count: int | None = None
        self.dropped = False
        self.table = f"d{cid}"
        self.sql_insert = f"INSERT INTO {self.table} (id, doc) VALUES (?, ?)"
        self.sql_update = f"UPDATE {self.table} SET doc = ? WHERE rid = ?"
        self.sql_delete = f"DELETE FROM {self.table} WHERE rid = ?"
        self.sql_get = f"SELECT rid, doc FROM {self.table} WHERE id = ?"

    @property
    def namespace(self) -> str:
        """db.collection."""
        return f"{self.db}.{self.name}"

    @property
    def images(self) -> bool:
        """Whether change streams get pre- and post-images of this collection's documents."""
        option = self.options.get("changeStreamPreAndPostImages")
        return isinstance(option, dict) and bool(option.get("enabled"))

    def index(self, name: str) -> Index | None:
        """A secondary index by name."""
        for index in self.indexes:
            if index.name == name:
                return index
        return None


def _blob(doc: dict) -> bytes:
    return bson.encode(doc, codec_options=CODEC)


class Storage:
    """The SQLite database file holding every collection, index, the oplog and session records."""

    def __init__(self, path: str, *, cache_mb: int = 64, durable: bool = True, history: History | None = None) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=1024)
        try:
            self._configure(cache_mb, durable)
            self.conn.executescript(SCHEMA)
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None:
                self.conn.execute("INSERT INTO meta (key, value) VALUES ('format', ?)", (FORMAT,))
            elif row[0] != FORMAT:
                raise RuntimeError(f"{path}: unsupported storage format {row[0]!r}")
            self.oplog = Oplog(self.conn, history or History())
            self.catalog: dict[tuple[str, str], Collection] = {}
            self.load_catalog()
        except BaseException:
            self.conn.close()
            raise
        self.in_transaction = False
        self.commits = 0
        self.documents_read = 0
        self._scan_sql: dict[tuple, str] = {}

    def _configure(self, cache_mb: int, durable: bool) -> None:
        conn = self.conn
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{self.path}: cannot use write-ahead logging (journal_mode is {mode})")
        # In WAL mode NORMAL syncs only at checkpoints, so a power loss can drop the last committed
        # transactions; FULL syncs the WAL on every commit, which is what acknowledging a write promises.
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
        conn.execute(f"PRAGMA cache_size = {-max(1, int(cache_mb * 1024))}")
        conn.execute("PRAGMA mmap_size = 0")  # mapped pages would count against the memory bound
        conn.execute("PRAGMA temp_store = FILE")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        conn.execute("PRAGMA foreign_keys = OFF")

    def close(self) -> None:
        """Checkpoint the write-ahead log into the database file and close it."""
        try:
            if self.in_transaction:
                self.conn.execute("ROLLBACK")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.conn.close()

    # -- transactions ------------------------------------------------------------------------

    def begin(self) -> None:
        """Start the transaction of a batch of commands."""
        self.conn.execute("BEGIN")
        self.in_transaction = True

    def commit(self) -> None:
        """Commit (and with synchronous=FULL, fsync) the batch's transaction."""
        self.conn.execute("COMMIT")
        self.in_transaction = False
        self.commits += 1
        self.oplog.mark_committed()

    def rollback(self) -> None:
        """Undo the batch's transaction and reload what the catalog cached."""
        try:
            self.conn.execute("ROLLBACK")
        finally:
            self.in_transaction = False
            self.after_rollback()

    def savepoint(self) -> None:
        """Mark a point a failing command rolls back to."""
        self.conn.execute("SAVEPOINT command")

    def release(self) -> None:
        """Keep what the command did."""
        self.conn.execute("RELEASE command")

    def rollback_to_savepoint(self) -> None:
        """Undo what the failing command did."""
        self.conn.execute("ROLLBACK TO command")
        self.conn.execute("RELEASE command")
        self.after_rollback()

    def after_rollback(self) -> None:
        """Re-read cached state that a rollback may have made stale."""
        self.load_catalog()
        self.oplog.rolled_back()

    # -- catalog -----------------------------------------------------------------------------

    def load_catalog(self) -> None:
        """(Re)read collections and index definitions."""
        catalog: dict[tuple[str, str], Collection] = {}
        by_cid: dict[int, Collection] = {}
        for cid, db, name, options, collection_uuid in self.conn.execute(
            "SELECT cid, db, name, options, uuid FROM collections"
        ):
            coll = Collection(cid, db, name, bson.decode(options, codec_options=CODEC), collection_uuid)
            catalog[(db, name)] = by_cid[cid] = coll
        for xid, cid, spec, multikey in self.conn.execute("SELECT xid, cid, spec, multikey FROM indexes ORDER BY xid"):
            coll = by_cid[cid]
            spec_doc = bson.decode(spec, codec_options=CODEC)
            coll.indexes.append(Index(xid, IndexSpec.from_document(spec_doc), coll.namespace, multikey))
        self.catalog = catalog

    def collection(self, db: str, name: str) -> Collection | None:
        """A collection, if it exists."""
        return self.catalog.get((db, name))

    def database_names(self) -> list[str]:
        """Databases holding at least one collection."""
        return sorted({db for db, _ in self.catalog})

    def collections_of(self, db: str) -> list[Collection]:
        """The collections of a database, by name."""
        return sorted((c for (d, _), c in self.catalog.items() if d == db), key=lambda c: c.name)

    def create_collection(self, db: str, name: str, options: dict | None = None) -> Collection:
        """Create an empty collection."""
        options = options or {}
        collection_uuid = uuid.uuid4().bytes
        cursor = self.conn.execute(
            "INSERT INTO collections (db, name, options, uuid) VALUES (?, ?, ?, ?)",
            (db, name, _blob(options), collection_uuid),
        )
        cid = cursor.lastrowid
        assert cid is not None
        coll = Collection(cid, db, name, options, collection_uuid)
        self.conn.execute(
            f"CREATE TABLE {coll.table} (rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, doc BLOB NOT NULL)"
        )
        coll.count = 0
        self.catalog[(db, name)] = coll
        return coll

    def ensure_collection(self, db: str, name: str) -> Collection:
        """The collection, created if needed (as the first insert into it does)."""
        coll = self.catalog.get((db, name))
        return coll if coll is not None else self.create_collection(db, name)

    def set_options(self, coll: Collection, options: dict) -> None:
        """Replace a collection's options."""
        self.conn.execute("UPDATE collections SET options = ? WHERE cid = ?", (_blob(options), coll.cid))
        coll.options = options

    def drop_collection(self, coll: Collection, *, log: bool = True) -> None:
        """Drop a collection with its indexes."""
        for index in coll.indexes:
            self.conn.execute("DELETE FROM idx WHERE xid = ?", (index.xid,))
        self.conn.execute(f"DROP TABLE {coll.table}")
        self.conn.execute("DELETE FROM indexes WHERE cid = ?", (coll.cid,))
        self.conn.execute("DELETE FROM collections WHERE cid = ?", (coll.cid,))
        del self.catalog[(coll.db, coll.name)]
        coll.dropped = True
        for index in coll.indexes:
            index.dropped = True
        if log:
            self.oplog.append(coll.db, coll.name, {"o": "drop"})

    def drop_database(self, db: str) -> bool:
        """Drop every collection of a database; False if there was none."""
        collections = self.collections_of(db)
        for coll in collections:
            self.drop_collection(coll)
        if collections:
            self.oplog.append(db, None, {"o": "dropDatabase"})
        return bool(collections)

    def rename_collection(self, coll: Collection, db: str, name: str) -> None:
        """Move a collection to a new namespace (its data stays where it is)."""
        self.conn.execute("UPDATE collections SET db = ?, name = ? WHERE cid = ?", (db, name, coll.cid))
        del self.catalog[(coll.db, coll.name)]
        self.oplog.append(coll.db, coll.name, {"o": "rename", "to": {"db": db, "coll": name}})
        coll.db, coll.name = db, name
        for index in coll.indexes:
            index.maker.namespace = coll.namespace
        self.catalog[(db, name)] = coll

    def create_index(self, coll: Collection, spec: IndexSpec) -> Index:
        """Create an index and build it over the existing documents (E11000 if a unique one cannot be)."""
        cursor = self.conn.execute(
            "INSERT INTO indexes (cid, name, spec) VALUES (?, ?, ?)", (coll.cid, spec.name, _blob(spec.to_document()))
        )
        xid = cursor.lastrowid
        assert xid is not None
        index = Index(xid, spec, coll.namespace, 0)
        after = 0
        mask = 0
        while True:
            rows = self.conn.execute(
                f"SELECT rid, id, doc FROM {coll.table} WHERE rid > ? ORDER BY rid LIMIT ?", (after, _BUILD_CHUNK)
            ).fetchall()
            if not rows:
                break
            entries: list[tuple[int, bytes, bytes, int]] = []
            for rid, idb, raw in rows:
                made = index.maker.keys(bson.decode(raw, codec_options=CODEC))
                if made is None:
                    continue
                mask |= made.multikey
                if spec.unique:
                    for key, values in made.entries.items():
                        if self.conn.execute(_CONFLICT, (xid, key, idb)).fetchone() is not None:
                            raise index.maker.duplicate_error(values)
                        self.conn.execute(_INSERT_KEY, (xid, key, idb, rid))
                else:
                    entries.extend((xid, key, idb, rid) for key in made.entries)
            if entries:
                self.conn.executemany(_INSERT_KEY, entries)
            after = rows[-1][0]
        if mask:
            index.multikey = mask
            self.conn.execute("UPDATE indexes SET multikey = ? WHERE xid = ?", (mask, xid))
        coll.indexes.append(index)
        return index

    def drop_index(self, coll: Collection, index: Index) -> None:
        """Drop a secondary index."""
        self.conn.execute("DELETE FROM idx WHERE xid = ?", (index.xid,))
        self.conn.execute("DELETE FROM indexes WHERE xid = ?", (index.xid,))
        coll.indexes.remove(index)
        index.dropped = True

    def update_index_spec(self, index: Index) -> None:
        """Persist a changed index definition (collMod)."""
        self.conn.execute("UPDATE indexes SET spec = ? WHERE xid = ?", (_blob(index.spec.to_document()), index.xid))

    # -- documents ---------------------------------------------------------------------------

    def get(self, coll: Collection, id_key: bytes) -> tuple[int, bytes] | None:
        """(rid, BSON) of the document with this encoded _id."""
        return self.conn.execute(coll.sql_get, (id_key,)).fetchone()

    def count(self, coll: Collection) -> int:
        """Number of documents in a collection."""
        if coll.count is None:
            coll.count = self.conn.execute(f"SELECT COUNT(*) FROM {coll.table}").fetchone()[0]
        return coll.count

    def insert(self, coll: Collection, doc: dict, raw: bytes, *, log: bool = True, check: bool = True) -> int:
        """Insert a new document (raw is its BSON); E11000 for a duplicate _id or unique key."""
        made = [index.maker.keys(doc) for index in coll.indexes]
        id_key = keys.encode(doc["_id"])
        try:
            rid = self.conn.execute(coll.sql_insert, (id_key, raw)).lastrowid
        except sqlite3.IntegrityError:
            raise id_duplicate_error(coll.namespace, doc["_id"]) from None
        assert rid is not None
        if check:
            for index, entries in zip(coll.indexes, made, strict=True):
                if entries is not None and index.spec.unique:
                    for key, values in entries.entries.items():
                        if self.conn.execute(_CONFLICT, (index.xid, key, id_key)).fetchone() is not None:
                            self.conn.execute(coll.sql_delete, (rid,))
                            raise index.maker.duplicate_error(values)
        rows = []
        for index, entries in zip(coll.indexes, made, strict=True):
            if entries is not None:
                xid = index.xid
                rows.extend([(xid, key, id_key, rid) for key in entries.entries])
                self._note_multikey(index, entries.multikey)
        self._write_keys(_INSERT_KEY, rows)
        if coll.count is not None:
            coll.count += 1
        if log:
            entry: dict[str, Any] = {"o": "i", "k": {"_id": doc["_id"]}, "d": RawBSONDocument(raw)}
            self.oplog.append(coll.db, coll.name, entry)
        return rid

    def _write_keys(self, sql: str, rows: list[tuple]) -> None:
        if len(rows) == 1:
            self.conn.execute(sql, rows[0])
        elif rows:
            self.conn.executemany(sql, rows)

    def _note_multikey(self, index: Index, multikey: int) -> None:
        if multikey & ~index.multikey:
            index.multikey |= multikey
            self.conn.execute("UPDATE indexes SET multikey = ? WHERE xid = ?", (index.multikey, index.xid))

    def replace(
        self,
        coll: Collection,
        rid: int,
        old: dict,
        new: dict,
        new_raw: bytes,
        *,
        old_raw: bytes,
        replacement: bool,
        log: bool = True,
    ) -> None:
        """Store a new version of a document (same _id), keeping its index entries in step."""
        id_key = keys.encode(old["_id"])
        removed_rows: list[tuple] = []
        added_rows: list[tuple] = []
        multikeys = []
        description = update_description(old, new) if log and not replacement else None
        if description is None:
            changed = changed_fields(old, new)
        else:
            touched = [*description["updatedFields"], *description["removedFields"]]
            touched += [truncated["field"] for truncated in description["truncatedArrays"]]
            changed = {path.split(".", 1)[0] for path in touched}
        for index in coll.indexes:
            depends_on = index.maker.depends_on
            if depends_on is not None and not depends_on & changed:
                continue  # none of the fields its keys come from changed
            before = _keys_or_none(index, old)
            after = index.maker.keys(new)
            old_keys = before.entries if before is not None else {}
            new_keys = after.entries if after is not None else {}
            xid = index.xid
            for key in new_keys:
                if key not in old_keys:
                    if index.spec.unique and self.conn.execute(_CONFLICT, (xid, key, id_key)).fetchone() is not None:
                        raise index.maker.duplicate_error(new_keys[key])
                    added_rows.append((xid, key, id_key, rid))
            removed_rows.extend((xid, key, id_key) for key in old_keys if key not in new_keys)
            if after is not None and after.multikey:
                multikeys.append((index, after.multikey))
        entry: dict[str, Any] | None = None
        if log:  # described before anything is written, so nothing below can fail half-way
            entry = {"o": "r" if replacement else "u", "k": {"_id": old["_id"]}}
            if replacement or coll.images:
                entry["d"] = RawBSONDocument(new_raw)
            if not replacement:
                entry["u"] = description
            if coll.images:
                entry["b"] = RawBSONDocument(old_raw)
        self.conn.execute(coll.sql_update, (new_raw, rid))
        self._write_keys(_DELETE_KEY, removed_rows)
        self._write_keys(_INSERT_KEY, added_rows)
        for index, multikey in multikeys:
            self._note_multikey(index, multikey)
        if entry is not None:
            self.oplog.append(coll.db, coll.name, entry)

    def delete(self, coll: Collection, rid: int, doc: dict, raw: bytes, *, log: bool = True) -> None:
        """Delete a stored document and its index entries."""
        id_key = keys.encode(doc["_id"])
        rows: list[tuple] = []
        for index in coll.indexes:
            made = _keys_or_none(index, doc)
            if made is not None:
                rows.extend((index.xid, key, id_key) for key in made.entries)
        self._write_keys(_DELETE_KEY, rows)
        self.conn.execute(coll.sql_delete, (rid,))
        if coll.count is not None:
            coll.count -= 1
        if log:
            entry: dict[str, Any] = {"o": "d", "k": {"_id": doc["_id"]}}
            if coll.images:
                entry["b"] = RawBSONDocument(raw)
            self.oplog.append(coll.db, coll.name, entry)

    # -- scans -------------------------------------------------------------------------------

    def scan_documents(
        self, coll: Collection, after: int | None, limit: int, reverse: bool = False
    ) -> list[tuple[int, bytes]]:
        """(rid, BSON) in natural (insertion) order, after a position."""
        check_alive(coll)
        if after is None:
            sql = f"SELECT rid, doc FROM {coll.table} ORDER BY rid {'DESC' if reverse else ''} LIMIT ?"
            rows = self.conn.execute(sql, (limit,)).fetchall()
        else:
            sql = (
                f"SELECT rid, doc FROM {coll.table} WHERE rid {'<' if reverse else '>'} ? ORDER BY rid "
                f"{'DESC' if reverse else ''} LIMIT ?"
            )
            rows = self.conn.execute(sql, (after, limit)).fetchall()
        self.documents_read += len(rows)
        return rows

    def scan_ids(
        self,
        coll: Collection,
        start: bytes | None,
        end: bytes | None,
        after: bytes | None,
        limit: int,
        reverse: bool = False,
    ) -> list[tuple[bytes, int, bytes]]:
        """(id, rid, BSON) in _id order within [start, end), after a position."""
        check_alive(coll)
        where, args = _range_clauses("id", start, end)
        if after is not None:
            where.append(f"id {'<' if reverse else '>'} ?")
            args.append(after)
        sql = f"SELECT id, rid, doc FROM {coll.table} {_where(where)} ORDER BY id {'DESC' if reverse else ''} LIMIT ?"
        rows = self.conn.execute(sql, (*args, limit)).fetchall()
        self.documents_read += len(rows)
        return rows

    def scan_index(
        self,
        coll: Collection,
        index: Index,
        start: bytes | None,
        end: bytes | None,
        after: tuple[bytes, bytes] | None,
        limit: int,
        reverse: bool = False,
    ) -> list[tuple[bytes, bytes, int, bytes]]:
        """(key, id, rid, BSON) in index order within keys [start, end), after a (key, id) position."""
        check_alive(coll, index)
        shape = (coll.table, start is not None, end is not None, after is not None, reverse)
        sql = self._scan_sql.get(shape)
        if sql is None:
            where = ["x.xid = ?"]
            if start is not None:
                where.append("x.k >= ?")
            if end is not None:
                where.append("x.k < ?")
            if after is not None:
                where.append(f"(x.k, x.id) {'<' if reverse else '>'} (?, ?)")
            order = "DESC" if reverse else ""
            sql = self._scan_sql[shape] = (
                f"SELECT x.k, x.id, d.rid, d.doc FROM idx x JOIN {coll.table} d ON d.rid = x.rid "
                f"WHERE {' AND '.join(where)} ORDER BY x.k {order}, x.id {order} LIMIT ?"
            )
        args: list[Any] = [index.xid]
        if start is not None:
            args.append(start)
        if end is not None:
            args.append(end)
        if after is not None:
            args.extend(after)
        args.append(limit)
        rows = self.conn.execute(sql, args).fetchall()
        self.documents_read += len(rows)
        return rows

    def count_index(self, index: Index, start: bytes | None, end: bytes | None) -> int:
        """Number of index entries with keys in [start, end)."""
        where, args = _range_clauses("k", start, end)
        where.insert(0, "xid = ?")
        args.insert(0, index.xid)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM idx {_where(where)}", args).fetchone()[0])

    def count_ids(self, coll: Collection, start: bytes | None, end: bytes | None) -> int:
        """Number of documents with encoded _id in [start, end)."""
        where, args = _range_clauses("id", start, end)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {coll.table} {_where(where)}", args).fetchone()[0])

    def index_keys(
        self, index: Index, start: bytes | None, end: bytes | None, limit: int, after: tuple[bytes, bytes] | None = None
    ) -> list[tuple[bytes, bytes, int]]:
        """(key, id, rid) entries of an index within [start, end), for maintenance such as TTL."""
        where, args = _range_clauses("k", start, end)
        where.insert(0, "xid = ?")
        args.insert(0, index.xid)
        if after is not None:
            where.append("(k, id) > (?, ?)")
            args.extend(after)
        sql = f"SELECT k, id, rid FROM idx {_where(where)} ORDER BY k, id LIMIT ?"
        return self.conn.execute(sql, (*args, limit)).fetchall()

    def get_by_rid(self, coll: Collection, rid: int) -> bytes | None:
        """The BSON of the document stored under rid."""
        row = self.conn.execute(f"SELECT doc FROM {coll.table} WHERE rid = ?", (rid,)).fetchone()
        return row[0] if row else None

    def all_documents(self, coll: Collection) -> Iterator[tuple[int, bytes]]:
        """Every (rid, BSON) of a collection, read in bounded chunks."""
        after: int | None = None
        while True:
            rows = self.scan_documents(coll, after, _BUILD_CHUNK)
            if not rows:
                return
            yield from rows
            after = rows[-1][0]


def check_alive(coll: Collection, index: Index | None = None) -> None:
    """A cursor reading a dropped collection or index ends with MongoDB's QueryPlanKilled."""
    if coll.dropped:
        raise CommandError(175, f"collection dropped: {coll.namespace}")
    if index is not None and index.dropped:
        raise CommandError(175, f"index '{index.name}' dropped")


def _keys_or_none(index: Index, doc: dict) -> DocumentKeys | None:
    try:
        return index.maker.keys(doc)
    except CommandError:  # a stored document always had valid keys; be lenient when removing
        return None


def _range_clauses(column: str, start: bytes | None, end: bytes | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if start is not None:
        where.append(f"{column} >= ?")
        args.append(start)
    if end is not None:
        where.append(f"{column} < ?")
        args.append(end)
    return where, args


def _where(clauses: list[str]) -> str:
    return "WHERE " + " AND ".join(clauses) if clauses else ""
