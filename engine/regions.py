"""The region catalogue: the cloud regions btar knows, and how far apart they are.

The data lives in ``region_catalogue.toml`` next to this module, validated by
``parse_catalogue``; a malformed catalogue is a packaging bug, so it raises ``ValueError``
rather than one of btar's user-facing errors. Commands read it from ``region_table.py``, the
same regions as Python data made from the file (``python -m engine.regions`` writes it;
tests/unit/test_regions.py checks that it is the file's): loaded with the engine's compiled
code, where parsing the TOML was some 8 ms of every command that names a region.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from engine.errors import UnknownName
from engine.model import Provider, Region

#: Mean Earth radius in km (IUGG), the usual constant for the haversine formula.
EARTH_RADIUS_KM = 6371.0

_CATALOGUE_FILE = "region_catalogue.toml"
_FIELDS = frozenset({"id", "provider", "name", "latitude", "longitude"})
_MAX_HINTS = 5
_HINT_CUTOFF = 0.6  # difflib's default


class _Catalogue:
    """The regions, sorted by id, and each by its id (a plain class: a dataclass is some
    0.7 ms of code generation at import, and this one is read only here)."""

    __slots__ = ("by_id", "regions")

    def __init__(self, regions: tuple[Region, ...]) -> None:
        self.regions = regions
        self.by_id: Mapping[str, Region] = {r.id: r for r in regions}


def parse_catalogue(text: str, source: str = _CATALOGUE_FILE) -> tuple[Region, ...]:
    """Parse and validate a catalogue document; return its regions sorted by id.

    Raises ``ValueError`` naming ``source`` and the offending entry if anything is wrong.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from exc
    extra = set(document) - {"region"}
    if extra:
        raise ValueError(f"{source}: unexpected top-level keys {sorted(extra)}")
    entries = document.get("region")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{source}: expected a non-empty array of [[region]] tables")

    regions: dict[str, Region] = {}
    for index, entry in enumerate(entries):
        region = _parse_entry(entry, f"{source}: region #{index + 1}")
        if region.id in regions:
            raise ValueError(f"{source}: region id {region.id!r} appears more than once")
        regions[region.id] = region
    return tuple(sorted(regions.values(), key=lambda r: r.id))


def _parse_entry(entry: object, where: str) -> Region:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a table")
    # Unknown keys are refused so that a typo such as "lattitude" cannot pass silently.
    keys = set(entry)
    if keys != _FIELDS:
        missing, extra = sorted(_FIELDS - keys), sorted(keys - _FIELDS)
        raise ValueError(f"{where}: missing keys {missing}, unexpected keys {extra}")

    region_id, provider_name, name = entry["id"], entry["provider"], entry["name"]
    if not isinstance(region_id, str) or not region_id:
        raise ValueError(f"{where}: id must be a non-empty string")
    where = f"{where} ({region_id})"
    if not isinstance(provider_name, str) or provider_name not in {p.value for p in Provider}:
        known = ", ".join(p.value for p in Provider)
        raise ValueError(f"{where}: provider {provider_name!r} is not one of {known}")
    provider = Provider(provider_name)
    prefix = f"{provider.value}-"
    if not region_id.startswith(prefix) or region_id == prefix:
        raise ValueError(f"{where}: id must start with {prefix!r} followed by a region name")
    if region_id != region_id.strip().lower() or " " in region_id:
        raise ValueError(f"{where}: id must be lower case without spaces")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: name must be a non-empty string")
    latitude = _coordinate(entry["latitude"], 90.0, f"{where}: latitude")
    longitude = _coordinate(entry["longitude"], 180.0, f"{where}: longitude")
    return Region(region_id, provider, name, latitude, longitude)


def _coordinate(value: object, limit: float, where: str) -> float:
    # bool is a subclass of int; `latitude = true` is a mistake, not 1.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} must be a number, not {value!r}")
    number = float(value)
    if not -limit <= number <= limit:
        raise ValueError(f"{where} {number} is outside [-{limit:g}, {limit:g}]")
    return number


def catalogue_file_regions() -> tuple[Region, ...]:
    """The regions of ``region_catalogue.toml``, parsed and validated."""
    # Beside this module, read as a file: the engine is installed unpacked, and
    # importlib.resources (tempfile, shutil and the archive modules behind it) is some 5 ms.
    text = Path(__file__).with_name(_CATALOGUE_FILE).read_text(encoding="utf-8")
    return parse_catalogue(text, f"engine/{_CATALOGUE_FILE}")


def table_source(regions: Iterable[Region]) -> str:
    """The text of ``region_table.py`` holding ``regions``."""
    import json  # a string's JSON text is its Python literal, in the project's quotes

    rows = "".join(f"    ({json.dumps(r.id)}, {json.dumps(r.provider.value)}, "
                   f"{json.dumps(r.name, ensure_ascii=False)}, {r.latitude!r}, "
                   f"{r.longitude!r}),\n" for r in regions)
    return (f'"""The regions of {_CATALOGUE_FILE}, made from it by `python -m engine.regions`: '
            "do not edit\n(engine.regions says why it exists).\"\"\"\n\n"
            "#: (id, provider, name, latitude, longitude), by id\n"
            f"REGIONS: tuple[tuple[str, str, str, float, float], ...] = (\n{rows})\n")


@cache
def _catalogue() -> _Catalogue:
    from engine.region_table import REGIONS

    regions = tuple(Region(region_id, Provider(provider), name, latitude, longitude)
                    for region_id, provider, name, latitude, longitude in REGIONS)
    return _Catalogue(regions)


def all_regions() -> tuple[Region, ...]:
    """Every region of the catalogue, sorted by id."""
    return _catalogue().regions


def get_region(region_id: str) -> Region:
    """The region with this exact id; ``UnknownName`` with up to 5 close matches otherwise."""
    catalogue = _catalogue()
    region = catalogue.by_id.get(region_id)
    if region is None:
        raise UnknownName("region", region_id, _close_matches(region_id, catalogue.by_id))
    return region


def _close_matches(wanted: str, known: Iterable[str]) -> list[str]:
    # Like difflib.get_close_matches, but ties are ordered by id rather than reverse id, so
    # "aws-eu-west-l" suggests aws-eu-west-1 first. Case-insensitive so "AWS-EU-WEST-1" matches.
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(wanted.strip().lower())
    scored: list[tuple[float, str]] = []
    for candidate in known:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= _HINT_CUTOFF and matcher.quick_ratio() >= _HINT_CUTOFF:
            score = matcher.ratio()
            if score >= _HINT_CUTOFF:
                scored.append((score, candidate))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [candidate for _, candidate in scored[:_MAX_HINTS]]


def regions_of(provider: Provider) -> tuple[Region, ...]:
    """The regions of one provider, sorted by id."""
    return tuple(r for r in _catalogue().regions if r.provider == provider)


def distance_km(a: Region, b: Region) -> float:
    """Great-circle distance between two regions in km (haversine, spherical Earth)."""
    lat_a, lat_b = math.radians(a.latitude), math.radians(b.latitude)
    d_lat = lat_b - lat_a
    d_lon = math.radians(b.longitude - a.longitude)
    h = math.sin(d_lat / 2) ** 2 + math.cos(lat_a) * math.cos(lat_b) * math.sin(d_lon / 2) ** 2
    # Rounding can push h a hair above 1 for antipodal points, which asin would refuse.
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def qualifying_regions(primary: Region) -> tuple[Region, ...]:
    """The regions that may hold a secondary copy for ``primary``: same provider, not itself.

    Farthest first, since a second region is there to survive a disaster that hits the first;
    ties are broken by id so the order is stable.
    """
    candidates = (r for r in regions_of(primary.provider) if r.id != primary.id)
    return tuple(sorted(candidates, key=lambda r: (-distance_km(primary, r), r.id)))


if __name__ == "__main__":
    Path(__file__).with_name("region_table.py").write_text(
        table_source(catalogue_file_regions()), encoding="utf-8")
