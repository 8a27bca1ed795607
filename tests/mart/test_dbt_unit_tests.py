"""dbt's unit tests (fixed input rows, expected output rows) run here, not in the scheduled build: a run's
`dbt build` leaves them out, since they test the models' logic, which a run does not change, and not the
data. On a copy of the session's warehouse: the build runs models and data tests but no unit test, and then
every unit test the project declares runs and passes."""

from __future__ import annotations

import shutil

import pytest
import yaml

from flows.dbt import DBT_PROJECT, NodeOutcome, dbt_build, dbt_unit_tests

pytestmark = [pytest.mark.mart, pytest.mark.slow]


def declared_unit_tests() -> set[str]:
    names = set()
    for path in (DBT_PROJECT / "models").rglob("*.yml"):
        names |= {test["name"] for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])}
    return names


def test_the_build_leaves_unit_tests_out_and_every_one_passes_on_its_own(elt_run, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(elt_run["warehouse"], warehouse)
    built: list[NodeOutcome] = []
    dbt_build(warehouse, on_node=built.append)
    kinds = {outcome.kind for outcome in built}
    assert {"model", "test"} <= kinds and "unit_test" not in kinds

    ran: list[NodeOutcome] = []
    result = dbt_unit_tests(warehouse, on_node=ran.append)
    declared = declared_unit_tests()
    assert len(declared) >= 7
    assert {outcome.name for outcome in ran} == declared
    assert {outcome.kind for outcome in ran} == {"unit_test"}
    assert result.tests_passed == len(declared) and not result.failures
