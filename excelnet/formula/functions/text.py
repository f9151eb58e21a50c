"""TEXT: Excel's text functions. Positions and lengths count UTF-16 code units, as Excel's do
(an emoji is two characters); numbers become text as a formula writes them (numfmt); every
function works element by element over arrays and copied-down blocks, and has no gradient.

The REGEX functions use Python's `re` where Excel uses PCRE2: the common syntax is the same;
PCRE2's \\p{…} classes, possessive quantifiers before Python 3.11, recursion and (*VERB)s are
not available (the pattern is then #VALUE!, as a pattern Excel cannot read)."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import torch

from excelnet.formula.functions.kit import cellwise, row_index, row_lists
from excelnet.formula.functions.registry import FUNCTIONS, registrar
from excelnet.formula.numfmt import (
    FormatError,
    format_value,
    number_text,
    parse_number,
    rounded,
)
from excelnet.formula.parse import Error
from excelnet.formula.values import (
    TEXT,
    Omitted,
    V,
    from_python,
    make,
    scalar,
    to_bool,
    to_number,
)

excel = registrar("TEXT")

VALUE = Error("#VALUE!")
NA = Error("#N/A")
LIMIT = 32767  # the most characters a cell holds


# -- UTF-16 code units ------------------------------------------------------------------------


def units(s: str) -> str:
    """s with each UTF-16 code unit as one character (a surrogate pair as two)."""
    if s.isascii() or max(s) < "\U00010000":
        return s
    return "".join(chr(u) for u in memoryview(s.encode("utf-16-le")).cast("H"))


def joined(u: str) -> str:
    """The inverse of `units` (a lone surrogate stays as it is)."""
    if u.isascii() or not any("\ud800" <= c <= "\udfff" for c in u):
        return u
    return u.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _text_result(s: str) -> str | Error:
    return VALUE if len(units(s)) > LIMIT else s


# -- length, pieces, case ---------------------------------------------------------------------


@excel("LEN", args="t", gradient=False, cellwise=True)
def f_len(s: str):
    return float(len(units(s)))


@excel("LEFT", args="tn?", gradient=False, cellwise=True)
def f_left(s: str, n: float = 1.0):
    return VALUE if n < 0 else joined(units(s)[: int(n)])


@excel("RIGHT", args="tn?", gradient=False, cellwise=True)
def f_right(s: str, n: float = 1.0):
    if n < 0:
        return VALUE
    u, n = units(s), int(n)
    return joined(u[len(u) - n :]) if n else ""


@excel("MID", args="tnn", gradient=False, cellwise=True)
def f_mid(s: str, start: float, n: float):
    if start < 1 or n < 0:
        return VALUE
    start = int(start) - 1
    return joined(units(s)[start : start + int(n)])


@excel("LOWER", args="t", gradient=False, cellwise=True)
def f_lower(s: str):
    return "".join(map(_lower, s))


@excel("UPPER", args="t", gradient=False, cellwise=True)
def f_upper(s: str):
    return "".join(map(_upper, s))


@lru_cache(maxsize=4096)
def _upper(c: str) -> str:
    """Excel maps case one character to one character, by Unicode's simple mappings:
    UPPER("ß") stays "ß", UPPER("ᾳ") is "ᾼ" (not "ΑΙ")."""
    mapped = c.upper()
    if len(mapped) == 1:
        return mapped
    title = c.title()
    return title if len(title) == 1 else c


@lru_cache(maxsize=4096)
def _lower(c: str) -> str:
    mapped = c.lower()
    if len(mapped) == 1:
        return mapped
    return "i" if c == "\u0130" else c  # İ: its simple lower case is i


@excel("PROPER", args="t", gradient=False, cellwise=True)
def f_proper(s: str) -> str:
    """A letter after a letter is lower case, any other letter upper case ("2nd" → "2Nd",
    "don't" → "Don'T", as Excel does)."""
    out, prev_letter = [], False
    for c in s:
        out.append(_lower(c) if prev_letter else _upper(c))
        prev_letter = c.isalpha()
    return "".join(out)


@excel("TRIM", args="t", gradient=False, cellwise=True)
def f_trim(s: str):
    """Spaces (only the space character) at either end removed, runs inside cut to one."""
    return re.sub(" +", " ", s.strip(" "))


@excel("CLEAN", args="t", gradient=False, cellwise=True)
def f_clean(s: str):
    """The non-printing characters 0-31 removed."""
    return "".join(c for c in s if ord(c) >= 32)


@excel("EXACT", args="tt", gradient=False, cellwise=True)
def f_exact(a: str, b: str):
    return a == b


@excel("REPT", args="tn", gradient=False, cellwise=True)
def f_rept(s: str, n: float):
    if n < 0 or len(units(s)) * int(n) > LIMIT:
        return VALUE
    return s * int(n)


# -- finding and replacing --------------------------------------------------------------------


def _find(needle: str, hay: str, start: float = 1.0, pattern=None):
    hay = units(hay)
    if start < 1 or start > len(hay):
        return VALUE
    start = int(start) - 1
    if pattern is None:
        pos = hay.find(units(needle), start)
    else:
        m = pattern.search(hay, start)
        pos = m.start() if m else -1
    return VALUE if pos < 0 else float(pos + 1)


@lru_cache(maxsize=1024)
def wildcard(pattern: str, whole: bool = False) -> re.Pattern:
    """Excel's wildcards as a case-insensitive regular expression: ? one character, * any
    run, ~ makes the next character plain (a ~ at the end matches nothing). With `whole`,
    the pattern must match the entire text."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "~":
            if i + 1 < len(pattern):
                out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append("." if c == "?" else ".*" if c == "*" else re.escape(c))
        i += 1
    body = "".join(out)
    return re.compile(f"(?:{body})\\Z" if whole else body, re.I | re.S)


@excel("FIND", args="ttn?", gradient=False, cellwise=True)
def f_find(needle: str, hay: str, start: float = 1.0):
    """Case-sensitive, no wildcards."""
    return _find(needle, hay, start)


@excel("SEARCH", args="ttn?", gradient=False, cellwise=True)
def f_search(needle: str, hay: str, start: float = 1.0):
    """Case-insensitive, with wildcards."""
    return _find(needle, hay, start, wildcard(units(needle)))


@excel("SUBSTITUTE", args="tttn?", gradient=False, cellwise=True)
def f_substitute(s: str, old: str, new: str, instance: float | None = None):
    if instance is not None and instance < 1:
        return VALUE
    if not old:
        return s
    if instance is None:
        return _text_result(s.replace(old, new))
    parts = s.split(old)
    n = int(instance)
    if n >= len(parts):
        return s
    return _text_result(old.join(parts[:n]) + new + old.join(parts[n:]))


@excel("REPLACE", args="tnnt", gradient=False, cellwise=True)
def f_replace(s: str, start: float, n: float, new: str):
    if start < 1 or n < 0:
        return VALUE
    u, start = units(s), int(start) - 1
    return _text_result(joined(u[:start]) + new + joined(u[start + int(n) :]))


# -- TEXTBEFORE, TEXTAFTER --------------------------------------------------------------------


def _occurrences(hay: str, needles: list[str]) -> list[tuple[int, int]]:
    """Where the delimiters occur, left to right, without overlapping (the longest where two
    start at the same place)."""
    out, i = [], 0
    while i <= len(hay):
        hits = [(hay.find(d, i), -len(d)) for d in needles]
        hits = [h for h in hits if h[0] >= 0]
        if not hits:
            break
        pos, neg_len = min(hits)
        out.append((pos, pos - neg_len))
        i = pos - neg_len if neg_len else pos + 1
    return out


def _text_around(before: bool):
    def fn(text, delims, instance=1.0, mode=0.0, end=0.0, if_not_found=None, *, given=False):
        if mode not in (0, 1) or end not in (0, 1):
            return VALUE
        # Excel loses the sign of a negative instance that is not whole: -1.6 counts as 1
        n = int(instance) if float(instance).is_integer() else int(abs(instance))
        u, ds = units(text), [units(d) for d in delims]
        if n == 0 or (given and abs(n) > len(u) - min(map(len, ds)) + 1):
            return VALUE
        hay, needles = (u.lower(), [d.lower() for d in ds]) if mode else (u, ds)
        if "" in needles:
            spots = [(0, 0)] if n > 0 else [(len(u), len(u))]
        else:
            spots = _occurrences(hay, needles)
            if end:
                spots = spots + [(len(u), len(u))] if n > 0 else [(0, 0)] + spots
        if abs(n) > len(spots):
            return NA if if_not_found is None else if_not_found
        start, stop = spots[n - 1] if n > 0 else spots[n]
        return joined(u[:start]) if before else joined(u[stop:])

    return fn


def _delimiters(ctx, args: list[V], before: bool) -> V:
    given = len(args) >= 3 and not isinstance(args[2], Omitted)
    defaults = [1.0, 0.0, 0.0]  # an argument left empty takes its default, as left out
    args = (
        args[:2]
        + [
            scalar(defaults[k], ctx) if isinstance(a, Omitted) else a
            for k, a in enumerate(args[2:5])
        ]
        + [a for a in args[5:] if not isinstance(a, Omitted)]
    )
    rows = max(v.shape[0] for v in args)
    delims, errs = row_lists(args[1], "t", rows)
    fn = _text_around(before)
    # the delimiter argument may list several delimiters: each block row's, by row number
    rest = [args[0], row_index(ctx, rows), *args[2:]]
    how = "tn" + "nnne"[: len(args) - 2]  # the delimiters' row, then as registered

    def apply(text, r, *more):
        if errs[int(r)]:
            return Error(errs[int(r)])
        if len(more) == 4 and more[3] is None:
            more = (*more[:3], "")  # a blank cell given for if_not_found
        return fn(text, delims[int(r)], *more, given=given)

    return cellwise(ctx, rest, how, apply)


@excel("_xlfn.TEXTBEFORE", args="trn?n?n?e?", gradient=False)
def f_textbefore(ctx, args):
    return _delimiters(ctx, args, True)


@excel("_xlfn.TEXTAFTER", args="trn?n?n?e?", gradient=False)
def f_textafter(ctx, args):
    return _delimiters(ctx, args, False)


# -- joining ----------------------------------------------------------------------------------


@excel("CONCATENATE", args="t{1,255}", gradient=False, cellwise=True)
def f_concatenate(*s: str):
    """Each argument a single value (arrays element by element, like &)."""
    return _text_result("".join(s))


def _per_row(ctx, rows: int, fn) -> V:
    out = np.empty((rows, 1, 1), dtype=object)
    for r in range(rows):
        out[r, 0, 0] = fn(r)
    return from_python(out, ctx)


@excel("_xlfn.CONCAT", args="r{1,253}", gradient=False)
def f_concat(ctx, args):
    """Every element of every argument (ranges and arrays row by row), joined."""
    rows = max(v.shape[0] for v in args)
    parts = [row_lists(v, "t", rows) for v in args]

    def row(r: int):
        err = next((e[r] for _, e in parts if e[r] is not None), None)
        return Error(err) if err else _text_result("".join("".join(t[r]) for t, _ in parts))

    return _per_row(ctx, rows, row)


@excel("_xlfn.TEXTJOIN", args="rbr{1,252}", gradient=False)
def f_textjoin(ctx, args):
    """TEXTJOIN(delimiter, ignore_empty, text1, …): the delimiters (several cycle) between
    the elements, empty texts and blank cells left out when ignore_empty is TRUE."""
    rows = max(v.shape[0] for v in args)
    delims, delim_errs = row_lists(args[0], "t", rows)
    skip, skip_errs = to_bool(args[1])
    skip = np.broadcast_to(skip.cpu().numpy(), args[1].shape)
    parts = [row_lists(v, "v", rows) for v in args[2:]]

    def row(r: int):
        err = delim_errs[r] or (None if skip_errs is None else skip_errs.reshape(-1)[0])
        err = err or next((e[r] for _, e in parts if e[r] is not None), None)
        if err:
            return Error(err)
        items = [as_text(x) for vals, _ in parts for x in vals[r]]
        if skip[min(r, skip.shape[0] - 1)].reshape(-1)[0]:
            items = [s for s in items if s != ""]
        ds = delims[r] or [""]
        text = "".join(
            s + (ds[k % len(ds)] if k < len(items) - 1 else "") for k, s in enumerate(items)
        )
        return _text_result(text)

    return _per_row(ctx, rows, row)


def as_text(x) -> str:
    """A Python value (see kit.elements "v") as text."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "TRUE" if x else "FALSE"
    if isinstance(x, float):
        return number_text(x)
    if isinstance(x, Error):
        return x.code
    return str(x)


# -- numbers and text -------------------------------------------------------------------------


@excel("T", args="v", gradient=False, cellwise=True)
def f_t(x):
    return x if isinstance(x, str) else ""


@excel("VALUE", args="v", gradient=False, cellwise=True)
def f_value(x):
    """A number, or text read as one ("1,234", "40%", "$5", dates and times); TRUE is not."""
    if x is None:
        return 0.0
    if isinstance(x, bool):
        return VALUE
    if isinstance(x, str):
        n = parse_number(x)
        return VALUE if n is None else n
    return x


@excel("_xlfn.VALUETOTEXT", args="en?", gradient=False, cellwise=True)
def f_valuetotext(x, form: float = 0.0):
    """VALUETOTEXT(value, [format]): 0 concise, 1 strict (text in quotes); errors as text."""
    if form not in (0, 1):
        return VALUE
    if form == 1 and isinstance(x, str):
        return '"' + x.replace('"', '""') + '"'
    return as_text(x)


@excel("TEXT", args="vt", gradient=False, cellwise=True)
def f_text(x, code: str):
    """TEXT(value, format_text): Excel's number format language (numfmt.format_value)."""
    if isinstance(x, str):
        n = parse_number(x)
        x = x if n is None else n
    elif isinstance(x, bool):
        x = "TRUE" if x else "FALSE"
    try:
        return _text_result(format_value(0.0 if x is None else x, code))
    except FormatError:
        return VALUE


@excel("FIXED", args="nn?n?", gradient=False, cellwise=True)
def f_fixed(x: float, decimals: float = 2.0, no_commas: float = 0.0):
    """FIXED(number, [decimals=2], [no_commas=FALSE]): rounded, as text."""
    d = int(decimals)
    if d > 127:
        return VALUE
    if d < 0:
        x, d = rounded(x, d), 0
    code = ("0" if no_commas else "#,##0") + ("." + "0" * d if d else "")
    return format_value(x, code)


# -- characters -------------------------------------------------------------------------------


@excel("_xlfn.UNICODE", args="t", gradient=False, cellwise=True)
def f_unicode(s: str):
    return float(ord(s[0])) if s else VALUE


@excel("_xlfn.UNICHAR", args="n", gradient=False, cellwise=True)
def f_unichar(n: float):
    n = int(n)
    if not 1 <= n <= 0x10FFFF:
        return VALUE
    return NA if 0xD800 <= n <= 0xDFFF else chr(n)


def _cp1252(n: int) -> str:
    try:
        return bytes([n]).decode("cp1252")
    except UnicodeDecodeError:  # 129, 141, 143, 144, 157: undefined, Excel gives the control
        return chr(n)


@excel("CHAR", args="n", gradient=False, cellwise=True)
def f_char(n: float):
    """The character of a code 1-255 in Windows' character set (Windows-1252)."""
    return _cp1252(int(n)) if 1 <= n < 256 else VALUE


@excel("CODE", args="t", gradient=False, cellwise=True)
def f_code(s: str):
    if not s:
        return VALUE
    try:
        return float(s[0].encode("cp1252")[0])
    except UnicodeEncodeError:
        return 63.0 if ord(s[0]) > 255 else float(ord(s[0]))


# -- regular expressions ----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _regex(pattern: str, insensitive: bool) -> re.Pattern | None:
    try:
        return re.compile(pattern, re.I if insensitive else 0)
    except re.error:
        return None


def _pattern(pattern: str, case: float):
    if case not in (0, 1):
        return VALUE
    compiled = _regex(pattern, bool(case))
    return VALUE if compiled is None else compiled


@excel("_xlfn.REGEXTEST", args="ttn?", gradient=False, cellwise=True)
def f_regextest(text: str, pattern: str, case: float = 0.0):
    p = _pattern(pattern, case)
    return p if isinstance(p, Error) else p.search(text) is not None


def _replacement(template: str) -> str:
    """PCRE2's $1, ${1}, $0 and $$ in Python's terms."""
    out = re.sub(r"\\", r"\\\\", template)
    out = re.sub(
        r"\$(?:(\d+)|\{(\d+)\}|(\$))", lambda m: "$" if m[3] else f"\\g<{m[1] or m[2]}>", out
    )
    return out


@excel("_xlfn.REGEXREPLACE", args="tttn?n?", gradient=False, cellwise=True)
def f_regexreplace(text: str, pattern: str, repl: str, occurrence: float = 0.0, case: float = 0.0):
    """REGEXREPLACE(text, pattern, replacement, [occurrence=0 all, n: the nth, -n: from the
    end], [case_sensitivity])."""
    p = _pattern(pattern, case)
    if isinstance(p, Error):
        return p
    template, n = _replacement(repl), int(occurrence)
    try:
        if n == 0:
            return _text_result(p.sub(template, text))
        matches = list(p.finditer(text))
        if abs(n) > len(matches):
            return text
        m = matches[n - 1] if n > 0 else matches[n]
        return _text_result(text[: m.start()] + m.expand(template) + text[m.end() :])
    except (re.error, IndexError):
        return VALUE


@excel("_xlfn.REGEXEXTRACT", args="ttn?n?", gradient=False, array_result=True)
def f_regexextract(ctx, args):
    """REGEXEXTRACT(text, pattern, [return_mode: 0 first match, 1 all matches, 2 the first
    match's groups], [case_sensitivity]). Modes 1 and 2 give a row of texts for a single text;
    over an array or a copied-down block each cell keeps the first."""

    def extract(text: str, pattern: str, mode: float = 0.0, case: float = 0.0):
        p = _pattern(pattern, case)
        if isinstance(p, Error):
            return p
        if mode not in (0, 1, 2):
            return VALUE
        m = p.search(text)
        if m is None:
            return NA
        if mode == 0:
            return m.group(0)
        if mode == 1:
            return tuple(x.group(0) for x in p.finditer(text))
        return tuple("" if g is None else g for g in m.groups()) or (m.group(0),)

    out = {}

    def first(*a):
        r = extract(*a)
        out["last"] = r
        return r[0] if isinstance(r, tuple) else r

    v = cellwise(ctx, args, "ttnn"[: len(args)], first)
    if v.shape == (1, 1, 1) and isinstance(out.get("last"), tuple):
        items = out["last"]
        x = torch.zeros((1, 1, len(items)), dtype=ctx.dtype, device=ctx.device)
        kind = np.full((1, 1, len(items)), TEXT, np.int8)
        return make(x, kind, np.array(items, dtype=object).reshape(1, 1, -1))
    return v


# -- byte-counting twins, widths, currency, Thai, numbers in any notation ---------------------

# LENB, LEFTB, …: bytes where the default language is a double-byte one; otherwise (as in
# Excel in English, whose answers these are) the same as their twins.
for _twin, _b in (
    ("LEN", "LENB"),
    ("LEFT", "LEFTB"),
    ("RIGHT", "RIGHTB"),
    ("MID", "MIDB"),
    ("FIND", "FINDB"),
    ("SEARCH", "SEARCHB"),
    ("REPLACE", "REPLACEB"),
):
    _f = FUNCTIONS[_twin]
    excel(_b, args=_f.args.spec, gradient=False)(lambda ctx, args, _fn=_f.fn: _fn(ctx, args))


def _half_width() -> dict[str, str]:
    """Full-width characters and their half-width forms: ASCII's (U+FF01-FF5E), the ideographic
    space, and katakana (a voiced one to two characters, ｶﾞ)."""
    import unicodedata

    table = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
    table["\u3000"] = " "
    for c in range(0xFF61, 0xFFA0):
        full = unicodedata.normalize("NFKC", chr(c))
        if len(full) == 1 and full != chr(c):
            table.setdefault(full, chr(c))
    for full in map(chr, range(0x30A1, 0x30FF)):  # ガ → ｶﾞ, パ → ﾊﾟ
        base = unicodedata.normalize("NFD", full)
        if len(base) == 2 and base[0] in table and base[1] in "\u3099\u309a":
            table[full] = table[base[0]] + ("\uff9e" if base[1] == "\u3099" else "\uff9f")
    return table


_HALF = _half_width()
_FULL = {half: full for full, half in _HALF.items()}


@excel("ASC", args="t", gradient=False, cellwise=True)
def f_asc(s: str):
    """Full-width (double-byte) letters, digits, signs and katakana to half-width."""
    return "".join(_HALF.get(c, c) for c in s)


@excel("JIS", "DBCS", args="t", gradient=False, cellwise=True)
def f_jis(s: str):
    """Half-width letters, digits, signs and katakana to full-width (JIS in files, DBCS in
    Excel in English); a katakana and its voicing mark become one character."""
    out, i = [], 0
    while i < len(s):
        pair = s[i : i + 2]
        if len(pair) == 2 and pair in _FULL:
            out.append(_FULL[pair])
            i += 2
            continue
        out.append(_FULL.get(s[i], s[i]))
        i += 1
    return "".join(out)


@excel("DOLLAR", args="nn?", gradient=False, cellwise=True)
def f_dollar(x: float, decimals: float = 2.0):
    """DOLLAR(number, [decimals=2]): rounded, as text in the currency format ("$1,234.57",
    negatives in parentheses: "($1,234.57)")."""
    d = int(decimals)
    if d > 127:
        return VALUE
    x = rounded(x, d)
    digits = format_value(abs(x), "#,##0" + ("." + "0" * d if d > 0 else ""))
    return f"(${digits})" if x < 0 else f"${digits}"


_THAI = ["", "หนึ่ง", "สอง", "สาม", "สี่", "ห้า", "หก", "เจ็ด", "แปด", "เก้า"]
_THAI_POWERS = {2: "ร้อย", 3: "พัน", 4: "หมื่น", 5: "แสน"}


def _thai_block(block: str) -> str:
    """Up to six digits (1 to 999,999) in Thai words."""
    out = []
    for power, digit in zip(range(len(block) - 1, 1, -1), block, strict=False):
        if digit != "0":
            out.append(_THAI[int(digit)] + _THAI_POWERS[power])
    ten = block[-2] if len(block) > 1 else "0"
    one = block[-1]
    if ten != "0":
        out.append({"1": "", "2": "ยี่"}.get(ten, _THAI[int(ten)]) + "สิบ")
    if ten != "0" and one == "1":
        out.append("เอ็ด")
    elif one != "0":
        out.append(_THAI[int(one)])
    return "".join(out)


@excel("BAHTTEXT", args="n", gradient=False, cellwise=True)
def f_bahttext(x: float):
    """A number as Thai words for baht and satang (two decimals), "ถ้วน" when no satang."""
    baht, satang = f"{rounded(abs(x), 2):.2f}".split(".")
    if baht == "0" and satang == "00":
        return "ศูนย์บาทถ้วน"
    out = "ลบ" if x < 0 else ""
    if baht != "0":
        blocks, first = [], len(baht) % 6 or 6
        blocks.append(baht[:first])
        blocks += [baht[i : i + 6] for i in range(first, len(baht), 6)]
        out += "ล้าน".join(_thai_block(b) for b in blocks) + "บาท"
    return out + ("ถ้วน" if satang == "00" else _thai_block(satang) + "สตางค์")


@excel("_xlfn.NUMBERVALUE", args="tt?t?", gradient=False, cellwise=True)
def f_numbervalue(text: str, decimal: str | None = None, group: str | None = None):
    """NUMBERVALUE(text, [decimal_separator], [group_separator]): text in any notation as a
    number — spaces ignored, group separators before the decimal one dropped (after it
    #VALUE!), each % at the end dividing by 100; an empty text is 0."""
    decimal = "." if decimal is None else decimal[:1]
    group = "," if group is None else group[:1]
    if not decimal or decimal == group:
        return VALUE
    t = re.sub(r"\s", "", text)
    percent = len(t) - len(t.rstrip("%"))
    t = t[: len(t) - percent]
    if t == "":
        return 0.0 if not percent else VALUE
    if t.count(decimal) > 1:
        return VALUE
    whole, _, fraction = t.partition(decimal)
    if group and group in fraction:
        return VALUE
    if group:
        whole = whole.replace(group, "")
    plain = whole + ("." + fraction if _ else "")
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", plain):
        return VALUE
    return float(plain) / 100.0**percent


@excel("PHONETIC", args="r", gradient=False)
def f_phonetic(ctx, args):
    """PHONETIC(reference): the furigana of the text in the range's first cell; a workbook
    that stores none gives the text itself ("" for a number)."""
    v = args[0]
    rows = v.shape[0]

    def first(row):
        k, t = v.kinds()[row, 0, 0], v.texts()[row, 0, 0]
        if k == TEXT:
            return str(t)
        return Error(str(t)) if k == 4 else ""

    out = np.array([first(r) for r in range(rows)], dtype=object).reshape(rows, 1, 1)
    return from_python(out, ctx)


@excel("_xlfn.ARRAYTOTEXT", args="rn?", gradient=False)
def f_arraytotext(ctx, args):
    """ARRAYTOTEXT(array, [format]): the values of an array as one text — 0 (concise) joined
    by ", ", 1 (strict) as an array constant, text in quotes, rows split by ";"."""
    rows = args[0].shape[0]
    values, _ = row_lists(args[0], "e", rows)
    form = 0.0
    if len(args) == 2 and not isinstance(args[1], Omitted):
        f, errs = to_number_of(args[1])
        if errs is not None:
            return from_python(np.array([[[Error(errs)]]], dtype=object), ctx)
        form = f
    if form not in (0, 1):
        return from_python(np.array([[[VALUE]]], dtype=object), ctx)
    width = args[0].shape[2]

    def one(items):
        if form == 0:
            return ", ".join(as_text(x) for x in items)
        cells = [
            '"' + x.replace('"', '""') + '"' if isinstance(x, str) else as_text(x) for x in items
        ]
        lines = [",".join(cells[i : i + width]) for i in range(0, len(cells), width)]
        return "{" + ";".join(lines) + "}"

    out = np.array([_text_result(one(v)) for v in values], dtype=object).reshape(rows, 1, 1)
    return from_python(out, ctx)


def to_number_of(v: V) -> tuple[float, str | None]:
    """A single argument as a number (its first element), or its error code."""
    x, errs = to_number(v)
    if errs is not None and errs.reshape(-1)[0] is not None:
        return 0.0, str(errs.reshape(-1)[0])
    return float(x.reshape(-1)[0]), None
