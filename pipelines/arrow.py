"""Pages as Arrow tables: records become rows without dlt's per-item path, which turns dicts into rows at
~28k rows/s here where Arrow tables pass at ~775k (benchmarks/README.md).

A page becomes the table dlt's own normalizer would have made of its dicts, so a warehouse loaded either
way holds the same columns with the same types: nested objects flattened into `parent__child` columns,
names in the schema's naming convention (`firstName` -> `first_name`), `None` making no column, and each
column's type the one it already has in the schema or, for a new column, the one dlt infers from its first
value (its type detections included: ISO strings become timestamps). dlt adds `_dlt_id` and
`_dlt_load_id` itself (load.py turns that on for Arrow items).

A page that cannot be made exactly is returned as its dicts, which dlt handles as it always has: a record
holding a list (a child table: dlt 1.31 cannot feed child tables from Arrow, benchmarks/README.md), objects
nested deeper than `MAX_DEPTH`, or a value that does not fit its column's type (dlt would coerce it or
refuse it under the schema contract; either way it is dlt's call). So only tables without child tables
take Arrow pages, and one whose pages go as dicts says so (a warning, once a run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.data_types.type_helpers import py_type_to_sc_type
from dlt.common.schema.utils import autodetect_sc_type

from pipelines.incremental import parse_time

ROWS_PER_TABLE = 1_000  # records per Arrow table (see `batched`)
MAX_DEPTH = 2  # objects inside objects inside a record; dlt flattens deeper ones too, up to the source's nesting
UTC_MICROS = pa.timestamp("us", "UTC")

log = logging.getLogger(__name__)
_reported: set[tuple[str, str]] = set()  # (load id, table): each table's dict path said once a run


def _timestamp(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, str | datetime | int | float):
        raise TypeError(value)
    return parse_time(value)


def _timestamps(values: list) -> list:
    """Timestamps as aware datetimes: an ISO string parsed as it is (pyarrow takes each to UTC by its own offset,
    as `parse_time` would), anything else through `_timestamp`."""
    out: list[datetime | None] = []
    for value in values:
        if type(value) is str:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = _timestamp(value)  # what parse_time reads beyond ISO, or its ValueError
            out.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        else:
            out.append(None if value is None else _timestamp(value))
    return out


def _exactly(*kinds: type) -> Callable[[list], list]:
    """Values that become a column as they are, if each is exactly one of `kinds` (a bool is no int here)."""
    allowed = {*kinds, type(None)}

    def check(values: list) -> list:
        if not set(map(type, values)) <= allowed:
            raise TypeError(f"not all {', '.join(kind.__name__ for kind in kinds)}")
        return values
    return check


# dlt data type -> (Arrow type, a column's values as they become it, as dlt would store them)
ARROW_TYPES: dict[str, tuple[pa.DataType, Callable[[list], list]]] = {
    "text": (pa.string(), _exactly(str)),
    "bigint": (pa.int64(), _exactly(int)),
    "double": (pa.float64(), _exactly(float, int)),
    "bool": (pa.bool_(), _exactly(bool)),
    "timestamp": (UTC_MICROS, _timestamps),
}


class NotExact(Exception):
    """The page cannot become exactly the rows dlt would make of it."""


def _flatten(record: dict, naming: Any, names: dict[tuple[str, ...], dict[str, str]]) -> dict[str, Any]:
    """`record` as one level of columns named as dlt names them. `names` caches each name by the path of the
    object holding it and its key there, so a page names each column once."""
    out: dict[str, Any] = {}
    stack: list[tuple[dict, tuple[str, ...]]] = [(record, ())]
    while stack:
        current, path = stack.pop()
        level = names.get(path)
        if level is None:
            level = names[path] = {}
        for key, value in current.items():
            if value is None:
                continue
            kind = type(value)
            if kind is dict:
                if len(path) >= MAX_DEPTH:
                    raise NotExact(f"{'.'.join((*path, key))} is nested deeper than {MAX_DEPTH}")
                stack.append((value, (*path, key)))
            elif kind is list:
                if value:
                    raise NotExact(f"{'.'.join((*path, key))} is a list: a child table")
                # an empty list makes no rows and no column
            else:
                name = level.get(key)
                if name is None:
                    name = level[key] = naming.shorten_fragments(
                        *(naming.normalize_identifier(k) for k in (*path, key)))
                out[name] = value
    return out


def batched(pages: Iterable[list[dict]], rows: int = ROWS_PER_TABLE) -> Iterator[list[dict]]:
    """Consecutive pages joined into lists of at least `rows` records (the last one may hold fewer). dlt
    spends milliseconds on every item it extracts (the table's hints computed, checked and merged again),
    which on a page of 100 records costs more than making them a table. At 1,000 records a table it is
    negligible, and memory stays where unbatched pages kept it (5,000 cost 35 to 50 MiB more a vendor)."""
    batch: list[dict] = []
    for page in pages:
        batch += page
        if len(batch) >= rows:
            yield batch
            batch = []
    if batch:
        yield batch


def arrow_page(rows: list[dict], table: str, columns: dict | None = None) -> pa.Table | list[dict]:
    """`rows` (one page of records for `table`) as an Arrow table, or as they are when that cannot be exact.
    `columns`: the hints the rows are yielded with, for a table the schema does not hold yet."""
    if not rows:
        return rows
    schema = dlt.current.source_schema()
    known = {**(columns or {}), **schema.tables.get(table, {}).get("columns", {})}
    detections = schema.settings.get("detections") or []
    names: dict[tuple[str, ...], dict[str, str]] = {}
    try:
        flat = [_flatten(row, schema.naming, names) for row in rows]
        arrays: dict[str, pa.Array] = {}
        for name in dict.fromkeys(chain.from_iterable(flat)):
            values = list(map(dict.get, flat, repeat(name)))
            kind = known.get(name, {}).get("data_type")
            try:
                if kind is None:
                    first = next(v for v in values if v is not None)
                    kind = (schema.get_preferred_type(name) or autodetect_sc_type(detections, type(first), first)
                            or py_type_to_sc_type(type(first)))
                if kind not in ARROW_TYPES:
                    raise NotExact(f"{name} is {kind}")
                arrow_type, convert = ARROW_TYPES[kind]
                arrays[name] = pa.array(convert(values), arrow_type)
            except (TypeError, ValueError, OverflowError) as error:  # said by column: values may be personal data
                raise NotExact(f"{name} holds a value that is not {kind or 'typed'} ({type(error).__name__})") \
                    from None
    except NotExact as reason:
        _report_slow(table, reason)
        return rows
    _spell_out_defaults(schema.tables.get(table, {}).get("columns", {}), arrays)
    return pa.table(arrays)


def _report_slow(table: str, reason: NotExact) -> None:
    """Say once a run that `table` takes dlt's slower dict path, and why: only tables without child tables come
    here, so the vendor sent what this module does not expect (a new list field, a value of another type)."""
    key = (dlt.current.load_package_state()["load_id"], table)
    if key not in _reported:
        _reported.add(key)
        log.warning("%s: a page goes to dlt as dicts, not as an Arrow table (%s); the rows are the same, "
                    "their normalizing slower", table, reason)


def _spell_out_defaults(known: dict[str, dict], arrays: dict[str, pa.Array]) -> None:
    """Give the table's existing columns the properties an Arrow column reports, where they hold dlt's
    defaults by leaving them out: a column declared by a hint or first loaded from dicts has no `nullable`
    (and a timestamp no `precision`), and the data-type freeze (load.SCHEMA_CONTRACT) would read an Arrow
    column's `nullable: True` or `precision: 6` beside them as a changed type. Their meaning is unchanged."""
    for name, array in arrays.items():
        column = known.get(name)
        if column and column.get("data_type"):
            column.setdefault("nullable", True)
            if pa.types.is_timestamp(array.type):
                column.setdefault("precision", 6)
