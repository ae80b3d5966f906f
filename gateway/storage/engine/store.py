"""The data of every database: documents kept in mongomock's store, indexes kept alongside.

Every change goes through Store and is recorded as an *effect* (a deterministic, idempotent
description such as "put this full document" or "delete this _id"), which the journal persists
and `apply` replays.  Stored documents are never mutated in place: updates replace them with a
new dict, so open cursors and snapshots can hold references to them safely.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import mongomock
from mongomock.helpers import hashdict
from mongomock.store import CollectionStore, ServerStore

from .errors import CommandError
from .indexes import ID_INDEX_NAME, CollectionIndexes, IndexSpec
from .values import format_value

logger = logging.getLogger(__name__)


def id_key(value: Any) -> Hashable:
    """The key mongomock's store uses for an _id value."""
    return hashdict(value) if isinstance(value, dict) else value


@dataclass
class CollectionImage:
    """A point-in-time copy of one collection (document references, never mutated)."""

    db: str
    name: str
    options: dict
    indexes: list[dict]
    documents: list[dict]


class Store:
    """All databases, collections, documents and index definitions of the server."""

    def __init__(self) -> None:
        self._server = ServerStore()
        self._client = mongomock.MongoClient(_store=self._server)
        self._indexes: dict[tuple[str, str], CollectionIndexes] = {}
        self._options: dict[tuple[str, str], dict] = {}
        self._effects: list[dict] = []
        self.version = 0

    # -- reading -----------------------------------------------------------------------------

    def take_effects(self) -> list[dict]:
        """Effects recorded since the last call, in order."""
        effects, self._effects = self._effects, []
        return effects

    def database_names(self) -> list[str]:
        """Names of databases holding at least one collection."""
        return self._server.list_created_database_names()

    def collection_names(self, db: str) -> list[str]:
        """Names of the existing collections of a database."""
        if db not in self._server.list_created_database_names():
            return []
        return self._server[db].list_created_collection_names()

    def exists(self, db: str, coll: str) -> bool:
        """Whether a collection exists."""
        return coll in self.collection_names(db)

    def _docs(self, db: str, coll: str) -> OrderedDict:
        # mongomock's accessors take a thread lock and run TTL expiry on every call; the engine
        # is single-threaded and keeps TTL indexes out of mongomock, so use the dict directly.
        store: CollectionStore = self._server[db][coll]
        return store._documents

    def documents(self, db: str, coll: str) -> list[dict]:
        """All documents of a collection in natural order (treat them as read-only)."""
        return list(self._docs(db, coll).values())

    def count(self, db: str, coll: str) -> int:
        """Number of documents in a collection."""
        return len(self._docs(db, coll))

    def get(self, db: str, coll: str, key: Hashable) -> dict | None:
        """The document stored under an id key, if any."""
        try:
            return self._docs(db, coll).get(key)
        except TypeError:  # unhashable _id value in a query
            return None

    def indexes(self, db: str, coll: str) -> CollectionIndexes:
        """Secondary indexes of a collection (empty if it has none)."""
        found = self._indexes.get((db, coll))
        return found if found is not None else CollectionIndexes(f"{db}.{coll}")

    def options(self, db: str, coll: str) -> dict:
        """Options the collection was created with."""
        return self._options.get((db, coll), {})

    def mongomock_database(self, db: str) -> mongomock.Database:
        """A mongomock view of a database, for aggregation stages that read other collections."""
        return self._client[db]

    # -- writing -----------------------------------------------------------------------------

    def _ensure_collection(self, db: str, coll: str) -> CollectionIndexes:
        self._server[db][coll].create()
        indexes = self._indexes.get((db, coll))
        if indexes is None:
            indexes = self._indexes[(db, coll)] = CollectionIndexes(f"{db}.{coll}")
        return indexes

    def _record(self, effect: dict) -> None:
        self._effects.append(effect)
        self.version += 1

    def insert(self, db: str, coll: str, doc: dict) -> None:
        """Insert a new document (which must have an _id); E11000 on a duplicate key."""
        key = id_key(doc["_id"])
        docs = self._docs(db, coll)
        if key in docs:
            raise CommandError(
                11000,
                f"E11000 duplicate key error collection: {db}.{coll} index: {ID_INDEX_NAME} "
                f"dup key: {{ _id: {format_value(doc['_id'])} }}",
                keyPattern={"_id": 1},
                keyValue={"_id": doc["_id"]},
            )
        indexes = self.indexes(db, coll)
        prepared = indexes.prepare(key, doc)
        indexes = self._ensure_collection(db, coll)
        indexes.add(key, prepared)
        docs[key] = doc
        self._record({"o": "put", "db": db, "c": coll, "d": doc})

    def replace(self, db: str, coll: str, old: dict, new: dict) -> None:
        """Replace a stored document by a new version with the same _id."""
        key = id_key(old["_id"])
        indexes = self.indexes(db, coll)
        prepared = indexes.prepare(key, new)
        indexes.remove(key, old)
        indexes.add(key, prepared)
        self._docs(db, coll)[key] = new
        self._record({"o": "put", "db": db, "c": coll, "d": new})

    def delete(self, db: str, coll: str, doc: dict) -> None:
        """Delete a stored document."""
        key = id_key(doc["_id"])
        self.indexes(db, coll).remove(key, doc)
        self._docs(db, coll).pop(key, None)
        self._record({"o": "del", "db": db, "c": coll, "id": doc["_id"]})

    def create_collection(self, db: str, coll: str, options: dict) -> None:
        """Create an empty collection."""
        self._ensure_collection(db, coll)
        if options:
            self._options[(db, coll)] = options
        self._record({"o": "create", "db": db, "c": coll, "options": options})

    def drop_collection(self, db: str, coll: str) -> bool:
        """Drop a collection with its indexes; False if it did not exist."""
        existed = self.exists(db, coll)
        self._server[db][coll].drop()
        self._indexes.pop((db, coll), None)
        self._options.pop((db, coll), None)
        if existed:
            self._record({"o": "drop", "db": db, "c": coll})
        return existed

    def drop_database(self, db: str) -> None:
        """Drop every collection of a database."""
        names = self.collection_names(db)
        for name in names:
            self._server[db][name].drop()
            self._indexes.pop((db, name), None)
            self._options.pop((db, name), None)
        if names:
            self._record({"o": "dropDatabase", "db": db})

    def create_index(self, db: str, coll: str, spec: IndexSpec, check: bool = True) -> bool:
        """Create an index (building it over existing documents); False if it already exists."""
        indexes = self.indexes(db, coll)
        for existing in indexes.specs():
            if existing.name == spec.name:
                if existing.same_definition(spec):
                    return False
                raise CommandError(
                    86, f"An existing index has the same name as the requested index but different options: {spec.name}"
                )
            if existing.key == spec.key and existing.same_definition(spec):
                raise CommandError(85, f"Index already exists with a different name: {existing.name}")
        docs = ((id_key(d["_id"]), d) for d in self._docs(db, coll).values())
        index = indexes.build(spec, docs, check=check)
        indexes = self._ensure_collection(db, coll)
        indexes.indexes[spec.name] = index
        self._record({"o": "index", "db": db, "c": coll, "spec": spec.to_document()})
        return True

    def drop_index(self, db: str, coll: str, name: str) -> None:
        """Drop a secondary index by name."""
        indexes = self._indexes.get((db, coll))
        if indexes is None or name not in indexes.indexes:
            raise CommandError(27, f"index not found with name [{name}]")
        del indexes.indexes[name]
        self._record({"o": "dropIndex", "db": db, "c": coll, "name": name})

    # -- persistence -------------------------------------------------------------------------

    def apply(self, effect: dict) -> None:
        """Replay one recorded effect (idempotent, no constraint checks)."""
        op, db = effect["o"], effect["db"]
        coll = effect.get("c", "")
        if op == "put":
            doc = effect["d"]
            key = id_key(doc["_id"])
            old = self._docs(db, coll).get(key)
            indexes = self._ensure_collection(db, coll)
            if old is not None:
                indexes.remove(key, old)
            indexes.add(key, indexes.prepare(key, doc, check=False))
            self._docs(db, coll)[key] = doc
        elif op == "del":
            old = self._docs(db, coll).pop(id_key(effect["id"]), None)
            if old is not None:
                self.indexes(db, coll).remove(id_key(effect["id"]), old)
        elif op == "create":
            self._ensure_collection(db, coll)
            if effect.get("options"):
                self._options[(db, coll)] = effect["options"]
        elif op == "drop":
            self.drop_collection(db, coll)
        elif op == "dropDatabase":
            self.drop_database(db)
        elif op == "index":
            spec = IndexSpec.from_document(effect["spec"])
            if spec.name in self.indexes(db, coll).indexes:
                self.drop_index(db, coll, spec.name)
            self.create_index(db, coll, spec, check=False)
        elif op == "dropIndex":
            if effect["name"] in self.indexes(db, coll).indexes:
                self.drop_index(db, coll, effect["name"])
        else:
            raise ValueError(f"unknown effect {op!r}")
        self._effects.clear()

    def capture(self) -> list[CollectionImage]:
        """A consistent image of every collection, for a snapshot."""
        images = []
        for db in self.database_names():
            for name in self.collection_names(db):
                images.append(
                    CollectionImage(
                        db=db,
                        name=name,
                        options=self.options(db, name),
                        indexes=[s.to_document() for s in self.indexes(db, name).specs()],
                        documents=self.documents(db, name),
                    )
                )
        return images
