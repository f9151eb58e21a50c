"""DATE_AND_TIME: Excel's date and time functions over serial numbers of the 1900 date system
(excelnet/formula/dates.py: serial 60 is Excel's 29 February 1900). Arguments are read as
Excel reads them (numbers, dates typed as text, booleans); a serial outside 0..31 December 9999
is #NUM!. Every function works element by element and has no gradient."""

from __future__ import annotations

import datetime as dt
import math

from excelnet.formula import dates
from excelnet.formula.functions.kit import cellwise, row_index, row_lists
from excelnet.formula.functions.registry import registrar
from excelnet.formula.numfmt import parse_number
from excelnet.formula.parse import Error
from excelnet.formula.values import Omitted, scalar

excel = registrar("DATE_AND_TIME")

NUM = Error("#NUM!")
VALUE = Error("#VALUE!")


def whole_day(x: float) -> int | None:
    """A serial as a whole day, None outside Excel's dates."""
    return math.floor(x) if 0 <= x < dates.last() + 1 else None


def _serial(s: int) -> float | Error:
    return float(s) if 0 <= s <= dates.last() else NUM


# -- building dates and times -----------------------------------------------------------------


@excel("DATE", args="nnn", gradient=False, cellwise=True)
def f_date(y: float, m: float, d: float):
    """DATE(year, month, day): years 0-1899 count from 1900; month and day may run over."""
    y, m = int(y), int(m)
    y = y + 1900 if 0 <= y < 1900 else y
    if not 1900 <= y + (m - 1) // 12 <= 9999:  # the year the months reach, days aside
        return NUM
    return _serial(dates.serial(y, m, int(d)))


@excel("TIME", args="nnn", gradient=False, cellwise=True)
def f_time(h: float, m: float, s: float):
    """TIME(hour, minute, second): the time of day (a whole day drops off); #NUM! below 0."""
    parts = [int(h), int(m), int(s)]
    total = parts[0] * 3600 + parts[1] * 60 + parts[2]
    if total < 0 or max(parts) > 32767:
        return NUM
    x = total / 86400
    return x - math.floor(x)


def _text_date(x, part: str):
    if not isinstance(x, str):
        return VALUE
    parsed = dates.parse_datetime(x)
    if parsed is None:
        return VALUE
    date, time = parsed
    if part == "date":
        return VALUE if date is None else float(date)
    return 0.0 if time is None else time - math.floor(time)


@excel("DATEVALUE", args="v", gradient=False, cellwise=True)
def f_datevalue(x):
    """The date a text holds (its time dropped); text only."""
    return _text_date(x, "date")


@excel("TIMEVALUE", args="v", gradient=False, cellwise=True)
def f_timevalue(x):
    """The time of day a text holds (its date dropped; "24:00" is 0); text only."""
    return _text_date(x, "time")


# -- taking dates and times apart -------------------------------------------------------------


def _part(pick):
    """YEAR, MONTH, …: pick(day, serial) of a serial within Excel's dates."""

    def part(x: float):
        day = whole_day(x)
        return NUM if day is None else float(pick(day, x))

    return part


for _name, _pick in (
    ("YEAR", lambda d, x: dates.ymd(d)[0]),
    ("MONTH", lambda d, x: dates.ymd(d)[1]),
    ("DAY", lambda d, x: dates.ymd(d)[2]),
    ("HOUR", lambda d, x: dates.split_time(x)[1]),
    ("MINUTE", lambda d, x: dates.split_time(x)[2]),
    ("SECOND", lambda d, x: dates.split_time(x)[3]),
):
    excel(_name, args="n", gradient=False, cellwise=True)(_part(_pick))


# -- moving by months -------------------------------------------------------------------------


def add_months(start: float, months: float, end_of_month: bool):
    """The serial `months` whole months after `start` (the month's last day where it is
    shorter, or always with `end_of_month`), #NUM! outside Excel's dates."""
    day = whole_day(start)
    if day is None:
        return NUM
    y, m, d = dates.ymd(day)
    total = y * 12 + (m - 1) + int(months)
    y, m = divmod(total, 12)
    m += 1
    if not 1900 <= y <= 9999:
        return NUM
    last = dates.days_in_month(y, m)
    return _serial(dates.serial(y, m, last if end_of_month else min(d, last)))


@excel("EDATE", args="nn", gradient=False, cellwise=True)
def f_edate(start: float, months: float):
    """The same day `months` months on (the month's last day where it is shorter)."""
    return add_months(start, months, False)


@excel("EOMONTH", args="nn", gradient=False, cellwise=True)
def f_eomonth(start: float, months: float):
    """The last day of the month `months` months on."""
    return add_months(start, months, True)


# -- weeks ------------------------------------------------------------------------------------

_WEEKDAY_START = {1: 0, 2: 1, 3: 1, **{t: (t - 10) % 7 for t in range(11, 18)}}  # 0 = Sunday


@excel("WEEKDAY", args="nn?", gradient=False, cellwise=True)
def f_weekday(x: float, kind: float = 1.0):
    """WEEKDAY(date, [type=1]): 1 Sunday=1; 2 Monday=1; 3 Monday=0; 11-17 Monday…Sunday=1."""
    day, kind = whole_day(x), int(kind)
    if day is None or kind not in _WEEKDAY_START:
        return NUM
    n = (dates.weekday(day) - _WEEKDAY_START[kind]) % 7
    return float(n if kind == 3 else n + 1)


def iso_week(day: int) -> int:
    """The ISO 8601 week of a serial (weeks start on Monday; week 1 holds the year's first
    Thursday), by Excel's own weekdays."""
    y = dates.ymd(day)[0]
    monday = (dates.weekday(day) + 6) % 7  # 0 = Monday
    thursday = day - monday + 3
    ty = dates.ymd(thursday)[0] if thursday >= 1 else y - 1
    return (thursday - dates.serial(ty, 1, 1)) // 7 + 1


_WEEK_START = {1: 0, 2: 1, **{t: (t - 10) % 7 for t in range(11, 18)}}


@excel("WEEKNUM", args="nn?", gradient=False, cellwise=True)
def f_weeknum(x: float, kind: float = 1.0):
    """WEEKNUM(date, [type=1]): week 1 holds 1 January, weeks start on Sunday (1, 17), Monday
    (2, 11), Tuesday (12) … Saturday (16); 21 is the ISO week."""
    day, kind = whole_day(x), int(kind)
    if day is None or (kind not in _WEEK_START and kind != 21):
        return NUM
    if kind == 21:
        return float(iso_week(day))
    jan1 = dates.serial(dates.ymd(day)[0], 1, 1)
    offset = (dates.weekday(max(jan1, 0)) - _WEEK_START[kind]) % 7
    return float((day - jan1 + offset) // 7 + 1)


@excel("_xlfn.ISOWEEKNUM", args="n", gradient=False, cellwise=True)
def f_isoweeknum(x: float):
    return NUM if whole_day(x) is None else float(iso_week(whole_day(x)))


# -- differences ------------------------------------------------------------------------------


@excel("_xlfn.DAYS", args="nn", gradient=False, cellwise=True)
def f_days(end: float, start: float):
    """DAYS(end, start): whole days from start to end."""
    e, s = whole_day(end), whole_day(start)
    return NUM if e is None or s is None else float(e - s)


def _is_last_of_month(y: int, m: int, d: int) -> bool:
    return d == dates.days_in_month(y, m)


def days360(s: int, e: int, european: bool) -> int:
    """Days between two serials counting 30-day months: the US (NASD) way — a start on a
    month's last day counts as the 30th, an end on the 31st as the 30th when the start is the
    30th or later — or the European way (every 31st counts as the 30th)."""
    y1, m1, d1 = dates.ymd(s)
    y2, m2, d2 = dates.ymd(e)
    if european:
        d1, d2 = min(d1, 30), min(d2, 30)
    else:
        if _is_last_of_month(y1, m1, d1):
            d1 = 30
        if d2 == 31 and d1 >= 30:
            d2 = 30
    return (y2 - y1) * 360 + (m2 - m1) * 30 + (d2 - d1)


@excel("DAYS360", args="nnn?", gradient=False, cellwise=True)
def f_days360(start: float, end: float, method: float = 0.0):
    s, e = whole_day(start), whole_day(end)
    return NUM if s is None or e is None else float(days360(s, e, bool(method)))


def _leap(y: int) -> bool:
    return dates.days_in_month(y, 2) == 29


def year_fraction(s: int, e: int, basis: int) -> float:
    """YEARFRAC's count of years between two serials (s ≤ e) by day-count basis: 0 US 30/360,
    1 actual/actual, 2 actual/360, 3 actual/365, 4 European 30/360."""
    if basis == 0:
        return days360_us(s, e) / 360
    if basis == 4:
        return days360(s, e, True) / 360
    if basis in (2, 3):
        return (e - s) / (360 if basis == 2 else 365)
    y1, m1, d1 = dates.ymd(s)
    y2, m2, d2 = dates.ymd(e)
    if y1 == y2 or (y2 == y1 + 1 and (m1, d1) >= (m2, d2)):
        if y1 == y2:
            length = 366 if _leap(y1) else 365
        else:
            feb_start = _leap(y1) and (m1, d1) <= (2, 29)
            feb_end = _leap(y2) and (m2, d2) >= (2, 29)
            length = 366 if feb_start or feb_end else 365
        return (e - s) / length
    years = y2 - y1 + 1
    total = dates.serial(y2 + 1, 1, 1) - dates.serial(y1, 1, 1)
    return (e - s) / (total / years)


@excel("YEARFRAC", args="nnn?", gradient=False, cellwise=True)
def f_yearfrac(start: float, end: float, basis: float = 0.0):
    s, e, basis = whole_day(start), whole_day(end), int(basis)
    if s is None or e is None or not 0 <= basis <= 4:
        return NUM
    return year_fraction(min(s, e), max(s, e), basis)


@excel("DATEDIF", args="nnt", gradient=False, cellwise=True)
def f_datedif(start: float, end: float, unit: str):
    """DATEDIF(start, end, unit): whole years "Y", months "M", days "D"; "YM" months and "MD"
    days leaving out the whole years and months; "YD" days leaving out the whole years."""
    s, e, unit = whole_day(start), whole_day(end), unit.upper()
    if s is None or e is None or s > e:
        return NUM
    y1, m1, d1 = dates.ymd(s)
    y2, m2, d2 = dates.ymd(e)
    months = (y2 - y1) * 12 + m2 - m1 - (1 if d2 < d1 else 0)
    if unit == "Y":
        return float(months // 12)
    if unit == "M":
        return float(months)
    if unit == "D":
        return float(e - s)
    if unit == "YM":
        return float(months % 12)
    if unit == "MD":
        if d2 >= d1:
            return float(d2 - d1)
        py, pm = (y2, m2 - 1) if m2 > 1 else (y2 - 1, 12)
        return float(dates.days_in_month(py, pm) - d1 + d2)
    if unit == "YD":
        y = y2 if (m2, d2) >= (m1, d1) else y2 - 1
        return float(e - dates.serial(y, m1, min(d1, dates.days_in_month(y, m1))))
    return NUM


# -- working days -----------------------------------------------------------------------------

_WEEKENDS = {  # weekday numbers, 0 = Monday
    1: (5, 6),
    2: (6, 0),
    3: (0, 1),
    4: (1, 2),
    5: (2, 3),
    6: (3, 4),
    7: (4, 5),
    **{t: ((t - 12) % 7,) for t in range(11, 18)},
}


def weekend_mask(code) -> tuple[bool, ...] | Error:
    """NETWORKDAYS.INTL's weekend: a number (1 Saturday-Sunday … 7 Friday-Saturday, 11 Sunday
    … 17 Saturday) or seven 0/1 characters from Monday; per weekday from Monday, True for a
    day off."""
    if isinstance(code, str):
        if len(code) != 7 or set(code) - {"0", "1"} or code == "1111111":
            return VALUE
        return tuple(c == "1" for c in code)
    if isinstance(code, bool) or code is None:
        return NUM if code is not None else weekend_mask(1.0)
    off = _WEEKENDS.get(int(code)) if float(code).is_integer() else None
    return NUM if off is None else tuple(d in off for d in range(7))


def _working(day: int, mask) -> bool:
    return not mask[(dates.weekday(day) + 6) % 7]


def _holidays(values: list, mask) -> set[int] | Error:
    out = set()
    for h in values:
        if h is None:
            continue
        if isinstance(h, str):  # a date (or number) typed as text counts, other text not
            h = parse_number(h)
        if h is None or isinstance(h, bool):
            return VALUE
        day = whole_day(h)
        if day is None:
            return NUM
        if _working(day, mask):
            out.add(day)
    return out


def networkdays(s: int, e: int, mask, holidays: set[int]) -> int:
    """Working days from s to e, both counted (negative when e is before s)."""
    sign = 1 if e >= s else -1
    lo, hi = min(s, e), max(s, e)
    weeks, rest = divmod(hi - lo + 1, 7)
    count = weeks * sum(not m for m in mask)
    count += sum(_working(d, mask) for d in range(hi - rest + 1, hi + 1))
    count -= sum(lo <= h <= hi for h in holidays)
    return sign * count


def workday(s: int, days: int, mask, holidays: set[int]) -> int:
    """The working day `days` working days after (before) s."""
    step, left, day = (1 if days > 0 else -1), abs(days), s
    per_week = sum(not m for m in mask)
    while left > 0:
        if left > 2 * per_week:  # whole weeks at once, then what holidays took back
            weeks = left // per_week - 1
            nxt = day + step * 7 * weeks
            lo, hi = sorted((day + step, nxt))
            left -= weeks * per_week - sum(lo <= h <= hi for h in holidays)
            day = nxt
            continue
        day += step
        if _working(day, mask) and day not in holidays:
            left -= 1
    return day


def _working_days(ctx, args, intl: bool, count: bool):
    rows = max(v.shape[0] for v in args)
    hol_at = 3 if intl else 2
    hol = row_lists(args[hol_at], "v", rows) if len(args) > hol_at else None
    weekend = args[2] if intl and len(args) > 2 and not isinstance(args[2], Omitted) else None
    base = args[:2]
    parts = [*base, row_index(ctx, rows)] + ([weekend] if weekend is not None else [])
    how = "nnn" + ("v" if weekend is not None else "")

    def fn(a: float, b: float, r: float, code=1.0):
        mask = weekend_mask(code)
        if isinstance(mask, Error):
            return mask
        r = int(r)
        if hol is not None and hol[1][r]:
            return Error(hol[1][r])
        holidays = _holidays(hol[0][r], mask) if hol is not None else set()
        if isinstance(holidays, Error):
            return holidays
        s = whole_day(a)
        if s is None:
            return NUM
        if count:
            e = whole_day(b)
            return NUM if e is None else float(networkdays(s, e, mask, holidays))
        return _serial(workday(s, int(b), mask, holidays))

    return cellwise(ctx, parts, how, fn)


@excel("NETWORKDAYS", args="nnr?", gradient=False)
def f_networkdays(ctx, args):
    """NETWORKDAYS(start, end, [holidays]): Monday to Friday, both ends counted."""
    return _working_days(ctx, args, False, True)


@excel("_xlfn.NETWORKDAYS.INTL", args="nnv?r?", gradient=False)
def f_networkdays_intl(ctx, args):
    return _working_days(ctx, args, True, True)


@excel("WORKDAY", args="nnr?", gradient=False)
def f_workday(ctx, args):
    """WORKDAY(start, days, [holidays]): the working day `days` working days away."""
    return _working_days(ctx, args, False, False)


@excel("_xlfn.WORKDAY.INTL", args="nnv?r?", gradient=False)
def f_workday_intl(ctx, args):
    return _working_days(ctx, args, True, False)


# -- now --------------------------------------------------------------------------------------


def _now_serial() -> float:
    now = dt.datetime.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return dates.from_date(now.date()) + (now - midnight).total_seconds() / 86400


@excel("NOW", args="", gradient=False, volatile=True)
def f_now(ctx, args):
    return scalar(_now_serial(), ctx)


@excel("TODAY", args="", gradient=False, volatile=True)
def f_today(ctx, args):
    return scalar(float(math.floor(_now_serial())), ctx)


# -- FINANCIAL: the securities functions' day counts -------------------------------------------


def days360_us(s: int, e: int, both: bool = False) -> int:
    """Days between two serials by the US (NASD) 30/360 rule of YEARFRAC's basis 0: a start on
    the 31st or on February's last day counts as the 30th; an end on February's last day
    counts as the 30th when the start is one too, an end on the 31st when the start is the 30th
    or later. `both` moves such an end to the 30th whatever the start (how the securities
    functions measure a coupon period)."""
    y1, m1, d1 = dates.ymd(s)
    y2, m2, d2 = dates.ymd(e)
    start_feb = m1 == 2 and _is_last_of_month(y1, m1, d1)
    if (start_feb or both) and m2 == 2 and _is_last_of_month(y2, m2, d2):
        d2 = 30
    if d2 == 31 and (d1 >= 30 or both):
        d2 = 30
    if d1 == 31 or start_feb:
        d1 = 30
    return (y2 - y1) * 360 + (m2 - m1) * 30 + (d2 - d1)
