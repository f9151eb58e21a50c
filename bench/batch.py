"""Forty workbooks checked and fitted in one command, against one command per workbook:

    python -m bench.batch [--books 40] [--out bench/results-batch.json] [--no-ray]

The workbooks are the lesson sheets (quadratic, relu, double-relu) built with different seeds.
Each way is timed as a user waits for it (wall clock, the whole command, from fresh copies):
one `excelnet check|fit BOOK` process per workbook (a shell loop), then `excelnet check|fit
BOOKS…` with -j 1 (one process, one workbook after the other: the per-process start-up paid
once), -j 2 (two worker processes), and --cluster on a local Ray cluster of 2 CPUs started for
the bench (its start is timed apart; its workers' first imports count). The load average is
recorded with each: on a shared machine the -j 2 figures depend most on what else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(folder: Path, count: int) -> list[Path]:
    from excelnet.writer.lessons import build_double_relu, build_quadratic, build_relu

    builders = [build_quadratic, build_relu, build_double_relu]
    folder.mkdir(parents=True, exist_ok=True)
    books = []
    for i in range(count):
        b = builders[i % 3]
        books.append(b(folder / f"{b.__name__.removeprefix('build_')}-{i // 3}.xlsx", seed=i // 3))
    return books


def wall(argv: list[str], env: dict) -> tuple[float, float]:
    """A command's wall-clock seconds and the load average around it."""
    load = os.getloadavg()[0]
    t = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, env=env)
    took = time.perf_counter() - t
    if run.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv[:6])}…: {run.stderr.strip()[-500:]}")
    return took, (load + os.getloadavg()[0]) / 2


def fresh(books: list[Path], folder: Path) -> list[Path]:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return [shutil.copy(b, folder / b.name) for b in books]


def ray_cluster(env: dict):
    """A local Ray cluster (2 CPUs): its address and start-up seconds; stop() ends it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    t = time.perf_counter()
    subprocess.run(
        [*ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1"]
        + ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
        check=True,
        capture_output=True,
        env=env,
    )
    return (
        f"127.0.0.1:{port}",
        time.perf_counter() - t,
        lambda: subprocess.run([*ray, "stop"], capture_output=True, env=env),
    )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.split("\n")[0])
    p.add_argument("--books", type=int, default=40)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results-batch.json")
    p.add_argument("--no-ray", action="store_true", help="skip the local Ray cluster")
    args = p.parse_args()
    from bench.__main__ import machine

    info = machine()
    info["load_average"] = os.getloadavg()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    excelnet = [sys.executable, "-m", "excelnet"]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="excelnet-batch-") as tmp:
        work = Path(tmp)
        books = build(work / "books", args.books)
        cluster, ray_start, stop = (None, None, None)
        if not args.no_ray:
            cluster, ray_start, stop = ray_cluster(env)
        try:
            for command, extra in (("check", ["-q"]), ("fit", ["-q", "--no-history"])):
                r = results[command] = {}
                copies = fresh(books, work / "one-each")
                total, loads = 0.0, []
                for b in copies:
                    took, load = wall([*excelnet, command, str(b), *extra], env)
                    total, loads = total + took, loads + [load]
                r["a process per workbook"] = {"seconds": total, "load": max(loads)}
                ways = [("-j 1", ["-j", "1"]), ("-j 2", ["-j", "2"])]
                if cluster:
                    ways.append(("Ray cluster (2 CPUs)", ["--cluster", cluster]))
                for name, flags in ways:
                    copies = fresh(books, work / name.replace(" ", "_"))
                    argv = [*excelnet, command, *map(str, copies), *flags, *extra, "--json"]
                    took, load = wall(argv, env)
                    r[name] = {"seconds": took, "load": load}
                one = r["a process per workbook"]["seconds"]
                r["start-up saved per workbook by one process"] = {
                    "seconds": (one - r["-j 1"]["seconds"]) / len(books)
                }
                for name, v in r.items():
                    print(f"{command}: {name}: {v['seconds']:.2f} s", file=sys.stderr, flush=True)
        finally:
            if stop:
                stop()
    info["load_average_after"] = os.getloadavg()
    doc = {"machine": info, "books": args.books, "ray_start_seconds": ray_start, "results": results}
    args.out.write_text(json.dumps(doc, indent=2))
    print(table(doc))


def table(doc: dict) -> str:
    info = doc["machine"]
    lines = [
        f"{info['date']}: {info['cpu']}, {info['cores']} cores, load average "
        f"{info['load_average'][0]:.1f} at the start, {info['load_average_after'][0]:.1f} at the "
        f"end; {doc['books']} workbooks",
        "",
        "| command | way | seconds | per workbook | load |",
        "| --- | --- | --- | --- | --- |",
    ]
    for command, r in doc["results"].items():
        for name, v in r.items():
            if "saved" in name:
                continue
            lines.append(
                f"| {command} | {name} | {v['seconds']:.1f} | {v['seconds'] / doc['books']:.2f} | "
                f"{v['load']:.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
