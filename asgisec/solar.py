"""Where the sun is, and when it next crosses a given altitude: the demo API's arithmetic.

The position is NOAA's solar calculator algorithm (the equations of its spreadsheet, taken
from Meeus, *Astronomical Algorithms*, 2nd ed., ch. 25 "low accuracy"), good to about 0.01°
for dates within a few centuries of 2000. It is pure arithmetic on floats, with no I/O and no
clock, so the tests can pin it against reference values and fuzz it with hypothesis.

Conventions, chosen to match the NOAA calculator:

* ``altitude`` is *geometric* (no atmosphere); ``apparent_altitude`` adds NOAA's refraction
  approximation. Sunrise and sunset are the geometric altitude -0.833° (34 arcmin of
  refraction at the horizon plus the 16 arcmin semi-diameter of the disc), so
  :func:`find_crossing` works on the geometric altitude too.
* ``azimuth`` is in degrees clockwise from true north, in ``[0, 360)``.
* Time is UT (the datetime's UTC instant); the ~1 minute between UT and the dynamical time
  Meeus's series expect moves the sun by under 0.001° and is ignored, as NOAA does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, NamedTuple

__all__ = [
    "STANDARD_HORIZON",
    "Crossing",
    "Direction",
    "SolarPosition",
    "find_crossing",
    "julian_day",
    "refraction",
    "solar_position",
]

STANDARD_HORIZON = -0.833  # degrees: 34' refraction + 16' solar radius (NOAA, USNO sunrise)
_UNIX_EPOCH_JD = 2440587.5  # Julian day of 1970-01-01T00:00:00Z
_J2000_JD = 2451545.0  # Julian day of 2000-01-01T12:00:00 (the series' origin)
_SECONDS_PER_HOUR_ANGLE_DEGREE = 240.0  # 86400 s / 360°: the hour angle's mean rate
_BISECTION_SECONDS = 0.25  # stop bisecting here: the sun moves < 0.0011° in a quarter second

Direction = Literal["rising", "setting"]
_Above = Callable[[float], tuple[float, float]]  # unix time -> (signed distance, hour angle)


class SolarPosition(NamedTuple):
    """The sun seen from one place at one instant (angles in degrees)."""

    altitude: float  # geometric elevation above the horizon, no refraction
    apparent_altitude: float  # elevation with NOAA's atmospheric refraction added
    azimuth: float  # clockwise from true north, in [0, 360)
    declination: float
    hour_angle: float  # negative before local solar noon, in [-180, 180)
    equation_of_time: float  # minutes: apparent minus mean solar time


class Crossing(NamedTuple):
    """The answer of :func:`find_crossing`: a time, or ``None`` and why not."""

    time: datetime | None
    reason: str | None


def julian_day(moment: datetime) -> float:
    """The Julian day of an aware datetime (naive ones are refused: their instant is unknown)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.timestamp() / 86400.0 + _UNIX_EPOCH_JD


def refraction(altitude: float) -> float:
    """NOAA's atmospheric refraction correction, in degrees, for a geometric ``altitude``.

    Piecewise, as in the NOAA spreadsheet: Saemundsson-style series high up, a polynomial near
    the horizon, and a small tail below it. Typical conditions (10 °C, 1010 hPa) are assumed.
    """
    if altitude > 85.0:
        return 0.0
    tan_h = math.tan(math.radians(altitude))
    if altitude > 5.0:
        arcsec = 58.1 / tan_h - 0.07 / tan_h**3 + 0.000086 / tan_h**5
    elif altitude > -0.575:
        h = altitude
        arcsec = 1735.0 + h * (-518.2 + h * (103.4 + h * (-12.79 + h * 0.711)))
    else:
        arcsec = -20.774 / tan_h
    return arcsec / 3600.0


def _sun(
    unix: float, latitude: float, longitude: float
) -> tuple[float, float, float, float, float]:
    """(altitude, azimuth, declination, hour angle, equation of time) at a Unix time.

    The hot path: floats in and out, so a search can call it hundreds of times in a millisecond
    or two without building datetimes.
    """
    t = (unix / 86400.0 + _UNIX_EPOCH_JD - _J2000_JD) / 36525.0  # Julian centuries from J2000
    mean_long = math.radians((280.46646 + t * (36000.76983 + t * 0.0003032)) % 360.0)
    mean_anom = math.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    eccentricity = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    center = (
        math.sin(mean_anom) * (1.914602 - t * (0.004817 + 0.000014 * t))
        + math.sin(2 * mean_anom) * (0.019993 - 0.000101 * t)
        + math.sin(3 * mean_anom) * 0.000289
    )
    omega = math.radians(125.04 - 1934.136 * t)  # longitude of the Moon's ascending node
    apparent_long = math.radians(
        math.degrees(mean_long) + center - 0.00569 - 0.00478 * math.sin(omega)
    )
    mean_obliquity = (
        23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0
    )
    obliquity = math.radians(mean_obliquity + 0.00256 * math.cos(omega))
    sin_decl = math.sin(obliquity) * math.sin(apparent_long)
    decl = math.asin(sin_decl)
    cos_decl = math.cos(decl)

    y = math.tan(obliquity / 2.0) ** 2
    eot = 4.0 * math.degrees(
        y * math.sin(2 * mean_long)
        - 2 * eccentricity * math.sin(mean_anom)
        + 4 * eccentricity * y * math.sin(mean_anom) * math.cos(2 * mean_long)
        - 0.5 * y * y * math.sin(4 * mean_long)
        - 1.25 * eccentricity * eccentricity * math.sin(2 * mean_anom)
    )
    true_solar_minutes = (unix % 86400.0) / 60.0 + eot + 4.0 * longitude
    hour_angle = (true_solar_minutes / 4.0) % 360.0 - 180.0
    ha = math.radians(hour_angle)

    lat = math.radians(latitude)
    sin_lat, cos_lat = math.sin(lat), math.cos(lat)
    sin_alt = sin_lat * sin_decl + cos_lat * cos_decl * math.cos(ha)
    altitude = math.degrees(math.asin(max(-1.0, min(1.0, sin_alt))))
    # Meeus (13.5) measures azimuth westward from south; +180 turns it into "from north".
    south = math.atan2(
        math.sin(ha) * cos_decl, math.cos(ha) * sin_lat * cos_decl - sin_decl * cos_lat
    )
    azimuth = (math.degrees(south) + 180.0) % 360.0
    if azimuth >= 360.0:  # a tiny negative angle rounds to exactly 360.0 under %
        azimuth = 0.0
    return altitude, azimuth, math.degrees(decl), hour_angle, eot


def solar_position(moment: datetime, latitude: float, longitude: float) -> SolarPosition:
    """The sun's position at ``moment`` seen from ``latitude``/``longitude`` (degrees, east +)."""
    julian_day(moment)  # refuses a naive datetime
    altitude, azimuth, decl, hour_angle, eot = _sun(moment.timestamp(), latitude, longitude)
    return SolarPosition(
        altitude=altitude,
        apparent_altitude=min(90.0, altitude + refraction(altitude)),
        azimuth=azimuth,
        declination=decl,
        hour_angle=hour_angle,
        equation_of_time=eot,
    )


def find_crossing(
    after: datetime,
    latitude: float,
    longitude: float,
    *,
    altitude: float = STANDARD_HORIZON,
    direction: Direction = "rising",
    horizon_days: int = 366,
) -> Crossing:
    """The first instant after ``after`` when the sun's geometric altitude crosses ``altitude``.

    Why this shape: the altitude is monotonic between consecutive culminations (hour angle 0
    and 180°), so the search walks from one culmination to the next — two evaluations a day,
    about 730 for a year — and bisects the first half-day whose ends straddle the target in
    the wanted direction. A whole year of polar night costs a few milliseconds; a sunrise
    tomorrow costs a few dozen evaluations. The time returned is rounded up to the whole second
    (so it is strictly after ``after``) and is within 0.01° of the target altitude.

    Within about a degree of a pole the declination can move the sun more in half a day than the
    Earth's turn does, and a sun that grazes the target twice inside one half-day is not seen;
    such grazes are below the accuracy of any refraction model anyway.
    """
    julian_day(after)  # refuses a naive datetime
    sign = 1.0 if direction == "rising" else -1.0
    start = after.timestamp()
    end = start + horizon_days * 86400.0
    lowest, highest = math.inf, -math.inf  # the sun's range seen by the walk, for the reason

    def above(unix: float) -> tuple[float, float]:
        """(sign-adjusted distance above the target, hour angle) at ``unix``."""
        nonlocal lowest, highest
        sun_altitude, _, _, hour_angle, _ = _sun(unix, latitude, longitude)
        lowest, highest = min(lowest, sun_altitude), max(highest, sun_altitude)
        return sign * (sun_altitude - altitude), hour_angle

    t0 = start
    g0, hour_angle = above(t0)
    to_culmination = (-hour_angle) % 180.0 or 180.0
    while t0 < end:
        t1 = min(t0 + to_culmination * _SECONDS_PER_HOUR_ANGLE_DEGREE, end)
        g1, hour_angle = above(t1)
        if g0 < 0.0 <= g1:
            return Crossing(_bisect(above, t0, t1), None)
        t0, g0 = t1, g1
        # Aim the next step at the next culmination, correcting this one's small miss.
        to_culmination = 180.0 - ((hour_angle + 90.0) % 180.0 - 90.0)

    days = f"{horizon_days} days"
    if lowest > altitude:
        reason = f"the sun stays above {altitude}° for the next {days}"
    elif highest < altitude:
        reason = f"the sun stays below {altitude}° for the next {days}"
    else:
        reason = f"the sun is not {direction} through {altitude}° within the next {days}"
    return Crossing(None, reason)


def _bisect(above: _Above, low: float, high: float) -> datetime:
    """Narrow ``[low, high]`` (below the target at ``low``, at or above at ``high``)."""
    while high - low > _BISECTION_SECONDS:
        middle = (low + high) / 2.0
        if above(middle)[0] < 0.0:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(math.ceil(high), tz=UTC)
