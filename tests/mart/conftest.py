"""The chain on worlds of several seeds: the session's world (seed 7, already loaded by `elt_run`) and two
more, smaller ones, each served by its own sandbox and loaded into its own warehouse once per session. One
of them moves on after its first load: its sandbox's clock is advanced and an incremental run follows, so
every test of the mart against the truth also checks what an incremental run leaves."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.load import settings_from_index
from sandbox.server import SandboxServer
from sandbox.world import World

OTHER_SEEDS = {11: (300, 0), 23: (300, 10)}  # seed -> people, days the sandbox advances before a second run


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
    for seed, (people, days) in OTHER_SEEDS.items():
        folder = tmp_path_factory.mktemp(f"seed{seed}")
        paths = {"warehouse": str(folder / "warehouse.duckdb"), "published": str(folder / "marts.duckdb")}
        with SandboxServer(World.build(seed, people), mode="bench") as server:
            settings = settings_from_index(server.index(), destinations=False)
            saved = {key: os.environ.get(key) for key in settings}
            os.environ.update(settings)
            try:
                elt_flow(**paths)
                if days:
                    server.sandbox.advance(timedelta(days=days))
                    elt_flow(**paths)
            finally:
                os.environ.update({key: value for key, value in saved.items() if value is not None})
            world = server.sandbox.world
        chains[seed] = Chain(seed, world, folder / "warehouse.duckdb")
    return chains


@pytest.fixture(scope="session", params=[7, *OTHER_SEEDS], ids=lambda seed: f"seed{seed}")
def chain(request, world, elt_run) -> Chain:
    """Each seed's world and warehouse in turn: tests that check the mart against the truth take this."""
    if request.param == 7:
        return Chain(7, world, elt_run["warehouse"])
    return request.getfixturevalue("other_chains")[request.param]
