"""Vendors' records on disk: each listing rendered once into a table of a SQLite file beside the sandbox.

Kept in memory, even as the few fields listings read and a way to draw the rest when served (what the vendors
did until 2026-11-28), a million people's 8.6M records took some 4 GiB of the server (benchmarks/README.md,
"Sandbox serving"). A SQLite file is read through the operating system's page cache, which is not the server's
memory, so what the server holds of a listing no longer grows with it.

A vendor renders each record once, when it is built (`Store.table`, or `Builder` to fill several tables in one
pass), with the fields its listings sort and filter on as columns beside the record's JSON. It then reads a
`Table` as it would a list: by position (bisection works on it), by slices, walking a range (`walk`), and through
views (`Table.view`: the positions of the rows a filter keeps, in another order, kept as a table of their own),
so listing code stays the code it was. A row is a `Row`, a read-only mapping of the record: its columns answer
from the row, any other field from the record's JSON.

One connection serves every thread of the server, one statement at a time (`Store.lock`): statements are short
(a page is one or two), and the server's threads share one interpreter anyway.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

CHUNK = 500  # rows written or read at a time
CACHE_KIB = 4096  # SQLite's own page cache per store; the rest of the file is read through the OS's cache
# auto_vacuum first (it must come before any table): a dropped table's pages go back to the file system
PRAGMAS = ("auto_vacuum=FULL", "journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_KIB}", "temp_store=FILE",
           "mmap_size=0")
BODY = "body"  # the column holding each record's JSON


def encode(record: Mapping) -> str:
    return json.dumps(record, separators=(",", ":"), default=plain)


def plain(value: Any) -> dict:
    """`json.dumps(default=plain)`: a `Row` (or any object with a `record()`) as the record it stands for."""
    record = getattr(value, "record", None)
    if callable(record):
        return record()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def whole(record: Mapping) -> dict:
    """A record as a plain dict of its own, to copy and change."""
    return plain(record) if callable(getattr(record, "record", None)) else dict(record)


def _name(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _create(store: Store, name: str, columns: tuple[str, ...]) -> str:
    """Create table `name` of `columns` (positions from 1, then the columns, then the record's JSON); the SQL list
    of its columns and JSON, to insert into it."""
    listed = ", ".join(map(_name, columns))
    store.execute(f"CREATE TABLE {name} (pos INTEGER PRIMARY KEY, {listed}, {BODY} TEXT)")
    return f"{listed}, {BODY}"


def _row(columns: tuple[str, ...], record: Mapping) -> tuple:
    """A record as a row of a table of `columns`: its columns' values, then its JSON."""
    values = tuple(record[c] for c in columns)
    if any(isinstance(v, bool) for v in values):
        raise TypeError(f"columns {columns} hold {values}: SQLite would read a boolean back as an integer")
    return (*values, encode(record))


PREFIX = "journey-sandbox-"  # a store's directory: PREFIX, the pid of the process that made it, a random part


class Store:
    """One SQLite file in a directory of its own (in $TMPDIR unless given), removed when the store is closed or
    let go, or at the interpreter's exit; one left by a process that was killed is removed by the next store made
    there."""

    def __init__(self, directory: str | Path | None = None):
        _sweep(Path(directory or tempfile.gettempdir()))
        self.directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=directory))
        self.con = sqlite3.connect(self.directory / "records.sqlite", check_same_thread=False, isolation_level=None)
        for pragma in PRAGMAS:
            self.con.execute(f"PRAGMA {pragma}")
        # tables being filled live in a file of their own until they are written in order (`Builder.table`)
        self.con.execute("ATTACH DATABASE ? AS staging", (str(self.directory / "staging.sqlite"),))
        for pragma in PRAGMAS[:3]:
            self.con.execute(f"PRAGMA staging.{pragma}")
        self.lock = threading.RLock()
        self._names = itertools.count(1)
        self._unused: list[str] = []  # tables no one reads any more, dropped at the next statement
        self._closed = weakref.finalize(self, _remove, self.con, self.directory)

    def close(self) -> None:
        self._closed()

    def function(self, name: str, function: Callable[[Any], Any]) -> None:
        """A Python function of one value that SQL over this store's tables may call by `name`."""
        with self.lock:
            self.con.create_function(name, 1, function, deterministic=True)

    def name(self) -> str:
        """A table name not used before in this store."""
        return f"t{next(self._names)}"

    def table(self, columns: Sequence[str], records: Iterable[Mapping], order: str | None = None,
              indexes: Iterable[str] = ()) -> Table:
        """A table of `records` (rendered now), in their order or in SQL `order` over `columns`, with an index on
        each of `indexes` (SQL over the columns that lookups read)."""
        builder = Builder(self, columns)
        for record in records:
            builder.append(record)
        return builder.table(order, indexes)

    def execute(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self.lock:
            self._drop_unused()
            return self.con.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        with self.lock:
            self._drop_unused()
            self.con.executemany(sql, rows)

    def _drop_unused(self) -> None:
        """Drop the tables let go since the last statement: here, where no statement is running (a table is let
        go wherever that happens). Call with the lock held."""
        while self._unused:
            self.con.execute(f"DROP TABLE IF EXISTS {self._unused.pop()}")

    def let_go(self, name: str) -> None:
        """Drop table `name` at the next statement: called when the last `Table` reading it is let go."""
        if self._closed.alive:
            self._unused.append(name)


_swept: set[Path] = set()


def _sweep(parent: Path) -> None:
    """Remove the stores in `parent` of processes that no longer run (once per process and directory)."""
    if parent in _swept or not Path("/proc/self").exists():  # no /proc: no telling which processes run
        return
    _swept.add(parent)
    for path in parent.glob(f"{PREFIX}*-*"):
        pid = path.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _remove(con: sqlite3.Connection, directory: Path) -> None:
    con.close()
    shutil.rmtree(directory, ignore_errors=True)


class Builder:
    """A table being filled a record at a time; `table()` ends it."""

    def __init__(self, store: Store, columns: Sequence[str]):
        if BODY in columns:
            raise ValueError(f"{BODY!r} is the record's own column; name the key otherwise")
        self.store, self.columns = store, tuple(columns)
        self._staged = f"staging.{store.name()}"
        self._insert = (f"INSERT INTO {self._staged} ({_create(store, self._staged, self.columns)}) "
                        f"VALUES ({', '.join('?' * (len(self.columns) + 1))})")
        self._rows: list[tuple] = []

    def append(self, record: Mapping) -> None:
        self._rows.append(_row(self.columns, record))
        if len(self._rows) >= CHUNK:
            self._flush()

    def extend(self, records: Iterable[Mapping]) -> None:
        for record in records:
            self.append(record)

    def _flush(self) -> None:
        self.store.executemany(self._insert, self._rows)
        self._rows = []

    def table(self, order: str | None = None, indexes: Iterable[str] = ()) -> Table:
        """The table, its rows in SQL `order` over the columns (default: as appended), with an index on each of
        `indexes`: written from the staging file into the store's own, in order (positions are rowids, in the
        order rows were inserted), and dropped from staging, which gives its pages back."""
        self._flush()
        store, name = self.store, self.store.name()
        columns = _create(store, name, self.columns)
        store.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {self._staged} ORDER BY {order or 'pos'}")
        store.execute(f"DROP TABLE {self._staged}")
        (length,) = store.execute(f"SELECT count(*) FROM {name}")[0]
        return Table(store, name, self.columns, length, owned=name, indexes=tuple(indexes))


class Row(Mapping):
    """A record as stored: its columns at hand, the rest read from its JSON when asked (a new dict each time)."""

    __slots__ = ("layout", "values", "body")

    def __init__(self, layout: dict[str, int], values: tuple, body: str):
        self.layout, self.values, self.body = layout, values, body

    def record(self) -> dict:
        return json.loads(self.body)

    def __getitem__(self, name: str) -> Any:
        i = self.layout.get(name)
        return self.values[i] if i is not None else self.record()[name]

    def __contains__(self, name: object) -> bool:
        return name in self.layout or name in self.record()

    def __iter__(self) -> Iterator[str]:
        return iter(self.record())

    def __len__(self) -> int:
        return len(self.record())

    def __repr__(self) -> str:
        return f"Row({dict(zip(self.layout, self.values, strict=True))!r})"


class Table(Sequence):
    """A stored listing, read as a list of `Row`s: a whole table, a view of one (`view`), or its first rows
    (`head`). Tables are never changed in place: an edit (`edit`, `move_to_end`) gives a new table,
    so a page being read from the old one is cut from what it was, as a list swapped whole would be. What a
    table stores on disk is dropped when the last `Table` reading it is let go."""

    def __init__(self, store: Store, name: str, columns: tuple[str, ...], length: int, view: str | None = None,
                 owned: str | None = None, base: Table | None = None, indexes: tuple[str, ...] = ()):
        self.store, self.name, self.columns, self.length, self.view_name = store, name, columns, length, view
        self.base = base  # the table whose rows this one reads, kept while this one is
        self.indexes = indexes
        if owned is not None:
            weakref.finalize(self, store.let_go, owned)
            for n, index in enumerate(indexes if view is None else ()):
                store.execute(f"CREATE INDEX IF NOT EXISTS {name}_i{n} ON {name} ({index})")
        self.layout = {column: i for i, column in enumerate(columns)}
        select = ", ".join(f"t.{_name(c)}" for c in columns)
        if view is None:
            self._select = f"SELECT {select}, t.{BODY} FROM {name} t WHERE t.pos BETWEEN ? AND ? ORDER BY t.pos"
        else:
            self._select = (f"SELECT {select}, t.{BODY} FROM {view} v JOIN {name} t ON t.pos = v.src "
                            f"WHERE v.pos BETWEEN ? AND ? ORDER BY v.pos")

    def __len__(self) -> int:
        return self.length

    def _rows(self, start: int, stop: int) -> list[Row]:
        """Rows at positions [start, stop), both within the table."""
        if stop <= start:
            return []
        return self._wrap(self.store.execute(self._select, (start + 1, stop)))

    def _wrap(self, rows: list[tuple]) -> list[Row]:
        width = len(self.columns)
        return [Row(self.layout, row[:width], row[width]) for row in rows]

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            start, stop, step = i.indices(self.length)
            if step != 1:
                return self[start:stop][::step] if step > 0 else list(reversed(self))[i]
            return self._rows(start, stop)
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"position {i} of a table of {self.length}")
        return self._rows(i, i + 1)[0]

    def __iter__(self) -> Iterator[Row]:
        return self.walk(0, self.length)

    def __reversed__(self) -> Iterator[Row]:
        return self.walk(0, self.length, descending=True)

    def walk(self, lo: int, hi: int, descending: bool = False) -> Iterator[Row]:
        """Rows at positions [lo, hi), from lo up (or from hi - 1 down), read CHUNK at a time."""
        lo, hi = max(lo, 0), min(hi, self.length)
        if descending:
            for stop in range(hi, lo, -CHUNK):
                yield from reversed(self._rows(max(lo, stop - CHUNK), stop))
        else:
            for start in range(lo, hi, CHUNK):
                yield from self._rows(start, min(hi, start + CHUNK))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # a table compares by its rows

    def head(self, length: int) -> Table:
        """The table's first `length` rows, as a table."""
        return Table(self.store, self.name, self.columns, max(0, min(length, self.length)), self.view_name,
                     base=self, indexes=self.indexes)

    def _where(self, where: str) -> str:
        """`where` over this table's rows (its columns named plainly), limited to its own rows."""
        if self.view_name is not None:
            raise NotImplementedError("filters and views are taken of stored tables, not of views")
        return f"({where}) AND pos <= {self.length}"

    def view(self, where: str = "1", params: Sequence = (), order: str = "pos") -> Table:
        """The rows `where` keeps (SQL over the columns), in SQL `order`, as a table of their positions."""
        name = self.store.name()
        self.store.execute(f"CREATE TABLE {name} (pos INTEGER PRIMARY KEY, src INTEGER)")
        self.store.execute(f"INSERT INTO {name} (src) SELECT pos FROM {self.name} WHERE {self._where(where)} "
                           f"ORDER BY {order}", params)
        (length,) = self.store.execute(f"SELECT count(*) FROM {name}")[0]
        return Table(self.store, self.name, self.columns, length, view=name, owned=name, base=self)

    # --- edits: each a new table, copied inside SQLite --------------------------------------------
    def _copy(self, where: str = "1", params: Sequence = ()) -> tuple[str, str]:
        """A new table with this one's rows that `where` keeps, in order, renumbered; (its name, its columns)."""
        name = self.store.name()
        columns = _create(self.store, name, self.columns)
        self.store.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {self.name} "
                           f"WHERE {self._where(where)} ORDER BY pos", params)
        return name, columns

    def _edited(self, name: str, length: int) -> Table:
        return Table(self.store, name, self.columns, length, owned=name, indexes=self.indexes)

    def edit(self, replace: Mapping[int, Mapping] | None = None, append: Iterable[Mapping] = ()) -> Table:
        """This table with the rows at the positions of `replace` replaced by its records, and `append`'s after
        its last row: one copy for a batch of writes."""
        name, columns = self._copy()
        marks = ", ".join("?" * (len(self.columns) + 1))
        for i, record in (replace or {}).items():
            self.store.execute(f"UPDATE {name} SET ({columns}) = ({marks}) WHERE pos = ?",
                               (*_row(self.columns, record), i + 1))
        appended = 0
        for record in append:
            self.store.execute(f"INSERT INTO {name} ({columns}) VALUES ({marks})", _row(self.columns, record))
            appended += 1
        return self._edited(name, self.length + appended)

    def move_to_end(self, i: int) -> Table:
        """This table with the row at position `i` moved after its last row."""
        name, columns = self._copy("pos != ?", (i + 1,))
        self.store.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {self.name} WHERE pos = ?",
                           (i + 1,))
        return self._edited(name, self.length)

    def where(self, where: str, params: Sequence = ()) -> list[Row]:
        """The rows `where` keeps, in the table's order: for lookups that keep few."""
        sql = (f"SELECT {', '.join(map(_name, self.columns))}, {BODY} FROM {self.name} WHERE {self._where(where)} "
               f"ORDER BY pos")
        return self._wrap(self.store.execute(sql, params))

    def positions(self, where: str, params: Sequence = ()) -> list[int]:
        """The positions, ascending, of the rows `where` keeps (SQL over the columns, each as `t.name`)."""
        if self.view_name is None:
            sql = f"SELECT t.pos - 1 FROM {self.name} t WHERE ({where}) AND t.pos <= {self.length} ORDER BY t.pos"
        else:
            sql = (f"SELECT v.pos - 1 FROM {self.view_name} v JOIN {self.name} t ON t.pos = v.src "
                   f"WHERE ({where}) AND v.pos <= {self.length} ORDER BY v.pos")
        return [row[0] for row in self.store.execute(sql, params)]

    def count(self, where: str, params: Sequence = ()) -> int:
        """How many rows `where` keeps."""
        return self.store.execute(f"SELECT count(*) FROM {self.name} WHERE {self._where(where)}", params)[0][0]

    def position(self, where: str, params: Sequence = ()) -> int | None:
        """The position of the first row `where` keeps, or None."""
        found = self.store.execute(f"SELECT min(pos) FROM {self.name} WHERE {self._where(where)}", params)
        return None if found[0][0] is None else found[0][0] - 1

    def __repr__(self) -> str:
        return f"Table({self.name}, {self.length} rows{', view ' + self.view_name if self.view_name else ''})"


class Lookup(Mapping):
    """A stored mapping from one column of a table to another field of its rows, or to the rows themselves (the
    table indexed on that column)."""

    def __init__(self, table: Table, key: str, value: str | None = None):
        self.table, self.key, self.value = table, key, value

    def _value(self, row: Row) -> Any:
        return row if self.value is None else row[self.value]

    def __getitem__(self, key: Any) -> Any:
        found = self.table.where(f"{_name(self.key)} = ?", (key,))
        if not found:
            raise KeyError(key)
        return self._value(found[0])

    def __iter__(self) -> Iterator[Any]:
        return (row[self.key] for row in self.table)

    def __len__(self) -> int:
        return len(self.table)

    def values(self) -> Iterator[Any]:  # one pass over the table, not a lookup per key
        return map(self._value, self.table)

    def items(self) -> Iterator[tuple[Any, Any]]:
        return ((row[self.key], self._value(row)) for row in self.table)
