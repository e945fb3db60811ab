"""The solar arithmetic behind the demo API, pinned against independent references.

References, so that a failure can be checked by hand:

* "PyEphem" values were computed once with PyEphem 4.2.1 (VSOP87 theory, an independent and
  more precise implementation), with ``pressure=0`` (no refraction), sunrise and sunset at the
  centre of the disc at -0:50 (``horizon="-0:50", use_center=True``). They are not a test
  dependency: the numbers are copied here.
* The 2026 equinox and solstice instants are the USNO "Earth's Seasons" table (UTC).
* The local sunrise and sunset minutes in the comments are the ones the NOAA calculator and
  timeanddate.com publish; they agree with the PyEphem seconds to within a minute.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgisec.solar import (
    STANDARD_HORIZON,
    Direction,
    find_crossing,
    julian_day,
    refraction,
    solar_position,
)


def utc(text: str) -> datetime:
    """``utc("2026-06-21 03:42")``: tables read better with the instants written out."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Place(NamedTuple):
    latitude: float
    longitude: float


GREENWICH = Place(51.4769, -0.0005)  # the Royal Observatory
NEW_YORK = Place(40.7128, -74.006)
REYKJAVIK = Place(64.1466, -21.9426)
SYDNEY = Place(-33.8688, 151.2093)
NULL_ISLAND = Place(0.0, 0.0)
TROMSO = Place(69.6492, 18.9553)
LONGYEARBYEN = Place(78.22, 15.65)
NORTH_POLE = Place(90.0, 0.0)
SOUTH_POLE = Place(-90.0, 0.0)


# --------------------------------------------------------------------------- positions


class Seen(NamedTuple):
    """Where PyEphem puts the sun (geometric altitude, azimuth, declination)."""

    when: str  # UTC
    place: Place
    altitude: float
    azimuth: float
    declination: float


POSITIONS = {
    "greenwich-june-noon": Seen("2026-06-21 12:00", Place(51.48, 0.0), 61.9545, 179.1134, 23.4367),
    "equator-equinox": Seen("2026-03-20 14:46", NULL_ISLAND, 50.3491, 270.0002, 0.0001),
    "sydney-morning": Seen("2026-12-21 20:50", Place(-33.87, 151.21), 24.0691, 102.9922, -23.4364),
    "north-pole": Seen("2026-06-21 08:24", NORTH_POLE, 23.4357, 125.5539, 23.4357),
    "j2000-before-dawn": Seen("2000-01-01 12:00", Place(40.0, -74.0), -3.8389, 117.1049, -23.0341),
    "year-1850": Seen("1850-07-01 03:00", Place(-60.0, 100.0), 1.8376, 32.5775, 23.1627),
    "year-2190": Seen("2190-07-01 03:00", Place(-60.0, 100.0), 1.8638, 32.8243, 23.0653),
}


@pytest.mark.parametrize("seen", POSITIONS.values(), ids=POSITIONS.keys())
def test_position_matches_pyephem_within_the_noaa_accuracy(seen: Seen) -> None:
    position = solar_position(utc(seen.when), *seen.place)
    assert position.altitude == pytest.approx(seen.altitude, abs=0.01)
    assert position.declination == pytest.approx(seen.declination, abs=0.01)
    assert position.azimuth == pytest.approx(seen.azimuth, abs=0.01)


SEASONS = [
    pytest.param(utc("2026-03-20 14:46"), 0.0, id="march-equinox"),
    pytest.param(utc("2026-06-21 08:24"), 23.436, id="june-solstice"),  # the obliquity in 2026
    pytest.param(utc("2026-09-23 00:05"), 0.0, id="september-equinox"),
    pytest.param(utc("2026-12-21 20:50"), -23.436, id="december-solstice"),
]


@pytest.mark.parametrize(("when", "declination"), SEASONS)
@pytest.mark.parametrize("latitude", [-66.5, -35.0, 0.0, 23.0, 51.5, 80.0])
def test_noon_altitude_is_ninety_minus_the_distance_to_the_declination(
    when: datetime, declination: float, latitude: float
) -> None:
    """At the season instants the declination is known; at hour angle 0 the sun culminates."""
    # The hour angle moves one for one with longitude: pick the meridian where it is noon now.
    longitude = -solar_position(when, latitude, 0.0).hour_angle
    position = solar_position(when, latitude, longitude)
    assert position.hour_angle == pytest.approx(0.0, abs=1e-6)
    assert position.declination == pytest.approx(declination, abs=0.01)
    assert position.altitude == pytest.approx(90.0 - abs(latitude - declination), abs=0.01)


REFRACTION = [
    pytest.param(90.0, 0.0, id="zenith"),
    pytest.param(86.0, 0.0, id="above-85-is-ignored"),
    pytest.param(45.0, 0.0161, id="45-deg-one-arcminute"),  # Saemundsson: 1.0'
    pytest.param(10.0, 0.0881, id="10-deg-5.3-arcminutes"),  # Saemundsson: 5.3'
    pytest.param(0.0, 0.4819, id="horizon"),  # 1735" in NOAA's polynomial
    pytest.param(-5.0, 0.0660, id="below-horizon-tail"),  # -20.774 / tan(-5°) arcseconds
]


@pytest.mark.parametrize(("altitude", "degrees"), REFRACTION)
def test_refraction_follows_the_noaa_piecewise_model(altitude: float, degrees: float) -> None:
    assert refraction(altitude) == pytest.approx(degrees, abs=0.0005)


def test_a_naive_datetime_is_refused_because_its_instant_is_unknown() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        solar_position(datetime(2026, 6, 21, 12), 0.0, 0.0)


def test_julian_day_of_j2000_is_the_epoch_of_the_series() -> None:
    assert julian_day(utc("2000-01-01 12:00")) == 2451545.0


# --------------------------------------------------------------------------- crossings


class Crossed(NamedTuple):
    """When PyEphem has the centre of the sun cross -0:50 after ``after``."""

    after: str  # UTC, as are all the times in the tables
    place: Place
    direction: Direction
    expected: str
    tolerance: float = 60.0  # seconds


CROSSINGS = {
    # Greenwich, longest day: 04:43 and 21:21 BST.
    "greenwich-sunrise": Crossed("2026-06-21", GREENWICH, "rising", "2026-06-21 03:42:46"),
    "greenwich-sunset": Crossed("2026-06-21", GREENWICH, "setting", "2026-06-21 20:20:52"),
    # New York, 2026-06-21: 05:25 and 20:31 EDT.
    "new-york-sunrise": Crossed("2026-06-21 04:00", NEW_YORK, "rising", "2026-06-21 09:25:02"),
    "new-york-sunset": Crossed("2026-06-21 04:00", NEW_YORK, "setting", "2026-06-22 00:30:44"),
    # Reykjavik, midsummer: 02:55 and 00:04 (the next day) GMT.
    "reykjavik-sunrise": Crossed("2026-06-20 12:00", REYKJAVIK, "rising", "2026-06-21 02:55:12"),
    "reykjavik-sunset": Crossed("2026-06-21 12:00", REYKJAVIK, "setting", "2026-06-22 00:03:58"),
    # Sydney, shortest day: 07:00 and 16:54 AEST.
    "sydney-sunrise": Crossed("2026-06-20 12:00", SYDNEY, "rising", "2026-06-20 20:59:58"),
    "sydney-sunset": Crossed("2026-06-20 12:00", SYDNEY, "setting", "2026-06-21 06:53:49"),
    "equator-sunset": Crossed("2026-06-01", NULL_ISLAND, "setting", "2026-06-01 18:01:28"),
    # Polar night and midnight sun end on known days: the search walks over weeks.
    "tromso-polar-night-ends": Crossed("2026-12-01", TROMSO, "rising", "2027-01-15 10:35:11"),
    "longyearbyen-sun-sets-again": Crossed(
        "2026-06-01", LONGYEARBYEN, "setting", "2026-08-24 22:28:32"
    ),
    # At a pole the altitude is the declination, moving 0.4°/day: 0.01° is half an hour there.
    "north-pole-spring": Crossed("2026-03-01", NORTH_POLE, "rising", "2026-03-18 12:21:59", 1800),
    "south-pole-spring": Crossed("2026-08-01", SOUTH_POLE, "rising", "2026-09-20 20:48:38", 1800),
}


@pytest.mark.parametrize("case", CROSSINGS.values(), ids=CROSSINGS.keys())
def test_sunrise_and_sunset_match_pyephem(case: Crossed) -> None:
    crossing = find_crossing(utc(case.after), *case.place, direction=case.direction)
    assert crossing.reason is None
    assert crossing.time is not None
    assert abs((crossing.time - utc(case.expected)).total_seconds()) <= case.tolerance


NEVER = [
    pytest.param(90.0, 30.0, "rising", "stays below 30.0°", id="pole-never-reaches-30"),
    pytest.param(-90.0, 30.0, "setting", "stays below 30.0°", id="south-pole-never-reaches-30"),
    pytest.param(90.0, -30.0, "rising", "stays above -30.0°", id="pole-never-sinks-to-minus-30"),
]


@pytest.mark.parametrize(("lat", "altitude", "direction", "reason"), NEVER)
def test_no_crossing_within_the_horizon_is_null_with_a_reason(
    lat: float, altitude: float, direction: Direction, reason: str
) -> None:
    crossing = find_crossing(utc("2026-06-01"), lat, 0.0, altitude=altitude, direction=direction)
    assert crossing.time is None
    assert crossing.reason is not None
    assert reason in crossing.reason


def test_a_crossing_exactly_at_after_is_not_the_next_one() -> None:
    first = find_crossing(utc("2026-06-21"), 51.4769, 0.0)
    assert first.time is not None
    again = find_crossing(first.time, 51.4769, 0.0)
    assert again.time is not None
    assert timedelta(hours=23) < again.time - first.time < timedelta(hours=25)


# --------------------------------------------------------------------------- properties

offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
instants = st.datetimes(
    min_value=datetime(1800, 1, 2),  # hypothesis wants naive bounds
    max_value=datetime(2200, 12, 30),
    timezones=st.one_of(st.just(UTC), offsets),
)
latitudes = st.floats(min_value=-90.0, max_value=90.0)
longitudes = st.floats(min_value=-180.0, max_value=180.0)
directions = st.sampled_from(["rising", "setting"])


@given(when=instants, lat=latitudes, lon=longitudes)
def test_angles_stay_in_their_ranges(when: datetime, lat: float, lon: float) -> None:
    position = solar_position(when, lat, lon)
    assert -90.0 <= position.altitude <= 90.0
    assert position.altitude <= position.apparent_altitude <= 90.0
    assert 0.0 <= position.azimuth < 360.0
    assert -180.0 <= position.hour_angle < 180.0
    assert abs(position.declination) < 23.5
    assert abs(position.equation_of_time) < 17.0  # minutes; the yearly extremes are ~16.4


@given(
    after=instants,
    lat=latitudes,
    lon=longitudes,
    target=st.floats(min_value=-20.0, max_value=60.0),
    direction=directions,
)
def test_a_found_crossing_is_later_at_the_target_and_in_the_asked_direction(
    after: datetime, lat: float, lon: float, target: float, direction: Direction
) -> None:
    crossing = find_crossing(after, lat, lon, altitude=target, direction=direction)
    if crossing.time is None:
        assert crossing.reason
        return
    assert crossing.reason is None
    assert after < crossing.time <= after + timedelta(days=366, seconds=1)
    assert solar_position(crossing.time, lat, lon).altitude == pytest.approx(target, abs=0.01)
    before = solar_position(crossing.time - timedelta(seconds=30), lat, lon).altitude
    later = solar_position(crossing.time + timedelta(seconds=30), lat, lon).altitude
    assert (later > before) == (direction == "rising")


@given(
    after=instants,
    lat=st.floats(min_value=-50.0, max_value=50.0),
    lon=longitudes,
    target=st.floats(min_value=-12.0, max_value=5.0),
    direction=directions,
)
def test_the_first_crossing_is_not_skipped(
    after: datetime, lat: float, lon: float, target: float, direction: Direction
) -> None:
    """Compared with a plain 5-minute scan where every day has both crossings.

    Within ±50° the sun culminates above 16.5° and bottoms out below -16.5° every day, so a
    target in [-12°, 5°] is crossed both ways daily, never grazed, and a scan cannot miss it.
    """
    sign = 1.0 if direction == "rising" else -1.0
    step = timedelta(minutes=5)
    t0 = after
    g0 = sign * (solar_position(t0, lat, lon).altitude - target)
    while True:
        t1 = t0 + step
        g1 = sign * (solar_position(t1, lat, lon).altitude - target)
        if g0 < 0.0 <= g1:
            break
        t0, g0 = t1, g1
        assert t0 - after < timedelta(hours=36), "the scan found no crossing"
    crossing = find_crossing(after, lat, lon, altitude=target, direction=direction)
    assert crossing.time is not None
    # The answer is rounded up to the whole second, hence the slack after the scan's step.
    assert t0 < crossing.time <= t1 + timedelta(seconds=2)


def test_a_year_without_a_crossing_is_still_fast() -> None:
    """The worst case walks the whole horizon: about 730 evaluations, a few milliseconds."""
    started = time.perf_counter()
    crossing = find_crossing(utc("2026-06-01"), 90.0, 0.0, altitude=30.0)
    elapsed = time.perf_counter() - started
    assert crossing.time is None
    assert elapsed < 0.05  # ~2 ms on a laptop; generous for a loaded CI machine


def test_standard_horizon_is_refraction_plus_the_solar_radius() -> None:
    assert math.isclose(STANDARD_HORIZON, -(34 + 16) / 60, abs_tol=0.001)
