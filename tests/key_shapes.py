"""Keys of a backup tool's repository for property tests of its reader: each of a few shapes
with its parts filled with their own kind of value or, now and then, another part's (the near
misses a pattern must refuse)."""

from __future__ import annotations

from hypothesis import strategies as st


def shaped_keys(shapes: list[str], parts: dict[str, list[str]]) -> st.SearchStrategy[str]:
    """Keys from ``shapes`` (``str.format`` templates naming ``parts``)."""
    anything = sorted({value for values in parts.values() for value in values})

    @st.composite
    def keys(draw: st.DrawFn) -> str:
        shape = draw(st.sampled_from(shapes))
        return shape.format(**{slot: draw(st.sampled_from(values) | st.sampled_from(anything))
                               for slot, values in parts.items()})

    return keys()
