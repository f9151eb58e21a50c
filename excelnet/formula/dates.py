"""Excel's 1900 date system: a date is the number of days since 31 December 1899 (serial 1 is
1 January 1900), the time of day its fraction. Excel counts 29 February 1900, a day that never
was (Lotus 1-2-3's bug, kept for compatibility): serial 60 is that day, and every serial from 61
on is one more than the plain count. Serial 0 shows as 0 January 1900; the last date is
31 December 9999 (2958465).

A workbook may use the 1904 date system instead (Excel for the Mac's, `<workbookPr
date1904="1"/>`): serial 0 is 1 January 1904, every date 1462 less than in the 1900 system,
nothing before 1904. Evaluation sets `system1904` for the workbook it computes (`calendar1904`);
every function here reads it.

Also how Excel reads a date or a time typed as text ("2024-02-29", "29-Feb-1900", "1:30 PM"),
in the regional date order (`date_order`: month first as in en-US, Excel's default, or day
first as in en-GB)."""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from contextlib import contextmanager
from contextvars import ContextVar

LAST = 2958465  # 31 December 9999 (in the 1900 date system; `last()` in the workbook's)
SHIFT_1904 = 1462  # 1 January 1904 in the 1900 system
system1904: ContextVar[bool] = ContextVar("system1904", default=False)


@contextmanager
def calendar1904(on: bool):
    """Dates in the 1904 date system (if `on`) inside the block."""
    token = system1904.set(bool(on))
    try:
        yield
    finally:
        system1904.reset(token)


def shift() -> int:
    """The workbook's serial 0 in the 1900 system's count: 0, or 1462 in the 1904 system."""
    return SHIFT_1904 if system1904.get() else 0


def last() -> int:
    """The serial of 31 December 9999 in the workbook's date system."""
    return LAST - shift()


_BASE = dt.date(1899, 12, 31).toordinal()
_MARCH_1900 = dt.date(1900, 3, 1).toordinal()

MONTHS = [calendar.month_name[m] for m in range(1, 13)]  # English, as Excel's en-US
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def days_in_month(year: int, month: int) -> int:
    """Excel's calendar: February 1900 has 29 days."""
    if (year, month) == (1900, 2):
        return 29
    return calendar.monthrange(year, month)[1]


def serial(year: int, month: int, day: int) -> int:
    """The serial of a date; month and day may run over (month 13, day 0, day 60), as DATE
    allows. No range check."""
    return _serial(year, month, day) - shift()


def _serial(year: int, month: int, day: int) -> int:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    first = dt.date(year, month, 1).toordinal() - _BASE if 1 <= year <= 9999 else None
    if first is None:  # outside Python's calendar: count whole 400-year cycles of 146097 days
        cycles = (year - 2000) // 400
        return _serial(year - 400 * cycles, month, day) + 146097 * cycles
    return first + (1 if (year, month) >= (1900, 3) else 0) + day - 1


def ymd(days: int) -> tuple[int, int, int]:
    """The (year, month, day) of a whole serial 0..last() (0 is 1900-01-00, 60 is 1900-02-29;
    in the 1904 system 0 is 1904-01-01)."""
    days += shift()
    if days == 0:
        return 1900, 1, 0
    if days == 60:
        return 1900, 2, 29
    d = dt.date.fromordinal(_BASE + days - (1 if days > 60 else 0))
    return d.year, d.month, d.day


def weekday(days: int) -> int:
    """0 = Sunday … 6 = Saturday. Excel's serial 1 (1900-01-01) is a Sunday by its count (the
    phantom 29 February shifts every earlier day by one; Excel keeps its own count)."""
    return (days + shift() - 1) % 7


def to_date(days: int) -> dt.date:
    """A real date for serials ≥ 61 (the calendar functions' arithmetic)."""
    days += shift()
    return dt.date.fromordinal(_BASE + days - (1 if days > 60 else 0))


def from_date(d: dt.date) -> int:
    o = d.toordinal()
    return o - _BASE + (1 if o >= _MARCH_1900 else 0) - shift()


def split_time(x: float, decimals: int = 0) -> tuple[int, int, int, int, float]:
    """A serial as (days, hours, minutes, seconds, fraction of a second), the time rounded to
    `decimals` places of a second as Excel displays it (a time a hair below midnight shows as
    the next day's 0:00:00)."""
    scale = 10**decimals
    ticks = round(x * 86400 * scale)
    days, rest = divmod(ticks, 86400 * scale)
    secs, frac = divmod(rest, scale)
    return days, secs // 3600, secs // 60 % 60, secs % 60, frac / scale


# -- reading dates and times typed as text ----------------------------------------------------

date_order: ContextVar[str] = ContextVar("date_order", default="MDY")


@contextmanager
def regional(order: str):
    """Read ambiguous numeric dates ("2/3/2023") as `order` ("MDY" as in en-US, "DMY" as in
    en-GB) inside the block: the regional setting Excel reads typed dates with."""
    token = date_order.set(order)
    try:
        yield
    finally:
        date_order.reset(token)


_MONTH_NAMES = {m.lower(): i for i, m in enumerate(MONTHS, 1)}
_MONTH_NAMES.update({m[:3].lower(): i for i, m in enumerate(MONTHS, 1)})
_MONTH_NAMES["sept"] = 9
_TIME = re.compile(
    r"(?P<h>\d{1,5})(?::(?P<m>\d{1,5})(?::(?P<s>\d{1,5}(?:\.\d*)?))?)?"
    r"(?:\s*(?P<ampm>am|pm|a|p))?$",
    re.I,
)
_MIN_SEC = re.compile(r"(?P<m>\d{1,5}):(?P<s>\d{1,2}\.\d*)$")  # "1:30.5": minutes, seconds
_DATE_TOKENS = re.compile(r"\d+|[a-z]+|[/\-,. ]", re.I)


def parse_time(text: str) -> float | None:
    """'13:45', '1:45:30 PM', '6 AM', '1:30.5' → a fraction of a day (may exceed 1: '25:00');
    None if text is not a time."""
    t = text.strip()
    m = _MIN_SEC.match(t)
    if m:
        mins, secs = int(m["m"]), float(m["s"])
        return None if secs >= 60 else (mins * 60 + secs) / 86400
    m = _TIME.match(t)
    if not m or (m["m"] is None and m["ampm"] is None):
        return None
    h, mins = int(m["h"]), int(m["m"] or 0)
    secs = float(m["s"]) if m["s"] else 0.0
    if (m["m"] is not None and len(m["m"]) > 2) or mins >= 60 or secs >= 60:
        return None
    if m["ampm"]:
        if not 0 <= h <= 12 or (h == 0 and m["m"] is None):
            return None
        h = h % 12 + (12 if m["ampm"][0].lower() == "p" else 0)
    return (h * 3600 + mins * 60 + secs) / 86400


def _year(token: str) -> int | None:
    if not token.isdigit() or len(token) not in (1, 2, 4):
        return None
    y = int(token)
    if len(token) <= 2:  # Excel's two-digit years: 00-29 → 2000s, 30-99 → 1900s
        return y + (2000 if y < 30 else 1900)
    return y


def _valid(y: int | None, m: int, d: int) -> int | None:
    if y is None or not 1900 <= y <= 9999 or not 1 <= m <= 12 or not 1 <= d <= days_in_month(y, m):
        return None
    s = serial(y, m, d)
    return s if s >= 0 else None  # before 1904 in the 1904 date system


def _this_year() -> int:
    return dt.date.today().year


def parse_date(text: str) -> int | None:
    """A date typed as text → its serial, None if it is not one: '2024-02-29', '2/29/2024'
    (or 29/2/2024 where the day comes first), '29-Feb-1900', 'Feb 29, 2024', '29 February
    2024', 'Feb-2024' (the 1st), '29-Feb' (this year)."""
    tokens = _DATE_TOKENS.findall(text)
    if "".join(tokens) != text or text != text.strip():  # " 2024-01-10" is not a date
        return None
    parts = [t for t in tokens if t not in "/-,. "]
    seps = {t for t in tokens if t in "/-,. "}
    names = [i for i, t in enumerate(parts) if not t.isdigit()]
    if not parts or len(parts) > 3:
        return None
    if not names:  # all numbers: y-m-d, or m/d/y or d/m/y by region, or m/d, m/y
        if not seps <= {"/", "-"} or len(parts) < 2:
            return None
        nums = [int(p) for p in parts]
        if len(parts) == 3:
            if len(parts[0]) == 4:
                return _valid(nums[0], nums[1], nums[2])
            first, second = (0, 1) if date_order.get() == "MDY" else (1, 0)
            return _valid(_year(parts[2]), nums[first], nums[second])
        first, second = (0, 1) if date_order.get() == "MDY" else (1, 0)
        day = _valid(_this_year(), nums[first], nums[second])
        if day is not None:
            return day
        month = nums[0] if date_order.get() == "MDY" or len(parts[1]) == 4 else nums[1]
        return _valid(_year(parts[1]), month, 1) if len(parts[1]) in (2, 4) else None
    if len(names) > 1:
        return None
    month = _MONTH_NAMES.get(parts[names[0]].lower())
    if month is None:
        return None
    nums = [p for p in parts if p.isdigit()]
    if len(nums) == 2:  # 29-Feb-2024, Feb 29, 2024
        return _valid(_year(nums[1]), month, int(nums[0]))
    if len(nums) == 1:  # 29-Feb (this year) or Feb-2024 (the 1st)
        n = nums[0]
        if len(n) <= 2 and 1 <= int(n) <= days_in_month(_this_year(), month):
            return _valid(_this_year(), month, int(n))
        return _valid(_year(n), month, 1)
    return None


def parse_datetime(text: str) -> tuple[int | None, float | None] | None:
    """Text holding a date, a time or both ('2024-02-29 06:00') → (serial of the date or None,
    fraction of the time or None); None if it is neither (full-width digits are text)."""
    if not text.isascii() and any(c.isdigit() and not c.isascii() for c in text):
        return None
    t = text.rstrip()
    if not t.strip():
        return None
    time = parse_time(t)
    if time is not None:
        return None, time
    date = parse_date(t)
    if date is not None:
        return date, None
    cut = re.search(r"\s+(?=\d{1,5}(?::|\s*[ap]m?$))", t, re.I)
    while cut:  # a date, then a time
        date, time = parse_date(t[: cut.start()]), parse_time(t[cut.end() :])
        if date is not None and time is not None:
            return date, time
        cut = re.compile(r"\s+(?=\d)").search(t, cut.end())
    return None


def datetime_value(text: str) -> float | None:
    """A date and/or time as text → its serial (date + fraction), None if it is neither."""
    parsed = parse_datetime(text)
    if parsed is None:
        return None
    date, time = parsed
    value = (date or 0) + (time or 0.0)
    return value if math.isfinite(value) else None
