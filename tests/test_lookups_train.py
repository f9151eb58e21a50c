"""Lookups that pick parameters train (issue 20): a collaborative-filtering workbook made like
the course's — each rating's user and movie factors looked up by id with
{=OFFSET($C$4:$G$4,MATCH(I3,$B$5:$B$19),0)}, or INDEX, INDEX(…):INDEX(…), VLOOKUP, XLOOKUP,
INDIRECT or CHOOSE — compiles to a gather from the parameters the ids pick. Its loss and
gradients equal an independent torch implementation's; gradient descent follows the same path;
LibreOffice recalculates the fitted file's loss; LibreOffice's central differences are its
gradients, zero for the users and movies no rating names. LibreOffice 7.4, the one the tests
run, has no XLOOKUP (24.8 has): XLOOKUP is checked against the torch implementation only."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import torch

import excelnet
from excelnet.errors import ExcelnetError
from excelnet.fitting.pipeline import compile_models
from excelnet.formula.book import Book, Sheet, SolverModel
from excelnet.formula.model import Model
from excelnet.formula.parse import Ref
from excelnet.formula.values import Ctx
from excelnet.xlsx.read import read_book
from excelnet.xlsx.recalc import check
from tests.collab import KINDS, MOVIES_TOP, USERS_TOP, Collab, collab
from tests.handmade import solver_names

LIBREOFFICE_KINDS = [k for k in KINDS if k != "xlookup"]
LR, EPOCHS = 0.1, 25
H = 1e-5  # central differences' step


def independent(c: Collab, lr: float = LR, steps: int = 0):
    """The model in torch, without excelnet: (loss, gradients) at the workbook's start, or the
    losses of `steps` steps of gradient descent and the parameters after each."""
    params = [
        torch.tensor(a, dtype=torch.float64, requires_grad=True)
        for a in (c.user_factors, c.movie_factors, c.user_bias, c.movie_bias)
    ]
    uf, mf, ub, mb = params
    ui = torch.as_tensor(np.searchsorted(c.users, c.ratings[:, 0]))
    mi = torch.as_tensor(np.searchsorted(c.movies, c.ratings[:, 1]))
    stars = torch.as_tensor(c.ratings[:, 2])

    def loss_of() -> torch.Tensor:
        return torch.sqrt((((uf[ui] * mf[mi]).sum(1) + ub[ui] + mb[mi] - stars) ** 2).mean())

    if not steps:
        loss = loss_of()
        return float(loss.detach()), [g.numpy() for g in torch.autograd.grad(loss, params)]
    losses, after = [], [[p.detach().numpy().copy() for p in params]]
    for _ in range(steps):
        loss = loss_of()
        losses.append(float(loss.detach()))
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
        after.append([p.detach().numpy().copy() for p in params])
    return losses, after


def _as_tables(values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (users' factors, movies', users' biases, movies') as the two parameter
    ranges lay them out: per row five factors and a bias."""
    uf, mf, ub, mb = values
    return np.column_stack([uf, ub]), np.column_stack([mf, mb])


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, Collab]:
    folder = tmp_path_factory.mktemp("collab")
    return {kind: collab(folder / f"{kind}.xlsx", kind) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_the_looked_up_rows_train_and_no_others(kind, books):
    c = books[kind]
    (model,) = compile_models(read_book(c.path))
    loss = model.objective_value()
    loss.backward()
    want_loss, want_grads = independent(c)
    assert float(loss.detach()) == pytest.approx(want_loss, rel=1e-13)
    users, movies = (p.value.x.grad.reshape(p.rows, p.cols).numpy() for p in model.params)
    want_users, want_movies = _as_tables(want_grads)
    np.testing.assert_allclose(users, want_users, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(movies, want_movies, rtol=1e-11, atol=1e-14)
    # exactly the rows some rating names have a gradient: the others none at all
    rated_users = np.isin(c.users, c.ratings[:, 0])
    rated_movies = np.isin(c.movies, c.ratings[:, 1])
    assert (~rated_users).sum() == 2 and (~rated_movies).sum() == 3
    assert (users[~rated_users] == 0).all() and (movies[~rated_movies] == 0).all()
    assert (np.abs(users[rated_users]).sum(1) > 0).all()
    assert (np.abs(movies[rated_movies]).sum(1) > 0).all()
    # the lookups are live: run again every step from the parameters
    lookups = [b for b in model.train_blocks if b.c0 == 11]  # column L
    assert lookups and all(b in model.live for b in lookups)


def test_mmult_dot_products_train_alike(tmp_path):
    c = collab(tmp_path / "mmult.xlsx", "offset", dot="MMULT")
    (model,) = compile_models(read_book(c.path))
    loss = model.objective_value()
    loss.backward()
    want_loss, want_grads = independent(c)
    assert float(loss.detach()) == pytest.approx(want_loss, rel=1e-13)
    users = model.params[0].value.x.grad.reshape(-1, 6).numpy()
    np.testing.assert_allclose(users, _as_tables(want_grads)[0], rtol=1e-11, atol=1e-14)


@pytest.fixture(scope="module")
def fitted(books, tmp_path_factory, recalc):
    """Every kind fitted by gradient descent with a fixed step, written to a copy; and
    LibreOffice's recalculation of the copies."""
    folder = tmp_path_factory.mktemp("fitted")
    out = {}
    for kind, c in books.items():
        path = folder / f"{kind}.xlsx"
        (result,) = excelnet.fit(c.path, method="gd", lr=LR, epochs=EPOCHS, history=False, out=path)
        out[kind] = (result, path)
    theirs = recalc([out[k][1] for k in LIBREOFFICE_KINDS])
    return out, dict(zip(LIBREOFFICE_KINDS, theirs, strict=True))


def _written(path, c: Collab) -> list[np.ndarray]:
    ws = openpyxl.load_workbook(path, data_only=True)["collab"]
    tables = []
    for top, count in ((USERS_TOP + 2, len(c.users)), (MOVIES_TOP + 2, len(c.movies))):
        rows = ws.iter_rows(min_row=top, max_row=top + count - 1, min_col=3, max_col=8)
        tables.append(np.array([[cell.value for cell in row] for row in rows], dtype=float))
    return tables


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_descent_follows_an_independent_implementation(kind, books, fitted):
    c = books[kind]
    result, path = fitted[0][kind]
    losses, after = independent(c, LR, EPOCHS)
    assert result.epochs == EPOCHS
    np.testing.assert_allclose(result.losses, losses, rtol=1e-12)
    assert result.losses[-1] < 0.8 * result.losses[0]  # it trains
    # the best parameters seen are written back (the last: every step lowered the loss)
    best = result.best_epoch
    assert best == EPOCHS - 1 and result.final_loss == pytest.approx(losses[best], rel=1e-12)
    users, movies = _written(path, c)
    want_users, want_movies = _as_tables(after[best])
    np.testing.assert_allclose(users, want_users, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(movies, want_movies, rtol=1e-12, atol=1e-15)
    # the rows no rating names did not move
    untouched = ~np.isin(c.users, c.ratings[:, 0])
    np.testing.assert_array_equal(
        users[untouched], np.column_stack([c.user_factors, c.user_bias])[untouched]
    )


@pytest.mark.parametrize("kind", LIBREOFFICE_KINDS)
def test_libreoffice_recalculates_the_reported_loss(kind, fitted):
    (result, path), theirs = fitted[0][kind], fitted[1][kind]
    lo = openpyxl.load_workbook(theirs, data_only=True)["collab"]
    ours = openpyxl.load_workbook(path, data_only=True)["collab"]
    assert lo["AA3"].value == pytest.approx(result.final_loss, rel=1e-9)
    assert ours["AA3"].value == pytest.approx(result.final_loss, rel=1e-15)
    for row in (3, 17, 40, 62):  # the looked-up cells excelnet wrote are LibreOffice's
        for col in "LPQUVWX":
            assert ours[f"{col}{row}"].value == pytest.approx(lo[f"{col}{row}"].value, rel=1e-9)
    (report,) = check(theirs)  # and calc computes every cell of LibreOffice's file alike
    assert report.computed == report.equal == report.formula_cells and not report.different


# parameter cells moved for central differences: a rated user's first factor, a rated
# movie's bias, a user no rating names (no gradient)
SHIFTED = {"rated user": "C5", "rated movie's bias": "H24", "unrated user": "D19"}


@pytest.fixture(scope="module")
def differences(tmp_path_factory, recalc):
    """Per kind and shifted cell, LibreOffice's objective at the cell ± H."""
    folder = tmp_path_factory.mktemp("shifted")
    paths = []
    for kind in LIBREOFFICE_KINDS:
        for cell in SHIFTED.values():
            for sign in (1, -1):
                path = folder / f"{kind}-{cell}-{'+' if sign > 0 else '-'}.xlsx"
                collab(path, kind, shift=(cell, sign * H))
                paths.append(path)
    values = iter(
        openpyxl.load_workbook(p, data_only=True)["collab"]["AA3"].value for p in recalc(paths)
    )
    return {
        (kind, cell): (next(values), next(values))
        for kind in LIBREOFFICE_KINDS
        for cell in SHIFTED.values()
    }


@pytest.mark.parametrize("kind", LIBREOFFICE_KINDS)
def test_gradients_are_libreoffice_central_differences(kind, books, differences):
    (evaluation,) = excelnet.evaluate(books[kind].path, write=False)
    for what, cell in SHIFTED.items():
        plus, minus = differences[(kind, cell)]
        ours = evaluation.gradients[f"collab!{cell}"]
        if what == "unrated user":
            assert plus == minus and ours == 0.0
            continue
        central = (plus - minus) / (2 * H)
        assert abs(central) > 1e-3, what
        assert ours == pytest.approx(central, rel=1e-5, abs=1e-8), what


def _refused(tmp_path, formula: str) -> str:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "s"
    ws["A1"], ws["B1"], ws["B2"], ws["B3"] = 1.3, 10.0, 20.0, 30.0
    ws["C1"] = formula
    ws["D1"] = "=C1^2+A1^2"
    solver_names(wb, "s", "s!$D$1", "s!$A$1")
    wb.save(tmp_path / "refused.xlsx")
    with pytest.raises(ExcelnetError) as e:
        compile_models(read_book(tmp_path / "refused.xlsx"))
    return str(e.value)


def test_a_position_that_depends_on_the_parameters_is_refused(tmp_path):
    message = _refused(tmp_path, "=OFFSET(B1,ROUND(A1,0),0)")
    assert len(message.splitlines()) == 1
    assert "cell C1" in message and "OFFSET" in message and "adjustable cells" in message
    message = _refused(tmp_path, '=INDIRECT("B"&ROUND(A1,0))')
    assert "cell C1" in message and "INDIRECT" in message
    message = _refused(tmp_path, "=OFFSET(B1,RANDBETWEEN(0,2),0)+A1")
    assert "cell C1" in message and "OFFSET" in message and "RAND" in message


def test_a_lookup_copied_down_100000_rows_is_one_gather():
    """=OFFSET($C$1,MATCH(A2,$B$2:$B$1001),0) copied down 100,000 rows into 1,000 parameters:
    one block, whose step is one gather (a handful of autograd nodes), not one per row."""
    rows, users = 100_000, 1_000
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(np.arange(1, 10_000), users, replace=False))
    picks = rng.integers(0, users - 1, rows)  # the last user is never picked
    s = Sheet("s", max_row=rows, max_col=5)
    for i, uid in enumerate(ids):
        s.values[(1 + i, 1)], s.values[(1 + i, 2)] = float(uid), float(rng.uniform())
    for i in range(rows):
        r = 1 + i
        s.values[(r, 0)], s.values[(r, 4)] = float(ids[picks[i]]), float(rng.uniform())
        s.formulas[(r, 3)] = f"=OFFSET($C$1,MATCH(A{r + 1},$B$2:$B${users + 1}),0)"
    s.formulas[(0, 5)] = f"=SUMXMY2(D2:D{rows + 1},E2:E{rows + 1})"
    book = Book(Path("big.xlsx"), {"s": s}, {})
    solver = SolverModel("s", Ref("s", 0, 5, 0, 5), [Ref("s", 1, 2, users, 2)], 2)
    began = time.perf_counter()
    model = Model(book, solver, Ctx(torch.device("cpu")))
    model.compile()
    compiled = time.perf_counter() - began
    assert [b.rows for b in model.train_blocks] == [rows, 1]
    loss = model.objective_value()
    seen, todo = set(), [loss.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(n for n, _ in node.next_functions)
    assert len(seen) < 20
    began = time.perf_counter()
    for _ in range(3):
        loss = model.objective_value()
        loss.backward()
    step = (time.perf_counter() - began) / 3
    grad = model.params[0].value.x.grad / 3
    x = np.array([s.values[(1 + i, 2)] for i in range(users)])
    y = np.array([s.values[(1 + i, 4)] for i in range(rows)])
    want = np.bincount(picks, 2 * (x[picks] - y), minlength=users)
    np.testing.assert_allclose(grad.numpy(), want, rtol=1e-9, atol=1e-12)
    assert grad[-1] == 0
    assert step < 1.0 and compiled < 60, (step, compiled)  # seconds, on a busy machine
