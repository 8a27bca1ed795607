"""What clients wrote to a sandboxed destination, deduplicated as the vendor itself would."""

from __future__ import annotations

from collections.abc import Callable, Hashable


def first_per_key(raw: list[dict], key_of: Callable[[dict], Hashable | None]) -> dict[str, list[dict]]:
    """`{"raw": every event, "deduplicated": the first event per dedup key}`; events whose key is None
    carry no dedup key and are all kept."""
    seen: set = set()
    deduplicated = []
    for event in raw:
        key = key_of(event)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        deduplicated.append(event)
    return {"raw": raw, "deduplicated": deduplicated}
