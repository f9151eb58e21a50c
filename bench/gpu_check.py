"""The GPU check: the CUDA path on the Titanic nn sheet and on a 1,000,000-row resample.

    python -m bench.gpu_check [--passengers 1000000] [--out gpu-check.json]

For each workbook: the same model compiled for the CPU and for CUDA (float64) runs the same
epochs from the same parameters; the final losses must agree to 1e-9 (relative). Then the CUDA
engines' epochs per second (one captured CUDA graph per step, and eager steps), and the whole
`fit` (read, compile, train, write back) on each device. Exit 1 if a check fails, 2 if there is
no GPU. The resample is built in the background while the Titanic checks run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.__main__ import CACHE, ROOT, epoch_rate

TITANIC = ROOT / "workbooks" / "titanic.xlsx"
LR = 0.1
RTOL = 1e-9
results: dict = {"checks": [], "rates": [], "fits": []}


def say(*parts: object) -> None:
    print(*parts, flush=True)


def build_in_background(passengers: int) -> tuple[Path, subprocess.Popen | None]:
    path = CACHE / f"titanic-{passengers}.xlsx"
    if path.exists() and (CACHE / f"titanic-{passengers}.seconds").exists():
        return path, None
    code = f"from bench.__main__ import resampled_workbook; resampled_workbook({passengers})"
    return path, subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


def same_fit(label: str, book, epochs: int) -> object:
    """Train the nn model on the CPU (eager) and on CUDA from the same start; compare."""
    from excelnet.fitting.options import FitOptions
    from excelnet.fitting.pipeline import compile_models
    from excelnet.fitting.train import train

    t = time.perf_counter()
    (cpu,) = compile_models(book, "nn", device="cpu")
    compile_cpu = time.perf_counter() - t
    t = time.perf_counter()
    (gpu,) = compile_models(book, "nn", device="cuda")
    torch.cuda.synchronize()
    compile_gpu = time.perf_counter() - t
    a = train(cpu, FitOptions(epochs, LR, history=False, compiled=False))
    b = train(gpu, FitOptions(epochs, LR, history=False))
    if b.engine_note:
        say(f"{label}: {b.engine_note}")
    worst = max(abs(x - y) / max(abs(x), 1e-300) for x, y in zip(a.losses, b.losses, strict=True))
    final = abs(a.final_loss - b.final_loss) / abs(a.final_loss)
    pdiff = max(abs(a.params[k] - b.params[k]) for k in a.params)
    ok = (
        final <= RTOL
        and b.engine == "cuda graph"
        and len(a.losses) == len(b.losses)
        and not (a.diverged or b.diverged)
    )
    row = {
        "case": label,
        "epochs": epochs,
        "cpu_final_loss": a.final_loss,
        "cuda_final_loss": b.final_loss,
        "final_rel_diff": final,
        "worst_epoch_rel_diff": worst,
        "max_param_abs_diff": pdiff,
        "cuda_engine": b.engine,
        "cuda_engine_note": b.engine_note,
        "compile_seconds": {"cpu": compile_cpu, "cuda": compile_gpu},
        "ok": ok,
    }
    results["checks"].append(row)
    say(
        f"{label}: {epochs} epochs, loss cpu {a.final_loss:.15g} cuda {b.final_loss:.15g} "
        f"(rel {final:.1e}, worst epoch {worst:.1e}, params {pdiff:.1e}) engine "
        f"{b.engine!r} -> {'ok' if ok else 'FAILED'}"
    )
    return gpu


def rates(label: str, model, rows: int, graph_steps: int, eager_steps: int) -> None:
    from bench.minimal import torch_rate

    eager, _ = epoch_rate(model, "eager", eager_steps, 3)
    try:
        graph, setup = epoch_rate(model, "cuda graph", graph_steps, 3)
    except Exception as e:  # reported, not hidden
        graph, setup = None, None
        say(f"{label}: cuda graph failed: {e!r}")
    row = {
        "case": label,
        "graph_epochs_per_second": graph,
        "capture_seconds": setup,
        "eager_epochs_per_second": eager,
        "minimal_torch_graph": torch_rate(rows, graph_steps, "cuda", graph=True),
        "minimal_torch_eager": torch_rate(rows, eager_steps, "cuda"),
        "max_memory_mib": torch.cuda.max_memory_allocated() / 2**20,
    }
    results["rates"].append(row)
    g = f"{graph:,.0f}/s (capture {setup:.2f} s)" if graph else "—"
    say(
        f"{label}: cuda graph {g}, cuda eager {eager:,.0f}/s; the minimal torch program: "
        f"{row['minimal_torch_graph']:,.0f}/s graph, {row['minimal_torch_eager']:,.0f}/s eager"
    )
    profile(label, model)


def profile(label: str, model) -> None:
    """Where one eager step's GPU time goes: kernels launched, the costliest ones."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from excelnet.fitting.optimisers import runner
    from excelnet.fitting.problem import Problem

    run, _ = runner(Problem(model), "gd", 0.0, "eager", 5)
    run.run(1)
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run.run(5)
        torch.cuda.synchronize()
    events = prof.key_averages()
    kernels = sum(e.count for e in events if e.device_type.name == "CUDA") / 5
    table = events.table(sort_by="cuda_time_total", row_limit=15)
    results.setdefault("profiles", {})[label] = {"kernels_per_step": kernels, "table": table}
    say(f"{label}: {kernels:.0f} GPU kernels per eager step")


def whole_fit(label: str, path: Path, epochs: int) -> None:
    """excelnet.fit end to end on each device (a copy of the workbook each time)."""
    from excelnet.fitting.pipeline import fit

    row: dict = {"case": label, "epochs": epochs}
    with tempfile.TemporaryDirectory() as tmp:
        for device in ("cpu", "cuda"):
            copy = shutil.copy(path, Path(tmp) / f"{device}.xlsx")
            t = time.perf_counter()
            (r,) = fit(copy, sheet="nn", epochs=epochs, device=device, compiled=False, lr=LR)
            row[device] = {
                "seconds": time.perf_counter() - t,
                "loss": r.final_loss,
                "engine": r.engine,
                "train_seconds": r.seconds,
            }
    rel = abs(row["cpu"]["loss"] - row["cuda"]["loss"]) / row["cpu"]["loss"]
    row["ok"] = rel <= RTOL
    results["fits"].append(row)
    say(
        f"{label}: excelnet.fit cpu {row['cpu']['seconds']:.2f} s, cuda "
        f"{row['cuda']['seconds']:.2f} s ({row['cuda']['engine']}), losses rel {rel:.1e}"
    )


def methods(label: str, path: Path, epochs: int) -> None:
    """Every method on each device from the same start: the same fit (lbfgs and gd's own
    step take decisions on the numbers, so 1e-6 rather than 1e-9)."""
    from excelnet.fitting.pipeline import fit

    with tempfile.TemporaryDirectory() as tmp:
        for method in ("gd", "adam", "lbfgs"):
            got = {}
            for device in ("cpu", "cuda"):
                copy = shutil.copy(path, Path(tmp) / f"{device}.xlsx")
                (got[device],) = fit(
                    copy, sheet="nn", epochs=epochs, device=device, method=method, history=False
                )
            a, b = got["cpu"], got["cuda"]
            rel = abs(a.final_loss - b.final_loss) / a.final_loss
            ok = rel <= 1e-6 and b.engine == "cuda graph"
            results["fits"].append(
                {
                    "case": f"{label}, {method}",
                    "cpu_loss": a.final_loss,
                    "cuda_loss": b.final_loss,
                    "cuda_engine": b.engine,
                    "cuda_engine_note": b.engine_note,
                    "cuda_train_seconds": b.seconds,
                    "ok": ok,
                }
            )
            say(
                f"{label}, --method {method}: loss cpu {a.final_loss:.12g} cuda "
                f"{b.final_loss:.12g} (rel {rel:.1e}), {b.engine!r} {b.seconds:.2f} s "
                f"-> {'ok' if ok else 'FAILED'}"
            )


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__)
    p.add_argument("--passengers", type=int, default=1_000_000, help="0 skips the resample")
    p.add_argument("--out", type=Path, default=CACHE / "gpu-check.json")
    args = p.parse_args()
    if not torch.cuda.is_available():
        say("no CUDA GPU here")
        return 2
    from excelnet.xlsx.read import read_book

    CACHE.mkdir(parents=True, exist_ok=True)
    huge, builder = build_in_background(args.passengers) if args.passengers else (None, None)
    results["machine"] = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
    }
    say(json.dumps(results["machine"]))
    try:
        book = read_book(TITANIC, "nn")
        model = same_fit("Titanic nn (891 rows)", book, 1000)
        rates("Titanic nn (891 rows)", model, 891, graph_steps=5000, eager_steps=500)
        whole_fit("Titanic nn (891 rows)", TITANIC, 1000)
        methods("Titanic nn (891 rows)", TITANIC, 300)
        if huge is not None:
            t = time.perf_counter()
            if builder is not None and builder.wait() != 0:
                raise RuntimeError("building the resample failed")
            say(f"resample built (waited {time.perf_counter() - t:.0f} s)")
            t = time.perf_counter()
            book = read_book(huge, "nn")
            say(f"resample read in {time.perf_counter() - t:.1f} s")
            label = f"nn, {args.passengers:,}-row resample"
            model = same_fit(label, book, 20)
            rates(label, model, args.passengers, graph_steps=500, eager_steps=50)
    finally:
        args.out.write_text(json.dumps(results, indent=2))
        if builder is not None and builder.poll() is None:
            builder.kill()
    ok = all(r["ok"] for r in results["checks"] + results["fits"])
    say("GPU check:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
