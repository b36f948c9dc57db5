"""The region catalogue: its data, the look-ups, distances and the qualifying order."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import engine.regions
from engine.errors import BadInput, UnknownName
from engine.model import Provider, Region
from engine.regions import (
    all_regions,
    catalogue_file_regions,
    distance_km,
    get_region,
    parse_catalogue,
    qualifying_regions,
    regions_of,
    table_source,
)

# (south, north, west, east) boxes generous enough for the whole country
IRELAND = (51.3, 55.5, -10.7, -5.9)
FINLAND = (59.7, 70.1, 20.5, 31.6)
NETHERLANDS = (50.7, 53.6, 3.3, 7.3)


def _inside(region: Region, box: tuple[float, float, float, float]) -> bool:
    south, north, west, east = box
    return south <= region.latitude <= north and west <= region.longitude <= east


# --- the data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(Provider))
def test_every_provider_has_at_least_ten_regions(provider: Provider) -> None:
    assert len(regions_of(provider)) >= 10


def test_ids_are_unique_and_prefixed_by_their_provider() -> None:
    regions = all_regions()
    ids = [r.id for r in regions]
    assert len(ids) == len(set(ids))
    for region in regions:
        assert isinstance(region.provider, Provider)
        assert region.id.startswith(f"{region.provider.value}-"), region.id


def test_all_regions_is_sorted_by_id_and_partitioned_by_provider() -> None:
    regions = all_regions()
    assert [r.id for r in regions] == sorted(r.id for r in regions)
    by_provider = [r for p in Provider for r in regions_of(p)]
    assert sorted(by_provider, key=lambda r: r.id) == list(regions)


def test_coordinates_and_names_are_sane() -> None:
    for region in all_regions():
        assert -90.0 <= region.latitude <= 90.0, region.id
        assert -180.0 <= region.longitude <= 180.0, region.id
        assert region.name.strip(), region.id
        # (0, 0) is in the Gulf of Guinea: no region is there, so it means a forgotten value
        assert (region.latitude, region.longitude) != (0.0, 0.0), region.id


@pytest.mark.parametrize(
    ("region_id", "provider", "box"),
    [
        ("aws-eu-west-1", Provider.AWS, IRELAND),
        ("azure-northeurope", Provider.AZURE, IRELAND),
        ("google-europe-north1", Provider.GOOGLE, FINLAND),
        ("azure-westeurope", Provider.AZURE, NETHERLANDS),
        ("google-europe-west4", Provider.GOOGLE, NETHERLANDS),
    ],
)
def test_known_regions_are_where_they_should_be(
    region_id: str, provider: Provider, box: tuple[float, float, float, float]
) -> None:
    region = get_region(region_id)
    assert region.id == region_id
    assert region.provider is provider
    assert _inside(region, box), (region.latitude, region.longitude)


@pytest.mark.parametrize(
    "region_id",
    [
        "aws-us-east-1",
        "aws-eu-central-1",
        "aws-ap-northeast-3",
        "aws-sa-east-1",
        "aws-af-south-1",
        "google-europe-west1",
        "google-us-central1",
        "google-australia-southeast1",
        "google-southamerica-east1",
        "azure-germany-westcentral",
        "azure-sweden-central",
        "azure-eastus2",
        "azure-brazilsouth",
    ],
)
def test_expected_ids_exist(region_id: str) -> None:
    assert get_region(region_id).id == region_id


def test_southern_hemisphere_regions_have_negative_latitude() -> None:
    for region_id in ("aws-ap-southeast-2", "google-southamerica-east1", "azure-australiaeast"):
        assert get_region(region_id).latitude < 0, region_id


# --- look-up errors ---------------------------------------------------------------------------


def test_unknown_region_suggests_close_matches() -> None:
    with pytest.raises(UnknownName) as caught:
        get_region("aws-eu-west-l")
    error = caught.value
    assert isinstance(error, BadInput)
    assert error.kind == "region"
    assert error.name == "aws-eu-west-l"
    assert error.known[0] == "aws-eu-west-1"
    assert 1 <= len(error.known) <= 5
    assert "aws-eu-west-1" in str(error)


def test_unknown_region_hint_ignores_case() -> None:
    with pytest.raises(UnknownName) as caught:
        get_region("AWS-EU-WEST-1")
    assert caught.value.known[0] == "aws-eu-west-1"


def test_unrelated_name_gets_no_hint() -> None:
    with pytest.raises(UnknownName) as caught:
        get_region("mars-olympus-1")
    assert caught.value.known == []
    assert str(caught.value) == "unknown region 'mars-olympus-1'"


# --- distances --------------------------------------------------------------------------------


def test_dublin_to_frankfurt_is_about_1080_km() -> None:
    dublin, frankfurt = get_region("aws-eu-west-1"), get_region("aws-eu-central-1")
    assert distance_km(dublin, frankfurt) == pytest.approx(1080, abs=60)


@pytest.mark.parametrize(
    ("a", "b", "expected_km", "tolerance_km"),
    [
        ("aws-eu-west-2", "aws-eu-west-3", 344, 30),  # London - Paris
        ("aws-us-east-1", "aws-us-west-2", 3500, 200),  # Virginia - Oregon
        ("google-europe-west3", "google-europe-west6", 305, 30),  # Frankfurt - Zurich
        ("google-asia-northeast1", "google-australia-southeast1", 7800, 200),  # Tokyo - Sydney
        ("azure-northeurope", "azure-westeurope", 750, 50),  # Dublin - Amsterdam
        ("azure-eastus", "azure-brazilsouth", 7500, 400),  # Virginia - Sao Paulo
        ("aws-eu-west-1", "aws-ap-southeast-2", 17200, 200),  # Dublin - Sydney, nearly antipodal
    ],
)
def test_distance_table(a: str, b: str, expected_km: float, tolerance_km: float) -> None:
    ra, rb = get_region(a), get_region(b)
    assert distance_km(ra, rb) == pytest.approx(expected_km, abs=tolerance_km)
    assert distance_km(rb, ra) == pytest.approx(distance_km(ra, rb))


def test_distance_to_itself_is_zero() -> None:
    region = get_region("google-us-central1")
    assert distance_km(region, region) == 0.0


def test_distance_of_antipodes_is_half_the_circumference() -> None:
    north = Region("aws-x-north", Provider.AWS, "North Pole", 90.0, 0.0)
    south = Region("aws-x-south", Provider.AWS, "South Pole", -90.0, 0.0)
    assert distance_km(north, south) == pytest.approx(math.pi * 6371.0)


# --- qualifying regions -----------------------------------------------------------------------


@pytest.mark.parametrize("primary_id", ["aws-eu-west-1", "google-europe-north1", "azure-eastus"])
def test_qualifying_regions_same_provider_without_primary(primary_id: str) -> None:
    primary = get_region(primary_id)
    qualifying = qualifying_regions(primary)
    assert primary not in qualifying
    assert all(r.provider is primary.provider for r in qualifying)
    assert {r.id for r in qualifying} == {
        r.id for r in regions_of(primary.provider) if r.id != primary_id
    }


@pytest.mark.parametrize("primary_id", ["aws-eu-west-1", "google-us-east4", "azure-japaneast"])
def test_qualifying_regions_are_farthest_first(primary_id: str) -> None:
    primary = get_region(primary_id)
    distances = [distance_km(primary, r) for r in qualifying_regions(primary)]
    assert distances == sorted(distances, reverse=True)


def test_qualifying_regions_from_dublin() -> None:
    dublin = get_region("aws-eu-west-1")
    qualifying = qualifying_regions(dublin)
    assert qualifying[0].id in {"aws-ap-southeast-2", "aws-ap-southeast-4"}  # Australia
    assert qualifying[-1].id == "aws-eu-west-2"  # London is the nearest


def test_qualifying_regions_ties_are_ordered_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # No two regions of one provider share a site in the real data, so use a small fake one.
    primary = Region("aws-home", Provider.AWS, "Home", 50.0, 0.0)
    twin_b = Region("aws-twin-b", Provider.AWS, "Twin B", 10.0, 20.0)
    twin_a = Region("aws-twin-a", Provider.AWS, "Twin A", 10.0, 20.0)
    near = Region("aws-near", Provider.AWS, "Near", 50.0, 1.0)
    fake = (primary, twin_b, near, twin_a)
    monkeypatch.setattr(
        "engine.regions.regions_of",
        lambda provider: tuple(r for r in fake if r.provider is provider),
    )
    assert [r.id for r in qualifying_regions(primary)] == ["aws-twin-a", "aws-twin-b", "aws-near"]


def test_the_regions_commands_read_are_the_catalogue_file_s() -> None:
    """engine/region_table.py is made from region_catalogue.toml: after a change to the
    file, `python -m engine.regions` writes it again."""
    assert all_regions() == catalogue_file_regions()
    table = Path(engine.regions.__file__).with_name("region_table.py")
    assert table.read_text(encoding="utf-8") == table_source(catalogue_file_regions()), \
        "engine/region_table.py is not region_catalogue.toml's: run python -m engine.regions"


# --- validation of the catalogue file ---------------------------------------------------------

_GOOD_ENTRY = """
[[region]]
id = "aws-eu-west-1"
provider = "aws"
name = "Europe (Ireland)"
latitude = 53.35
longitude = -6.26
"""


def test_parse_catalogue_accepts_a_good_entry() -> None:
    (region,) = parse_catalogue(_GOOD_ENTRY)
    assert region == Region("aws-eu-west-1", Provider.AWS, "Europe (Ireland)", 53.35, -6.26)


def test_parse_catalogue_accepts_integer_coordinates() -> None:
    (region,) = parse_catalogue(_GOOD_ENTRY.replace("53.35", "53"))
    assert region.latitude == 53.0
    assert isinstance(region.latitude, float)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "non-empty array"),
        ("region = 1", "non-empty array"),
        (_GOOD_ENTRY * 2, "more than once"),
        (_GOOD_ENTRY.replace('provider = "aws"', 'provider = "oracle"'), "not one of"),
        (_GOOD_ENTRY.replace('provider = "aws"', 'provider = "google"'), "must start with"),
        (_GOOD_ENTRY.replace('"aws-eu-west-1"', '"aws-"'), "must start with"),
        (_GOOD_ENTRY.replace('"aws-eu-west-1"', '"aws-EU-west-1"'), "lower case"),
        (_GOOD_ENTRY.replace("53.35", "95.0"), "latitude 95.0 is outside"),
        (_GOOD_ENTRY.replace("-6.26", "-181"), "longitude -181.0 is outside"),
        (_GOOD_ENTRY.replace("53.35", '"53.35"'), "must be a number"),
        (_GOOD_ENTRY.replace("53.35", "true"), "must be a number"),
        (_GOOD_ENTRY.replace("latitude", "lattitude"), "unexpected keys ['lattitude']"),
        (_GOOD_ENTRY.replace('name = "Europe (Ireland)"', 'name = " "'), "name must be"),
        (_GOOD_ENTRY + "\nversion = 2\n", "unexpected"),
        ("[[region]\n", "not valid TOML"),
    ],
)
def test_parse_catalogue_refuses_bad_entries(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=r"^test\.toml: ") as caught:
        parse_catalogue(text, "test.toml")
    assert problem in str(caught.value)
