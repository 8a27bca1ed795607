"""Vendor records drawn from the world when they are read, instead of kept rendered.

A rendered record (a Shopify order with its line items, refunds, transactions and money bags) is a tree of
dicts some ten times the size of the world's own objects it comes from, so vendors keep a `Drawn` per
record: the few fields their listings sort and filter on (`keys`), and how to draw the rest from the world
object it stands for. A page draws its records as it is served (`plain`, the JSON encoder's hook), so the
server holds the world and these keys, not every record (benchmarks/README.md, "Sandbox serving").

A `Drawn` reads as the (read-only) record it stands for: a key is answered from `keys`, any other field by
drawing the record, which is right but slow; listings should only read keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class Drawn(Mapping):
    __slots__ = ("layout", "values", "draw", "source")
    _layouts: dict[tuple[str, ...], dict[str, int]] = {}  # each set of key names once: name -> position

    def __init__(self, keys: dict[str, Any], draw: Callable[[Any], dict], source: Any):
        # the keys as a tuple of values beside a layout shared by every record with the same names: a dict per
        # record would be most of its size
        self.layout = self._layouts.setdefault(tuple(keys), {name: i for i, name in enumerate(keys)})
        self.values = tuple(keys.values())
        self.draw = draw
        self.source = source

    @property
    def keys_(self) -> dict[str, Any]:
        """The fields listings read, equal to the drawn record's (tests/sandbox/test_drawn.py checks it)."""
        return dict(zip(self.layout, self.values, strict=True))

    def record(self) -> dict:
        """The whole record, drawn now."""
        return self.draw(self.source)

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
        return f"Drawn({self.keys_!r})"


def plain(value: Any) -> dict:
    """`json.dumps(default=plain)`: a `Drawn` as the record it stands for."""
    if isinstance(value, Drawn):
        return value.record()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def whole(record: Mapping) -> dict:
    """A record as a plain dict of its own (to copy and change): drawn once if it is a `Drawn`."""
    return record.record() if isinstance(record, Drawn) else dict(record)
