"""Formula text → a small AST, using openpyxl's maintained tokenizer.

References are resolved against the formula's own cell: a Ref holds absolute 0-based
coordinates for that cell, plus whether its rows are relative (they move when the formula is
copied down, which is what lets a column of copies run as one tensor operation).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import compress, count
from operator import ne

from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError
from openpyxl.utils.cell import column_index_from_string

ERRORS = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")
NEWER_ERRORS = (
    "#GETTING_DATA",
    "#SPILL!",
    "#CONNECT!",
    "#BLOCKED!",
    "#UNKNOWN!",
    "#FIELD!",
    "#CALC!",
)  # Excel 365's, stored as rich values


class FormulaError(Exception):
    """A formula excelnet cannot read or does not support (the caller adds sheet and cell)."""


@dataclass(frozen=True)
class Error:
    """An Excel error value such as #DIV/0!."""

    code: str

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True)
class Const:
    value: float | str | bool | Error


@dataclass(frozen=True)
class Array:
    """An array constant {1,2;3,4}: rows of constants."""

    rows: tuple[tuple[float | str | bool | Error, ...], ...]


@dataclass(frozen=True)
class Ref:
    """A cell or range. r1/c1 None: to the end of the sheet's used area (A:A, 1:1)."""

    sheet: str
    r0: int
    c0: int
    r1: int | None
    c1: int | None
    rel_r0: bool = False  # the first row moves when the formula is copied down
    rel_r1: bool = False


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Structured:
    """A structured reference to an Excel Table: Table1[Age], Table1[[#This Row],[Age]],
    [@Age], Table1[[#Headers],[#Data],[a]:[c]], Table1[#Totals], Table1[]. `table` None: the
    table the formula is in. `items`: the special items, lower-case ("#all", "#data",
    "#headers", "#totals", "#this row"); `first`/`last`: the columns (None: all of them)."""

    table: str | None
    items: tuple[str, ...]
    first: str | None
    last: str | None
    text: str


@dataclass(frozen=True)
class Op:
    op: str  # + - * / ^ & = <> < > <= >=, "neg", "pos", "%", ":" (range between references)
    args: tuple


@dataclass(frozen=True)
class Chain:
    """Operators of one precedence applied left to right, a op1 b op2 c …: a long formula like
    =A1+A2+…+A2000 stays one flat node (no recursion as deep as the chain is long)."""

    ops: tuple[str, ...]
    args: tuple


@dataclass(frozen=True)
class Union:
    """A union of references: (A1:B2,D4) in Excel, A1:B2~D4 in LibreOffice."""

    areas: tuple


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple
    new: bool = False  # written _xlfn.NAME: a function Excel added after 2007


Node = Const | Array | Ref | Name | Structured | Op | Chain | Union | Call

MAX_LENGTH = 8192  # Excel's limit on a formula's length, in characters
MAX_DEPTH = 100  # parentheses, calls and arrays inside one another (Excel: 64 levels of calls)
ROWS, COLUMNS = 1_048_576, 16_384  # a sheet's size in Excel

# Excel's precedence: comparison < & < + - < * / < ^ < % < unary minus.
_INFIX = {
    "=": 1,
    "<>": 1,
    "<": 1,
    ">": 1,
    "<=": 1,
    ">=": 1,
    "&": 2,
    "+": 3,
    "-": 3,
    "*": 4,
    "/": 4,
    "^": 5,
}
_PREFIX_POWER = 7
_POSTFIX_POWER = 6

_CELL = r"(\$?)([A-Za-z]{1,3})(\$?)(\d+)"
_REF = re.compile(
    r"^(?:(?P<sheet>'(?:[^']|'')+'|[^'!:]+)!)?"
    r"(?P<a>\$?[A-Za-z]{1,3}\$?\d+|\$?[A-Za-z]{1,3}|\$?\d+)"
    r"(?::(?:(?P<sheet2>'(?:[^']|'')+'|[^'!:]+)!)?(?P<b>\$?[A-Za-z]{1,3}\$?\d+|\$?[A-Za-z]{1,3}|\$?\d+))?$"
)
_PART = re.compile(r"^(\$?)([A-Za-z]{0,3})(\$?)(\d*)$")


def unquote_sheet(s: str) -> str:
    return s[1:-1].replace("''", "'") if s.startswith("'") else s


def _corner(text: str) -> tuple[int | None, bool, int | None]:
    """'$B7' -> (row0, row_relative, col0); a missing part is None."""
    m = _PART.match(text)
    assert m is not None
    col = column_index_from_string(m.group(2).upper()) - 1 if m.group(2) else None
    row = int(m.group(4)) - 1 if m.group(4) else None
    return row, m.group(3) != "$", col


def parse_ref(text: str, sheet: str) -> Ref | None:
    """'data!$F$2:$F$892' as a Ref in absolute coordinates, or None if Excel would not read it
    as a reference: a column or a row alone (W, lr, 12) is a name, so is anything past XFD or
    row 1,048,576 (XFE1); a range joins two cells, two columns (A:C) or two rows (2:5)."""
    m = _REF.match(text)
    if not m:
        return None
    if m.group("sheet2") and unquote_sheet(m.group("sheet2")) != unquote_sheet(m.group("sheet")):
        raise FormulaError(f"3-D reference {text} is not supported")
    ref_sheet = unquote_sheet(m.group("sheet")) if m.group("sheet") else sheet
    r0, rel0, c0 = _corner(m.group("a"))
    if m.group("b") is None:
        if r0 is None or c0 is None:  # W, $B, 12: names (a number never reaches here)
            return None
        r1, rel1, c1 = r0, rel0, c0
    else:
        r1, rel1, c1 = _corner(m.group("b"))
    if (r0 is None) != (r1 is None) or (c0 is None) != (c1 is None):
        return None
    if r0 is None and c0 is None:
        return None
    if max(r0 or 0, r1 or 0) >= ROWS or max(c0 or 0, c1 or 0) >= COLUMNS:
        return None
    if r0 is None:  # A:C, whole columns
        return Ref(ref_sheet, 0, min(c0, c1), None, max(c0, c1))
    if c0 is None:  # 2:5, whole rows
        return Ref(ref_sheet, min(r0, r1), 0, max(r0, r1), None)
    if r1 < r0:
        r0, r1, rel0, rel1 = r1, r0, rel1, rel0
    return Ref(ref_sheet, r0, min(c0, c1), r1, max(c0, c1), rel0, rel1)


def split_union(text: str) -> list[str]:
    """'A1:B2~Sheet1!D4' (LibreOffice's union) or 'A1:B2,D4' → its parts, outside quotes."""
    parts, cur, quoted = [], "", False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch in ",~" and not quoted:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def _number(text: str) -> float:
    return float(text)


def _constant(tok: Token) -> float | str | bool | Error:
    if tok.subtype == Token.NUMBER:
        return _number(tok.value)
    if tok.subtype == Token.TEXT:
        return tok.value[1:-1].replace('""', '"')
    if tok.subtype == Token.LOGICAL:
        return tok.value.upper() == "TRUE"
    if tok.subtype == Token.ERROR:
        return Error(tok.value.upper())
    raise FormulaError(f"unexpected {tok.value!r}")


class _Parser:
    def __init__(self, formula: str, sheet: str):
        if len(formula) > MAX_LENGTH + 1:
            raise FormulaError(
                f"the formula is {len(formula) - 1:,} characters long; Excel allows {MAX_LENGTH:,}"
            )
        formula = prepared(formula)
        try:
            items = Tokenizer(formula).items
        except TokenizerError as e:
            raise FormulaError(f"cannot read formula {_short(formula)}: {e}") from None
        self.toks = [t for t in items if t.type != Token.WSPACE]
        depth = deepest = 0
        for t in self.toks:
            if t.subtype == Token.OPEN:
                depth += 1
                deepest = max(deepest, depth)
            elif t.subtype == Token.CLOSE:
                depth -= 1
        if deepest > MAX_DEPTH:
            raise FormulaError(
                f"the formula nests {deepest} levels deep; excelnet reads up to {MAX_DEPTH} "
                f"(Excel allows 64 levels of functions)"
            )
        self.i = 0
        self.sheet = sheet
        self.formula = formula

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise FormulaError(f"formula {_short(self.formula)} ends too early")
        self.i += 1
        return tok

    def expr(self, min_power: int = 0) -> Node:
        left = self.prefix()
        chain: list[tuple[str, Node]] = []  # operators of one power, applied left to right
        chain_power = None
        while True:
            tok = self.peek()
            if tok is None:
                break
            if tok.type == Token.OP_POST:
                if _POSTFIX_POWER < min_power:
                    break
                self.next()
                left, chain, chain_power = Op("%", (_fold(left, chain),)), [], None
                continue
            op = tok.value
            if op.startswith(":") and tok.type in (Token.FUNC, Token.OPERAND):  # OFFSET(…):B3
                self.next()
                right = (
                    self.call(op[1:-1].upper())
                    if tok.type == Token.FUNC
                    else self.reference(op[1:])
                )
                left = Op(":", (_fold(left, chain), right))
                chain, chain_power = [], None
                continue
            if tok.type == Token.OP_IN and op == ",":  # inside ( ): Excel's union operator
                if min_power > 0:
                    break
                self.next()
                left, chain, chain_power = _union(_fold(left, chain), self.expr(1)), [], None
                continue
            if tok.type != Token.OP_IN or op not in _INFIX:
                if tok.type == Token.OP_IN:
                    raise FormulaError(f"operator {op!r} is not supported")
                break
            power = _INFIX[op]
            if power < min_power:
                break
            self.next()
            # every infix operator is left-associative in Excel, ^ too: 2^3^2 = 64
            right = self.expr(power + 1)
            if chain_power is not None and power != chain_power:
                left, chain = _fold(left, chain), []
            chain.append((op, right))
            chain_power = power
        return _fold(left, chain)

    def prefix(self) -> Node:
        tok = self.next()
        if tok.type == Token.OP_PRE:
            signs = [tok.value]  # a run of signs, --x or -----x, read in one go
            while self.peek() is not None and self.peek().type == Token.OP_PRE:
                signs.append(self.next().value)
            operand = self.expr(_PREFIX_POWER)
            negations = signs.count("-")
            if negations == 0:
                return Op("pos", (operand,))
            # each minus makes a number of its operand; two are as good as any even number
            node = Op("neg", (operand,))
            return Op("neg", (node,)) if negations % 2 == 0 else node
        if tok.type == Token.OPERAND:
            if tok.subtype == Token.RANGE and tok.value.startswith("@") and len(tok.value) > 1:
                # @A1:A9 as typed (files store it _xlfn.SINGLE(A1:A9)): implicit intersection
                return Call("SINGLE", (self.reference(tok.value[1:]),), True)
            if tok.subtype == Token.RANGE:
                return self.reference(tok.value)
            return Const(_constant(tok))
        if tok.type == Token.PAREN and tok.subtype == Token.OPEN:
            inner = self.expr()
            close = self.next()
            if close.type != Token.PAREN:
                raise FormulaError(f"missing ')' in {_short(self.formula)}")
            return inner
        if tok.type == Token.FUNC and tok.subtype == Token.OPEN:
            name = tok.value[:-1]
            if name.startswith("@"):  # @INDEX(…) or @(…), as typed
                inner = self.call(name[1:].upper())
                if not name[1:]:
                    if len(inner.args) != 1:
                        raise FormulaError(f"unexpected '@(' in {_short(self.formula)}")
                    inner = inner.args[0]
                return Call("SINGLE", (inner,), True)
            if ":" in name:  # A1:OFFSET(…): a range from a cell to a reference a function makes
                start, name = name.rsplit(":", 1)
                return Op(":", (self.reference(start), self.call(name.upper())))
            return self.call(name.upper())
        if tok.type == Token.ARRAY and tok.subtype == Token.OPEN:
            return self.array()
        raise FormulaError(f"unexpected {tok.value!r} in {_short(self.formula)}")

    def call(self, name: str) -> Node:
        new = name.startswith(("_XLFN.", "_XLWS."))
        while name.startswith(("_XLFN.", "_XLWS.")):
            name = name[6:]
        args: list[Node] = []
        if (
            self.peek() is not None
            and self.peek().type == Token.FUNC
            and self.peek().subtype == Token.CLOSE
        ):
            self.next()
            return Call(name, (), new)
        while True:
            tok = self.peek()
            if tok is not None and (
                tok.type == Token.SEP or (tok.type == Token.FUNC and tok.subtype == Token.CLOSE)
            ):
                args.append(Const(_MISSING))  # an empty argument, as in IF(A1,,2)
            else:
                args.append(self.expr())
            tok = self.next()
            if tok.type == Token.FUNC and tok.subtype == Token.CLOSE:
                return Call(name, tuple(args), new)
            if tok.type != Token.SEP or tok.subtype != Token.ARG:
                raise FormulaError(f"unexpected {tok.value!r} in {_short(self.formula)}")

    def array(self) -> Node:
        rows: list[list] = [[]]
        while True:
            tok = self.next()
            if tok.type == Token.ARRAY and tok.subtype == Token.CLOSE:
                break
            if tok.type == Token.SEP:
                if tok.subtype == Token.ROW:
                    rows.append([])
                continue
            if tok.type == Token.OP_PRE and tok.value == "-":
                rows[-1].append(-_constant(self.next()))
                continue
            if tok.type != Token.OPERAND or tok.subtype == Token.RANGE:
                raise FormulaError(f"unexpected {tok.value!r} in array constant")
            rows[-1].append(_constant(tok))
        if len({len(r) for r in rows}) != 1:
            raise FormulaError("array constant rows differ in length")
        return Array(tuple(tuple(r) for r in rows))

    def reference(self, text: str) -> Node:
        if text.upper() in ERRORS:
            return Const(Error(text.upper()))
        external = _EXTERNAL.match(text)
        if "[" in text and not external:  # a structured reference (Excel Tables)
            parts = _split_range(text)
            if len(parts) == 2:  # Table1[a]:Table1[c], one token
                return Op(":", (self.reference(parts[0]), self.reference(parts[1])))
            return structured(text)
        if external and not _EXTERNAL_CELLS.match(text):
            raise FormulaError(f"{text} refers to a name in another workbook: not supported")
        if "~" in text:  # LibreOffice's union operator
            return Union(tuple(self.reference(part) for part in split_union(text)))
        ref = parse_ref(text, self.sheet)
        if ref is not None:
            return ref
        if "!" in text:
            sheet, name = text.rsplit("!", 1)
            return Name(f"{unquote_sheet(sheet)}!{name}")
        return Name(text)


# [1]Sheet!A1 or '[1]Sheet name'!A1: another workbook, by its index among the file's external
# links (the form files store; the path is in xl/externalLinks/_rels)
_EXTERNAL = re.compile(r"^'?\[\d+\]")
_EXTERNAL_CELLS = re.compile(r"^(?:'\[\d+\](?:[^']|'')+'|\[\d+\][^'!\[\]]+)!")


def prepared(formula: str) -> str:
    """A formula as the tokenizer should see it: its line breaks and tabs (Alt+Enter in Excel's
    formula bar: CR LF or LF in the file) read as the spaces they are to Excel, except inside
    text, quoted sheet names and the brackets of structured references, where they are
    characters; and inside those brackets an escaped bracket ('[ or ']) kept from the
    tokenizer, which would count it (structured() reads it back). A file may also write a
    control character as OOXML's escape _xHHHH_ (XlsxWriter writes CR as _x000D_)."""
    if "_x" in formula:
        formula = _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), formula)
    if "#" in formula:  # A1# as typed (files store it _xlfn.ANCHORARRAY(A1)): a spill
        formula = _SPILL.sub(lambda m: f"_xlfn.ANCHORARRAY({m[1]})" if m[1] else m[0], formula)
    if not any(ch in formula for ch in "\r\n\t'"):
        return formula
    out, quote, depth, escape = [], None, 0, False
    for ch in formula:
        if quote is not None:
            if ch == quote:
                quote = None
        elif depth:
            if escape:
                ch, escape = _HIDDEN.get(ch, ch), False
            elif ch == "'":
                escape = True
            else:
                depth += (ch == "[") - (ch == "]")
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth = 1
        elif ch in "\r\n\t":
            ch = " "
        out.append(ch)
    # (a doubled quote inside text closes and reopens it: the scan stays right)
    return "".join(out)


_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_SPILL = re.compile(
    r'"(?:[^"]|"")*"|\[(?:[^\[\]]|\[[^\[\]]*\])*\]|'
    r"((?<![\w.$])(?:(?:'(?:[^']|'')+'|[A-Za-z_][\w.]*)!)?\$?[A-Za-z]{1,3}\$?\d+)#"
)
# escaped brackets inside a structured reference, while the tokenizer reads the formula
_HIDDEN = {"[": "\ue000", "]": "\ue001"}
_SHOWN = {v: k for k, v in _HIDDEN.items()}


def _split_range(text: str) -> list[str]:
    """A structured reference token split at a ':' outside brackets and quotes."""
    depth, quoted, escape = 0, False, False
    for i, ch in enumerate(text):
        if escape:
            escape = False
        elif depth and ch == "'":
            escape = True
        elif not depth and ch == "'":
            quoted = not quoted
        elif not quoted and ch == "[":
            depth += 1
        elif not quoted and ch == "]":
            depth -= 1
        elif ch == ":" and not depth and not quoted:
            return [text[:i].strip(), text[i + 1 :].strip()]
    return [text]


SPECIALS = ("#all", "#data", "#headers", "#totals", "#this row")
_COMBINATIONS = {
    (),
    ("#all",),
    ("#data",),
    ("#headers",),
    ("#totals",),
    ("#this row",),
    ("#data", "#headers"),
    ("#data", "#totals"),
}


def structured(text: str) -> Structured:
    """A structured reference (Table1[…] or […]) read as Excel reads it: special items and
    column names in brackets, ' escaping the next character ('[ '] '# ''), any case, spaces
    around the items; [@a] and [@[a]:[b]] (Excel 2010's This Row); [[#This Row],a] as
    XlsxWriter writes an @ it was given."""
    start = _first_bracket(text)
    if start is None or not text.endswith("]"):
        raise FormulaError(f"cannot read the structured reference {text}")
    prefix = text[:start].strip()
    if "!" in prefix:  # Sheet!Table1[a]: a table's name is the workbook's, wherever it is
        prefix = prefix.rsplit("!", 1)[1]
    table = prefix or None
    body = text[start + 1 : -1].strip()
    items: list[str] = []
    columns: list[str] = []
    ranged = False
    if body.startswith("@"):  # [@a], [@[a]], [@[a]:[b]], [@]
        items.append("#this row")
        body = body[1:].strip()
        if body:
            parts = _items(body) if body.startswith("[") else [(_unescape(body), False, "")]
            for name, special, sep in parts:
                if special:
                    raise FormulaError(f"cannot read the structured reference {text}")
                columns.append(name)
                ranged = ranged or sep == ":"
    elif body.startswith("["):
        for name, special, sep in _items(body):
            if special:
                items.append(name.lower())
            else:
                columns.append(name)
                ranged = ranged or sep == ":"
    elif body.startswith("#"):
        items.append(" ".join(body.lower().split()))
    elif body:
        columns.append(_unescape(body))
    if any(i not in SPECIALS for i in items):
        raise FormulaError(f"unknown item in the structured reference {text}")
    key = tuple(sorted(set(items)))
    if key not in _COMBINATIONS or len(columns) > 2 or (len(columns) == 2 and not ranged):
        raise FormulaError(f"cannot read the structured reference {text}")
    first = columns[0] if columns else None
    last = columns[-1] if columns else None
    return Structured(table, key, first, last, text)


def _first_bracket(text: str) -> int | None:
    quoted = False
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif ch == "[" and not quoted:
            return i
    return None


def _unescape(name: str) -> str:
    out, escape = [], False
    for ch in name:
        if escape:
            out.append(_SHOWN.get(ch, ch))
            escape = False
        elif ch == "'":
            escape = True
        else:
            out.append(ch)
    return "".join(out)


def _items(body: str) -> list[tuple[str, bool, str]]:
    """[a],[#Data],[b]:[c] (or a plain a after a comma) → (name, is it a special item, the
    separator after it)."""
    out, i, n = [], 0, len(body)
    while i < n:
        while i < n and body[i] == " ":
            i += 1
        if i >= n:
            break
        if body[i] == "[":
            j, raw, escape = i + 1, [], False
            while j < n and (escape or body[j] != "]"):
                escape = not escape and body[j] == "'"
                raw.append(body[j])
                j += 1
            if j >= n:
                raise FormulaError(f"unclosed bracket in [{body}]")
            text, i = "".join(raw), j + 1
        else:  # a plain name: up to the next separator
            j = i
            while j < n and body[j] not in ",:":
                j += 1
            text, i = body[i:j].rstrip(), j
        while i < n and body[i] == " ":
            i += 1
        sep = body[i] if i < n and body[i] in ",:" else ""
        if i < n and not sep:
            raise FormulaError(f"cannot read [{body}]")
        i += 1 if sep else 0
        stripped = text.strip()
        special = stripped.startswith("#")
        name = " ".join(stripped.lower().split()) if special else _unescape(text)
        out.append((name, special, sep))
    return out


def ref_text(ref: Ref, sheet: str) -> str:
    """A Ref as a formula on `sheet` writes it: columns absolute, rows relative where they
    move ($B7, Data!$B$2:$C$9)."""
    from openpyxl.utils import get_column_letter

    def cell(r: int, c: int, rel: bool) -> str:
        return f"${get_column_letter(c + 1)}{'' if rel else '$'}{r + 1}"

    text = cell(ref.r0, ref.c0, ref.rel_r0)
    if (ref.r1, ref.c1) != (ref.r0, ref.c0):
        text += ":" + cell(ref.r1, ref.c1, ref.rel_r1)
    if ref.sheet == sheet:
        return text
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", ref.sheet) and not parse_ref(ref.sheet, "")
    name = ref.sheet if plain else "'" + ref.sheet.replace("'", "''") + "'"
    return f"{name}!{text}"


def _fold(left: Node, chain: list[tuple[str, Node]]) -> Node:
    if not chain:
        return left
    if len(chain) == 1:
        return Op(chain[0][0], (left, chain[0][1]))
    return Chain(tuple(op for op, _ in chain), (left, *(arg for _, arg in chain)))


def _union(left: Node, right: Node) -> Union:
    areas = (left.areas if isinstance(left, Union) else (left,)) + (
        right.areas if isinstance(right, Union) else (right,)
    )
    return Union(areas)


def _short(formula: str) -> str:
    return repr(formula if len(formula) <= 120 else formula[:100] + "…")


class _Missing:
    """An omitted function argument."""

    def __repr__(self) -> str:
        return "MISSING"


_MISSING = _Missing()
MISSING = _MISSING


def walk(node: Node) -> Iterator[Node]:
    """Every node of a formula's AST, the node itself first."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, (Op, Chain, Call)):
            stack.extend(n.args)
        elif isinstance(n, Union):
            stack.extend(n.areas)


def parse(formula: str, sheet: str) -> Node:
    """Parse '=…' as written in `sheet`. References come back in absolute coordinates."""
    p = _Parser(formula if formula.startswith("=") else "=" + formula, sheet)
    node = p.expr()
    if p.peek() is not None:
        raise FormulaError(f"unexpected {p.peek().value!r} in {_short(formula)}")
    return node


# -- copies of one formula down a column ---------------------------------------------------

# text, a quoted sheet name, the brackets of a structured reference (two deep: Table1[[#This
# Row],[x1]], whose column names are no cells), or a cell
_KEY = re.compile(
    r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|\[(?:[^\[\]\']|\'.|\[(?:[^\[\]\']|\'.)*\])*\]|(?<![\w.$])'
    + _CELL
    + r"(?![\w(!])"
)


def relative_key(formula: str, row: int) -> str:
    """The formula with every relative row number written as an offset from `row` (1-based):
    equal keys in one column mean 'the same formula, copied down'."""

    def sub(m: re.Match) -> str:
        if m.group(2) is None or m.group(3) == "$":  # a literal, or an absolute row
            return m.group(0)
        return f"{m.group(1)}{m.group(2).upper()}R[{int(m.group(4)) - row}]"

    return _KEY.sub(sub, formula)


_DIGITS = re.compile(r"(\d+)")


class CopiedDown:
    """Follows a column of formulas: is each one the first, copied k rows down? Equivalent to
    comparing relative_key()s, at a fraction of the cost: the first formula is split once at
    its digit runs, and each copy is that template with its relative row numbers moved on."""

    def __init__(self, formula: str, row: int):
        self.parts = _DIGITS.split(formula)
        # odd parts are digit runs; which of them are relative row numbers of references?
        starts, pos = {}, 0
        for i, part in enumerate(self.parts):
            if i % 2:
                starts[pos] = i
            pos += len(part)
        self.moving = [
            (starts[m.start(4)], int(m.group(4)))
            for m in _KEY.finditer(formula)
            if m.group(2) is not None and m.group(3) != "$" and m.start(4) in starts
        ]
        self.down = 0  # rows moved so far
        # the same as a str.format template: the moving numbers are its fields, in order
        fields = {i for i, _ in self.moving}
        self.template = "".join(
            "{}" if i in fields else part.replace("{", "{{").replace("}", "}}")
            for i, part in enumerate(self.parts)
        )

    def at(self, down: int) -> str:
        """The first formula copied `down` rows down."""
        parts = self.parts
        for i, first in self.moving:
            parts[i] = str(first + down)
        return "".join(parts)

    def follows(self, formula: str) -> bool:
        """True (and move on to it) if `formula` is the current one copied one row down."""
        if self.at(self.down + 1) != formula:
            return False
        self.down += 1
        return True

    def following(self, texts: list[str], start: int, stop: int) -> int:
        """How many of texts[start:stop], in order, are the current formula copied one, two, …
        rows down (and move on past them): what follows() finds for each in turn, with the
        copies written by one C-level map and compared as lists, a chunk at a time (growing,
        so that a run of one formula costs no more than its length)."""
        pos, chunk = start, 16
        while pos < stop:
            n = min(chunk, stop - pos)
            first = self.down + 1
            if self.moving:
                numbers = (range(f + first, f + first + n) for _, f in self.moving)
                expected = list(map(self.template.format, *numbers))
            else:  # no relative row: every copy is the formula itself
                expected = [self.template.format()] * n
            got = texts[pos : pos + n]
            if got == expected:
                self.down += n
                pos += n
                chunk *= 4
                continue
            same = next(compress(count(), map(ne, got, expected)))
            self.down += same
            return pos + same - start
        return pos - start
