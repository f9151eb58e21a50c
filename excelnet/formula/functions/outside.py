"""The functions that reach outside the workbook — to the web (ENCODEURL, FILTERXML,
WEBSERVICE), an OLAP cube (CUBEVALUE, CUBEMEMBER, …), a real-time data server (RTD), a pivot
table (GETPIVOTDATA), linked data types (FIELDVALUE), images and stock prices (IMAGE,
STOCKHISTORY), the system (INFO), add-ins (CALL, REGISTER.ID, EUROCONVERT) — and HYPERLINK.

What can be computed without a connection is: ENCODEURL, FILTERXML (XPath over the text it is
given), HYPERLINK's value, INFO of what does not depend on the machine, EUROCONVERT (the fixed
euro rates). The rest answer as Excel does without a connection: a cube function #NAME? (no
such connection in the workbook), WEBSERVICE #VALUE!, RTD #N/A (no server), IMAGE and
STOCKHISTORY #CONNECT!, FIELDVALUE #FIELD! (no linked data type), CALL and REGISTER.ID #NAME?
(no code resource). GETPIVOTDATA would read a pivot table's cache, which excelnet does not:
its cells keep the values the file stores.
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET

import numpy as np
import torch

from excelnet.formula.functions.kit import cellwise, row_lists
from excelnet.formula.functions.registry import registrar
from excelnet.formula.numfmt import parse_number, rounded
from excelnet.formula.parse import Error, FormulaError
from excelnet.formula.values import TEXT, V, error_value, from_python, make

web = registrar("WEB")
cube = registrar("CUBE")
lookup = registrar("LOOKUP_AND_REFERENCE")
information = registrar("INFORMATION")
financial = registrar("FINANCIAL")
add_in = registrar("ADD_IN_AND_AUTOMATION")

VALUE = Error("#VALUE!")


def _answer(code: str):
    """A function whose every call, without a connection, is the error `code` (its arguments'
    own errors first, as Excel reports them)."""

    def f(ctx, args):
        return cellwise(ctx, args, "v" * len(args), lambda *_: Error(code))

    return f


# -- the web ----------------------------------------------------------------------------------


@web("_xlfn.ENCODEURL", args="t", gradient=False, cellwise=True)
def f_encodeurl(text: str):
    """Text URL-encoded (UTF-8, every character but letters, digits and - . _ ~ as %XX)."""
    out = urllib.parse.quote(text, safe="-._~")
    return VALUE if len(out) > 32767 else out


web("_xlfn.WEBSERVICE", args="t", gradient=False)(_answer("#VALUE!"))

_ATTRIBUTE = re.compile(r"^(.*?)/?@([\w:.-]+)$")
_TEXT = re.compile(r"^(.*?)/text\(\)$")


def _xpath(document: str, path: str) -> list[str] | Error:
    """The strings an XPath selects in a document: ElementTree's paths (//, /, [n], [@a],
    [@a='v']), ending, or not, in /@attribute or /text()."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        return VALUE
    attribute = _ATTRIBUTE.match(path)
    text_only = _TEXT.match(path)
    base = attribute.group(1) if attribute else text_only.group(1) if text_only else path
    tree = ET.ElementTree(root)
    if base.startswith("//"):
        query = "." + base
    elif base.startswith("/"):  # from the document: the root is the first step
        first, _, rest = base[1:].partition("/")
        if first.split("[")[0] not in ("*", root.tag):
            return []
        query = "./" + rest if rest else "."
    else:
        query = "./" + base if base else "."
    try:
        nodes = tree.getroot().findall(query) if query != "." else [root]
    except (SyntaxError, KeyError):
        return VALUE
    if attribute:
        name = attribute.group(2)
        return [n.get(name) for n in nodes if n.get(name) is not None]
    return ["".join(n.itertext()) for n in nodes]


@web("_xlfn.FILTERXML", args="tt", gradient=False, array_result=True)
def f_filterxml(ctx, args):
    """FILTERXML(xml, xpath): the values an XPath selects, down a column (numbers where the
    text is one); nothing selected, or text that is not XML, is #VALUE!."""
    rows = max(v.shape[0] for v in args)
    documents, _ = row_lists(args[0], "e", rows)
    paths, _ = row_lists(args[1], "e", rows)
    found = []
    for doc, path in zip(documents, paths, strict=True):
        d, p = doc[0], path[0]
        if isinstance(d, Error) or isinstance(p, Error):
            found.append([d if isinstance(d, Error) else p])
            continue
        values = _xpath(_as_text(d), _as_text(p))
        if isinstance(values, Error) or not values:
            found.append([VALUE])
            continue
        found.append([_typed(x) for x in values])
    if rows == 1:
        items = found[0]
        return from_python(np.array(items, dtype=object).reshape(1, -1, 1), ctx)
    return from_python(np.array([f[0] for f in found], dtype=object).reshape(rows, 1, 1), ctx)


def _as_text(x) -> str:
    from excelnet.formula.functions.text import as_text

    return as_text(x)


def _typed(text: str):
    n = parse_number(text.strip()) if text.strip() else None
    return n if n is not None and re.fullmatch(r"\s*[-+]?[\d.]+([eE][-+]?\d+)?\s*", text) else text


# -- cubes, real-time data, pivot tables, linked data, images, stocks --------------------------

for _name in (
    "CUBEKPIMEMBER",
    "CUBEMEMBER",
    "CUBEMEMBERPROPERTY",
    "CUBERANKEDMEMBER",
    "CUBESET",
    "CUBESETCOUNT",
    "CUBEVALUE",
):
    cube(_name, args=(1, 255), gradient=False)(_answer("#NAME?"))

lookup("RTD", args=(2, 255), gradient=False)(_answer("#N/A"))
lookup("_xlfn.IMAGE", args=(1, 5), gradient=False)(_answer("#CONNECT!"))
lookup("_xlfn.FIELDVALUE", args=(2, 2), gradient=False)(_answer("#FIELD!"))
financial("_xlfn.STOCKHISTORY", args=(2, 255), gradient=False)(_answer("#CONNECT!"))


@lookup("GETPIVOTDATA", args=(2, 254), gradient=False)
def f_getpivotdata(ctx, args):
    raise FormulaError("GETPIVOTDATA reads a pivot table's cache: not supported")


@lookup("HYPERLINK", args="vv?", gradient=False)
def f_hyperlink(ctx, args):
    """HYPERLINK(link_location, [friendly_name]): the cell shows the friendly name (a number
    stays a number), else the link."""
    v = args[1] if len(args) == 2 else args[0]
    if v.kind is not None and isinstance(v.kind, int) and v.kind == 3:  # an empty cell: 0
        return V(torch.zeros(v.shape, dtype=ctx.dtype, device=ctx.device))
    kind = v.kinds()
    if (kind == 3).any():
        kind = np.where(kind == 3, 0, kind).astype(np.int8)
        return make(v.x, kind, v.text)
    return V(v.x, v.kind, v.text)


_INFO = {
    "numfile": None,  # the workbook's sheets
    "origin": "$A:$A$1",
    "recalc": "Automatic",
    "release": "16.0",
    "system": "pcdos",
}


@information("INFO", args="t", gradient=False, volatile=True)
def f_info(ctx, args):
    """INFO(type_text): "numfile", "origin", "recalc", "release", "system" as Excel 2016 or
    later on Windows answers; "directory", "osversion" and the memory ones depend on the
    machine (not supported); anything else #VALUE!."""
    v = args[0]
    if v.shape != (1, 1, 1):
        raise FormulaError("INFO of an array or down a column is not supported")
    if v.kinds()[0, 0, 0] == 4:
        return v
    what = str(v.texts()[0, 0, 0]).lower() if v.kinds()[0, 0, 0] == TEXT else ""
    if what in ("directory", "osversion", "memavail", "memused", "totmem"):
        raise FormulaError(f'INFO("{what}") depends on the machine: not supported')
    if what not in _INFO:
        return error_value("#VALUE!", (1, 1, 1), ctx)
    if what == "numfile":
        raise FormulaError('INFO("numfile") counts the open workbooks\' sheets: not supported')
    return from_python(np.array([[[_INFO[what]]]], dtype=object), ctx)


# -- add-ins ----------------------------------------------------------------------------------

add_in("CALL", args=(1, 255), gradient=False)(_answer("#NAME?"))
add_in("REGISTER.ID", args=(2, 3), gradient=False)(_answer("#NAME?"))

# The euro's fixed rates (units of each currency to one euro) and each currency's decimals.
_EURO = {
    "EUR": (1.0, 2),
    "ATS": (13.7603, 2),
    "BEF": (40.3399, 0),
    "DEM": (1.95583, 2),
    "ESP": (166.386, 0),
    "FIM": (5.94573, 2),
    "FRF": (6.55957, 2),
    "IEP": (0.787564, 2),
    "ITL": (1936.27, 0),
    "LUF": (40.3399, 0),
    "NLG": (2.20371, 2),
    "PTE": (200.482, 2),
    "GRD": (340.750, 2),
    "SIT": (239.640, 2),
    "MTL": (0.429300, 2),
    "CYP": (0.585274, 2),
    "SKK": (30.1260, 2),
    "EEK": (15.6466, 2),
    "LVL": (0.702804, 2),
    "LTL": (3.45280, 2),
    "HRK": (7.53450, 2),
    "BGN": (1.95583, 2),
}


@add_in("EUROCONVERT", args="nttb?n?", gradient=False, cellwise=True)
def f_euroconvert(x: float, source: str, target: str, full: bool = False, precision=None):
    """EUROCONVERT(number, source, target, [full_precision], [triangulation_precision]):
    between the euro and the currencies it replaced, through the euro (rounded there to the
    triangulation precision, 3 or more, when given), the result rounded to the target's
    decimals unless full precision is asked for."""
    a, b = _EURO.get(source.upper()), _EURO.get(target.upper())
    if a is None or b is None:
        return VALUE
    if precision is not None and precision != 0 and precision < 3:
        return VALUE
    if source.upper() == target.upper():
        return x
    if source.upper() == "EUR":
        out = x * b[0]
    else:
        euros = x / a[0]
        if precision:
            euros = rounded(euros, int(precision))
        out = euros * b[0]
    return out if full else rounded(out, b[1])
