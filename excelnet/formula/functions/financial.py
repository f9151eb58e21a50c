"""FINANCIAL: Excel's financial functions.

- Time value of money, all from one equation, pv·(1+r)^n + pmt·(1+r·type)·((1+r)^n − 1)/r + fv
  = 0 (pv + pmt·n + fv = 0 at r = 0): PMT, PV, FV, NPER, RATE, IPMT, PPMT, CUMIPMT, CUMPRINC,
  and ISPMT's straight-line loan.
- Rates: EFFECT, NOMINAL, RRI, PDURATION, FVSCHEDULE.
- Cash flows: NPV, XNPV, IRR, XIRR, MIRR.
- Depreciation: SLN, SYD, DB, DDB.
- Securities, with the day counts of functions/date.py: ACCRINT, ACCRINTM, DISC, INTRATE.

Functions continuous in their numbers compute in torch and pass gradients. RATE, IRR and XIRR
find their root by Newton's method on every element at once, from Excel's guess (10%) to
Excel's stopping rule (IRR: a step below 1e-7 within 20 tries; XIRR: 1e-8 within 100; RATE:
1e-7 within 50), else #NUM!; then they refine it to full precision. Their gradient is the
implicit function theorem's, d rate/d x = −(∂f/∂x)/(∂f/∂r) at the root.

The Analysis ToolPak's functions (EFFECT, NOMINAL, CUMIPMT, CUMPRINC and the securities) take
no TRUE or FALSE (#VALUE!), as in Excel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from excelnet.formula import dates
from excelnet.formula.functions.date import (
    add_months,
    days360,
    days360_us,
    whole_day,
    year_fraction,
)
from excelnet.formula.functions.distributions import Distribution
from excelnet.formula.functions.kit import (
    cellwise,
    done,
    is_array,
    numbers,
    power,
    row_errors,
)
from excelnet.formula.functions.registry import NEWER, registrar
from excelnet.formula.numfmt import parse_number
from excelnet.formula.parse import Error, FormulaError
from excelnet.formula.values import (
    BLANK,
    BOOL,
    NUM,
    TEXT,
    Omitted,
    V,
    errors_of,
    first_error,
    to_number,
    with_errors,
)

excel = registrar("FINANCIAL")

NUM_ERROR, VALUE_ERROR = Error("#NUM!"), Error("#VALUE!")


# -- arguments ---------------------------------------------------------------------------------


def no_logicals(v: V) -> V:
    """TRUE and FALSE in an argument of an Analysis ToolPak function: #VALUE!."""
    if v.kind is None:
        return v
    kinds = v.kinds()
    if not (kinds == BOOL).any():
        return v
    errs = first_error(v.shape, errors_of(v), np.where(kinds == BOOL, "#VALUE!", None))
    return with_errors(v.x, errs, v.kind, v.text)


def number_function(
    *names, spec, compute, safe, domain=None, defaults=(), grad=True, logicals=True
):
    """Register a function of single numbers: a Distribution (Excel's coercions, the first error
    in argument order, `domain` errors, arrays and copied-down blocks element by element)."""
    fn = Distribution(names[0].removeprefix(NEWER), spec, compute, domain, defaults, grad, safe)
    if not logicals:
        inner = fn

        def fn(ctx, args):
            return inner(ctx, [no_logicals(v) for v in args])

    excel(*names, args=spec, gradient=grad)(fn)


def single(v: V, name: str) -> tuple[torch.Tensor, np.ndarray | None]:
    """An argument that must be one number per block row (a rate, a guess), and its errors."""
    if v.shape[1:] != (1, 1):
        raise FormulaError(f"{name} takes a single value here, not a range")
    return to_number(v)


def as_rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


# -- time value of money -----------------------------------------------------------------------


def _due(t: torch.Tensor) -> torch.Tensor:
    """1 where payments fall at the start of each period (type ≠ 0), else 0."""
    return (t != 0).to(t.dtype)


def compound(r: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1+r)^n and the annuity factor ((1+r)^n − 1)/r, which is n at r = 0 (with its slope
    n(n−1)/2 there, so that gradients hold at r = 0 too)."""
    flat = r == 0
    q = torch.pow(1 + r, n)
    annuity = (q - 1) / torch.where(flat, 1.0, r)
    return q, torch.where(flat, n + n * (n - 1) / 2 * r, annuity)


def _whole(x: torch.Tensor) -> torch.Tensor:
    return x == torch.round(x)


def _growth_domain(r: torch.Tensor, n: torch.Tensor) -> list:
    """(1+r)^n: 0 to a negative power is a division by zero; a negative base needs a whole n."""
    base = 1 + r
    return [((base == 0) & (n < 0), "#DIV/0!"), ((base < 0) & ~_whole(n), "#NUM!")]


def _pmt(r, n, pv, fv, t):
    q, a = compound(r, n)
    return -(fv + pv * q) / ((1 + r * _due(t)) * a)


def _pv(r, n, pmt, fv, t):
    q, a = compound(r, n)
    return -(fv + pmt * (1 + r * _due(t)) * a) / q


def _fv(r, n, pmt, pv, t):
    q, a = compound(r, n)
    return -(pv * q + pmt * (1 + r * _due(t)) * a)


def _nper(r, pmt, pv, fv, t):
    due = _due(t)
    flat = r == 0
    rs = torch.where(flat, 0.1, r)  # each branch computed where it is finite
    ps, pvs, fvs = torch.where(flat, -1.0, pmt), torch.where(flat, 1.0, pv), fv * ~flat
    k = ps * (1 + rs * due)
    general = torch.log((k - fvs * rs) / (k + pvs * rs)) / torch.log(1 + rs)
    p0 = torch.where(flat, pmt, 1.0)
    alpha, beta = (p0 * due - fv) / p0, (p0 * due + pv) / p0
    at_zero = (alpha - beta) * (1 + (1 - alpha - beta) / 2 * r)  # −(pv+fv)/pmt, and its slope
    return torch.where(flat, at_zero, general)


def _nper_domain(r, pmt, pv, fv, t):
    k = pmt * (1 + r * _due(t))
    ratio = (k - fv * r) / (k + pv * r)
    bad = (r != 0) & ((r <= -1) | ~(ratio > 0) | ~torch.isfinite(ratio))
    return [((r == 0) & (pmt == 0), "#DIV/0!"), (bad, "#NUM!")]


TVM_SAFE = (0.1, 1.0, -1.0, 1.0, 0.0)

number_function(
    "PMT",
    spec="nnnn?n?",
    compute=_pmt,
    defaults=(0.0, 0.0),
    safe=TVM_SAFE,
    domain=lambda r, n, pv, fv, t: [*_growth_domain(r, n), (n == 0, "#NUM!")],
)
number_function(
    "PV",
    spec="nnnn?n?",
    compute=_pv,
    defaults=(0.0, 0.0),
    safe=TVM_SAFE,
    domain=lambda r, n, pmt, fv, t: [*_growth_domain(r, n), ((r == -1) & (n > 0), "#DIV/0!")],
)
number_function(
    "FV",
    spec="nnnn?n?",
    compute=_fv,
    defaults=(0.0, 0.0),
    safe=TVM_SAFE,
    domain=lambda r, n, pmt, pv, t: _growth_domain(r, n),
)
number_function(
    "NPER",
    spec="nnnn?n?",
    compute=_nper,
    defaults=(0.0, 0.0),
    safe=(0.1, -1.0, 1.0, 0.0, 0.0),
    domain=_nper_domain,
)


def _principal(r, per, n, pv, fv, t):
    """(PPMT, PMT): the principal repaid in period `per` and the payment. The principal grows by
    1+r a period from g = −r·(pv+fv)/((1+r)^n − 1) — a form without the cancellation of
    PMT − IPMT, as exact as Excel's — except that a first payment due at the start is all
    principal."""
    due = _due(t)
    pmt = _pmt(r, n, pv, fv, t)
    _, a = compound(r, n)
    later = -(pv + fv) / a * torch.pow(1 + r, per - 1 - due)
    return torch.where((due == 1) & (per == 1), pmt, later), pmt


def _period_domain(r, per, n, pv, fv, t):
    return [
        ((per < 1) | (per >= n + 1), "#NUM!"),
        *_growth_domain(r, n),
        *_growth_domain(r, per - 1 - _due(t)),
    ]


def _ipmt(*args):
    ppmt, pmt = _principal(*args)
    return pmt - ppmt


number_function(
    "PPMT",
    spec="nnnnn?n?",
    compute=lambda *a: _principal(*a)[0],
    defaults=(0.0, 0.0),
    safe=(0.1, 1.0, 1.0, 1.0, 0.0, 0.0),
    domain=_period_domain,
)
number_function(
    "IPMT",
    spec="nnnnn?n?",
    compute=_ipmt,
    defaults=(0.0, 0.0),
    safe=(0.1, 1.0, 1.0, 1.0, 0.0, 0.0),
    domain=_period_domain,
)
number_function(
    "ISPMT",
    spec="nnnn",
    compute=lambda r, per, n, pv: pv * r * (per / n - 1),
    safe=(0.1, 1.0, 1.0, 1.0),
    domain=lambda r, per, n, pv: [(n == 0, "#DIV/0!")],
)


def _cumprinc(r, n, pv, start, end, t):
    """The principal repaid in periods ⌈start⌉ … ⌊end⌋: PPMT's geometric growth summed."""
    s, e = torch.ceil(start), torch.trunc(end)
    due = _due(t)
    pmt = _pmt(r, n, pv, torch.zeros_like(pv), t)
    _, a = compound(r, n)
    growth = 1 + r
    first = torch.where(due == 1, torch.clamp(s, min=2), s)  # a first payment at the start ...
    total = -pv / a * (torch.pow(growth, e - due) - torch.pow(growth, first - 1 - due)) / r
    total = total + torch.where((due == 1) & (s <= 1), pmt, 0.0)  # ... is all principal
    return torch.where(e >= s, total, 0.0), pmt, torch.clamp(e - s + 1, min=0)


def _cum_domain(r, n, pv, start, end, t):
    bad = (r <= 0) | (n <= 0) | (pv <= 0) | (start < 1) | (end < start) | (end > n)
    return [(bad | ((t != 0) & (t != 1)), "#NUM!")]


def _cumipmt(*args):
    principal, pmt, count = _cumprinc(*args)
    return count * pmt - principal


CUM_SAFE = (0.1, 1.0, 1.0, 1.0, 1.0, 0.0)
number_function(
    "CUMPRINC",
    spec="nnnnnn",
    compute=lambda *a: _cumprinc(*a)[0],
    safe=CUM_SAFE,
    domain=_cum_domain,
    logicals=False,
)
number_function(
    "CUMIPMT",
    spec="nnnnnn",
    compute=_cumipmt,
    safe=CUM_SAFE,
    domain=_cum_domain,
    logicals=False,
)


# -- rates -------------------------------------------------------------------------------------


def _periods_domain(rate, npery):
    return [((rate <= 0) | (torch.trunc(npery) < 1), "#NUM!")]


def _effect(nominal, npery):
    n = torch.trunc(npery)
    return torch.pow(1 + nominal / n, n) - 1


def _nominal(effect, npery):
    n = torch.trunc(npery)
    return n * (torch.pow(1 + effect, 1 / n) - 1)


number_function(
    "EFFECT",
    spec="nn",
    compute=_effect,
    safe=(0.1, 1.0),
    domain=_periods_domain,
    logicals=False,
)
number_function(
    "NOMINAL",
    spec="nn",
    compute=_nominal,
    safe=(0.1, 1.0),
    domain=_periods_domain,
    logicals=False,
)
number_function(
    "_xlfn.RRI",
    spec="nnn",
    safe=(1.0, 1.0, 1.0),
    compute=lambda n, pv, fv: power(fv / pv, 1 / n) - 1,
    domain=lambda n, pv, fv: [((n <= 0) | (pv == 0), "#NUM!")],
)
number_function(
    "_xlfn.PDURATION",
    spec="nnn",
    safe=(0.1, 1.0, 1.0),
    compute=lambda r, pv, fv: (torch.log(fv) - torch.log(pv)) / torch.log(1 + r),
    domain=lambda r, pv, fv: [((r <= 0) | (pv <= 0) | (fv <= 0), "#NUM!")],
)


def cash_flows(v: V, code: str, blank: float | str) -> tuple[torch.Tensor, np.ndarray | None]:
    """Every element of a range or array as a number, for the functions that skip nothing:
    text and logicals are the error `code`, a blank is `blank` (a number or an error code). A
    single value typed into the call converts as arithmetic does. Returns the numbers and each
    block row's first error."""
    if v.numeric():
        return v.x, None
    if not is_array(v):
        return to_number(v)
    kinds = v.kinds()
    wrong = np.where((kinds == BOOL) | (kinds == TEXT), code, None)
    if isinstance(blank, str):
        wrong = np.where(kinds == BLANK, blank, wrong)
    errs = first_error(v.shape, errors_of(v), wrong)
    number = torch.as_tensor(kinds == NUM, device=v.x.device)
    x = torch.where(number, v.x, 0.0 if isinstance(blank, str) else blank)
    return x, row_errors(with_errors(x, errs))


@excel("FVSCHEDULE", args="nr")
def f_fvschedule(ctx, args):
    """FVSCHEDULE(principal, schedule): principal · Π(1 + rate); blanks are 0%."""
    principal, perr = to_number(args[0])
    rates, errs = cash_flows(args[1], "#VALUE!", 0.0)
    growth = torch.prod(as_rows(1 + rates), dim=1).reshape(-1, 1, 1)
    return done(ctx, principal * growth, [perr, errs])


# -- cash flows --------------------------------------------------------------------------------


@excel("NPV", args="nr{1,254}")
def f_npv(ctx, args):
    """NPV(rate, value1, …): Σ value_i / (1+rate)^i over the numbers in order (text, logicals
    and blanks in ranges are skipped and take no period)."""
    rate, rate_err = single(args[0], "NPV")
    rate = as_rows(rate)
    bad = rate == -1
    discount = 1 + torch.where(bad, 0.0, rate)
    total, offset, errs = 0.0, 0.0, [rate_err]
    for v in args[1:]:
        x, mask, e = numbers(v)
        counted = torch.ones_like(as_rows(x)) if mask is None else as_rows(mask).to(x.dtype)
        periods = offset + torch.cumsum(counted, dim=1)
        total = total + (as_rows(x) * counted * torch.pow(discount, -periods)).sum(1, keepdim=True)
        offset = periods[:, -1:]
        errs.append(e)
    out = torch.where(bad, math.nan, total).reshape(-1, 1, 1)
    if ctx.strict:
        errs.append(np.where(bad.cpu().numpy().reshape(-1, 1, 1), "#DIV/0!", None))
    return done(ctx, out, errs)


def newton(
    step: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    iterations: int,
    tol: float,
    moved: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    strict: bool,
    polish: int = 3,
) -> torch.Tensor:
    """Newton's method on every element at once, x ← x − step(x) (a step may be NaN where the
    new x leaves the domain). An element converges at its first move (`moved(old, new)`) below
    `tol` within `iterations` steps, as Excel's RATE, IRR and XIRR stop; it then takes `polish`
    more steps to full precision. The others end NaN (#NUM!). No device syncs unless `strict`,
    where it stops once every element is settled."""
    settled = torch.zeros_like(x, dtype=torch.bool)
    age = torch.zeros_like(x)
    for k in range(iterations + polish):
        new = x - step(x)
        finite = torch.isfinite(new)
        newly = ~settled & finite & (moved(x, new) < tol) if k < iterations else None
        moving = ~settled | (age < polish)
        x = torch.where(moving & (finite | ~settled), new, x)
        age = age + settled.to(age.dtype)
        if newly is not None:
            settled = settled | newly
        if strict and k % 4 == 3:
            finished = (settled & (age >= polish)) | (~settled & ~torch.isfinite(x))
            if bool(finished.all()):
                break
    return torch.where(settled, x, math.nan)


def implicit(root: torch.Tensor, f: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`root` (found without gradients), carrying the gradient of the implicit function theorem:
    f(root, inputs) = 0 gives d root = −∂f/∂inputs / ∂f/∂root. `f` computes f of the inputs
    that carry gradients at a given root."""
    found = torch.isfinite(root)
    r = torch.where(found, root, 0.0).detach().requires_grad_(True)  # no root: any finite r
    with torch.enable_grad():
        value = f(r)
        (slope,) = torch.autograd.grad(value.sum(), r, retain_graph=True)
    ok = found & torch.isfinite(slope) & (slope != 0)
    step = torch.where(ok, value / torch.where(ok, slope, 1.0), 0.0)
    return root - (step - step.detach())


def _guess(ctx, args: list[V], i: int, like: torch.Tensor, name: str):
    """The optional guess (10%) per block row, and its errors: −100% or below is #VALUE!."""
    if len(args) <= i or isinstance(args[i], Omitted):
        return torch.full((1, 1), 0.1, dtype=like.dtype, device=like.device), None
    g, errs = single(args[i], name)
    g = as_rows(g).detach()
    if ctx.strict:
        bad = (g <= -1).cpu().numpy().reshape(-1, 1, 1)
        errs = first_error(bad.shape, errs, np.where(bad, "#VALUE!", None))
    return torch.where(g > -1, g, math.nan), errs


def _both_signs(x: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    return ((x > 0) & counted).any(1, keepdim=True) & ((x < 0) & counted).any(1, keepdim=True)


@excel("IRR", args="rn?")
def f_irr(ctx, args):
    """IRR(values, [guess]): the rate r where Σ value_i/(1+r)^i = 0 (numbers only; text,
    logicals and blanks in ranges are skipped). Newton's method from the guess on the
    polynomial in v = 1/(1+r), which keeps r above −100%."""
    x, mask, errs = numbers(args[0])
    x = as_rows(x)
    counted = torch.ones_like(x, dtype=torch.bool) if mask is None else as_rows(mask)
    k = torch.cumsum(counted.to(x.dtype), dim=1) - 1  # each number's period
    c = torch.where(counted, x, 0.0)
    guess, gerr = _guess(ctx, args, 1, x, "IRR")
    cd = c.detach()

    def step(v):
        p = (cd * torch.pow(v, k)).sum(1, keepdim=True)
        dp = (cd * k * torch.pow(v, k - 1)).sum(1, keepdim=True)
        new = v - p / dp
        return torch.where(new > 0, p / dp, math.nan)

    with torch.no_grad():
        v0 = 1 / (1 + guess) * torch.ones_like(c[:, :1])
        v = newton(step, v0, 20, 1e-7, lambda a, b: (1 / a - 1 / b).abs(), ctx.strict)
        r = torch.where(_both_signs(cd, counted), 1 / v - 1, math.nan)
    if c.requires_grad:
        r = implicit(r, lambda r: (c * torch.pow(1 + r, -k)).sum(1, keepdim=True))
    return done(ctx, r.reshape(-1, 1, 1), [errs, gerr])


def _dated(ctx, values: V, when: V, code: str, blank: float | str):
    """XNPV's and XIRR's cash flows and their whole days since the first date: (values, days,
    per-row errors); the checks Excel makes: as many dates as values, each a valid date, none
    before the first."""
    x, xerr = cash_flows(values, code, blank)
    d, derr = cash_flows(when, "#VALUE!", blank)
    x, d = as_rows(x), torch.floor(as_rows(d.detach()))
    errs = [xerr, derr]
    if x.shape[1] != d.shape[1]:
        wrong = torch.ones((max(x.shape[0], d.shape[0]), 1), dtype=torch.bool)
        days = torch.zeros(wrong.shape[0], x.shape[1], dtype=x.dtype, device=x.device)
    else:
        wrong = ((d < 0) | (d > dates.last()) | (d < d[:, :1])).any(1, keepdim=True)
        days = d - d[:, :1]
    if ctx.strict:
        errs.append(np.where(wrong.cpu().numpy().reshape(-1, 1, 1), "#NUM!", None))
    return x, days.to(x.dtype), wrong, errs


@excel("XNPV", args="nrr")
def f_xnpv(ctx, args):
    """XNPV(rate, values, dates): Σ value_i / (1+rate)^((date_i − date_1)/365), dates taken as
    whole days; every value must be a number, and the rate above 0 (as in Excel)."""
    rate, rate_err = single(args[0], "XNPV")
    x, days, wrong, errs = _dated(ctx, args[1], args[2], "#NUM!", "#NUM!")
    rate = as_rows(rate)
    bad = wrong | (rate <= 0)
    base = 1 + torch.where(bad, 1.0, rate)
    out = (x * torch.pow(base, -days / 365)).sum(1, keepdim=True)
    out = torch.where(bad, math.nan, out).reshape(-1, 1, 1)
    if ctx.strict:
        errs.append(np.where((rate <= 0).cpu().numpy().reshape(-1, 1, 1), "#NUM!", None))
    return done(ctx, out, [rate_err, *errs])


@excel("XIRR", args="rrn?")
def f_xirr(ctx, args):
    """XIRR(values, dates, [guess]): the rate where XNPV is 0 (blanks count as 0; text and
    logicals are #VALUE!). Newton's method on u = ln(1+r), which keeps r above −100%, each step
    at most 1 (far from the root XNPV is nearly flat in u), at most 100 steps, to a step below
    1e-8 as Excel documents; a root that rounds to −100% is #NUM!."""
    x, days, wrong, errs = _dated(ctx, args[0], args[1], "#VALUE!", 0.0)
    guess, gerr = _guess(ctx, args, 2, x, "XIRR")
    t = days / 365
    xd = x.detach()

    def step(u):
        e = torch.exp(-t * u) * xd
        return torch.clamp(e.sum(1, keepdim=True) / -(t * e).sum(1, keepdim=True), -1.0, 1.0)

    counted = torch.ones_like(xd, dtype=torch.bool)
    with torch.no_grad():
        u0 = torch.log1p(guess) * torch.ones_like(xd[:, :1])
        u = newton(step, u0, 100, 1e-8, lambda a, b: (a - b).abs(), ctx.strict)
        r = torch.expm1(u)
        r = torch.where(_both_signs(xd, counted) & ~wrong & (r > -1), r, math.nan)
    if x.requires_grad:
        r = implicit(r, lambda r: (x * torch.pow(1 + r, -t)).sum(1, keepdim=True))
    return done(ctx, r.reshape(-1, 1, 1), [*errs, gerr])


@excel("MIRR", args="rnn")
def f_mirr(ctx, args):
    """MIRR(values, finance_rate, reinvest_rate): (−FV of the inflows at the reinvestment rate
    / PV of the outflows at the finance rate)^(1/(n−1)) − 1, over the numbers in order (text,
    logicals and blanks in ranges are skipped)."""
    x, mask, errs = numbers(args[0])
    finance, ferr = single(args[1], "MIRR")
    reinvest, rerr = single(args[2], "MIRR")
    x = as_rows(x)
    counted = torch.ones_like(x) if mask is None else as_rows(mask).to(x.dtype)
    k = torch.cumsum(counted, dim=1) - 1
    n = counted.sum(1, keepdim=True)
    c = x * counted
    outflows = torch.where(c < 0, c, 0.0)
    inflows = torch.where(c > 0, c, 0.0)
    # each flow's own power only (a finance rate of −100% leaves a first outflow finite)
    pv = (outflows * torch.pow(1 + as_rows(finance), torch.where(c < 0, -k, 0.0))).sum(1, True)
    fv = (inflows * torch.pow(1 + as_rows(reinvest), torch.where(c > 0, n - 1 - k, 0.0))).sum(
        1, True
    )
    bad = (pv == 0) | (n < 2)
    ratio = -fv / torch.where(bad, -1.0, pv)
    out = torch.where(bad, math.nan, power(ratio, 1 / torch.where(bad, 2.0, n - 1)) - 1)
    errs = [errs, ferr, rerr]
    if ctx.strict:
        errs.append(np.where(bad.cpu().numpy().reshape(-1, 1, 1), "#DIV/0!", None))
    return done(ctx, out.reshape(-1, 1, 1), errs)


# -- RATE --------------------------------------------------------------------------------------


def _rate_equation(r, n, pmt, pv, fv, due):
    """The TVM equation's value at rate r (pv·q + pmt·(1+r·type)·annuity + fv)."""
    q, a = compound(r, n)
    return pv * q + pmt * (1 + r * due) * a + fv


@excel("RATE", args="nnnn?n?n?")
def f_rate(ctx, args):
    """RATE(nper, pmt, pv, [fv], [type], [guess]): the rate per period that solves the TVM
    equation, by Newton's method from the guess (10%); #NUM! where an iterate falls to −100%
    or below, or no step falls below 1e-7 within 50 (Excel documents 20, yet its own answers
    take up to 26 from 10%)."""
    parts, errs = [], []
    for i, default in enumerate((None, None, None, 0.0, 0.0)):
        if i < len(args) and not isinstance(args[i], Omitted):
            x, e = to_number(args[i])
        else:
            x, e = torch.full((1, 1, 1), default, dtype=ctx.dtype, device=ctx.device), None
        parts.append(x)
        errs.append(e)
    n, pmt, pv, fv, t = torch.broadcast_tensors(*parts)
    due = _due(t)
    guess, gerr = _guess(ctx, args, 5, n, "RATE")
    shape = n.shape
    inputs = [a.detach().reshape(-1) for a in (n, pmt, pv, fv, due)]

    def step(r):
        with torch.enable_grad():
            x = r.detach().requires_grad_(True)
            f = _rate_equation(x, *inputs)
            (slope,) = torch.autograd.grad(f.sum(), x)
        new = r - f.detach() / slope
        return torch.where(new > -1, f.detach() / slope, math.nan)

    with torch.no_grad():
        r0 = guess.reshape(-1, 1, 1) * torch.ones(shape, dtype=n.dtype, device=n.device)
        r = newton(step, r0.reshape(-1), 50, 1e-7, lambda a, b: (a - b).abs(), ctx.strict)
    r = r.reshape(shape)
    if any(a.requires_grad for a in (n, pmt, pv, fv)):
        r = implicit(r, lambda r: _rate_equation(r, n, pmt, pv, fv, due))
    return done(ctx, r, [*errs, gerr])


# -- depreciation ------------------------------------------------------------------------------

number_function(
    "SLN",
    spec="nnn",
    safe=(1.0, 0.0, 1.0),
    compute=lambda cost, salvage, life: (cost - salvage) / life,
    domain=lambda cost, salvage, life: [(life == 0, "#DIV/0!")],
)
number_function(
    "SYD",
    spec="nnnn",
    safe=(1.0, 0.0, 1.0, 1.0),
    compute=lambda cost, salvage, life, per: (
        (cost - salvage) * (life - per + 1) * 2 / (life * (life + 1))
    ),
    domain=lambda cost, salvage, life, per: [((life <= 0) | (per <= 0) | (per > life), "#NUM!")],
)


def _db(cost: float, salvage: float, life: float, period: float, month: float) -> float:
    """Fixed-declining balance: the rate 1 − (salvage/cost)^(1/life) rounded to 3 places; the
    first year holds `month` months, the year after the life the rest."""
    if cost < 0 or salvage < 0 or life <= 0 or period < 1:
        return math.nan  # #NUM! (the domain says so)
    if cost == 0:
        return 0.0
    rate = 1 - (salvage / cost) ** (1 / life)
    rate = math.copysign(math.floor(abs(rate) * 1000 + 0.5) / 1000, rate)
    total = 0.0
    for p in range(1, int(period) + 1):
        if p == 1:
            value = cost * rate * month / 12
        elif p > life:
            value = (cost - total) * rate * (12 - month) / 12
        else:
            value = (cost - total) * rate
        total += value
    return value


def _ddb(cost, salvage, life, period, factor):
    """Declining balance at factor/life a period (vectorised; never below the salvage)."""
    rate = np.minimum(factor / life, 1.0)
    whole = rate >= 1
    before = np.where(whole, np.where(period == 1, cost, 0.0), cost * (1 - rate) ** (period - 1))
    after = cost * (1 - rate) ** period
    return np.maximum(np.where(after < salvage, before - salvage, before - after), 0.0)


number_function(
    "DB",
    spec="nnnnn?",
    defaults=(12.0,),
    grad=False,
    safe=(),
    compute=lambda cost, salvage, life, period, month: np.vectorize(_db, otypes=[float])(
        cost, salvage, life, np.trunc(period), np.trunc(month)
    ),
    domain=lambda cost, salvage, life, period, month: [
        (
            (cost < 0)
            | (salvage < 0)
            | (life <= 0)
            | (np.trunc(period) < 1)
            | (np.trunc(month) < 1)
            | (np.trunc(month) > 12)
            | (np.trunc(period) > life + 1),
            "#NUM!",
        )
    ],
)
number_function(
    "DDB",
    spec="nnnnn?",
    defaults=(2.0,),
    grad=False,
    safe=(),
    compute=_ddb,
    domain=lambda cost, salvage, life, period, factor: [
        (
            (cost < 0)
            | (salvage < 0)
            | (life <= 0)
            | (period < 1)
            | (period > life)
            | (factor <= 0),
            "#NUM!",
        )
    ],
)


# -- securities --------------------------------------------------------------------------------


def atp_number(x) -> float | Error:
    """An Analysis ToolPak argument (element by element): numbers and numeric text, a blank 0;
    TRUE, FALSE and other text are #VALUE!."""
    if isinstance(x, bool):
        return VALUE_ERROR
    if isinstance(x, str):
        n = parse_number(x)
        return VALUE_ERROR if n is None else n
    return 0.0 if x is None else float(x)


def securities(name: str, spec: str):
    """Register a securities function of Analysis ToolPak arguments: `spec` its parameters as
    registry.py writes them, 'n' a number and 'b' a logical (TRUE when left out), with two
    kinds of number of the ToolPak's own: 'd' a date (whole days, within Excel's calendar) and
    'i' a whole number (truncated)."""
    letters = spec.replace("?", "")

    def register(fn):
        def f(ctx, args):
            def element(*raw):
                values = []
                for letter, x in zip(letters, raw, strict=False):
                    if letter == "b":
                        values.append(True if x is None else _logical(x))
                        continue
                    n = atp_number(x)
                    if isinstance(n, Error):
                        return n
                    if letter == "d":
                        n = whole_day(n)
                        if n is None:
                            return NUM_ERROR
                    values.append(math.trunc(n) if letter == "i" else n)
                values += [letter == "b" or 0 for letter in letters[len(raw) :]]  # defaults
                return fn(*values)

            return cellwise(ctx, args, "v" * len(args), element)

        excel(name, args=spec.replace("d", "n").replace("i", "n"), gradient=False)(f)
        return fn

    return register


def _logical(x) -> bool | Error:
    if isinstance(x, str):
        t = x.upper()
        return t == "TRUE" if t in ("TRUE", "FALSE") else VALUE_ERROR
    return bool(x)


def _invalid(basis: int, *positive: float) -> bool:
    return not 0 <= basis <= 4 or any(x <= 0 for x in positive)


@securities("ACCRINTM", "ddnni?")
def accrintm(issue, settlement, rate, par, basis):
    """Interest accrued from issue to maturity: par · rate · the year fraction."""
    if issue >= settlement or _invalid(basis, rate, par):
        return NUM_ERROR
    return par * rate * year_fraction(issue, settlement, basis)


@securities("DISC", "ddnni?")
def disc(settlement, maturity, price, redemption, basis):
    """The discount rate: (redemption − price)/redemption per year to maturity."""
    if settlement >= maturity or _invalid(basis, price, redemption):
        return NUM_ERROR
    return (redemption - price) / redemption / year_fraction(settlement, maturity, basis)


@securities("INTRATE", "ddnni?")
def intrate(settlement, maturity, investment, redemption, basis):
    """The interest rate of a fully invested security: (redemption − investment)/investment
    per year to maturity."""
    if settlement >= maturity or _invalid(basis, investment, redemption):
        return NUM_ERROR
    return (redemption - investment) / investment / year_fraction(settlement, maturity, basis)


def _days(start: int, end: int, basis: int, counted: bool = True) -> int:
    """Days from start to end by the day-count basis: 30/360 (0: US, 4: European) or actual
    days; a period's length (not `counted`) is 30/360 US under basis 2 too."""
    if basis == 0 or (basis == 2 and not counted):
        return days360_us(start, end)
    if basis == 4:
        return days360(start, end, True)
    return end - start


def _is_month_end(day: int) -> bool:
    y, m, d = dates.ymd(day)
    return d == dates.days_in_month(y, m)


@securities("ACCRINT", "dddnnii?b?")
def accrint(issue, first, settlement, rate, par, frequency, basis, whole_periods):
    """Interest accrued on a security paying periodic coupons: par · rate/frequency · Σ
    (days accrued in each quasi-coupon period / that period's length), the periods stepping
    12/frequency months back from the first interest date (month ends kept when it is one).
    `whole_periods` (calc_method) TRUE counts from the issue, FALSE from the first interest
    date — with Excel's arithmetic, which goes negative when settlement precedes it."""
    if issue >= settlement or _invalid(basis, rate, par) or frequency not in (1, 2, 4):
        return NUM_ERROR
    months, month_end = 12 // frequency, _is_month_end(first)

    def shift(day, n):
        moved = add_months(day, n, month_end)
        if isinstance(moved, Error):
            raise ValueError(moved)
        return int(moved)

    try:
        regular = shift(first, -months)  # the coupon period that ends on the first interest date
        pcd = regular
        if settlement > first and whole_periods:  # the last coupon date before settlement
            pcd, following = first, shift(first, months)
            while following < settlement:
                pcd, following = following, shift(following, months)
        length = {1: first - regular, 3: 365 / frequency}.get(basis, 360 / frequency)
        accrued = _days(max(issue, pcd), settlement, basis) / length
        end = pcd
        while end > issue:  # the periods before, back to the one the issue falls in
            start = shift(end, -months)
            if issue <= start:
                accrued += 1.0 if whole_periods else 0.0
            elif basis == 0:
                accrued += days360_us(issue, end) / days360_us(start, end, both=True)
            else:
                span = 365 / frequency if basis == 3 else _days(start, end, basis, counted=False)
                accrued += _days(issue, end, basis) / span
            end = start
    except ValueError:
        return NUM_ERROR
    return par * rate / frequency * accrued
