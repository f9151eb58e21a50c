"""FINANCIAL: securities — coupon schedules (COUPDAYBS, COUPDAYS, COUPDAYSNC, COUPNCD, COUPNUM,
COUPPCD), bonds' price, yield and duration (PRICE, YIELD, DURATION, MDURATION, and with an odd
first or last period ODDFPRICE, ODDFYIELD, ODDLPRICE, ODDLYIELD), securities paying at maturity
or sold at a discount (PRICEDISC, PRICEMAT, YIELDDISC, YIELDMAT, RECEIVED), Treasury bills
(TBILLEQ, TBILLPRICE, TBILLYIELD), the French depreciation AMORLINC and AMORDEGRC, VDB, and
DOLLARDE and DOLLARFR.

Day counts and coupon dates are Excel's, as the ExcelFinancialFunctions project found them
against Excel: basis 0 US 30/360, 1 actual/actual, 2 actual/360, 3 actual/365, 4 European
30/360; coupon dates step back from maturity by 12/frequency months (each from the one before,
the month's last day kept when maturity is one). Dates, frequency and basis are whole numbers
(truncated); the Analysis ToolPak takes no TRUE or FALSE (#VALUE!).

The prices and yields pass gradients to their continuous arguments (rates, yields, prices,
redemption): the dates give each element its times and weights (in Python), and the money is
computed in torch. YIELD and ODDFYIELD are roots of the price (Newton's method to full
precision, the gradient the implicit function theorem's); the depreciation and dollar
functions are step functions, computed without one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from excelnet.formula import dates
from excelnet.formula.functions.date import days360, days360_us, whole_day
from excelnet.formula.functions.financial import atp_number, implicit
from excelnet.formula.functions.kit import elements, expand, strict_num
from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import Error
from excelnet.formula.values import Omitted, array_shape, with_errors

excel = registrar("FINANCIAL")

NUM, VALUE, DIV0 = Error("#NUM!"), Error("#VALUE!"), Error("#DIV/0!")


class Invalid(Exception):
    """An argument out of its domain: the function's result is this error."""

    def __init__(self, error: Error = NUM):
        self.error = error


def need(condition: bool, error: Error = NUM) -> None:
    if not condition:
        raise Invalid(error)


# -- dates and day counts ---------------------------------------------------------------------


def _last_of_month(day: int) -> bool:
    y, m, d = dates.ymd(day)
    return d == dates.days_in_month(y, m)


def _last_of_february(y: int, m: int, d: int) -> bool:
    return m == 2 and d == dates.days_in_month(y, 2)


def change_month(day: int, months: int, last_day: bool) -> int:
    """The serial `months` months from `day` (the month's last day where it is shorter, or
    always with `last_day`), within Excel's dates."""
    y, m, d = dates.ymd(day)
    y, m = divmod(y * 12 + m - 1 + months, 12)
    m += 1
    need(1900 <= y <= 9999)
    last = dates.days_in_month(y, m)
    return dates.serial(y, m, last if last_day else min(d, last))


def coupon_dates(settlement: int, maturity: int, frequency: int) -> tuple[int, int]:
    """The coupon dates either side of settlement: the last on or before it, the next after."""
    months, last = 12 // frequency, _last_of_month(maturity)
    front, trailing = maturity, settlement
    while front > settlement:
        trailing, front = front, change_month(front, -months, last)
    return front, trailing


def coupons(settlement: int, maturity: int, frequency: int) -> int:
    """Coupons payable between settlement and maturity."""
    pcd, _ = coupon_dates(settlement, maturity, frequency)
    (y1, m1, _), (y2, m2, _) = dates.ymd(pcd), dates.ymd(maturity)
    return ((y2 - y1) * 12 + m2 - m1) * frequency // 12


def days(start: int, end: int, basis: int) -> int:
    """Days from start to end as the basis counts them."""
    if basis == 0:
        return days360_us(start, end)
    if basis == 4:
        return days360(start, end, True)
    return end - start


def year_days(start: int, end: int, basis: int) -> float:
    """The days of a year, as the basis counts them between two dates: actual/actual takes
    366 where a 29 February falls between dates less than a year apart, and the average
    length of the years they span where they are further apart."""
    if basis in (0, 2, 4):
        return 360.0
    if basis == 3:
        return 365.0
    (y1, m1, d1), (y2, m2, d2) = dates.ymd(start), dates.ymd(end)
    leap = [dates.days_in_month(y, 2) == 29 for y in (y1, y2)]
    if y1 == y2 or (y2 == y1 + 1 and (m1, d1) >= (m2, d2)):
        if (y1 == y2 and leap[0]) or (m2, d2) == (2, 29):
            return 366.0
        if y2 == y1 + 1 and ((leap[0] and m1 <= 2) or (leap[1] and m2 > 2)):
            return 366.0
        return 365.0
    total = dates.serial(y2 + 1, 1, 1) - dates.serial(y1, 1, 1)
    return total / (y2 - y1 + 1)


def coupon_days(settlement: int, maturity: int, frequency: int, basis: int) -> float:
    """Days in the coupon period that holds settlement (E)."""
    if basis == 1:
        pcd, ncd = coupon_dates(settlement, maturity, frequency)
        return float(ncd - pcd)
    return (365.0 if basis == 3 else 360.0) / frequency


def days_before(settlement: int, maturity: int, frequency: int, basis: int) -> float:
    """Days from the coupon period's start to settlement (A)."""
    pcd, _ = coupon_dates(settlement, maturity, frequency)
    return float(days(pcd, settlement, basis))


def days_after(settlement: int, maturity: int, frequency: int, basis: int) -> float:
    """Days from settlement to the next coupon (DSC)."""
    pcd, ncd = coupon_dates(settlement, maturity, frequency)
    if basis == 0:
        return float(days360_us(pcd, ncd, both=True) - days360_us(pcd, settlement))
    return float(days(settlement, ncd, basis))


# -- arguments --------------------------------------------------------------------------------


def _convert(letter: str, x):
    """One element as the ToolPak reads it: 'd' a date (whole days within Excel's calendar),
    'i' a whole number, 'n' a number."""
    if isinstance(x, Error):
        raise Invalid(x)
    n = atp_number(x)
    if isinstance(n, Error):
        raise Invalid(n)
    if letter == "d":
        day = whole_day(n)
        need(day is not None)
        return day
    return math.trunc(n) if letter == "i" else n


def _check(frequency: int | None, basis: int) -> None:
    need(0 <= basis <= 4)
    need(frequency is None or frequency in (1, 2, 4))


def security(
    name: str,
    spec: str,
    prepare,
    formula=None,
    continuous: tuple[int, ...] = (),
):
    """Register a securities function. `spec`: a letter per parameter ('d', 'i', 'n'; '?'
    optional, 0 when left out). `prepare(*values)` checks the arguments of one element (Python
    values; `Invalid` for its error) and returns its factors: a float, or with `formula` a
    tuple of floats, each made a tensor over the elements for `formula(factors, *numbers)`,
    which computes in torch on the arguments numbered in `continuous` (their gradients kept)."""
    letters = spec.replace("?", "")
    lo = len(spec) - 2 * spec.count("?")

    def f(ctx, args):
        shape = array_shape(*args)
        given = [
            None if isinstance(v, Omitted) and i >= lo else elements(v, "e", shape)[0]
            for i, v in enumerate(args)
        ]
        factors: list = []
        errs = np.full(shape, None, dtype=object)
        for idx in np.ndindex(*shape):
            try:
                values = [
                    _convert(letter, given[i][idx])
                    if i < len(given) and given[i] is not None
                    else 0
                    for i, letter in enumerate(letters)
                ]
                out = prepare(*values)
            except Invalid as e:
                errs[idx] = e.error.code
                out = None
            factors.append(out)
        failed = errs != None  # noqa: E711
        if formula is None:
            x = np.array([0.0 if out is None else out for out in factors]).reshape(shape)
            y = torch.as_tensor(x, dtype=ctx.dtype, device=ctx.device)
        else:
            width = max((len(out) for out in factors if out is not None), default=0)
            table = np.array(
                [out if out is not None else (1.0,) * width for out in factors], dtype=float
            ).reshape(*shape, width)
            parts = [
                torch.as_tensor(table[..., k], dtype=ctx.dtype, device=ctx.device)
                for k in range(width)
            ]
            numbers = []
            for i in continuous:
                v = args[i]
                x = torch.as_tensor(
                    [
                        0.0 if failed[idx] else float(_convert("n", given[i][idx]))
                        for idx in np.ndindex(*shape)
                    ],
                    dtype=ctx.dtype,
                    device=ctx.device,
                ).reshape(shape)
                if v.x.requires_grad:
                    x = x + (expand(v.x, shape) - expand(v.x, shape).detach())
                numbers.append(x)
            y = formula(parts, *numbers) if width else torch.zeros(shape, dtype=ctx.dtype)
            y = torch.where(torch.as_tensor(failed, device=y.device), 0.0, y)
        codes = errs if failed.any() else None
        return with_errors(y, strict_num(ctx, y, codes))

    excel(name, args=spec.replace("d", "n").replace("i", "n"), gradient=formula is not None)(f)
    return prepare


# -- coupon schedules -------------------------------------------------------------------------


def _schedule(settlement, maturity, frequency, basis):
    _check(frequency, basis)
    need(settlement < maturity)


def _coupdaybs(settlement, maturity, frequency, basis=0):
    _schedule(settlement, maturity, frequency, basis)
    return days_before(settlement, maturity, frequency, basis)


def _coupdays(settlement, maturity, frequency, basis=0):
    _schedule(settlement, maturity, frequency, basis)
    return coupon_days(settlement, maturity, frequency, basis)


def _coupdaysnc(settlement, maturity, frequency, basis=0):
    _schedule(settlement, maturity, frequency, basis)
    return days_after(settlement, maturity, frequency, basis)


def _coupncd(settlement, maturity, frequency, basis=0):
    _schedule(settlement, maturity, frequency, basis)
    return float(coupon_dates(settlement, maturity, frequency)[1])


def _couppcd(settlement, maturity, frequency, basis=0):
    _schedule(settlement, maturity, frequency, basis)
    return float(coupon_dates(settlement, maturity, frequency)[0])


def _coupnum(settlement, maturity, frequency, basis=0):
    _schedule(settlement, maturity, frequency, basis)
    return float(coupons(settlement, maturity, frequency))


security("COUPDAYBS", "ddii?", _coupdaybs)
security("COUPDAYS", "ddii?", _coupdays)
security("COUPDAYSNC", "ddii?", _coupdaysnc)
security("COUPNCD", "ddii?", _coupncd)
security("COUPPCD", "ddii?", _couppcd)
security("COUPNUM", "ddii?", _coupnum)


# -- coupon bonds -----------------------------------------------------------------------------

# A bond's cash flows as the prices see them, one row per element: a first coupon at t0
# periods from settlement, weighted w0 (its share of a full coupon), `count` more at t0 + 1 …
# t0 + count, the redemption with the last, and the accrued interest A (in coupons) that the
# buyer pays the seller. price = R·x^−(t0+count) + c·(w0·x^−t0 + Σ x^−(t0+k)) − c·A, with
# c = 100·rate/frequency and x = 1 + yield/frequency.
_T0, _W0, _COUNT, _ACCRUED, _FREQUENCY, _SIMPLE = range(6)


def _regular(settlement, maturity, frequency, basis):
    """PRICE's schedule. One coupon left: Excel discounts it with simple interest (`simple`)."""
    _schedule(settlement, maturity, frequency, basis)
    n = coupons(settlement, maturity, frequency)
    e = coupon_days(settlement, maturity, frequency, basis)
    a = days_before(settlement, maturity, frequency, basis)
    dsc = e - a
    return (dsc / e, 1.0, float(n - 1), a / e, float(frequency), float(n == 1))


def _price(parts, rate, yld, redemption):
    t0, w0, count, accrued, frequency, simple = parts
    c = 100 * rate / frequency
    x = 1 + yld / frequency
    most = int(count.max().item()) if count.numel() else 0
    k = torch.arange(1, most + 1, dtype=t0.dtype, device=t0.device).reshape(-1, *[1] * t0.dim())
    later = torch.where(k <= count, torch.pow(x, -(t0 + k)), 0.0).sum(0) if most else 0.0
    compound = redemption * torch.pow(x, -(t0 + count)) + c * (w0 * torch.pow(x, -t0) + later)
    one = (redemption + c) / (1 + t0 * yld / frequency)  # t0 is DSC/E
    return torch.where(simple == 1, one, compound) - c * accrued


def _price_args(settlement, maturity, rate, yld, redemption, frequency, basis=0):
    need(rate >= 0 and yld >= 0 and redemption > 0)
    return _regular(settlement, maturity, frequency, basis)


security("PRICE", "ddnnnii?", _price_args, _price, continuous=(2, 3, 4))


def _solve(price_at, target, guess: float = 0.05) -> torch.Tensor:
    """The yield where price_at(yield) = target, element by element: Newton's method from the
    guess, to full precision (NaN where it finds none)."""
    with torch.no_grad():
        y = torch.full_like(target, guess)
        for _ in range(100):
            with torch.enable_grad():
                z = y.detach().requires_grad_(True)
                f = price_at(z) - target
                (slope,) = torch.autograd.grad(f.sum(), z)
            step = f.detach() / slope
            new = y - step
            new = torch.where(new <= -1, (y - 1) / 2, new)  # keep 1 + y/f above 0
            done = (new - y).abs() <= 1e-14 * torch.clamp(new.abs(), min=1.0)
            y = torch.where(torch.isfinite(new), new, y)
            if bool(done.all()):
                break
        settled = (price_at(y) - target).abs() <= 1e-9 * torch.clamp(target.abs(), min=1.0)
    return torch.where(settled, y, math.nan)


def _yield(parts, rate, pr, redemption):
    t0, w0, count, accrued, frequency, simple = parts

    def at(y):
        return _price(parts, rate.detach(), y, redemption.detach())

    root = implicit(_solve(at, pr.detach()), lambda y: _price(parts, rate, y, redemption) - pr)
    # one coupon left: the simple-interest yield, in closed form
    paid = pr / 100 + accrued * rate / frequency
    one = ((redemption / 100 + rate / frequency) - paid) / paid * frequency / t0
    return torch.where(simple == 1, one, root)


def _yield_args(settlement, maturity, rate, pr, redemption, frequency, basis=0):
    need(rate >= 0 and pr > 0 and redemption > 0)
    return _regular(settlement, maturity, frequency, basis)


security("YIELD", "ddnnnii?", _yield_args, _yield, continuous=(2, 3, 4))


def _duration_args(settlement, maturity, coupon, yld, frequency, basis=0):
    need(coupon >= 0 and yld >= 0)
    return _regular(settlement, maturity, frequency, basis)


def _duration(modified: bool):
    def formula(parts, coupon, yld):
        t0, _, count, _, frequency, _ = parts
        x = 1 + yld / frequency
        c = 100 * coupon / frequency
        most = int(count.max().item())
        k = torch.arange(0, most + 1, dtype=t0.dtype, device=t0.device)
        k = k.reshape(-1, *[1] * t0.dim())
        t = t0 + k
        flows = torch.where(k <= count, c * torch.pow(x, -t), 0.0)
        last = t0 + count
        redemption = 100 * torch.pow(x, -last)
        weighted = (flows * t).sum(0) + redemption * last
        d = weighted / (flows.sum(0) + redemption) / frequency
        return d / x if modified else d

    return formula


security("DURATION", "ddnnii?", _duration_args, _duration(False), continuous=(2, 3))
security("MDURATION", "ddnnii?", _duration_args, _duration(True), continuous=(2, 3))


# -- odd first and last periods ---------------------------------------------------------------


def _nonnegative(start: int, end: int, basis: int) -> float:
    return float(max(days(start, end, basis), 0))


def _count_periods(maturity: int, settlement: int, months: int) -> int:
    """Whole quasi-coupon periods from settlement to `maturity` (the first coupon), stepping
    forward from settlement as the end-of-month rule of `maturity` says."""
    y, m, d = dates.ymd(maturity)
    end_of_month = _last_of_month(maturity)
    if not end_of_month and m != 2 and 28 < d < dates.days_in_month(y, m):
        end_of_month = _last_of_month(settlement)
    start = change_month(settlement, 0, end_of_month)
    count = 1 if settlement < start else 0
    front = change_month(start, months, end_of_month)
    while front < maturity:
        count += 1
        front = change_month(front, months, end_of_month)
    return count


def _odd_first(settlement, maturity, issue, first, rate, yld, redemption, frequency, basis=0):
    _check(frequency, basis)
    need(maturity > first > settlement > issue)
    need(rate >= 0 and yld >= 0 and redemption > 0)
    months = 12 // frequency
    last = _last_of_month(maturity)
    # the first coupon must fall on maturity's schedule
    front = change_month(maturity, -months, last)
    while front > first:
        front = change_month(front, -months, last)
    need(front == first)
    e = coupon_days(settlement, first, frequency, basis)
    dfc = _nonnegative(issue, first, basis)
    if dfc < e:  # a short first period
        n = coupons(settlement, maturity, frequency)
        dsc = _nonnegative(settlement, first, basis)
        a = _nonnegative(issue, settlement, basis)
        return (dsc / e, dfc / e, float(n - 1), a / e, float(frequency), 0.0)
    # a long first period: its quasi-coupon periods, from the first coupon back to the issue
    nc = coupons(issue, first, frequency)
    late, dcnl, anl = first, 0.0, 0.0
    for index in range(nc, 0, -1):
        early = change_month(late, -months, False)
        nl = _nonnegative(early, late, basis) if basis == 1 else e
        dci = nl if index > 1 else _nonnegative(issue, late, basis)
        a = _nonnegative(max(issue, early), min(settlement, late), basis)
        dcnl, anl = dcnl + dci / nl, anl + a / nl
        late = early
    if basis in (2, 3):
        dsc = _nonnegative(settlement, coupon_dates(settlement, first, frequency)[1], basis)
    else:
        dsc = e - days(coupon_dates(settlement, first, frequency)[0], settlement, basis)
    nq = _count_periods(first, settlement, months)
    n = coupons(first, maturity, frequency)
    return (nq + dsc / e, dcnl, float(n), anl, float(frequency), 0.0)


def _oddfprice_args(settlement, maturity, issue, first, rate, yld, redemption, freq, basis=0):
    return _odd_first(settlement, maturity, issue, first, rate, yld, redemption, freq, basis)


def _oddfyield_args(settlement, maturity, issue, first, rate, pr, redemption, freq, basis=0):
    need(pr > 0)
    return _odd_first(settlement, maturity, issue, first, rate, 0.0, redemption, freq, basis)


def _oddfyield(parts, rate, pr, redemption):
    def at(y):
        return _price(parts, rate.detach(), y, redemption.detach())

    root = _solve(at, pr.detach(), 0.1)
    return implicit(root, lambda y: _price(parts, rate, y, redemption) - pr)


security("ODDFPRICE", "ddddnnnii?", _oddfprice_args, _price, continuous=(4, 5, 6))
security("ODDFYIELD", "ddddnnnii?", _oddfyield_args, _oddfyield, continuous=(4, 5, 6))


def _odd_last(settlement, maturity, last, rate, yld, redemption, frequency, basis=0):
    """ODDLPRICE's and ODDLYIELD's factors: over the quasi-coupon periods from the last
    interest date to maturity, Σ days counted / period (DC), accrued (A) and to come (DSC)."""
    _check(frequency, basis)
    need(maturity > settlement > last)
    need(rate >= 0 and yld >= 0 and redemption > 0)
    months = 12 // frequency
    nc = coupons(last, maturity, frequency)

    def counted(start, end):
        if basis == 0:
            return float(max(days360_us(start, end, both=True), 0))
        return _nonnegative(start, end, basis)

    early, dc, accrued, coming = last, 0.0, 0.0, 0.0
    for index in range(1, nc + 1):
        late = change_month(early, months, False)
        nl = counted(early, late)
        dci = nl if index < nc else counted(early, maturity)
        if late < settlement:
            a = dci
        elif early < settlement:
            a = _nonnegative(early, settlement, basis)
        else:
            a = 0.0
        dsc = _nonnegative(max(settlement, early), min(maturity, late), basis)
        dc, accrued, coming = dc + dci / nl, accrued + a / nl, coming + dsc / nl
        early = late
    return (dc, accrued, coming, float(frequency))


def _oddlprice(parts, rate, yld, redemption):
    dc, accrued, coming, frequency = parts
    c = 100 * rate / frequency
    return (dc * c + redemption) / (coming * yld / frequency + 1) - accrued * c


def _oddlyield(parts, rate, pr, redemption):
    dc, accrued, coming, frequency = parts
    c = 100 * rate / frequency
    paid = accrued * c + pr
    return (dc * c + redemption - paid) / paid * frequency / coming


def _oddlyield_args(settlement, maturity, last, rate, pr, redemption, frequency, basis=0):
    need(pr > 0)
    return _odd_last(settlement, maturity, last, rate, 0.0, redemption, frequency, basis)


security("ODDLPRICE", "dddnnnii?", _odd_last, _oddlprice, continuous=(3, 4, 5))
security("ODDLYIELD", "dddnnnii?", _oddlyield_args, _oddlyield, continuous=(3, 4, 5))


# -- paid at maturity, and sold at a discount -------------------------------------------------


def _span(settlement, maturity, basis):
    """(days from settlement to maturity, days in the year) as the basis counts them."""
    need(0 <= basis <= 4)
    need(settlement < maturity)
    return float(days(settlement, maturity, basis)), year_days(settlement, maturity, basis)


def _pricedisc_args(settlement, maturity, discount, redemption, basis=0):
    need(discount > 0 and redemption > 0)
    return _span(settlement, maturity, basis)


def _yielddisc_args(settlement, maturity, pr, redemption, basis=0):
    need(pr > 0 and redemption > 0)
    return _span(settlement, maturity, basis)


def _received_args(settlement, maturity, investment, discount, basis=0):
    need(investment > 0 and discount > 0)
    dim, b = _span(settlement, maturity, basis)
    need(discount * dim / b < 1)
    return dim, b


security(
    "PRICEDISC",
    "ddnni?",
    _pricedisc_args,
    lambda p, discount, redemption: redemption - discount * redemption * p[0] / p[1],
    continuous=(2, 3),
)
security(
    "YIELDDISC",
    "ddnni?",
    _yielddisc_args,
    lambda p, pr, redemption: (redemption - pr) / pr * p[1] / p[0],
    continuous=(2, 3),
)
security(
    "RECEIVED",
    "ddnni?",
    _received_args,
    lambda p, investment, discount: investment / (1 - discount * p[0] / p[1]),
    continuous=(2, 3),
)


def _maturity_args(settlement, maturity, issue, rate, yld, basis=0):
    """PRICEMAT's and YIELDMAT's factors: the days in the year, issue to maturity, issue to
    settlement, and settlement to maturity."""
    need(0 <= basis <= 4)
    need(issue < settlement < maturity and rate >= 0 and yld >= 0)
    b = year_days(issue, settlement, basis)
    dim, a = float(days(issue, maturity, basis)), float(days(issue, settlement, basis))
    return b, dim, a, dim - a


def _yieldmat_args(settlement, maturity, issue, rate, pr, basis=0):
    need(pr > 0)
    return _maturity_args(settlement, maturity, issue, rate, 0.0, basis)


def _pricemat(p, rate, yld):
    b, dim, a, dsm = p
    return (100 + dim / b * rate * 100) / (1 + dsm / b * yld) - a / b * rate * 100


def _yieldmat(p, rate, pr):
    b, dim, a, dsm = p
    paid = pr / 100 + a / b * rate
    return (dim / b * rate + 1 - paid) / paid * b / dsm


security("PRICEMAT", "dddnni?", _maturity_args, _pricemat, continuous=(3, 4))
security("YIELDMAT", "dddnni?", _yieldmat_args, _yieldmat, continuous=(3, 4))


# -- Treasury bills ---------------------------------------------------------------------------


def _bill(settlement, maturity):
    """Days from settlement to a maturity at most a year later."""
    need(settlement < maturity)
    y, m, d = dates.ymd(settlement)
    year_on = dates.serial(y + 1, m, min(d, dates.days_in_month(y + 1, m)))
    need(maturity <= year_on)
    return float(maturity - settlement)


def _tbillprice_args(settlement, maturity, discount):
    need(discount > 0)
    dsm = _bill(settlement, maturity)
    need(1 - discount * dsm / 360 > 0)
    return (dsm,)


def _tbillyield_args(settlement, maturity, pr):
    need(pr > 0)
    return (_bill(settlement, maturity),)


def _tbilleq_args(settlement, maturity, discount):
    need(discount > 0)
    dsm = _bill(settlement, maturity)
    if dsm > 182:
        price = (100 - discount * 100 * dsm / 360) / 100
        year = 366.0 if dsm == 366 else 365.0
        root = (dsm / year) ** 2 - (2 * dsm / year - 1) * (1 - 1 / price)
        need(root >= 0 and 2 * dsm / year - 1 != 0)
    return (dsm,)


def _tbilleq(p, discount):
    (dsm,) = p
    short = 365 * discount / (360 - discount * dsm)
    year = torch.where(dsm == 366, 366.0, 365.0)
    price = (100 - discount * 100 * dsm / 360) / 100
    root = (dsm / year) ** 2 - (2 * dsm / year - 1) * (1 - 1 / price)
    long = 2 * (torch.sqrt(torch.clamp(root, min=0.0)) - dsm / year) / (2 * dsm / year - 1)
    return torch.where(dsm > 182, long, short)


security(
    "TBILLPRICE",
    "ddn",
    _tbillprice_args,
    lambda p, discount: 100 * (1 - discount * p[0] / 360),
    continuous=(2,),
)
security(
    "TBILLYIELD",
    "ddn",
    _tbillyield_args,
    lambda p, pr: (100 - pr) / pr * 360 / p[0],
    continuous=(2,),
)
security("TBILLEQ", "ddn", _tbilleq_args, _tbilleq, continuous=(2,))


# -- depreciation: the French AMORLINC and AMORDEGRC, and VDB ----------------------------------


def _first_depreciation(cost, purchased, first, salvage, rate, basis):
    """The first period's depreciation (prorated from purchase to the end of the first
    period; 29 February counts as the 28th under actual/actual and actual/365), and whether
    it adds a period to the asset's life."""

    def feb_28(day):
        y, m, d = dates.ymd(day)
        if basis in (1, 3) and dates.days_in_month(y, 2) == 29 and m == 2 and d >= 28:
            return dates.serial(y, 2, 28)
        return day

    if basis == 1:
        y = dates.ymd(purchased)[0]
        in_year = 366.0 if dates.days_in_month(y, 2) == 29 else 365.0
    else:
        in_year = year_days(purchased, purchased, basis)
    length = days(feb_28(purchased), feb_28(first), basis)
    depreciation = length / in_year * rate * cost
    extra = depreciation != 0
    if depreciation == 0:
        depreciation = cost * rate
    return min(depreciation, cost - salvage), extra


def _amor_args(cost, purchased, first, salvage, period, rate, basis=0):
    need(0 <= basis <= 4 and basis != 2)
    need(cost >= 0 and salvage >= 0 and salvage < cost and period >= 0 and rate > 0)
    need(purchased < first)


def _amorlinc(cost, purchased, first, salvage, period, rate, basis=0):
    """Straight-line depreciation by the French system: the first period prorated."""
    _amor_args(cost, purchased, first, salvage, period, rate, basis)
    life = math.ceil(1 / rate)
    if cost == salvage or period > life:
        return 0.0
    depreciation, _ = _first_depreciation(cost, purchased, first, salvage, rate, basis)
    if period == 0:
        return depreciation
    available = cost - salvage - depreciation
    full = rate * cost
    for _ in range(int(period)):
        full = min(full, available)
        available = max(available - full, 0.0)
    return full


def _excel_round(x: float) -> float:
    """Rounded to a whole number as Excel's AMORDEGRC rounds (first to 13 decimals)."""
    k = round(x, 13)
    return float(math.floor(abs(k) + 0.5) * (1 if k >= 0 else -1))


def _amordegrc(cost, purchased, first, salvage, period, rate, basis=0):
    """Degressive depreciation by the French system: the rate times a coefficient of the
    asset's life (1.5, 2 or 2.5), the first period prorated, the rest of the value spread
    over the last two periods; results rounded to whole units."""
    _amor_args(cost, purchased, first, salvage, period, rate, basis)
    life = math.ceil(1 / rate)
    need(not (0 <= 1 / rate <= 3) and not (4 <= 1 / rate <= 5))
    if cost == salvage or period > life:
        return 0.0
    coefficient = 1.5 if 3 <= life <= 4 else 2.0 if 5 <= life <= 6 else 2.5 if life > 6 else 1.0
    rate *= coefficient
    depreciation, extra = _first_depreciation(cost, purchased, first, salvage, rate, basis)
    depreciation = _excel_round(depreciation)
    if period == 0:
        return depreciation
    life += 1 if extra else 0
    remaining, counted, out = cost - depreciation, 1, 0.0
    while counted <= period:
        counted += 1
        last_two = abs(life - counted - 2) < 1e-4
        step = remaining * 0.5 if last_two else rate * remaining
        if last_two:
            rate = 1.0
        out = max(remaining - salvage, 0.0) if remaining < salvage else step
        remaining -= out
    return _excel_round(out)


security("AMORLINC", "nddnnni?", _amorlinc)
security("AMORDEGRC", "nddnnni?", _amordegrc)


def _ratio(a: float, b: float) -> float:
    """a / b as IEEE arithmetic has it (±inf, or NaN for 0/0), as Excel's VDB meets it."""
    if b != 0:
        return a / b
    return math.nan if a == 0 else math.copysign(math.inf, a)


def _total_depreciation(cost, salvage, life, period, factor, straight):
    """Declining-balance depreciation from the start to `period` (a fraction of the last
    period counted in part), switching to straight line where that is more (`straight`)."""
    whole, frac = int(period), period - int(period)

    def declining(total):
        return min((cost - total) * (factor / life), cost - salvage - total)

    def line(total, per):
        return _ratio(cost - total - salvage, life - per)

    total = 0.0
    per = 0
    while True:
        d, s = declining(total), line(total, per)
        new_total = total + (s if straight and d < s else d)
        if whole == 0:
            return new_total * frac
        if per == whole - 1:
            d, s = declining(new_total), line(new_total, per + 1)
            if straight and d < s:
                following = 0.0 if whole == int(life) else s
            else:
                following = d
            return new_total + following * frac
        total, per = new_total, per + 1


def _vdb(cost, salvage, life, start, end, factor=2.0, no_switch=False):
    need(cost >= 0 and salvage >= 0 and life > 0 and factor > 0)
    need(0 <= start <= end <= life)
    need(not (not no_switch and life == start == end))
    straight = not no_switch
    return _total_depreciation(cost, salvage, life, end, factor, straight) - _total_depreciation(
        cost, salvage, life, start, factor, straight
    )


@excel("VDB", args="nnnnnn?b?", gradient=False)
def f_vdb(ctx, args):
    """VDB(cost, salvage, life, start_period, end_period, [factor=2], [no_switch=FALSE])."""
    shape = array_shape(*args)
    given = [elements(v, "e", shape)[0] for v in args]
    out = np.zeros(shape)
    errs = np.full(shape, None, dtype=object)
    for idx in np.ndindex(*shape):
        try:
            values = []
            for i, col in enumerate(given):
                x = col[idx]
                omitted = isinstance(args[i], Omitted)
                if i == 5:
                    values.append(2.0 if omitted else _convert("n", x))
                elif i == 6:
                    values.append(False if omitted else _logical(x))
                else:
                    values.append(_convert("n", x))
            out[idx] = _vdb(*values)
        except Invalid as e:
            errs[idx] = e.error.code
    y = torch.as_tensor(out, dtype=ctx.dtype, device=ctx.device)
    return with_errors(y, strict_num(ctx, y, errs if (errs != None).any() else None))  # noqa: E711


def _logical(x) -> bool:
    if isinstance(x, Error):
        raise Invalid(x)
    if isinstance(x, str):
        t = x.upper()
        need(t in ("TRUE", "FALSE"), VALUE)
        return t == "TRUE"
    return bool(x)


# -- dollar fractions -------------------------------------------------------------------------


def _dollar(value: float, fraction: float, decimal: bool) -> float:
    need(fraction >= 0)
    base = math.floor(fraction)
    need(base >= 1, DIV0)
    whole = math.floor(value) if value > 0 else math.ceil(value)
    rest = value - whole
    digits = 10.0 ** math.ceil(math.log10(base))
    return rest * digits / base + whole if decimal else rest * base / digits + whole


security("DOLLARDE", "nn", lambda value, fraction: _dollar(value, fraction, True))
security("DOLLARFR", "nn", lambda value, fraction: _dollar(value, fraction, False))
