"""The chain on worlds of several seeds: the session's world (seed 7, already loaded by `elt_run`) and two
more, smaller ones, each served by its own sandbox and loaded into its own warehouse once per session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.load import settings_from_index
from sandbox.server import SandboxServer
from sandbox.world import World

OTHER_SEEDS = {11: 300, 23: 300}  # seed -> people


@dataclass
class Chain:
    """A world and the warehouse the whole chain loaded from its sandbox."""

    seed: int
    world: World
    warehouse: Path


@pytest.fixture(scope="session")
def other_chains(tmp_path_factory, sandbox_settings, prefect_server) -> dict[int, Chain]:
    from flows.elt import elt_flow

    chains = {}
    for seed, people in OTHER_SEEDS.items():
        world = World.build(seed, people)
        folder = tmp_path_factory.mktemp(f"seed{seed}")
        with SandboxServer(world, mode="bench") as server:
            settings = settings_from_index(server.index(), destinations=False)
            saved = {key: os.environ.get(key) for key in settings}
            os.environ.update(settings)
            try:
                elt_flow(warehouse=str(folder / "warehouse.duckdb"), published=str(folder / "marts.duckdb"))
            finally:
                os.environ.update({key: value for key, value in saved.items() if value is not None})
        chains[seed] = Chain(seed, world, folder / "warehouse.duckdb")
    return chains


@pytest.fixture(scope="session", params=[7, *OTHER_SEEDS], ids=lambda seed: f"seed{seed}")
def chain(request, world, elt_run) -> Chain:
    """Each seed's world and warehouse in turn: tests that check the mart against the truth take this."""
    if request.param == 7:
        return Chain(7, world, elt_run["warehouse"])
    return request.getfixturevalue("other_chains")[request.param]
