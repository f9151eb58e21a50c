"""STATISTICAL, the probability distributions: densities, cumulative distributions and their
inverses, each under Excel 2010's name and its legacy one (NORM.DIST and NORMDIST, …).

Every argument is one number (or a logical, for `cumulative`), coerced as Excel does: numeric
text and booleans convert, other text is #VALUE!, an error is passed on (the first, in argument
order); a value outside the function's domain is #NUM!. Arrays and copied-down blocks compute
element by element.

The continuous distributions that models use (normal, lognormal, exponential, Weibull, gamma in
x, Fisher) compute in torch and pass gradients; the others compute with scipy.special, whose
incomplete gamma and beta functions and their inverses are accurate to a few ulps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from excelnet.formula.functions.kit import special as sc
from excelnet.formula.functions.kit import strict_num
from excelnet.formula.functions.registry import NEWER, Params, registrar
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import Omitted, first_error, to_bool, to_number, with_errors

excel = registrar("STATISTICAL")

SQRT_2PI = math.sqrt(2 * math.pi)
SQRT_2 = math.sqrt(2)
BIG_COUNT = 2.0**53  # trial counts beyond exact integers: #NUM!


def trunc(x):
    """Excel's truncation of counts (toward zero), for tensors and arrays alike."""
    return torch.trunc(x) if isinstance(x, torch.Tensor) else np.trunc(x)


@dataclass(frozen=True)
class Distribution:
    """One function of scalar arguments: `spec` its parameters, as every function's are written
    (registry.py): 'n' a number, 'b' a logical, 'n?' an optional number, left out or left
    empty: its value in `defaults` (one per optional parameter); `domain` gives (mask, error
    code) pairs, first match wins; `compute` the value where no mask holds. With `grad`, both
    run on torch tensors (the arguments replaced by `safe` where the domain fails, so gradients
    stay finite); otherwise on numpy arrays."""

    name: str
    spec: str
    compute: Callable
    domain: Callable | None = None
    defaults: tuple = ()
    grad: bool = False
    safe: tuple = ()

    @cached_property
    def params(self) -> Params:
        return Params.of(self.spec)

    def __call__(self, ctx, args):  # the registry has checked the arity
        params = self.params
        required = params.lo
        xs, errs = [], []
        for i, letter in enumerate(params.kinds):
            v = args[i] if i < len(args) else None
            if v is None or (i >= required and isinstance(v, Omitted)):
                default = self.defaults[i - required]
                xs.append(torch.full((1, 1, 1), float(default), dtype=ctx.dtype, device=ctx.device))
                errs.append(None)
                continue
            if letter == "b":
                b, e = to_bool(v)
                xs.append(b.to(ctx.dtype))
            else:
                x, e = to_number(v)
                xs.append(x)
            errs.append(e)
        shape = tuple(torch.broadcast_shapes(*(x.shape for x in xs)))
        if self.grad:
            return self._torch(ctx, xs, errs, shape)
        return self._numpy(ctx, xs, errs, shape)

    def _torch(self, ctx, xs, errs, shape):
        bad = self.domain(*xs) if self.domain else []
        if bad:
            fail = bad[0][0]
            for mask, _ in bad[1:]:
                fail = fail | mask
            fail = torch.broadcast_to(fail, shape)
            xs = [
                torch.where(fail, torch.full((), s, dtype=x.dtype, device=x.device), x)
                for x, s in zip(xs, self.safe, strict=True)
            ]
            y = self.compute(*xs)
            y = torch.where(fail, torch.full((), math.nan, dtype=y.dtype, device=y.device), y)
        else:
            y = self.compute(*xs)
        y = torch.broadcast_to(y, shape)
        if not ctx.strict:
            return with_errors(y, first_error(shape, *errs))
        codes = [np.where(np.broadcast_to(m.cpu().numpy(), shape), c, None) for m, c in bad]
        return with_errors(y, strict_num(ctx, y, first_error(shape, *errs, *codes)))

    def _numpy(self, ctx, xs, errs, shape):
        arrays = [np.broadcast_to(x.detach().cpu().numpy(), shape) for x in xs]
        with np.errstate(all="ignore"):
            bad = self.domain(*arrays) if self.domain else []
            y = np.broadcast_to(np.asarray(self.compute(*arrays), dtype=float), shape)
        codes = [np.where(np.broadcast_to(m, shape), c, None) for m, c in bad]
        out = torch.as_tensor(np.array(y), dtype=ctx.dtype, device=ctx.device)
        return with_errors(out, strict_num(ctx, out, first_error(shape, *errs, *codes)))


def distribution(*names, **kw) -> Distribution:
    """Register one Distribution under Excel's names (as registry.registrar writes them)."""
    d = Distribution(names[0].removeprefix(NEWER), **kw)
    assert len(d.defaults) == d.params.hi - d.params.lo, d.name
    excel(*names, args=d.spec, gradient=d.grad)(d)
    return d


def _stats():
    """scipy.stats, imported when a discrete distribution is first computed (it takes ~0.3 s)."""
    import scipy.stats

    return scipy.stats


def _num(*masks):
    return [(m, "#NUM!") for m in masks]


def pick(cum, cdf, pdf):
    """The cumulative distribution where `cumulative` is TRUE, else the density."""
    if not isinstance(cum, (torch.Tensor, np.ndarray)):  # a legacy name's fixed choice
        return cdf if cum else pdf
    if isinstance(cum, torch.Tensor):
        return torch.where(cum != 0, cdf, pdf)
    return np.where(cum != 0, cdf, pdf)


# -- normal ------------------------------------------------------------------------------------


def ndtr(z: torch.Tensor) -> torch.Tensor:
    """The standard normal distribution, by erfc: accurate in the lower tail, where torch's own
    ndtr returns 0 below z ≈ -8."""
    return 0.5 * torch.special.erfc(-z / SQRT_2)


def _normal(z: torch.Tensor, s, cum):
    return pick(cum, ndtr(z), torch.exp(-0.5 * z * z) / (s * SQRT_2PI))


distribution(
    "_xlfn.NORM.DIST",
    spec="nnnb",
    grad=True,
    safe=(0.0, 0.0, 1.0, 0.0),
    domain=lambda x, m, s, c: _num(s <= 0),
    compute=lambda x, m, s, c: _normal((x - m) / s, s, c),
)
distribution(
    "NORMDIST",
    spec="nnnb",
    grad=True,
    safe=(0.0, 0.0, 1.0, 0.0),
    domain=lambda x, m, s, c: _num(s <= 0),
    compute=lambda x, m, s, c: _normal((x - m) / s, s, c),
)
distribution(
    "_xlfn.NORM.S.DIST",
    spec="nb",
    grad=True,
    compute=lambda z, c: _normal(z, 1.0, c),
)
distribution("NORMSDIST", spec="n", grad=True, compute=ndtr)
distribution(
    "_xlfn.GAUSS", spec="n", grad=True, compute=lambda z: torch.special.erf(z / SQRT_2) / 2
)
distribution("_xlfn.PHI", spec="n", grad=True, compute=lambda z: torch.exp(-0.5 * z * z) / SQRT_2PI)
for _name in ("_xlfn.NORM.INV", "NORMINV"):
    distribution(
        _name,
        spec="nnn",
        grad=True,
        safe=(0.5, 0.0, 1.0),
        domain=lambda p, m, s: _num((p <= 0) | (p >= 1), s <= 0),
        compute=lambda p, m, s: m + s * torch.special.ndtri(p),
    )
for _name in ("_xlfn.NORM.S.INV", "NORMSINV"):
    distribution(
        _name,
        spec="n",
        grad=True,
        safe=(0.5,),
        domain=lambda p: _num((p <= 0) | (p >= 1)),
        compute=torch.special.ndtri,
    )
distribution(
    "STANDARDIZE",
    spec="nnn",
    grad=True,
    safe=(0.0, 0.0, 1.0),
    domain=lambda x, m, s: _num(s <= 0),
    compute=lambda x, m, s: (x - m) / s,
)


def _lognormal(x, m, s, c):
    z = (torch.log(x) - m) / s
    return pick(c, ndtr(z), torch.exp(-0.5 * z * z) / (x * s * SQRT_2PI))


distribution(
    "_xlfn.LOGNORM.DIST",
    spec="nnnb",
    grad=True,
    safe=(1.0, 0.0, 1.0, 0.0),
    domain=lambda x, m, s, c: _num(x <= 0, s <= 0),
    compute=_lognormal,
)
distribution(
    "LOGNORMDIST",
    spec="nnn",
    grad=True,
    safe=(1.0, 0.0, 1.0),
    domain=lambda x, m, s: _num(x <= 0, s <= 0),
    compute=lambda x, m, s: _lognormal(x, m, s, 1.0),
)
for _name in ("_xlfn.LOGNORM.INV", "LOGINV"):
    distribution(
        _name,
        spec="nnn",
        grad=True,
        safe=(0.5, 0.0, 1.0),
        domain=lambda p, m, s: _num((p <= 0) | (p >= 1), s <= 0),
        compute=lambda p, m, s: torch.exp(m + s * torch.special.ndtri(p)),
    )


def _confidence_norm(alpha, sd, size):
    return -sc.ndtri(alpha / 2) * sd / np.sqrt(trunc(size))


for _name in ("_xlfn.CONFIDENCE.NORM", "CONFIDENCE"):
    distribution(
        _name,
        spec="nnn",
        domain=lambda a, s, n: _num((a <= 0) | (a >= 1), s <= 0, trunc(n) < 1),
        compute=_confidence_norm,
    )
distribution(
    "_xlfn.CONFIDENCE.T",
    spec="nnn",
    domain=lambda a, s, n: [
        *_num((a <= 0) | (a >= 1), s <= 0, trunc(n) < 1),
        (trunc(n) == 1, "#DIV/0!"),
    ],
    compute=lambda a, s, n: sc.stdtrit(trunc(n) - 1, 1 - a / 2) * s / np.sqrt(trunc(n)),
)

# -- exponential, Weibull, gamma ---------------------------------------------------------------


def _exponential(x, lam, c):
    return pick(c, -torch.expm1(-lam * x), lam * torch.exp(-lam * x))


for _name in ("_xlfn.EXPON.DIST", "EXPONDIST"):
    distribution(
        _name,
        spec="nnb",
        grad=True,
        safe=(0.0, 1.0, 0.0),
        domain=lambda x, lam, c: _num((x < 0) | (lam <= 0)),
        compute=_exponential,
    )


def _power_density(x, t, a, scale, log_rest):
    """t^(a-1) · exp(log_rest) / scale, the shape both the Weibull and gamma densities share,
    at x = 0 too (infinite for a < 1, 1/scale for a = 1, 0 above), with finite gradients."""
    pos = x > 0
    one = torch.ones((), dtype=x.dtype, device=x.device)
    safe_t = torch.where(pos, t, one)
    inside = torch.exp((a - 1) * torch.log(safe_t) + torch.where(pos, log_rest, 0 * log_rest))
    with torch.no_grad():  # a boundary value: no gradient through it (inf · 0 would be NaN)
        at_zero = torch.where(a < 1, math.inf, torch.where(a == 1, one, 0 * one)) * torch.exp(
            torch.where(pos, 0 * log_rest, log_rest)
        )
    return torch.where(pos, inside, at_zero) / scale


def _weibull(x, a, b, c):
    t = x / b
    tail = torch.pow(torch.where(t > 0, t, torch.ones_like(t)), a) * (t > 0)
    return pick(c, -torch.expm1(-tail), a * _power_density(x, t, a, b, -tail))


for _name in ("_xlfn.WEIBULL.DIST", "WEIBULL"):
    distribution(
        _name,
        spec="nnnb",
        grad=True,
        safe=(1.0, 1.0, 1.0, 0.0),
        domain=lambda x, a, b, c: _num((x < 0) | (a <= 0) | (b <= 0)),
        compute=_weibull,
    )


def _gamma_dist(x, a, b, c):
    if a.requires_grad:
        raise FormulaError("GAMMA.DIST has a gradient in x and beta only, not in alpha")
    t = x / b
    cdf = torch.special.gammainc(a, t)
    return pick(c, cdf, _power_density(x, t, a, b, -t - torch.lgamma(a)))


for _name in ("_xlfn.GAMMA.DIST", "GAMMADIST"):
    distribution(
        _name,
        spec="nnnb",
        grad=True,
        safe=(1.0, 1.0, 1.0, 0.0),
        domain=lambda x, a, b, c: _num((x < 0) | (a <= 0) | (b <= 0)),
        compute=_gamma_dist,
    )
for _name in ("_xlfn.GAMMA.INV", "GAMMAINV"):
    distribution(
        _name,
        spec="nnn",
        domain=lambda p, a, b: _num((p < 0) | (p >= 1) | (a <= 0) | (b <= 0)),
        compute=lambda p, a, b: sc.gammaincinv(a, p) * b,
    )
for _name in ("GAMMALN", "_xlfn.GAMMALN.PRECISE"):
    distribution(
        _name,
        spec="n",
        grad=True,
        safe=(1.0,),
        domain=lambda x: _num(x <= 0),
        compute=torch.lgamma,
    )
distribution(
    "_xlfn.GAMMA",
    spec="n",
    domain=lambda x: _num((x <= 0) & (x == np.trunc(x))),
    compute=lambda x: sc.gamma(x),
)

# -- chi-squared, t, F, beta -------------------------------------------------------------------


def _chisq(x, k, c):
    k = trunc(k)
    return pick(c, sc.gammainc(k / 2, x / 2), _stats().chi2.pdf(x, k))


def _dof(*ks):  # degrees of freedom: truncated, 1 to 10^10
    return [(trunc(k) < 1) | (k > 1e10) for k in ks]


distribution(
    "_xlfn.CHISQ.DIST",
    spec="nnb",
    domain=lambda x, k, c: _num(x < 0, *_dof(k)),
    compute=_chisq,
)
for _name in ("_xlfn.CHISQ.DIST.RT", "CHIDIST"):
    distribution(
        _name,
        spec="nn",
        domain=lambda x, k: _num(x < 0, *_dof(k)),
        compute=lambda x, k: sc.gammaincc(trunc(k) / 2, x / 2),
    )
distribution(
    "_xlfn.CHISQ.INV",
    spec="nn",
    domain=lambda p, k: _num((p < 0) | (p > 1), *_dof(k)),
    compute=lambda p, k: 2 * sc.gammaincinv(trunc(k) / 2, p),
)
for _name in ("_xlfn.CHISQ.INV.RT", "CHIINV"):
    distribution(
        _name,
        spec="nn",
        domain=lambda p, k: _num((p < 0) | (p > 1), *_dof(k)),
        compute=lambda p, k: 2 * sc.gammainccinv(trunc(k) / 2, p),
    )


distribution(
    "_xlfn.T.DIST",
    spec="nnb",
    domain=lambda x, k, c: _num(*_dof(k)),
    compute=lambda x, k, c: pick(c, sc.stdtr(trunc(k), x), _stats().t.pdf(x, trunc(k))),
)
distribution(
    "_xlfn.T.DIST.2T",
    spec="nn",
    domain=lambda x, k: _num(x < 0, *_dof(k)),
    compute=lambda x, k: 2 * sc.stdtr(trunc(k), -x),
)
distribution(
    "_xlfn.T.DIST.RT",
    spec="nn",
    domain=lambda x, k: _num(*_dof(k)),
    compute=lambda x, k: sc.stdtr(trunc(k), -x),
)
distribution(
    "TDIST",
    spec="nnn",
    domain=lambda x, k, tails: _num(x < 0, *_dof(k), (trunc(tails) != 1) & (trunc(tails) != 2)),
    compute=lambda x, k, tails: trunc(tails) * sc.stdtr(trunc(k), -x),
)
distribution(
    "_xlfn.T.INV",
    spec="nn",
    domain=lambda p, k: _num((p <= 0) | (p >= 1), *_dof(k)),
    compute=lambda p, k: sc.stdtrit(trunc(k), p),
)
for _name in ("_xlfn.T.INV.2T", "TINV"):
    distribution(
        _name,
        spec="nn",
        domain=lambda p, k: _num((p <= 0) | (p > 1), *_dof(k)),
        compute=lambda p, k: -sc.stdtrit(trunc(k), p / 2),
    )


distribution(
    "_xlfn.F.DIST",
    spec="nnnb",
    domain=lambda x, d1, d2, c: _num(x < 0, *_dof(d1, d2)),
    compute=lambda x, d1, d2, c: pick(
        c, sc.fdtr(trunc(d1), trunc(d2), x), _stats().f.pdf(x, trunc(d1), trunc(d2))
    ),
)
for _name in ("_xlfn.F.DIST.RT", "FDIST"):
    distribution(
        _name,
        spec="nnn",
        domain=lambda x, d1, d2: _num(x < 0, *_dof(d1, d2)),
        compute=lambda x, d1, d2: sc.fdtrc(trunc(d1), trunc(d2), x),
    )


def _f_inv(q, d1, d2, upper: bool):
    """x with P(X ≤ x) = q (upper: P(X > x) = q), through the inverse incomplete beta."""
    d1, d2 = trunc(d1), trunc(d2)
    w = sc.betainccinv(d2 / 2, d1 / 2, q) if upper else sc.betaincinv(d2 / 2, d1 / 2, 1 - q)
    return d2 / d1 * (1 / w - 1)


distribution(
    "_xlfn.F.INV",
    spec="nnn",
    domain=lambda p, d1, d2: _num((p < 0) | (p > 1), *_dof(d1, d2)),
    compute=lambda p, d1, d2: _f_inv(p, d1, d2, upper=False),
)
for _name in ("_xlfn.F.INV.RT", "FINV"):
    distribution(
        _name,
        spec="nnn",
        domain=lambda p, d1, d2: _num((p < 0) | (p > 1), *_dof(d1, d2)),
        compute=lambda p, d1, d2: _f_inv(1 - p, d1, d2, upper=False),
    )


def _beta_domain(x, a, b, lo, hi):
    return _num((a <= 0) | (b <= 0), (x < lo) | (x > hi) | (lo == hi))


def _beta_dist(x, a, b, c, lo, hi):
    t = (x - lo) / (hi - lo)
    return pick(c, sc.betainc(a, b, t), _stats().beta.pdf(t, a, b) / (hi - lo))


distribution(
    "_xlfn.BETA.DIST",
    spec="nnnbn?n?",
    defaults=(0.0, 1.0),
    domain=lambda x, a, b, c, lo, hi: _beta_domain(x, a, b, lo, hi),
    compute=_beta_dist,
)
distribution(
    "BETADIST",
    spec="nnnn?n?",
    defaults=(0.0, 1.0),
    domain=lambda x, a, b, lo, hi: _beta_domain(x, a, b, lo, hi),
    compute=lambda x, a, b, lo, hi: _beta_dist(x, a, b, 1.0, lo, hi),
)
for _name in ("_xlfn.BETA.INV", "BETAINV"):
    distribution(
        _name,
        spec="nnnn?n?",
        defaults=(0.0, 1.0),
        domain=lambda p, a, b, lo, hi: _num((p <= 0) | (p > 1), (a <= 0) | (b <= 0), lo >= hi),
        compute=lambda p, a, b, lo, hi: lo + (hi - lo) * sc.betaincinv(a, b, p),
    )

# -- discrete ----------------------------------------------------------------------------------


def binom_cdf(k, n, p, upper: bool = False):
    """P(X ≤ k) (upper: P(X > k)) for X ~ B(n, p), at any k: 0 below the support, 1 above."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    trials = np.clip(np.nan_to_num(n), 0, BIG_COUNT).astype(np.int64)  # scipy's integer form
    inside = (
        sc.bdtrc(np.clip(k, 0, n), trials, p) if upper else sc.bdtr(np.clip(k, 0, n), trials, p)
    )
    below, above = (1.0, 0.0) if upper else (0.0, 1.0)
    return np.where(k < 0, below, np.where(k >= n, above, inside))


def _binom_dist(s, n, p, c):
    s, n = trunc(s), trunc(n)
    return pick(c, binom_cdf(s, n, p), _stats().binom.pmf(s, n, p))


for _name in ("_xlfn.BINOM.DIST", "BINOMDIST"):
    distribution(
        _name,
        spec="nnnb",
        domain=lambda s, n, p, c: _num(
            (s < 0) | (n < 0) | (trunc(s) > trunc(n)) | (p < 0) | (p > 1) | (n > BIG_COUNT)
        ),
        compute=_binom_dist,
    )


def _binom_range(n, p, s1, s2):
    """P(s1 ≤ X ≤ s2): the terms summed where there are few, else the nearer tail's difference
    (a difference of two cumulative values near 1 would lose the digits of a small result)."""
    n, s1, s2 = trunc(n), trunc(s1), trunc(np.where(np.isnan(s2), s1, s2))
    out = np.empty(n.shape)
    for i in np.ndindex(n.shape):
        if s2[i] - s1[i] < 10_000:
            out[i] = _stats().binom.pmf(np.arange(s1[i], s2[i] + 1), n[i], p[i]).sum()
        elif s1[i] > n[i] * p[i]:
            out[i] = binom_cdf(s1[i] - 1, n[i], p[i], True) - binom_cdf(s2[i], n[i], p[i], True)
        else:
            out[i] = binom_cdf(s2[i], n[i], p[i]) - binom_cdf(s1[i] - 1, n[i], p[i])
    return out


def _binom_range_domain(n, p, s1, s2):
    n, s1, s2 = trunc(n), s1, np.where(np.isnan(s2), s1, s2)
    return _num(
        (n < 0)
        | (n > BIG_COUNT)
        | (p < 0)
        | (p > 1)
        | (s1 < 0)
        | (trunc(s1) > n)
        | (trunc(s2) < trunc(s1))
        | (trunc(s2) > n)
    )


# s2 left out: NaN, then s1 (a blank s2 is 0)
distribution(
    "_xlfn.BINOM.DIST.RANGE",
    spec="nnnn?",
    defaults=(math.nan,),
    domain=_binom_range_domain,
    compute=_binom_range,
)


def _binom_inv(n, p, alpha):
    """The smallest k with P(X ≤ k) ≥ alpha."""
    n = trunc(n)
    k = np.clip(np.nan_to_num(np.ceil(sc.bdtrik(alpha, n, p)), nan=0.0), 0, n)
    for _ in range(3):  # settle the boundary exactly
        k = np.where(binom_cdf(k - 1, n, p) >= alpha, k - 1, k)
        k = np.where(binom_cdf(k, n, p) < alpha, k + 1, k)
    return k


for _name in ("_xlfn.BINOM.INV", "CRITBINOM"):
    distribution(
        _name,
        spec="nnn",
        domain=lambda n, p, a: _num(
            (n < 0) | (n > BIG_COUNT) | (p < 0) | (p >= 1) | (a <= 0) | (a >= 1)
        ),
        compute=_binom_inv,
    )


def _negbinom(f, s, p, c):
    f, s = trunc(f), trunc(s)
    return pick(c, sc.betainc(s, f + 1, p), _stats().nbinom.pmf(f, s, p))


def _negbinom_domain(f, s, p, c=None):
    return _num((f < 0) | (trunc(s) < 1) | (p <= 0) | (p >= 1))


distribution("_xlfn.NEGBINOM.DIST", spec="nnnb", domain=_negbinom_domain, compute=_negbinom)
distribution(
    "NEGBINOMDIST",
    spec="nnn",
    domain=_negbinom_domain,
    compute=lambda f, s, p: _negbinom(f, s, p, 0.0),
)


def _poisson(x, mean, c):
    x = trunc(x)
    return pick(c, sc.pdtr(x, mean), _stats().poisson.pmf(x, mean))


for _name in ("_xlfn.POISSON.DIST", "POISSON"):
    distribution(
        _name,
        spec="nnb",
        domain=lambda x, mean, c: _num((x < 0) | (mean < 0)),
        compute=_poisson,
    )


def _hypgeom(s, n, big_k, big_n, c):
    law = _stats().hypergeom(trunc(big_n), trunc(big_k), trunc(n))
    return pick(c, law.cdf(trunc(s)), law.pmf(trunc(s)))


def _hypgeom_domain(s, n, big_k, big_n, c=None):
    s, n, big_k, big_n = trunc(s), trunc(n), trunc(big_k), trunc(big_n)
    return _num(
        (s < 0)
        | (s > np.minimum(n, big_k))
        | (s < n - (big_n - big_k))
        | (n <= 0)
        | (n > big_n)
        | (big_k <= 0)
        | (big_k > big_n)
    )


distribution("_xlfn.HYPGEOM.DIST", spec="nnnnb", domain=_hypgeom_domain, compute=_hypgeom)
distribution(
    "HYPGEOMDIST",
    spec="nnnn",
    domain=_hypgeom_domain,
    compute=lambda s, n, k, big_n: _hypgeom(s, n, k, big_n, 0.0),
)

# -- Fisher, permutations ----------------------------------------------------------------------

# Excel computes FISHER as ½·ln((1+x)/(1-x)), not atanh: its stored values carry that formula's
# rounding (FISHER(1E-10) = 1.000000082640371E-10), and so do FISHERINV's.
distribution(
    "FISHER",
    spec="n",
    grad=True,
    safe=(0.0,),
    domain=lambda x: _num((x <= -1) | (x >= 1)),
    compute=lambda x: 0.5 * torch.log((1 + x) / (1 - x)),
)


def _fisher_inv(y):
    e = np.exp(2 * np.clip(y, -300, 300))
    return (e - 1) / (e + 1)


distribution("FISHERINV", spec="n", compute=_fisher_inv)


def _permut(n, k):
    n, k = trunc(n), trunc(k)
    out = np.exp(sc.gammaln(n + 1) - sc.gammaln(n - k + 1))
    exact = (n < 2**31) & (k < 1000)
    for idx in zip(*np.nonzero(exact & (k <= n) & (k >= 0)), strict=True):
        out[idx] = float(math.perm(int(n[idx]), int(k[idx])))
    return out


distribution(
    "PERMUT",
    spec="nn",
    domain=lambda n, k: _num((n <= 0) | (k < 0) | (trunc(k) > trunc(n))),
    compute=_permut,
)
distribution(
    "_xlfn.PERMUTATIONA",
    spec="nn",
    domain=lambda n, k: _num((n < 0) | (k < 0)),
    compute=lambda n, k: np.power(trunc(n), trunc(k)),
)
