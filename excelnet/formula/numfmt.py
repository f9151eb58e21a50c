"""Numbers as Excel writes them in text, and reads them back.

- `number_text`: a number turned into text by a formula (`&`, CONCAT, LEN, …): 15 significant
  digits, plain decimals unless that takes more than 20 characters or the number is 1E+20 or
  more (Apache POI's measurement of Excel's rule).
- `format_value`: Excel's number format language, as TEXT() applies it: up to four sections
  (positive; negative; zero; text) with conditions and colours, digit placeholders 0 # ?,
  thousands separators and scaling commas, percent, scientific notation, fractions, literal
  text ("…", \\x, _x), General, and the date and time codes (y m d h s, AM/PM, [h] elapsed,
  fractions of a second).
- `parse_number`: text read as a number, as Excel reads what is typed into a cell ("1,234.5",
  "$12", "40%", "(5)", "1 1/2", "1e-5", dates and times).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache

from excelnet.formula import dates


def digits15(x: float) -> tuple[str, int]:
    """|x| to 15 significant digits: (the digits without trailing zeros, the decimal exponent
    of the first digit)."""
    if x == 0:
        return "0", 0
    mantissa, exp = f"{abs(x):.14e}".split("e")
    return mantissa.replace(".", "").rstrip("0"), int(exp)


def _scientific(digits: str, exp: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}E{'-' if exp < 0 else '+'}{abs(exp):02d}"


def number_text(x: float) -> str:
    """A number as a formula turns it into text: 1/3 → 0.333333333333333, 1E+20 → 1E+20,
    7.123456E-9 → 0.000000007123456. Excel keeps 15 significant digits and writes a whole
    number of up to 20 digits plainly (1.2E+17 is "120000000000000000", as Apache POI measured
    Excel; LibreOffice writes "1.2E+17")."""
    digits, exp = digits15(x)
    sign = "-" if x < 0 and digits != "0" else ""
    n = len(digits)
    if exp < 0:
        if 2 + (-exp - 1) + n > 20:
            return sign + _scientific(digits, exp)
        return sign + "0." + "0" * (-exp - 1) + digits
    if exp > 19:
        return sign + _scientific(digits, exp)
    if n > exp + 1:
        return sign + digits[: exp + 1] + "." + digits[exp + 1 :]
    return sign + digits + "0" * (exp + 1 - n)


def _round(v: float, decimals: int) -> Decimal:
    """|v| rounded half away from zero at `decimals` places, from its 15 significant digits
    (as Excel rounds what it displays)."""
    return Decimal(f"{abs(v):.15g}").quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)


def rounded(x: float, decimals: int) -> float:
    """x rounded half away from zero at `decimals` places (negative: tens, hundreds, …) from
    its 15 significant digits, as Excel rounds what it shows."""
    r = float(_round(x, decimals))
    return -r if x < 0 else r


def _plain(d: Decimal) -> str:
    s = f"{d:f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def general(x: float, width: int = 11) -> str:
    """Excel's General format in `width` characters (the sign aside): as many digits as fit,
    scientific with up to 6 digits when the number does not fit (TEXT(x, "General") uses 11)."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    digits, exp = digits15(x)
    if exp >= width:
        text = None
    elif exp >= 0:
        text = _plain(_round(x, max(0, width - 1 - (exp + 1))))
        text = text if len(text.split(".")[0]) <= width else None
    elif exp >= -4:
        text = _plain(_round(x, width - 2))
    elif exp >= -9:
        text = _plain(_round(x, 12))
        text = text if len(text) <= width else None
    else:
        text = None
    if text is None or text == "0":
        mantissa = Decimal(f"{abs(x):.5e}".split("e")[0])
        text = _scientific(_plain(mantissa).replace(".", ""), exp)
        if mantissa >= 10:  # 9.999996E+11 rounds to 1E+12
            text = _scientific("1", exp + 1)
    return sign + text


# -- reading numbers typed as text ------------------------------------------------------------

_NUMBER = re.compile(
    r"(?P<sign>[-+])?(?P<cur>[$€£¥])?(?P<sign2>[-+])?"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)"
    r"(?P<exp>[eE][-+]?\d+)?\s*(?P<pct>%)?\s*(?P<cur2>[$€£¥])?$"
)
_FRACTION = re.compile(r"(?P<sign>[-+])?(?P<whole>\d+) +(?P<num>\d+)/(?P<den>\d+)$")


def parse_number(text: str) -> float | None:
    """Text as Excel reads it into a number, None if it is not one (full-width digits, "１",
    are text to Excel: only 0-9 are digits)."""
    if not ascii_digits(text):
        return None
    t = text.strip()
    negative = t.startswith("(") and t.endswith(")")
    if negative:
        t = t[1:-1].strip()
    m = _NUMBER.match(t)
    if m and not (m["sign"] and m["sign2"]) and not (m["cur"] and m["cur2"]):
        x = float(m["num"].replace(",", "") + (m["exp"] or ""))
        x = x / 100 if m["pct"] else x
        x = -x if "-" in (m["sign"], m["sign2"]) else x
        if math.isfinite(x) and not (negative and x < 0):
            return -x if negative else x
        return None
    if negative:
        return None
    m = _FRACTION.match(t)
    if m and int(m["den"]) > 0:
        x = int(m["whole"]) + int(m["num"]) / int(m["den"])
        return -x if m["sign"] == "-" else x
    return dates.datetime_value(text)  # a date keeps no leading space: " 2024-01-10" is text


def ascii_digits(text: str) -> bool:
    """Whether every digit in text is one of 0-9 (Python's \\d and float() take any script's)."""
    return text.isascii() or not any(c.isdigit() and not c.isascii() for c in text)


# -- the format language ----------------------------------------------------------------------


class FormatError(ValueError):
    """A format TEXT cannot apply (Excel answers #VALUE!)."""


@dataclass
class Token:
    kind: str  # lit, digit, point, comma, percent, exp, slash, at, general, date, fill
    text: str = ""


@dataclass
class Section:
    tokens: list[Token] = field(default_factory=list)
    condition: tuple[str, float] | None = None

    @property
    def is_date(self) -> bool:
        return any(t.kind == "date" for t in self.tokens)

    @property
    def is_text(self) -> bool:
        return any(t.kind == "at" for t in self.tokens)


_COLORS = {"black", "blue", "cyan", "green", "magenta", "red", "white", "yellow"}
_CONDITION = re.compile(r"(<=|>=|<>|<|>|=)\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)$")
_ELAPSED = re.compile(r"(h+|m+|s+)$", re.I)
_AMPM = re.compile(r"am/pm|a/p", re.I)


@lru_cache(maxsize=1024)
def parse_format(code: str) -> tuple[Section, ...]:
    """A format code split into sections of tokens (shared: not to be changed)."""
    sections, cur, i, n = [], Section(), 0, len(code)
    while i < n:
        c = code[i]
        if c == ";":
            sections.append(cur)
            cur, i = Section(), i + 1
            continue
        if c == '"':
            j = code.find('"', i + 1)
            if j < 0:
                raise FormatError("unclosed quote")
            cur.tokens.append(Token("lit", code[i + 1 : j]))
            i = j + 1
            continue
        if c in "\\_*":
            if i + 1 >= n:
                raise FormatError(f"{c} at the end")
            kind, text = {"\\": ("lit", code[i + 1]), "_": ("lit", " "), "*": ("fill", "")}[c]
            cur.tokens.append(Token(kind, text))
            i += 2
            continue
        if c == "[":
            j = code.find("]", i)
            if j < 0:
                raise FormatError("unclosed bracket")
            _bracket(code[i + 1 : j], cur)
            i = j + 1
            continue
        if code[i : i + 7].lower() == "general":
            cur.tokens.append(Token("general"))
            i += 7
            continue
        ampm = _AMPM.match(code, i)
        if ampm:
            cur.tokens.append(Token("date", ampm.group(0)))
            i = ampm.end()
            continue
        low = c.lower()
        if low in "ymdhs" or (low == "e" and code[i + 1 : i + 2] not in ("+", "-")):
            j = i
            while j < n and code[j].lower() == low:
                j += 1
            cur.tokens.append(Token("date", code[i:j].lower()))
            i = j
            continue
        if low == "e":
            cur.tokens.append(Token("exp", code[i + 1]))
            i += 2
            continue
        kind = {
            "0": "digit",
            "#": "digit",
            "?": "digit",
            ".": "point",
            ",": "comma",
            "%": "percent",
            "/": "slash",
            "@": "at",
        }.get(c, "lit")
        cur.tokens.append(Token(kind, c))
        i += 1
    sections.append(cur)
    if len(sections) > 4:
        raise FormatError("more than four sections")
    return tuple(sections)


def _bracket(inner: str, section: Section) -> None:
    low = inner.lower()
    if low in _COLORS or re.fullmatch(r"color\s*\d+", low):
        return
    m = _CONDITION.match(inner.strip())
    if m:
        section.condition = (m.group(1), float(m.group(2)))
        return
    if _ELAPSED.match(inner):
        section.tokens.append(Token("date", "[" + low + "]"))
        return
    if inner.startswith("$"):  # [$€-407]: a currency symbol (and a locale, ignored)
        section.tokens.append(Token("lit", inner[1:].split("-")[0]))
        return
    raise FormatError(f"[{inner}]")


_TESTS = {
    "<": float.__lt__,
    ">": float.__gt__,
    "=": float.__eq__,
    "<=": float.__le__,
    ">=": float.__ge__,
    "<>": float.__ne__,
}


def format_value(value: float | str, code: str) -> str:
    """TEXT(value, code): a number or a text through Excel's format code. Raises FormatError
    where Excel answers #VALUE!."""
    sections = parse_format(code)
    if isinstance(value, str):
        if len(sections) == 4:
            return _text(sections[3], value)
        return _text(sections[0], value) if sections[0].is_text else value
    x = float(value)
    section, signed = _choose(sections[:3], x)
    if section.is_text and not any(t.kind in ("digit", "general", "date") for t in section.tokens):
        return _text(section, number_text(x))
    if section.is_date:
        return _date(section, x if signed else abs(x))
    return _number(section, x if signed else abs(x))


def _choose(sections: tuple[Section, ...], x: float) -> tuple[Section, bool]:
    """The section for x, and whether its sign is still to be shown."""
    if any(s.condition for s in sections[:2]):
        for s in sections[:2]:
            if s.condition and _TESTS[s.condition[0]](x, s.condition[1]):
                return s, not (s is sections[1] and s.condition[1] <= 0 and x < 0)
        if len(sections) >= 3:
            return sections[2], True
        rest = [s for s in sections if not s.condition]
        return (rest[0] if rest else sections[-1]), True
    if len(sections) == 1 or (x > 0) or (x == 0 and len(sections) == 2):
        return sections[0], len(sections) == 1
    if x < 0:
        return sections[1], False
    return sections[2], False


def _text(section: Section, text: str) -> str:
    return "".join(text if t.kind == "at" else t.text for t in section.tokens if t.kind != "fill")


# -- numbers ----------------------------------------------------------------------------------


def _number(section: Section, x: float) -> str:
    tokens = [t for t in section.tokens if t.kind != "fill"]
    if any(t.kind == "general" for t in tokens):
        return "".join(general(x) if t.kind == "general" else t.text for t in tokens)
    digit_at = [i for i, t in enumerate(tokens) if t.kind == "digit"]
    if not digit_at:  # only literals (and perhaps a percent): Excel shows them, and a sign
        scaled = x * 100 ** sum(t.kind == "percent" for t in tokens)
        return ("-" if scaled < 0 else "") + "".join(t.text for t in tokens)
    if any(t.kind == "slash" for t in tokens[digit_at[0] :]) and _fraction_layout(tokens):
        return _fraction(tokens, x)
    exp_at = next((i for i, t in enumerate(tokens) if t.kind == "exp"), None)
    body_end = exp_at if exp_at is not None else len(tokens)
    point_at = next((i for i in range(body_end) if tokens[i].kind == "point"), None)
    int_end = point_at if point_at is not None else body_end
    int_ph = [i for i in digit_at if i < int_end]
    dec_ph = [i for i in digit_at if int_end < i < body_end]
    # commas: between integer placeholders they group thousands; right after the last one
    # each divides by 1000
    grouping, scale = False, 0
    last_int = int_ph[-1] if int_ph else -1
    for i, t in enumerate(tokens[:int_end]):
        if t.kind == "comma":
            if int_ph and int_ph[0] < i < last_int:
                grouping = True
            elif i > last_int and all(tokens[k].kind == "comma" for k in range(last_int + 1, i)):
                scale += 1
    v = x * 100 ** sum(t.kind == "percent" for t in tokens) / 1000**scale
    out = {i: "" for i in range(len(tokens))}
    if exp_at is not None:
        mant, exp = _mantissa(abs(v), int_ph, tokens, len(dec_ph))
        exp_ph = [i for i in digit_at if i > exp_at]
        e_digits = str(abs(exp)).rjust(len(exp_ph), "0")
        sign = "-" if exp < 0 else ("+" if tokens[exp_at].text == "+" else "")
        out[exp_at] = "E" + sign
        if exp_ph:
            out[exp_ph[0]] = e_digits
            for i in exp_ph[1:]:
                out[i] = ""
        rounded = mant
    else:
        rounded = _round(v, len(dec_ph))
    int_digits, _, dec_digits = f"{rounded:f}".partition(".")
    int_digits = int_digits.lstrip("0")
    _fill_integer(tokens, int_ph, int_digits, grouping, out)
    _fill_decimals(tokens, dec_ph, dec_digits.ljust(len(dec_ph), "0"), out)
    for i, t in enumerate(tokens):  # commas only group or scale; the rest shows as written
        if t.kind in ("lit", "percent", "slash", "at", "point"):
            out[i] = t.text
    text = "".join(out[i] for i in range(len(tokens)))
    negative = v < 0 and (rounded != 0 or exp_at is not None and x != 0)
    return ("-" if negative else "") + text


def _mantissa(v: float, int_ph: list[int], tokens: list[Token], decimals: int):
    """Scientific notation: the mantissa (rounded) and the exponent. With a # among several
    integer places the exponent is a multiple of their count (engineering notation)."""
    places = max(len(int_ph), 1)
    step = places if places > 1 and any(tokens[i].text == "#" for i in int_ph) else 1
    if v == 0:
        return _round(0.0, decimals), 0
    _, e = digits15(v)
    exp = (e // step) * step if step > 1 else e - (places - 1)
    mant = _round(v / 10.0**exp, decimals)
    if mant >= Decimal(10) ** (places if step == 1 else step):
        exp += step
        mant = _round(v / 10.0**exp, decimals)
    return mant, exp


def _fill_integer(tokens, int_ph, digits: str, grouping: bool, out: dict) -> None:
    """Digits fill the integer placeholders from the right; what is left goes to the first."""
    shown = []  # per placeholder, right to left
    for k, i in enumerate(reversed(int_ph)):
        if k < len(digits):
            shown.append(digits[len(digits) - 1 - k])
        else:
            shown.append({"0": "0", "?": " ", "#": ""}[tokens[i].text])
    if int_ph and len(digits) > len(int_ph):
        shown[-1] = digits[: len(digits) - len(int_ph) + 1]
    if grouping:
        count = 0
        for k, s in enumerate(shown):
            grouped = ""
            for ch in reversed(s):
                if ch.isdigit():
                    if count and count % 3 == 0:
                        grouped = ch + "," + grouped
                    else:
                        grouped = ch + grouped
                    count += 1
                else:
                    grouped = ch + grouped
            shown[k] = grouped
    for i, s in zip(reversed(int_ph), shown, strict=True):
        out[i] = s


def _fill_decimals(tokens, dec_ph, digits: str, out: dict) -> None:
    trailing = True
    for k in range(len(dec_ph) - 1, -1, -1):
        i, d = dec_ph[k], digits[k]
        kind = tokens[i].text
        if trailing and d == "0" and kind in "#?":
            out[i] = "" if kind == "#" else " "
        else:
            trailing = False
            out[i] = d


def _fraction_layout(tokens: list[Token]):
    """The placeholders of a fraction format: (integer, numerator, denominator, fixed
    denominator or None), or None if the slash does not separate two numbers."""
    slash = next(i for i, t in enumerate(tokens) if t.kind == "slash")
    num = []
    i = slash - 1
    while i >= 0 and tokens[i].kind == "digit":
        num.insert(0, i)
        i -= 1
    if not num:
        return None
    den, fixed, j = [], "", slash + 1
    if j < len(tokens) and tokens[j].kind == "lit" and tokens[j].text in "123456789":
        while j < len(tokens) and tokens[j].text.isdigit():  # a fixed denominator: ?/16
            fixed, j = fixed + tokens[j].text, j + 1
    else:
        while j < len(tokens) and tokens[j].kind == "digit":
            den, j = den + [j], j + 1
    whole = [k for k in range(num[0]) if tokens[k].kind == "digit"]
    if not den and not fixed:
        return None
    return whole, num, den, (int(fixed) if fixed else None), slash, j


def _fraction(tokens: list[Token], x: float) -> str:
    whole_ph, num_ph, den_ph, fixed, slash, end = _fraction_layout(tokens)
    v = abs(x)
    whole = math.floor(v) if whole_ph else 0
    rest = v - whole
    if fixed:
        num, den = int(_round(rest * fixed, 0)), fixed
    else:
        f = Fraction(rest).limit_denominator(10 ** len(den_ph) - 1)
        num, den = f.numerator, f.denominator
    if whole_ph and num == den:
        whole, num = whole + 1, 0
    out = {i: t.text if t.kind in ("lit", "percent") else "" for i, t in enumerate(tokens)}
    if whole_ph:
        digits = str(whole) if whole or num == 0 else ""
        _fill_integer(tokens, whole_ph, digits, False, out)
    if num == 0 and whole_ph:  # a whole number: the fraction's ? places become spaces
        padded = any(tokens[i].text == "?" for i in range(num_ph[0], end))
        for i in range(whole_ph[-1] + 1, end):
            out[i] = " " if padded and (tokens[i].text == "?" or i < num_ph[0]) else ""
        if padded:
            out[slash] = " "
    else:
        _fill_integer(tokens, num_ph, str(num), False, out)
        out[slash] = "/"
        den_text = str(den)
        if den_ph:
            pads = "".join(" " if tokens[i].text == "?" else "" for i in den_ph[len(den_text) :])
            out[den_ph[0]] = den_text + pads
            for i in den_ph[1:]:
                out[i] = ""
        else:
            for i in range(slash + 1, end):
                out[i] = ""
            out[slash] = "/" + den_text
    negative = x < 0 and (whole or num)
    return ("-" if negative else "") + "".join(out[i] for i in range(len(tokens)))


# -- dates and times --------------------------------------------------------------------------


def _date(section: Section, x: float) -> str:
    tokens = [t for t in section.tokens if t.kind != "fill"]
    for k, t in enumerate(tokens):  # digits only as fractions of a second: s.00
        if t.kind == "digit" and not (t.text == "0" and _after_seconds_point(tokens, k)):
            raise FormatError("digit placeholders in a date format")
        if t.kind in ("exp", "percent", "general", "at"):
            raise FormatError("a date format with a number code")
    if not 0 <= x < dates.last() + 1:
        raise FormatError("not a date Excel can show")
    decimals = _second_decimals(tokens)
    days, h, m, s, frac = dates.split_time(x, decimals)
    if days > dates.last():
        raise FormatError("not a date Excel can show")
    y, mo, d = dates.ymd(days)
    ampm = any(t.kind == "date" and _AMPM.fullmatch(t.text) for t in tokens)
    codes = [k for k, t in enumerate(tokens) if t.kind == "date"]
    out = []
    for k, t in enumerate(tokens):
        if t.kind == "point" and _second_decimals(tokens[k:], start=True):
            n = _second_decimals(tokens[k:], start=True)
            out.append("." + f"{frac:.{n}f}"[2:])
            continue
        if t.kind == "digit":
            continue
        if t.kind != "date":
            out.append(t.text)
            continue
        c = t.text
        if _AMPM.fullmatch(c):
            pm = h >= 12
            first, second = c.split("/")
            out.append(second if pm else first)
        elif c.startswith("["):
            unit, width = c[1], len(c) - 2
            total = {"h": days * 24 + h, "m": (days * 24 + h) * 60 + m}.get(unit)
            if total is None:
                total = ((days * 24 + h) * 60 + m) * 60 + s
            out.append(str(total).rjust(width, "0"))
        elif c[0] == "y":
            out.append(f"{y % 100:02d}" if len(c) <= 2 else f"{y:04d}")
        elif c[0] == "e":
            out.append(f"{y:04d}")
        elif c[0] == "d":
            out.append(_day(c, d, days))
        elif c[0] == "h":
            hh = (h % 12 or 12) if ampm else h
            out.append(f"{hh:02d}" if len(c) > 1 else str(hh))
        elif c[0] == "s":
            out.append(f"{s:02d}" if len(c) > 1 else str(s))
        elif _is_minute(tokens, codes, k):
            out.append(f"{m:02d}" if len(c) > 1 else str(m))
        else:
            out.append(_month(c, mo))
    return "".join(out)


def _day(code: str, d: int, days: int) -> str:
    if len(code) == 1:
        return str(d)
    if len(code) == 2:
        return f"{d:02d}"
    name = dates.DAYS[dates.weekday(days)]
    return name[:3] if len(code) == 3 else name


def _month(code: str, mo: int) -> str:
    name = dates.MONTHS[mo - 1]
    return {1: str(mo), 2: f"{mo:02d}", 3: name[:3], 5: name[0]}.get(len(code), name)


def _is_minute(tokens: list[Token], codes: list[int], k: int) -> bool:
    """m is a minute right after an hour or right before a second, else a month."""
    pos = codes.index(k)
    before = tokens[codes[pos - 1]].text if pos > 0 else ""
    after = tokens[codes[pos + 1]].text if pos + 1 < len(codes) else ""
    return before.lstrip("[").startswith("h") or after.lstrip("[").startswith("s")


def _after_seconds_point(tokens: list[Token], k: int) -> bool:
    j = k
    while j > 0 and tokens[j - 1].kind == "digit" and tokens[j - 1].text == "0":
        j -= 1
    return (
        j >= 2
        and tokens[j - 1].kind == "point"
        and tokens[j - 2].kind == "date"
        and tokens[j - 2].text.lstrip("[").startswith("s")
    )


def _second_decimals(tokens: list[Token], start: bool = False) -> int:
    """How many decimals of a second the format shows (s.000 → 3); with start, only for a
    point at tokens[0]."""
    for k, t in enumerate(tokens):
        if t.kind == "point" and (not start or k == 0):
            n = 0
            while k + 1 + n < len(tokens) and tokens[k + 1 + n].kind == "digit":
                n += 1
            if n and (start or _after_seconds_point(tokens, k + 1)):
                return n
        if start:
            return 0
    return 0
