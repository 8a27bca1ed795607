"""Vendors' records stored on disk (sandbox/store.py): a table reads as the list it replaced (positions,
slices, bisection, walks, views), a row as the record it stores, and what listings read from columns is what
the record says."""

from __future__ import annotations

import bisect
import gc
import json
import os
import random
import subprocess
import sys
from datetime import timedelta

import pytest

from sandbox.server import Sandbox
from sandbox.store import Builder, Lookup, Row, Store, Table, plain, whole
from sandbox.world import World

pytestmark = pytest.mark.sandbox


@pytest.fixture
def records() -> list[dict]:
    rng = random.Random(3)
    return [{"id": i, "created": rng.randrange(50), "kind": rng.choice(["a", "b", None]),
             "nested": {"n": [i, str(i)]}, "flag": i % 2 == 0} for i in range(1, 1234)]


def test_a_table_reads_as_the_list_it_stores(records):
    store = Store()
    table = store.table(("id", "created", "kind"), records)
    assert len(table) == len(records) and list(table) == records and table == records
    assert table[0] == records[0] and table[-1] == records[-1] and table[700]["nested"] == records[700]["nested"]
    assert table[5:17] == records[5:17] and table[-3:] == records[-3:] and table[1200:5000] == records[1200:]
    assert table[10:3] == [] and table[::400] == records[::400] and list(reversed(table)) == records[::-1]
    assert list(table.walk(480, 1010)) == records[480:1010]
    assert list(table.walk(480, 1010, descending=True)) == records[480:1010][::-1]
    with pytest.raises(IndexError):
        table[len(records)]
    ordered = store.table(("id", "created", "kind"), records, order="created DESC, id DESC", indexes=("kind",))
    expected = sorted(records, key=lambda r: (r["created"], r["id"]), reverse=True)
    assert ordered == expected
    assert bisect.bisect_left(ordered, -20, key=lambda r: -r["created"]) == \
        bisect.bisect_left(expected, -20, key=lambda r: -r["created"])
    assert ordered.head(100) == expected[:100] and len(ordered.head(10**6)) == len(records)


def test_views_and_lookups_keep_what_python_would(records):
    table = Store().table(("id", "created", "kind"), records)
    view = table.view("kind = ? AND created >= ?", ("a", 10), "created DESC, id")
    expected = sorted((r for r in records if r["kind"] == "a" and r["created"] >= 10),
                      key=lambda r: (-r["created"], r["id"]))
    assert view == expected and view[3:9] == expected[3:9]
    assert list(view.walk(2, 50, descending=True)) == expected[2:50][::-1]
    head = table.head(300)  # a view or lookup of the first rows keeps to them
    assert head.view("kind IS NULL") == [r for r in records[:300] if r["kind"] is None]
    assert table.where("kind = ?", ("b",)) == [r for r in records if r["kind"] == "b"]
    assert table.position("created = ?", (7,)) == next(i for i, r in enumerate(records) if r["created"] == 7)
    assert table.position("created = ?", (99,)) is None
    lookup = Lookup(table, "id", "created")
    assert lookup[17] == records[16]["created"] and lookup.get(10**6, "none") == "none" and 17 in lookup
    assert dict(lookup.items()) == {r["id"]: r["created"] for r in records} and len(lookup) == len(records)
    names = {row[0] for row in table.store.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert view.view_name in names and head.name == table.name
    gone = view.view_name
    del view
    gc.collect()
    names = {row[0] for row in table.store.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert gone not in names and table.name in names  # dropped once let go, at the next statement


def test_edits_give_new_tables_and_leave_the_old_as_they_were(records):
    table = Store().table(("id", "created", "kind"), records[:50])
    changed = {**records[3], "kind": "z", "created": 99}
    replaced, appended, moved = table.edit(replace={3: changed}), table.edit(append=[records[60]]), table.move_to_end(7)
    assert replaced == records[:3] + [changed] + records[4:50] and replaced[3]["kind"] == "z"
    assert appended == records[:50] + [records[60]] and len(appended) == 51
    assert moved == records[:7] + records[8:50] + [records[7]]
    assert table == records[:50]  # pages being cut from it are cut from what it was
    assert replaced.view("kind = 'z'") == [changed] and replaced.positions("t.kind = 'z'") == [3]
    both = table.edit({0: changed, 49: records[1]}, [records[70], records[71]])
    assert both == [changed] + records[1:49] + [records[1], records[70], records[71]]
    name = table.name
    del table
    gc.collect()
    tables = {row[0] for row in replaced.store.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert name not in tables and replaced.name in tables


def test_a_row_serves_as_the_record_it_stores(records):
    row = Store().table(("id", "kind"), records)[4]
    assert isinstance(row, Row) and row.record() == records[4]
    assert json.loads(json.dumps({"rows": [row]}, default=plain)) == {"rows": [records[4]]}
    assert row["nested"] == records[4]["nested"] and "flag" in row and "missing" not in row and len(row) == 5
    assert dict(row) == records[4] and whole(row) == records[4] and whole(row) is not whole(row)
    assert row["flag"] is records[4]["flag"]  # read from the record, not from a column
    with pytest.raises(TypeError):
        row["id"] = 1  # read-only: a write copies it first (`whole`)
    with pytest.raises(TypeError, match="boolean"):
        Store().table(("id", "flag"), records)  # SQLite would read True back as 1
    with pytest.raises(TypeError, match="not JSON serializable"):
        json.dumps(object(), default=plain)


def test_a_store_left_by_a_killed_process_is_removed_by_the_next(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f"journey-sandbox-{gone.stdout.strip()}-abc"  # a process that no longer runs
    mine = tmp_path / f"journey-sandbox-{os.getpid()}-def"
    for path in (left, mine):
        path.mkdir()
        (path / "records.sqlite").write_bytes(b"x")
    store = Store(tmp_path)
    assert not left.exists() and mine.exists() and store.directory.exists()


def test_a_store_is_removed_when_closed_or_let_go(records):
    store = Store()
    builder = Builder(store, ("id",))
    builder.extend(records)
    directory = store.directory
    assert (directory / "staging.sqlite").stat().st_size > 10_000  # filled apart ...
    table = builder.table("id DESC")
    assert table[0] == records[-1] and (directory / "records.sqlite").stat().st_size > 10_000
    assert (directory / "staging.sqlite").stat().st_size < 10_000  # ... and written in order: staging gives it back
    store.close()
    assert not directory.exists()
    store = Store()
    directory = store.directory
    del store
    gc.collect()
    assert not directory.exists()


@pytest.mark.parametrize("days", [0, 3])
def test_every_stored_records_columns_are_its_served_fields(world: World, days: int):
    """What listings sort, bound, filter and look up on (the columns) must be exactly what the served record
    says: every table of every vendor that stores its records, after the clock moved too."""
    sandbox = Sandbox(world, mode="bench")
    if days:
        sandbox.advance(timedelta(days=days))
    counts = {}
    for name, vendor in sandbox.vendors.items():
        tables = [t for v in vars(vendor).values() for t in (v.values() if isinstance(v, dict) else [v])
                  if isinstance(t, Table)]
        counts[name] = sum(map(len, tables))
        for table in tables:
            for row in table:
                served = row.record()
                wrong = {c: (v, served.get(c, "<missing>")) for c, v in zip(table.columns, row.values, strict=True)
                         if served.get(c, object()) != v}
                assert not wrong, f"{name}: a listing would read {wrong} (column, served) for {row!r}"
    assert min(counts[name] for name in ("shopify", "stripe", "activecampaign")) >= 400, counts
    assert counts["hubspot"] >= 200, counts
    hubspot = sandbox.vendors["hubspot"]  # histories stored apart from the records they belong to
    for contact in hubspot.records["contacts"]:
        assert hubspot.lifecycle_history(contact["id"])[0]["value"] == contact["properties"]["lifecyclestage"]
