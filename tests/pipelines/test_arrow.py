"""Arrow pages (pipelines/arrow.py) land exactly as the same records would as dicts: same columns, same
types, same values; what cannot be made exactly goes to dlt as dicts."""

from __future__ import annotations

import dlt
import duckdb
import pyarrow as pa
import pytest

from pipelines.arrow import arrow_page, batched
from pipelines.load import SCHEMA_CONTRACT

PAGES = [
    [
        {"id": "1", "firstName": "Ana", "score": 3, "ratio": 0.5, "vip": True, "cdate": "2024-04-08T14:12:20-05:00",
         "utc": "2024-04-08 19:12:20", "deleted_at": "0000-00-00 00:00:00", "created": 1712600000,
         "properties": {"email": "ana@example.com", "lastmodifieddate": "2024-05-01T00:00:00.123Z",
                        "address": {"city": "Lyon"}},
         "tags": [], "organization": None, "seen_at": "2024-03-10T01:59:59.999999+13:45", "source_account": "acme"},
        {"id": "2", "firstName": None, "score": 4, "ratio": 1.25, "vip": False, "cdate": "2024-04-09T10:00:00+02:00",
         "utc": "2024-04-09 08:00:00", "deleted_at": "2024-06-01 00:00:00", "created": 1712700000,
         "properties": {"email": None, "lastmodifieddate": "2024-05-02T00:00:00Z"}, "seen_at": 1712700000,
         "source_account": "acme"},
    ],
    # a later page: values coerced to the types the columns already have (ratio: an int into a double); seen_at, a
    # declared timestamp, comes with offsets that are not whole hours, a fraction of a second and Unix seconds
    [{"id": "3", "firstName": "Bo", "score": 5, "ratio": 2, "vip": False, "cdate": "2024-04-10T00:00:00Z",
      "utc": "2024-04-10 00:00:00", "deleted_at": "2024-07-01 00:00:00", "created": 1712800000,
      "seen_at": "2024-04-10T05:45:00.5+05:45",
      "properties": {"email": "bo@example.com", "lastmodifieddate": "2024-05-03T00:00:00Z"}, "source_account": "acme"}],
]


# declared columns: a dict load leaves them without `nullable` (and the timestamp without `precision`)
HINTS = {"note": {"data_type": "text"}, "seen_at": {"data_type": "timestamp"}}


def load(tmp_path, name: str, as_arrow: bool, pages=PAGES, seen: list | None = None) -> duckdb.DuckDBPyConnection:
    @dlt.resource(name="people", primary_key=("source_account", "id"), write_disposition="merge", columns=HINTS)
    def people():
        for page in pages:
            item = arrow_page([dict(r) for r in page], "people") if as_arrow else page
            if seen is not None:
                seen.append(item)
            yield item

    @dlt.source(name="test", max_table_nesting=2)
    def source():
        return people

    path = tmp_path / f"{name}.duckdb"
    pipeline = dlt.pipeline(pipeline_name=f"arrow_{name}", destination=dlt.destinations.duckdb(str(path)),
                            dataset_name="raw", pipelines_dir=str(tmp_path / "dlt"))
    pipeline.extract(source(), loader_file_format="parquet", schema_contract=SCHEMA_CONTRACT)
    pipeline.normalize()
    pipeline.load()
    return duckdb.connect(str(path), read_only=True)


def columns(con) -> list[tuple]:
    return con.execute("select column_name, data_type, is_nullable from information_schema.columns "
                       "where table_schema = 'raw' and table_name = 'people' order by column_name").fetchall()


def rows(con) -> list[tuple]:
    names = [c for c, *_ in columns(con) if c not in ("_dlt_id", "_dlt_load_id")]
    return con.execute(f"select {', '.join(names)} from raw.people order by id").fetchall()


def test_an_arrow_page_lands_as_its_dicts_would(tmp_path):
    seen: list = []
    as_dicts, as_arrow = load(tmp_path, "dicts", False), load(tmp_path, "arrow", True, seen=seen)
    assert all(isinstance(item, pa.Table) for item in seen)
    assert columns(as_arrow) == columns(as_dicts)
    assert rows(as_arrow) == rows(as_dicts)
    types = dict((c, t) for c, t, _ in columns(as_arrow))
    assert types["cdate"] == types["utc"] == types["properties__lastmodifieddate"] == "TIMESTAMP WITH TIME ZONE"
    assert types["deleted_at"] == "VARCHAR" and types["first_name"] == "VARCHAR" and types["created"] == "BIGINT"
    assert "properties__address__city" in types and "tags" not in types and "organization" not in types
    # dlt's own row ids and load id, one of each per row
    assert as_arrow.execute("select count(distinct _dlt_id), count(_dlt_load_id) from raw.people").fetchone() == (3, 3)


def test_what_cannot_be_exact_goes_as_dicts(tmp_path, caplog):
    listed = [{"id": "1", "tags": ["a"], "source_account": "acme"}]
    deep = [{"id": "1", "a": {"b": {"c": {"d": 1}}}, "source_account": "acme"}]
    # a string where the earlier page made `score` a bigint: dlt decides what to do with it, not us
    mistyped = [[{"id": "1", "score": 3, "source_account": "acme"}],
                [{"id": "2", "score": "x", "source_account": "acme"}]]
    for name, pages in (("listed", [listed]), ("deep", [deep])):
        seen: list = []
        caplog.clear()
        load(tmp_path, name, True, [pages[0], pages[0]], seen)
        assert seen == [pages[0], pages[0]], name
        # said once a run, with the table and why: the dict path is slower, and only an unexpected record takes it
        said = [r.getMessage() for r in caplog.records if r.name == "pipelines.arrow"]
        assert len(said) == 1 and said[0].startswith("people: a page goes to dlt as dicts"), (name, said)
        assert ("tags is a list" if name == "listed" else "nested deeper than 2") in said[0]
    seen = []
    caplog.clear()
    with pytest.raises(Exception, match="score"):  # the data-type freeze refuses the variant column
        load(tmp_path, "mistyped", True, mistyped, seen)
    assert isinstance(seen[0], pa.Table) and seen[1] == mistyped[1]
    # the column is named, the value is not (it may be personal data)
    said = [r.getMessage() for r in caplog.records if r.name == "pipelines.arrow"]
    assert said == ["people: a page goes to dlt as dicts, not as an Arrow table (score holds a value that is not "
                    "bigint (TypeError)); the rows are the same, their normalizing slower"]


def test_arrow_pages_merge_into_a_table_loaded_from_dicts(tmp_path):
    """A warehouse loaded before sources yielded Arrow takes Arrow pages into the same columns, the declared
    ones included, though the dict load left them without the properties an Arrow column reports."""
    load(tmp_path, "upgrade", False, PAGES[:1]).close()
    seen: list = []
    later = [dict(PAGES[1][0], note="late", seen_at="2024-08-01T00:00:00Z"), dict(PAGES[0][0], firstName="Ann")]
    con = load(tmp_path, "upgrade", True, [later], seen)
    assert all(isinstance(item, pa.Table) for item in seen)
    assert columns(con) == columns(load(tmp_path, "reference", False))
    assert con.execute("select id, first_name, note, epoch_us(seen_at) from raw.people order by id").fetchall() == [
        ("1", "Ann", None, 1709986499_999999), ("2", None, None, 1712700000_000000),
        ("3", "Bo", "late", 1722470400_000000)]


def test_pages_are_joined_into_batches_of_at_least_the_size_asked():
    pages = [[{"id": i} for i in range(start, start + 3)] for start in range(0, 15, 3)]
    batches = list(batched(iter(pages), rows=7))
    assert [len(b) for b in batches] == [9, 6]
    assert [r["id"] for b in batches for r in b] == list(range(15))
    assert list(batched(iter([]), rows=7)) == []
