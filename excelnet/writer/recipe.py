"""The lesson's recipe for any table: per column a rule chosen from its data, each feature a
formula and its pandas twin side by side (as excelnet.writer.features does for Titanic).

Rules, in order (the about sheet states the one each column got):
- the target, the id and the columns the user drops are not features;
- a column the same in every row (or empty) is left out;
- numbers: whole numbers with at most 3 values are categories (below); whole numbers, a
  different one in every row, are an identifier (left out); whole numbers from 0 to 10
  (counts, like SibSp) are used as they are; other numbers are divided by their largest
  absolute value, after LOG10(x+1) when they are skewed (skewness above 1) and never negative;
  a missing number becomes the column's mode (its mean when no single value is most common);
- text with 2 to 10 values (as Excel compares text: ignoring case) is a category; more values
  are free text or an identifier (left out);
- a category becomes n−1 dummy columns (1 where the row has that value, else 0): one per value
  but the last, numbers in their order, text from the most common; the last value's rows are
  all zeros, and so are the rows of a value no training row had; a missing value becomes the
  most common one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_col_to_name

from excelnet.data import MISSING_MARKS, Csv
from excelnet.errors import ExcelnetError
from excelnet.writer.features import DATA_SHEET, Feature, Stat
from excelnet.xlsx.text import formula_text

MAX_TEXT_LEVELS = 10
MAX_LEVEL_CHARS = 255  # Excel's text comparisons (COUNTIF's criteria) stop there
MAX_NUMBER_LEVELS = 3
MAX_COUNT = 10
SKEWED = 1.0


def typed(table: Csv) -> pd.DataFrame:
    """The CSV as a DataFrame: a column whose every value is a finite number holds float64
    (NaN where missing); any other column holds text (None where missing), exactly as written.
    Missing: an empty field or a marker such as NA (MISSING_MARKS)."""
    out = {}
    for name in table.header:
        raw = [None if v in MISSING_MARKS else v for v in table.column(name)]
        numbers = [None if v is None else _number(v) for v in raw]
        if all(x is not None for x, v in zip(numbers, raw, strict=True) if v is not None):
            out[name] = pd.Series([np.nan if x is None else x for x in numbers], dtype=float)
        else:
            out[name] = pd.Series(raw, dtype=object)
    return pd.DataFrame(out)


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def number_text(x: float) -> str:
    """A number as a formula or a header writes it: 3 for 3.0."""
    return str(int(x)) if x == int(x) and abs(x) < 1e15 else repr(x)


def text_literal(s: str) -> str:
    """A text as a formula's literal ("…", quotes doubled; control characters as CHAR(n))."""
    return formula_text(s)


@dataclass
class Rule:
    """What one column becomes, in plain words for the about sheet."""

    column: str
    kind: str  # target, id, dropped, left out, count, number, signed, log, category
    note: str
    levels: list | None = None  # a category's values, in dummy order (the last: no dummy)
    fill: str = "mode"  # a number's missing values: its "mode" or "mean"


@dataclass
class Target:
    column: str
    binary: bool
    positive: str | None = None  # a two-valued text target: the value that counts as 1
    negative: str | None = None


def choose_target(table: Csv, df: pd.DataFrame, target: str) -> Target:
    path = table.path
    if target not in df.columns:
        columns = f"(the columns: {', '.join(table.header)})"
        raise ExcelnetError(
            f"{path}: line 1: no column named {target!r} for the target {columns}",
            f"{path}: line 1: no column named {target!r} for --target {columns}",
        )
    col = df[target]
    missing = np.flatnonzero(col.isna().to_numpy())
    if len(missing):
        raise ExcelnetError(
            f"{path}: line {table.lines[missing[0]]}, column {target}: the target is missing "
            f"(every row needs one; leave such rows out)"
        )
    if col.dtype == float:
        levels = set(col.tolist())
        if len(levels) == 1:
            raise ExcelnetError(
                f"{path}: line 2, column {target}: the target is {number_text(col[0])} in every "
                f"row; there is nothing to learn"
            )
        return Target(target, levels <= {0.0, 1.0})
    keys = sorted({v.lower() for v in col})
    if len(keys) == 1:
        raise ExcelnetError(
            f"{path}: line 2, column {target}: the target is {col[0]!r} in every row; there "
            f"is nothing to learn"
        )
    if len(keys) > 2:
        bad = next(i for i, v in enumerate(col) if _number(v) is None)
        raise ExcelnetError(
            f"{path}: line {table.lines[bad]}, column {target}: the target holds text with "
            f"{len(keys)} different values ({col[bad]!r}, …); the models predict one number: "
            f"give a numeric target or one with two values"
        )
    negative, positive = two_values(col.tolist())
    return Target(target, True, positive, negative)


def two_values(texts: list[str]) -> tuple[str, str]:
    """A two-valued text column's values as first written, (0, 1): ignoring case, the later
    of the two in alphabetical order counts as 1 (yes over no, True over False, M over B)."""
    first = {v.lower(): v for v in reversed(texts)}
    low, high = sorted(first)
    return first[low], first[high]


def choose_rules(
    table: Csv, df: pd.DataFrame, target: str, id: str | None, drop: list[str]
) -> list[Rule]:
    """The rule of every column, in the CSV's order."""
    for flag, names in (("id", [id] if id else []), ("drop", drop)):
        for name in names:
            if name not in df.columns:
                columns = f"(the columns: {', '.join(table.header)})"
                raise ExcelnetError(
                    f"{table.path}: line 1: no column named {name!r} for {flag}= {columns}",
                    f"{table.path}: line 1: no column named {name!r} for --{flag} {columns}",
                )
            if name == target:
                raise ExcelnetError(
                    f"{table.path}: {flag}={name!r} is the target column",
                    f"{table.path}: --{flag} {name!r} is the target column",
                )
    rules = []
    for name in df.columns:
        if name == target:
            rules.append(Rule(name, "target", "the target: what the models predict"))
        elif name == id:
            rules.append(Rule(name, "id", "the id: shown beside each prediction, not a feature"))
        elif name in drop:
            rules.append(Rule(name, "dropped", "left out (--drop)"))
        else:
            rules.append(_rule(name, df[name]))
    return rules


def _rule(name: str, col: pd.Series) -> Rule:
    present = col.dropna()
    if present.empty:
        return Rule(name, "left out", "left out: every value is missing")
    fill = "missing → the most common value"
    if col.dtype == float:
        counts = present.value_counts(sort=False)
        if len(counts) == 1:
            return Rule(name, "left out", f"left out: {number_text(counts.index[0])} in every row")
        whole = bool((present == present.round()).all())
        if whole and len(counts) <= MAX_NUMBER_LEVELS:
            levels = sorted(counts.index.tolist())
            return Rule(name, "category", _category_note(levels, number_text, fill), levels)
        if whole and len(counts) == len(col) and len(col) > MAX_TEXT_LEVELS:
            return Rule(
                name, "left out", "left out: a different whole number in every row, an identifier"
            )
        top = counts.max()
        by = "mode" if top > 1 and (counts == top).sum() == 1 else "mean"
        fill = "missing → the " + ("mode" if by == "mode" else "mean (no single most common value)")
        if whole and present.min() >= 0 and present.max() <= MAX_COUNT:
            return Rule(
                name, "count", f"a count from 0 to {MAX_COUNT}: used as it is; {fill}", fill=by
            )
        if present.min() >= 0 and present.skew() > SKEWED:
            return Rule(
                name,
                "log",
                f"a skewed number (skewness {present.skew():.2f}): "
                f"LOG10(x+1) ÷ its maximum; {fill}",
                fill=by,
            )
        if present.min() >= 0:
            return Rule(name, "number", f"a number: ÷ its maximum; {fill}", fill=by)
        return Rule(name, "signed", f"a number: ÷ its largest absolute value; {fill}", fill=by)
    keys: dict[str, list] = {}
    for v in present:
        keys.setdefault(v.lower(), [v, 0])[1] += 1
    if len(keys) == 1:
        return Rule(name, "left out", f"left out: {present.iloc[0]!r} in every row")
    if len(keys) > MAX_TEXT_LEVELS:
        return Rule(
            name,
            "left out",
            f"left out: text with {len(keys)} different values (free text or an identifier)",
        )
    longest = max(len(v) for v, _ in keys.values())
    if longest > MAX_LEVEL_CHARS:
        return Rule(
            name,
            "left out",
            f"left out: a value {longest:,} characters long (free text); a category's values "
            f"are at most {MAX_LEVEL_CHARS} characters, the longest text Excel's formulas "
            f"compare",
        )
    levels = [v for v, _ in sorted(keys.values(), key=lambda vc: -vc[1])]  # stable: first met
    return Rule(name, "category", _category_note(levels, repr, fill), levels)


def _category_note(levels: list, show, fill: str) -> str:
    dummies = ", ".join(show(v) for v in levels[:-1])
    return (
        f"a category with {len(levels)} values: a dummy column for each of {dummies} "
        f"({show(levels[-1])}, and any value not seen here, is all zeros); {fill}"
    )


# -- the rules as statistics and features ----------------------------------------------------


class _Names:
    """Defined names for the statistics: valid in Excel, unique ignoring case."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, column: str, suffix: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", column).lower().strip("_") or "column"
        if not base[0].isalpha():
            base = "c_" + base
        name, k = f"{base}_{suffix}", 2
        while name in self.used:
            name, k = f"{base}{k}_{suffix}", k + 1
        self.used.add(name)
        return name


def _range(letter: str, n: int) -> str:
    return f"{DATA_SHEET}!${letter}$2:${letter}${n + 1}"


def stats_and_features(rules: list[Rule], columns: list[str]) -> tuple[list[Stat], list[Feature]]:
    """Statistics (named cells over the data sheet) and features (Ones first, then the numbers,
    then the dummies), each as a formula and its pandas twin."""
    names = _Names()
    stats: list[Stat] = []
    numbers: list[Feature] = [Feature("Ones", lambda r: "=1", lambda df, s: np.ones(len(df)))]
    dummies: list[Feature] = []
    for rule in rules:
        c, letter = rule.column, xl_col_to_name(columns.index(rule.column))
        if rule.kind in ("count", "number", "signed", "log"):
            fill = names(c, rule.fill)
            stats.append(_fill_stat(fill, c, letter))
            numbers.append(_number_feature(rule, letter, fill, names, stats))
        elif rule.kind == "category":
            mode = names(c, "mode")
            stats.append(_level_mode(mode, c, letter, rule.levels))
            dummies.extend(_dummy(c, letter, mode, level) for level in rule.levels[:-1])
    return stats, numbers + dummies


def _fill_stat(name: str, c: str, letter: str) -> Stat:
    if name.endswith("_mode"):
        return Stat(
            name,
            f"Mode of {c}",
            lambda n: f"=MODE({_range(letter, n)})",
            lambda df: float(df[c].mode().iloc[0]),
        )
    return Stat(
        name,
        f"Mean of {c}",
        lambda n: f"=AVERAGE({_range(letter, n)})",
        lambda df: float(df[c].mean()),
    )


def _number_feature(rule: Rule, letter: str, fill: str, names: _Names, stats: list) -> Feature:
    c = rule.column

    def x(r: int) -> str:
        return f"IF(ISBLANK({DATA_SHEET}!{letter}{r}),{fill},{DATA_SHEET}!{letter}{r})"

    def filled(df: pd.DataFrame, s: dict) -> pd.Series:
        return df[c].fillna(s[fill])

    if rule.kind == "count":
        return Feature(c, lambda r: f"={x(r)}", lambda df, s: filled(df, s).to_numpy())
    if rule.kind == "log":
        top = names(c, "logmax")
        stats.append(
            Stat(
                top,
                f"Maximum LOG10({c}+1)",
                lambda n: f"=LOG10(MAX({_range(letter, n)})+1)",
                lambda df: float(np.log10(df[c].max() + 1)),
            )
        )
        return Feature(
            f"Log{c}",
            lambda r: f"=LOG10({x(r)}+1)/{top}",
            lambda df, s: (np.log10(filled(df, s) + 1) / s[top]).to_numpy(),
        )
    top = names(c, "max")
    if rule.kind == "number":
        stats.append(
            Stat(
                top,
                f"Maximum {c}",
                lambda n: f"=MAX({_range(letter, n)})",
                lambda df: float(df[c].max()),
            )
        )
    else:  # signed: the largest absolute value, without an array formula

        def formula(n: int) -> str:
            r = _range(letter, n)
            return f"=MAX(MAX({r}),-MIN({r}))"

        stats.append(
            Stat(top, f"Largest absolute {c}", formula, lambda df: float(df[c].abs().max()))
        )
    return Feature(c, lambda r: f"={x(r)}/{top}", lambda df, s: (filled(df, s) / s[top]).to_numpy())


def _literal(level) -> str:
    return text_literal(level) if isinstance(level, str) else number_text(level)


def _count(letter: str, n: int, level) -> str:
    # COUNTIF reads text criteria as patterns (*, ?, ~, <, =): text is compared with "=";
    # a number with COUNTIF, which (unlike "=") does not count empty cells as 0
    r = _range(letter, n)
    if isinstance(level, str):
        return f"SUMPRODUCT(({r}={text_literal(level)})*1)"
    return f"COUNTIF({r},{number_text(level)})"


def _level_mode(name: str, c: str, letter: str, levels: list) -> Stat:
    """The most common value: the first, in the rule's order, whose count none beats."""

    def formula(n: int) -> str:
        counts = [_count(letter, n, v) for v in levels]
        out = _literal(levels[-1])
        for i in range(len(levels) - 2, -1, -1):
            tests = [f"{counts[i]}>={counts[j]}" for j in range(i + 1, len(levels))]
            test = tests[0] if len(tests) == 1 else f"AND({','.join(tests)})"
            out = f"IF({test},{_literal(levels[i])},{out})"
        return "=" + out

    def compute(df: pd.DataFrame):
        col = df[c].dropna()
        if isinstance(levels[0], str):
            col = col.str.lower()
            counts = [int((col == v.lower()).sum()) for v in levels]
        else:
            counts = [int((col == v).sum()) for v in levels]
        return levels[counts.index(max(counts))]

    return Stat(name, f"Most common {c}", formula, compute)


def _dummy(c: str, letter: str, mode: str, level) -> Feature:
    def formula(r: int) -> str:
        x = f"IF(ISBLANK({DATA_SHEET}!{letter}{r}),{mode},{DATA_SHEET}!{letter}{r})"
        return f"=IF({x}={_literal(level)},1,0)"

    def compute(df: pd.DataFrame, s: dict) -> np.ndarray:
        filled = df[c].fillna(s[mode])
        if isinstance(level, str):
            return (filled.str.lower() == level.lower()).to_numpy(float)
        return (filled == level).to_numpy(float)

    name = f"{c}_{level if isinstance(level, str) else number_text(level)}"
    return Feature(name, formula, compute)
