"""Solver models as Excel 16 stores them — the sheet-scoped names in workbook.xml (written by
openpyxl, as tests/handmade.py writes them), with the options Excel writes besides — for the
Simplex LP, branch and bound, Evolutionary and feasibility tests. Each builder returns the
numbers of its model, for an answer computed without excelnet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
from openpyxl.utils import get_column_letter as col
from openpyxl.workbook.defined_name import DefinedName

# What Excel 2010+ stores for a Simplex LP model with its defaults (solver_tol, the integer
# optimality, is 0 here: the tests want the exact optimum, not one within Excel's 1%)
SIMPLEX = {
    "solver_eng": "2",
    "solver_cvg": "0.0001",
    "solver_drv": "1",
    "solver_est": "1",
    "solver_itr": "2147483647",
    "solver_lin": "1",
    "solver_mip": "2147483647",
    "solver_mni": "30",
    "solver_mrt": "0.075",
    "solver_msl": "2",
    "solver_nod": "2147483647",
    "solver_nwt": "1",
    "solver_pre": "0.000001",
    "solver_rbv": "1",
    "solver_rlx": "2",
    "solver_rsd": "0",
    "solver_scl": "1",
    "solver_sho": "2",
    "solver_ssz": "100",
    "solver_tim": "2147483647",
    "solver_tol": "0",
    "solver_val": "0",
    "solver_ver": "3",
}
GRG = dict(SIMPLEX, solver_eng="1", solver_lin="2", solver_tol="0.01")
EVOLUTIONARY = dict(GRG, solver_eng="3")


def model_names(objective: str, adjustable: str, typ: int, neg: int, rows=(),
                engine: dict = SIMPLEX, **more) -> dict:  # fmt: skip
    """A Solver model's names as Excel writes them: the model, its constraints (lhs, relation,
    rhs), the engine's settings; `more` added or replaced (None: left out)."""
    names = dict(engine)
    names.update(
        solver_opt=objective,
        solver_adj=adjustable,
        solver_typ=str(typ),
        solver_neg=str(neg),
        solver_num=str(len(rows)),
    )
    for i, (lhs, rel, rhs) in enumerate(rows, start=1):
        names.update({f"solver_lhs{i}": lhs, f"solver_rel{i}": str(rel), f"solver_rhs{i}": rhs})
    names.update(more)
    return names


def solver_names(wb, sheet: str, objective: str, adjustable: str, typ: int, neg: int, rows=(),
                 engine: dict = SIMPLEX, **more) -> None:  # fmt: skip
    """The Solver model of `sheet`: sheet-scoped names, as Excel writes them."""
    names = model_names(objective, adjustable, typ, neg, rows, engine, **more)
    ws = wb[sheet]
    for key, text in names.items():
        if text is None:
            continue
        ws.defined_names[key] = DefinedName(
            key, attr_text=text, localSheetId=wb.sheetnames.index(sheet)
        )


def _sheet(title: str):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    return wb, ws


def product_mix(path: Path, start: float = 10.0, **more) -> dict:
    """Maximise profit: 6 products (B2:G2, how many of each) on 4 resources (use in B5:G8,
    used in H5:H8 <= capacity in I5:I8). Profits in the tens of millions, as in the issue."""
    rng = np.random.default_rng(5)
    products, resources = 6, 4
    profit = rng.integers(200, 900, products).astype(float) * 10
    use = rng.integers(1, 20, (resources, products)).astype(float)
    cap = rng.integers(20_000, 60_000, resources).astype(float)
    wb, ws = _sheet("Mix")
    last = col(1 + products)
    ws["A2"], ws["A3"], ws["H2"] = "quantity", "profit per unit", "total profit"
    for j in range(products):
        ws.cell(1, 2 + j, f"product {j + 1}")
        ws.cell(2, 2 + j, start)
        ws.cell(3, 2 + j, float(profit[j]))
        for i in range(resources):
            ws.cell(5 + i, 2 + j, float(use[i, j]))
    ws["H3"] = f"=SUMPRODUCT(B3:{last}3,$B$2:${last}$2)"
    for i in range(resources):
        ws.cell(5 + i, 1, f"resource {i + 1}")
        ws.cell(5 + i, 8, f"=SUMPRODUCT(B{5 + i}:{last}{5 + i},$B$2:${last}$2)")
        ws.cell(5 + i, 9, float(cap[i]))
    rows = [("Mix!$H$5:$H$8", 1, "Mix!$I$5:$I$8")]
    solver_names(wb, "Mix", "Mix!$H$3", f"Mix!$B$2:${last}$2", 1, 1, rows, **more)
    wb.save(path)
    return {"profit": profit, "use": use, "cap": cap}


def transport(path: Path, start: float = 5.0, **more) -> dict:
    """Minimise shipping cost: 3 plants (supply H3:H5) to 5 markets (demand B7:F7), shipments
    B3:F5, cost per unit on sheet costs."""
    rng = np.random.default_rng(7)
    plants, markets = 3, 5
    cost = rng.uniform(2, 20, (plants, markets)).round(2)
    supply = np.array([400.0, 350.0, 300.0])
    demand = np.array([180.0, 220.0, 160.0, 250.0, 190.0])
    wb, ws = _sheet("Ship")
    costs = wb.create_sheet("costs")
    for i in range(plants):
        ws.cell(3 + i, 1, f"plant {i + 1}")
        for j in range(markets):
            ws.cell(3 + i, 2 + j, start)
            costs.cell(1 + i, 1 + j, float(cost[i, j]))
        ws.cell(3 + i, 7, f"=SUM(B{3 + i}:F{3 + i})")
        ws.cell(3 + i, 8, float(supply[i]))
    for j in range(markets):
        c = col(2 + j)
        ws.cell(6, 2 + j, f"=SUM({c}3:{c}5)")
        ws.cell(7, 2 + j, float(demand[j]))
    ws["A9"], ws["B9"] = "total cost", "=SUMPRODUCT(B3:F5,costs!A1:E3)"
    rows = [("Ship!$G$3:$G$5", 1, "Ship!$H$3:$H$5"), ("Ship!$B$6:$F$6", 3, "Ship!$B$7:$F$7")]
    solver_names(wb, "Ship", "Ship!$B$9", "Ship!$B$3:$F$5", 2, 1, rows, **more)
    wb.save(path)
    return {"cost": cost, "supply": supply, "demand": demand}


def diet(path: Path, start: float = 1.0, **more) -> dict:
    """Minimise cost: servings of 5 foods (B2:F2, at most 4 each: a bound row), 3 nutrients
    at least as required (G4:G6 >= H4:H6)."""
    price = np.array([0.6, 1.1, 0.9, 2.0, 0.4])
    content = np.array(
        [[110, 205, 160, 160, 420], [4, 32, 13, 8, 4], [2, 12, 54, 285, 22]], dtype=float
    )
    need = np.array([2000.0, 55.0, 800.0])
    wb, ws = _sheet("Diet")
    for j in range(5):
        ws.cell(2, 2 + j, start)
        ws.cell(3, 2 + j, float(price[j]))
        for i in range(3):
            ws.cell(4 + i, 2 + j, float(content[i, j]))
    for i in range(3):
        ws.cell(4 + i, 7, f"=SUMPRODUCT(B{4 + i}:F{4 + i},$B$2:$F$2)")
        ws.cell(4 + i, 8, float(need[i]))
    ws["G3"] = "=SUMPRODUCT(B3:F3,B2:F2)"
    rows = [("Diet!$G$4:$G$6", 3, "Diet!$H$4:$H$6"), ("Diet!$B$2:$F$2", 1, "4")]
    solver_names(wb, "Diet", "Diet!$G$3", "Diet!$B$2:$F$2", 2, 1, rows, **more)
    wb.save(path)
    return {"price": price, "content": content, "need": need, "most": 4.0}


def knapsack(path: Path, start: float = 0.0, **more) -> dict:
    """Maximise value: 12 items (take one or not, B2:M2 bin), weight at most 50."""
    value = np.array([23, 31, 29, 44, 53, 38, 63, 85, 89, 82, 17, 41], dtype=float)
    weight = np.array([9, 11, 8, 15, 19, 12, 20, 27, 29, 26, 5, 14], dtype=float)
    wb, ws = _sheet("Pack")
    for j in range(12):
        ws.cell(2, 2 + j, start)
        ws.cell(3, 2 + j, float(value[j]))
        ws.cell(4, 2 + j, float(weight[j]))
    ws["A6"], ws["B6"] = "value", "=SUMPRODUCT(B3:M3,B2:M2)"
    ws["A7"], ws["B7"] = "weight", "=SUMPRODUCT(B4:M4,B2:M2)"
    rows = [("Pack!$B$7", 1, "50"), ("Pack!$B$2:$M$2", 5, "binary")]
    solver_names(wb, "Pack", "Pack!$B$6", "Pack!$B$2:$M$2", 1, 1, rows, **more)
    wb.save(path)
    return {"value": value, "weight": weight, "cap": 50.0}


def team(path: Path, start: float = 1.0, **more) -> dict:
    """Pick a team: 10 players (C2:C11 bin), exactly 5 picked, at least 2 defenders, salaries
    at most 100; maximise the rating. The players' data on the same sheet, by rows."""
    rating = np.array([88, 92, 75, 80, 70, 95, 85, 78, 83, 90], dtype=float)
    salary = np.array([22, 30, 15, 18, 12, 35, 20, 16, 19, 27], dtype=float)
    defender = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0], dtype=float)
    wb, ws = _sheet("Team")
    ws.append(["player", "rating", "picked", "salary", "defender"])
    for i in range(10):
        ws.append([f"p{i + 1}", float(rating[i]), start, float(salary[i]), float(defender[i])])
    ws["G2"], ws["H2"] = "rating", "=SUMPRODUCT(B2:B11,C2:C11)"
    ws["G3"], ws["H3"] = "players", "=SUM(C2:C11)"
    ws["G4"], ws["H4"] = "defenders", "=SUMPRODUCT(E2:E11,C2:C11)"
    ws["G5"], ws["H5"] = "salaries", "=SUMPRODUCT(D2:D11,C2:C11)"
    rows = [
        ("Team!$H$3", 2, "5"),
        ("Team!$H$4", 3, "2"),
        ("Team!$H$5", 1, "100"),
        ("Team!$C$2:$C$11", 5, "binary"),
    ]
    solver_names(wb, "Team", "Team!$H$2", "Team!$C$2:$C$11", 1, 1, rows, **more)
    wb.save(path)
    return {"rating": rating, "salary": salary, "defender": defender}


def sequence(path: Path, start: float = 1.0, **more) -> dict:
    """Order 6 jobs (their positions B2:G2, AllDifferent: 1..6 in some order) to minimise the
    weighted sum of positions plus a penalty when job 1 comes after job 2 (a linear term:
    B2 - C2 weighted)."""
    weight = np.array([3.0, 8.0, 1.0, 6.0, 4.0, 2.0])
    wb, ws = _sheet("Jobs")
    for j in range(6):
        ws.cell(1, 2 + j, f"job {j + 1}")
        ws.cell(2, 2 + j, start)
        ws.cell(3, 2 + j, float(weight[j]))
    ws["A5"], ws["B5"] = "cost", "=SUMPRODUCT(B3:G3,B2:G2)+2.5*(B2-C2)"
    rows = [("Jobs!$B$2:$G$2", 6, "AllDifferent")]
    solver_names(wb, "Jobs", "Jobs!$B$5", "Jobs!$B$2:$G$2", 2, 1, rows, **more)
    wb.save(path)
    return {"weight": weight}


def two_variables(path: Path, objective: str, rows, typ: int = 1, neg: int = 1,
                  engine: dict = SIMPLEX, start=(1.0, 1.0), **more) -> None:  # fmt: skip
    """x in B1, y in B2, the objective in B4; each row's left-hand side a formula (put in
    C1, C2, …) or a reference to cells (M!$B$1: a bound)."""
    wb, ws = _sheet("M")
    ws["A1"], ws["B1"], ws["A2"], ws["B2"] = "x", start[0], "y", start[1]
    ws["A4"], ws["B4"] = "objective", objective
    cells = []
    for i, (lhs, rel, rhs) in enumerate(rows):
        if lhs.startswith("="):
            ws[f"C{i + 1}"] = lhs
            lhs = f"M!$C${i + 1}"
        cells.append((lhs, rel, rhs))
    solver_names(wb, "M", "M!$B$4", "M!$B$1:$B$2", typ, neg, cells, engine=engine, **more)
    wb.save(path)


def sigmoid_net(path: Path, square: str = "^2", **more) -> dict:
    """A one-unit sigmoid net on data it can separate: prediction 1/(1+EXP(-(w·x+b))),
    squared error (by ^2, or `square` "*": the difference times itself). The error falls as w
    grows without end, until EXP(-z) overflows to #NUM! in Excel (z < -709.78): the points a
    fit must never keep."""
    x = np.array([-3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0])
    y = (x > 0).astype(float)
    wb, ws = _sheet("Net")
    ws["A1"], ws["B1"], ws["A2"], ws["B2"] = "w", 0.5, "b", 0.0
    ws["D1"], ws["E1"], ws["F1"], ws["G1"] = "x", "y", "p", "error²"
    for i, (a, t) in enumerate(zip(x, y, strict=True), start=2):
        ws[f"D{i}"], ws[f"E{i}"] = float(a), float(t)
        ws[f"F{i}"] = f"=1/(1+EXP(-($B$1*D{i}+$B$2)))"
        d = f"(F{i}-E{i})"
        ws[f"G{i}"] = f"={d}^2" if square == "^2" else f"={d}*{d}"
    n = len(x) + 1
    ws["A4"], ws["B4"] = "loss", f"=SUM(G2:G{n})"
    solver_names(wb, "Net", "Net!$B$4", "Net!$B$1:$B$2", 2, 2, engine=GRG, **more)
    wb.save(path)
    return {"x": x, "y": y}
