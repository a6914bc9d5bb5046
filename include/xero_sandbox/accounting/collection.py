"""One entity's records in memory: by ID, secondary indexes, and orderings cached until the next write.

Records are plain dicts of native values and are never mutated once stored: a write stores a new dict. That
lets readers page through a snapshot without holding the store's lock, and lets a cached ordering stay valid
exactly as long as the collection's ``version`` is unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

Record = dict[str, Any]
KeyFn = Callable[[Record], "str | None"]


class Collection:
    """Records of one entity keyed by lower-case GUID, in creation order.

    ``unique`` indexes map a normalised key (e.g. a contact's ContactNumber) to one ID; ``multi`` indexes map a
    key (e.g. an invoice's ContactID) to the IDs of every record having it. Both are maintained on ``put``.
    Writers must hold the owning store's lock; readers need not.
    """

    def __init__(
        self,
        name: str,
        id_field: str,
        *,
        unique: dict[str, KeyFn] | None = None,
        multi: dict[str, KeyFn] | None = None,
    ) -> None:
        self.name = name
        self.id_field = id_field
        self.version = 0
        self._records: dict[str, Record] = {}
        self._unique_fns = unique or {}
        self._multi_fns = multi or {}
        self._unique: dict[str, dict[str, str]] = {index: {} for index in self._unique_fns}
        self._multi: dict[str, dict[str, dict[str, None]]] = {index: {} for index in self._multi_fns}
        self._orders: dict[Any, tuple[Any, list[Record]]] = {}
        self._order_lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_order_lock"]
        state["_orders"] = {}  # cached orderings are rebuilt on demand
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._order_lock = threading.RLock()

    # ------------------------------------------------------------------------------------------------- reads
    def get(self, record_id: str | None) -> Record | None:
        """The record with this ID (any case), or None. Treat it as read-only."""
        if not record_id:
            return None
        return self._records.get(str(record_id).lower())

    def by(self, index: str, key: str | None) -> Record | None:
        """The record a unique index maps ``key`` to (keys are matched case-insensitively)."""
        if key is None:
            return None
        record_id = self._unique[index].get(str(key).strip().casefold())
        return self._records.get(record_id) if record_id else None

    def all_by(self, index: str, key: str | None) -> list[Record]:
        """Every record a multi index maps ``key`` to, in creation order."""
        if key is None:
            return []
        ids = self._multi[index].get(str(key).strip().casefold(), {})
        return [self._records[record_id] for record_id in list(ids)]

    def values(self) -> list[Record]:
        """A snapshot of every record, in creation order."""
        return list(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.values())

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and record_id.lower() in self._records

    def ordered(
        self, cache_key: Any, dependency: Any, compute: Callable[[list[Record]], list[Record]]
    ) -> list[Record]:
        """``compute(snapshot)`` cached under ``cache_key`` until this collection (or ``dependency``) changes.

        A page request then costs a slice, not a sort of the whole collection.
        """
        stamp = (self.version, dependency)
        cached = self._orders.get(cache_key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with self._order_lock:
            cached = self._orders.get(cache_key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            result = compute(self.values())
            if len(self._orders) > 32:  # a handful of distinct orders are in use at any time
                self._orders.clear()
            self._orders[cache_key] = (stamp, result)
            return result

    # ------------------------------------------------------------------------------------------------ writes
    def put(self, record: Record) -> None:
        """Insert or replace a record (caller holds the store lock)."""
        record_id = str(record[self.id_field]).lower()
        old = self._records.get(record_id)
        if old is not None:
            self._unindex(record_id, old)
        self._records[record_id] = record
        self._index(record_id, record)
        self.version += 1

    def put_many(self, records: list[Record]) -> None:
        """Bulk insert of new records (the generator's path): one version bump, no per-record replacement."""
        for record in records:
            record_id = str(record[self.id_field]).lower()
            old = self._records.get(record_id)
            if old is not None:
                self._unindex(record_id, old)
            self._records[record_id] = record
            self._index(record_id, record)
        self.version += 1

    def remove(self, record_id: str) -> Record | None:
        """Delete a record (only Items are ever removed in Xero)."""
        old = self._records.pop(record_id.lower(), None)
        if old is not None:
            self._unindex(record_id.lower(), old)
            self.version += 1
        return old

    def _index(self, record_id: str, record: Record) -> None:
        for index, fn in self._unique_fns.items():
            key = _norm(fn(record))
            if key is not None:
                self._unique[index][key] = record_id
        for index, fn in self._multi_fns.items():
            key = _norm(fn(record))
            if key is not None:
                self._multi[index].setdefault(key, {})[record_id] = None

    def _unindex(self, record_id: str, record: Record) -> None:
        for index, fn in self._unique_fns.items():
            key = _norm(fn(record))
            if key is not None and self._unique[index].get(key) == record_id:
                del self._unique[index][key]
        for index, fn in self._multi_fns.items():
            key = _norm(fn(record))
            if key is not None:
                bucket = self._multi[index].get(key)
                if bucket is not None:
                    bucket.pop(record_id, None)
                    if not bucket:
                        del self._multi[index][key]


def _norm(key: str | None) -> str | None:
    if key is None:
        return None
    text = str(key).strip().casefold()
    return text or None
