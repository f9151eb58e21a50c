"""The engine choice against both engines, on every shape it must get right:

    python -m bench.engines [--out bench/results-engines.json] [--only NAME,…]

Each shape is fitted as `excelnet fit --sheet S --no-history` does (L-BFGS, 1000 iterations
allowed), each fit in a process of its own from a fresh copy, with --engine auto (the choice),
eager and compiled, in a torch compile cache of the bench's own: first cold (nothing cached),
then warm (the compiled fit left its kernels, and excelnet its marker, there). A shape meets
the target when the choice's fit took at most 1.2x the better engine's (ratio ≤ 1.2). The fits'
own seconds (SheetFit.seconds: the choice, any compile and the steps) are compared; the choice's
and the eager fits alternate, and quick ones are repeated (medians). The load average is
recorded with every fit: a loaded machine stretches every time, the compiles most.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.2
QUICK = 10.0  # seconds: eager fits quicker than this are run REPEAT times (median), and
REPEAT = 3  # those under a second 2 * REPEAT - 1 times: a busy machine's noise is theirs


def shapes(cache: Path) -> list[tuple[str, Path, str | None]]:
    from bench.__main__ import resampled_workbook
    from bench.shapes import collab, two_layer

    cache.mkdir(parents=True, exist_ok=True)
    titanic = ROOT / "workbooks" / "titanic.xlsx"
    big, _ = resampled_workbook(100_000)
    return [
        ("quadratic (3 parameters)", ROOT / "workbooks" / "quadratic.xlsx", None),
        ("relu (2 parameters)", ROOT / "workbooks" / "relu.xlsx", None),
        ("double-relu (4 parameters)", ROOT / "workbooks" / "double-relu.xlsx", None),
        ("Titanic linear (891 rows)", titanic, "linear"),
        ("Titanic nn (891 rows)", titanic, "nn"),
        ("Titanic mmult (891 rows)", titanic, "mmult"),
        ("collaborative filter (150 parameters)", collab(cache / "collab.xlsx"), None),
        ("two-layer net (39 parameters, 100 rows)", two_layer(cache / "net.xlsx"), None),
        ("Titanic nn (100,000 rows)", big, "nn"),
    ]


def fit(book: Path, sheet: str | None, engine: str, work: Path, env: dict) -> dict:
    """One fit in a process of its own, from a fresh copy: its --json summary and the load."""
    copy = shutil.copy(book, work / f"fit{book.suffix}")
    argv = [sys.executable, "-m", "excelnet", "fit", str(copy), "--engine", engine]
    argv += ["--no-history", "--json", "-q", *(["--sheet", sheet] if sheet else [])]
    load = os.getloadavg()[0]
    run = subprocess.run(argv, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {run.stderr.strip()[-500:]}")
    (r,) = json.loads(run.stdout)["fits"]
    r["load"] = (load + os.getloadavg()[0]) / 2
    return r


def timed(book, sheet, engine, work, env) -> tuple[float, dict]:
    """A fit's seconds, once."""
    r = fit(book, sheet, engine, work, env)
    return r["seconds"], r


def paired(book, sheet, work, auto_env, eager_env) -> tuple[float, dict, float, dict]:
    """The choice's fit and the eager fit, alternately, so that a change in the machine's load
    falls on both: once each, and where the choice ran eagerly and quickly (nothing to compile)
    REPEAT times each (under a second: 2 * REPEAT - 1), the medians."""
    auto = [fit(book, sheet, "auto", work, auto_env)]
    eager = [fit(book, sheet, "eager", work, eager_env)]
    if auto[0]["engine"] == "eager" and max(auto[0]["seconds"], eager[0]["seconds"]) < QUICK:
        more = REPEAT - 1 if eager[0]["seconds"] >= 1 else 2 * REPEAT - 2
        for _ in range(more):
            eager.append(fit(book, sheet, "eager", work, eager_env))
            auto.append(fit(book, sheet, "auto", work, auto_env))
    med = statistics.median
    return med(r["seconds"] for r in auto), auto[0], med(r["seconds"] for r in eager), eager[0]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results-engines.json")
    p.add_argument("--only", help="comma-separated words of the shapes' names to run")
    args = p.parse_args()
    from bench.__main__ import CACHE, machine

    info = machine()
    info["load_average"] = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="excelnet-engines-") as tmp:
        work = Path(tmp)
        for i, (name, book, sheet) in enumerate(shapes(CACHE / "engines")):
            if args.only and not any(w in name for w in args.only.split(",")):
                continue
            print(f"{name}:", file=sys.stderr, flush=True)
            row = {"shape": name, "book": book.name, "sheet": sheet, "rounds": {}}

            def cache(which: str, i: int = i) -> dict:  # each cold fit in an empty cache
                return dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(work / f"{which}-{i}"))

            for state in ("cold", "warm"):
                # warm: the cache the cold compiled fit filled (and marked)
                auto_env = cache("auto" if state == "cold" else "compiled")
                auto_s, auto, eager_s, eager = paired(book, sheet, work, auto_env, cache("eager"))
                compiled_s, compiled = timed(book, sheet, "compiled", work, cache("compiled"))
                better = min(eager_s, compiled_s)
                ratio = auto_s / better
                r = {
                    "chosen": auto["engine"],
                    "reason": auto["engine_reason"],
                    "auto_s": auto_s,
                    "eager_s": eager_s,
                    "compiled_s": compiled_s,
                    "compiled_engine": compiled["engine"],
                    "better": "eager" if eager_s <= compiled_s else "compiled",
                    "ratio": ratio,
                    "met": ratio <= TARGET,
                    "iterations": auto["epochs"],
                    "final_loss": auto["final_loss"],
                    "loads": [eager["load"], auto["load"], compiled["load"]],
                }
                row["rounds"][state] = r
                print(
                    f"  {state}: chose {r['chosen']} {auto_s:.2f} s; eager {eager_s:.2f} s, "
                    f"compiled {compiled_s:.2f} s: {ratio:.2f}x the better "
                    f"({'met' if r['met'] else 'MISSED'}); load {max(r['loads']):.1f}",
                    file=sys.stderr,
                    flush=True,
                )
            rows.append(row)
    info["load_average_after"] = os.getloadavg()
    args.out.write_text(json.dumps({"machine": info, "target": TARGET, "shapes": rows}, indent=2))
    print(table(rows, info))


def table(rows: list[dict], info: dict) -> str:
    lines = [
        f"{info['date']}: {info['cpu']}, {info['cores']} cores, load average "
        f"{info['load_average'][0]:.1f} at the start, torch {info['torch']}",
        "",
        "| shape | cache | chosen | chosen's fit | eager | compiled | ratio to the better | "
        "met (≤ 1.2) | L-BFGS iterations | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        for state, r in row["rounds"].items():
            lines.append(
                f"| {row['shape']} | {state} | {r['chosen']} | {r['auto_s']:.2f} s | "
                f"{r['eager_s']:.2f} s | {r['compiled_s']:.2f} s | {r['ratio']:.2f} | "
                f"{'yes' if r['met'] else '**no**'} | {r['iterations']} | "
                f"{max(r['loads']):.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"bench.engines: {time.perf_counter() - t:.0f} s", file=sys.stderr)
