"""A collaborative-filtering workbook made like the course's: users × latent factors and
movies × latent factors (the parameters, with a bias each), one row per rating whose user's and
movie's factors are looked up by id, a prediction from their dot product plus the biases, and
a Solver model minimising the RMSE. The lookup is OFFSET(header, MATCH(id, ids), 0) in a
multi-cell array formula per rating, as the course writes it, or another lookup function."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openpyxl
from openpyxl.worksheet.formula import ArrayFormula

from tests.handmade import solver_names

FACTORS = 5
USERS_TOP, MOVIES_TOP = 3, 22  # 0-based rows of the tables' header rows (15 users: movies
# start 4 rows below the users' last)
RATINGS_TOP = 2  # 0-based row of the first rating


@dataclass
class Collab:
    path: Path
    users: np.ndarray  # ids, sorted
    movies: np.ndarray
    user_factors: np.ndarray  # (users, FACTORS)
    movie_factors: np.ndarray
    user_bias: np.ndarray
    movie_bias: np.ndarray
    ratings: np.ndarray  # (n, 3): user id, movie id, rating
    params: str  # the adjustable cells, as solver_adj names them


def _lookups(kind: str, r: int, id_col: str, top: int, count: int) -> tuple[str, str]:
    """The formulas picking the row of factors (5 cells, an array formula) and the bias (one
    cell) of the id in column id_col, row r (1-based), from a table whose header row is `top`
    (1-based): ids in B, factors in C:G, the bias in H."""
    first, last = top + 1, top + count
    ids, table, bias = f"$B${first}:$B${last}", f"$C${first}:$G${last}", f"$H${first}:$H${last}"
    key = f"{id_col}{r}"
    exact = f"MATCH({key},{ids},0)"
    if kind == "offset":  # the course's: the header row moved down by the id's position
        at = f"MATCH({key},{ids})"
        return f"=OFFSET($C${top}:$G${top},{at},0)", f"=OFFSET($H${top},{at},0)"
    if kind == "index":
        return f"=INDEX({table},{exact},0)", f"=INDEX({bias},{exact})"
    if kind == "range":  # INDEX as a reference: the first cell to the last
        return (
            f"=INDEX($C${first}:$C${last},{exact}):INDEX($G${first}:$G${last},{exact})",
            f"=SUM(INDEX({bias},{exact}):INDEX({bias},{exact}))",
        )
    if kind == "vlookup":
        rows = f"$B${first}:$H${last}"
        return f"=VLOOKUP({key},{rows},{{2,3,4,5,6}},FALSE)", f"=VLOOKUP({key},{rows},7,FALSE)"
    if kind == "xlookup":
        return f"=_xlfn.XLOOKUP({key},{ids},{table})", f"=_xlfn.XLOOKUP({key},{ids},{bias})"
    if kind == "indirect":  # the address computed as text
        row = f"({exact}+{top})"
        return f'=INDIRECT("C"&{row}&":G"&{row})', f"=INDIRECT(ADDRESS({row},8))"
    if kind == "choose":  # CHOOSE picks the table (as a reference), and the bias by position
        cells = ",".join(f"$H${first + i}" for i in range(count))
        return (
            f"=OFFSET(CHOOSE(2,$C$1:$G$1,$C${top}:$G${top}),MATCH({key},{ids}),0)",
            f"=CHOOSE({exact},{cells})",
        )
    raise ValueError(kind)


KINDS = ("offset", "index", "range", "vlookup", "xlookup", "indirect", "choose")


def collab(
    path: Path,
    kind: str = "offset",
    users: int = 15,
    movies: int = 15,
    ratings: int = 60,
    seed: int = 0,
    dot: str = "SUMPRODUCT",
    shift: tuple[str, float] | None = None,
) -> Collab:
    """The workbook: sheet 'collab'. Users' ids in B5:B19 (factors C:G, bias H, header row 4),
    movies' in B24:…, ratings from row 3 in I (user), J (movie), K (rating); the looked-up user
    factors in L:P, movie factors in Q:U, biases in V and W, the prediction in X, the squared
    error in Y; the RMSE in AA3 (the objective). `shift`: a parameter cell moved by some amount
    (for central differences)."""
    rng = np.random.default_rng(seed)
    user_ids = np.sort(rng.choice(np.arange(1, 700), users, replace=False))
    movie_ids = np.sort(rng.choice(np.arange(1, 3000), movies, replace=False))
    uf = rng.uniform(0, 1, (users, FACTORS)).round(3)
    mf = rng.uniform(0, 1, (movies, FACTORS)).round(3)
    ub = rng.uniform(-0.2, 0.2, users).round(3)
    mb = rng.uniform(-0.2, 0.2, movies).round(3)
    # each user rates a few movies; some users and movies have no rating at all
    rated_users = user_ids[: max(1, users - 2)]
    rated_movies = movie_ids[: max(1, movies - 3)]
    pairs = set()
    while len(pairs) < ratings:
        pairs.add((int(rng.choice(rated_users)), int(rng.choice(rated_movies))))
    pairs = sorted(pairs)
    stars = rng.integers(1, 11, len(pairs)) / 2
    table = np.array([[u, m, s] for (u, m), s in zip(pairs, stars, strict=True)], dtype=float)

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "collab"
    ut = USERS_TOP + 1  # 1-based header rows
    mt = ut + users + 4
    for top, label, ids, f, b in ((ut, "user", user_ids, uf, ub), (mt, "movie", movie_ids, mf, mb)):
        ws.cell(top, 2, label)
        for k in range(FACTORS):
            ws.cell(top, 3 + k, f"f{k + 1}")
        ws.cell(top, 8, "bias")
        for i, uid in enumerate(ids):
            ws.cell(top + 1 + i, 2, int(uid))
            for k in range(FACTORS):
                ws.cell(top + 1 + i, 3 + k, float(f[i, k]))
            ws.cell(top + 1 + i, 8, float(b[i]))
    for col, head in zip("IJKXY", ("user", "movie", "rating", "prediction", "error²"), strict=True):
        ws[f"{col}{RATINGS_TOP}"] = head
    n = len(table)
    for i, (u, m, s) in enumerate(table):
        r = RATINGS_TOP + 1 + i
        ws[f"I{r}"], ws[f"J{r}"], ws[f"K{r}"] = int(u), int(m), float(s)
        uform, ubias = _lookups(kind, r, "I", ut, users)
        mform, mbias = _lookups(kind, r, "J", mt, movies)
        ws[f"L{r}"] = ArrayFormula(f"L{r}:P{r}", uform)
        ws[f"Q{r}"] = ArrayFormula(f"Q{r}:U{r}", mform)
        ws[f"V{r}"], ws[f"W{r}"] = ubias, mbias
        if dot == "MMULT":
            ws[f"X{r}"] = ArrayFormula(f"X{r}", f"=MMULT(L{r}:P{r},TRANSPOSE(Q{r}:U{r}))+V{r}+W{r}")
        else:
            ws[f"X{r}"] = f"=SUMPRODUCT(L{r}:P{r},Q{r}:U{r})+V{r}+W{r}"
        ws[f"Y{r}"] = f"=(X{r}-K{r})^2"
    last = RATINGS_TOP + n
    ws["AA2"] = "rmse"
    ws["AA3"] = f"=SQRT(SUM(Y{RATINGS_TOP + 1}:Y{last})/COUNT(K{RATINGS_TOP + 1}:K{last}))"
    params = f"collab!$C${ut + 1}:$H${ut + users},collab!$C${mt + 1}:$H${mt + movies}"
    solver_names(wb, "collab", "collab!$AA$3", params)
    if shift is not None:
        ws[shift[0]] = ws[shift[0]].value + shift[1]
    wb.save(path)
    return Collab(path, user_ids, movie_ids, uf, mf, ub, mb, table, params)


def reference_loss(c: Collab, uf, mf, ub, mb) -> float:
    """The RMSE the workbook computes, in numpy."""
    ui = np.searchsorted(c.users, c.ratings[:, 0])
    mi = np.searchsorted(c.movies, c.ratings[:, 1])
    pred = (uf[ui] * mf[mi]).sum(1) + ub[ui] + mb[mi]
    return float(np.sqrt(((pred - c.ratings[:, 2]) ** 2).mean()))
