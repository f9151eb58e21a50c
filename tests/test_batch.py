"""Many workbooks in one command, and the fits of one run side by side: the same results as
one at a time, a bad workbook reported in one line while the others are written, -j 2 worker
processes, seeded starts (fit --seeds, compare --seeds), a parallel lr sweep, and the same jobs
on a local Ray cluster."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from excelnet.fitting.pipeline import fit, seeded_start
from tests.conftest import cli, run_cli

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ["quadratic", "relu", "double-relu"]
VARY = {"seconds", "engine_reason"}  # what differs between two runs of the same fit


def _copies(folder: Path, names=LESSONS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [shutil.copy(ROOT / "workbooks" / f"{n}.xlsx", folder / f"{n}.xlsx") for n in names]


def _same(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k not in VARY} == {
        k: v for k, v in b.items() if k not in VARY
    }


def _values(path: Path) -> dict:
    """Every cell's value as the file stores it (formulas' cached values)."""
    wb = openpyxl.load_workbook(path, data_only=True)
    return {(ws.title, c.coordinate): c.value for ws in wb for row in ws.iter_rows() for c in row}


def test_a_batch_gives_each_workbook_what_a_single_run_gives(tmp_path, capsys):
    alone, together = _copies(tmp_path / "alone"), _copies(tmp_path / "together")
    single = {}
    for book in alone:
        code, out, err = cli(capsys, "fit", book, "--json", "-q", "--no-history")
        assert code == 0, err
        single[book.name] = json.loads(out)["fits"]
    run = run_cli("fit", *together, "-j", 2, "--json", "-q", "--no-history")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["failed"] == 0 and [Path(b["book"]).name for b in doc["books"]] == [
        b.name for b in together
    ]
    for entry in doc["books"]:
        want = single[Path(entry["book"]).name]
        assert len(entry["fits"]) == len(want)
        for got, w in zip(entry["fits"], want, strict=True):
            assert _same(got, w), (got, w)
    for a, b in zip(alone, together, strict=True):
        assert _values(a) == _values(b)  # the same numbers written


def test_a_bad_workbook_is_reported_in_one_line_and_the_others_are_written(tmp_path):
    good = _copies(tmp_path, ["quadratic", "relu"])
    bad = tmp_path / "broken.xlsx"
    bad.write_text("not a workbook")
    missing = tmp_path / "missing.xlsx"
    before = {b: b.read_bytes() for b in good}
    run = run_cli("fit", good[0], bad, missing, good[1], "-j", 2, "--no-history", "-q")
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors) == 2 and "Traceback" not in run.stderr, run.stderr
    assert any("broken.xlsx" in e for e in errors) and any("missing.xlsx" in e for e in errors)
    assert all(b.read_bytes() != before[b] for b in good)  # both fitted and written
    assert "2 of 4 workbooks done, 2 failed" in run.stdout
    doc = json.loads(run_cli("eval", good[0], bad, "--json", "-j", 1, "-q").stdout)
    assert doc["failed"] == 1 and "error" in doc["books"][1] and "models" in doc["books"][0]


def test_patterns_are_expanded_and_one_output_is_refused_for_several(tmp_path, capsys):
    _copies(tmp_path)
    code, out, err = cli(capsys, "check", str(tmp_path / "*.xlsx"), "-j", 1, "--json", "-q")
    assert code == 0, err
    assert sorted(Path(b["book"]).name for b in json.loads(out)["books"]) == sorted(
        f"{n}.xlsx" for n in LESSONS
    )
    code, _, err = cli(capsys, "calc", str(tmp_path / "nothing-*.xlsx"))
    assert code == 2 and "no file matches" in err and err.count("\n") == 1
    code, _, err = cli(capsys, "fit", str(tmp_path / "*.xlsx"), "--out", tmp_path / "o.xlsx")
    assert code == 2 and "--out names one output" in err
    code, _, err = cli(capsys, "calc", tmp_path / "relu.xlsx", tmp_path / "quadratic.xlsx", "-j", 0)
    assert code == 2 and "-j" in err


def test_one_workbook_keeps_its_own_output(tmp_path, capsys):
    (book,) = _copies(tmp_path, ["relu"])
    code, out, _ = cli(capsys, "fit", book, "--no-history", "-q")
    assert code == 0
    assert "excelnet fit" in out and "relu: minimise relu!" in out
    assert "workbooks done" not in out and " book " not in out
    code, out, _ = cli(capsys, "check", book, "-q")
    assert code == 0 and out.startswith("relu: ")


def test_seeded_starts(tmp_path, capsys):
    """Start 0 is the workbook's own parameters, the others are seeded (the same seed, the same
    start) and within the bounds; the best fit is kept, never worse than the plain fit; -j 2
    gives what one process gives."""
    from excelnet.fitting.pipeline import compile_models
    from excelnet.fitting.problem import Problem
    from excelnet.xlsx.read import read_book

    plain, one, two = (_copies(tmp_path / d, ["double-relu"])[0] for d in ("a", "b", "c"))
    (model,) = compile_models(read_book(plain))
    problem = Problem(model)
    assert seeded_start(problem, 0).tolist() == problem.start().tolist()
    assert seeded_start(problem, 3).tolist() == seeded_start(problem, 3).tolist()
    assert seeded_start(problem, 3).tolist() != seeded_start(problem, 4).tolist()
    (p,) = fit(plain, history=False)
    (a,) = fit(one, history=False, seeds=3, workers=1)
    code, out, err = cli(capsys, "fit", two, "--seeds", 3, "-j", 2, "--json", "--no-history")
    assert code == 0, err
    (b,) = json.loads(out)["fits"]
    assert a.starts == b["starts"] == 3 and len(a.start_losses) == 3
    assert a.start_losses[0] == pytest.approx(p.final_loss, rel=1e-12)
    assert a.final_loss == min(a.start_losses) <= p.final_loss
    assert (b["best_start"], b["final_loss"]) == (a.best_start, a.final_loss)
    assert b["start_losses"] == pytest.approx(a.start_losses, rel=1e-12)
    assert _values(one) == _values(two)  # the best start's parameters, written


def test_a_parallel_lr_sweep_and_compare_with_seeds(tmp_path, capsys):
    (one,), (two,) = _copies(tmp_path / "a", ["quadratic"]), _copies(tmp_path / "b", ["quadratic"])
    args = ("--sheet", "quadratic", "--lrs", "0.01,0.1,1", "--epochs", 50, "--json", "-q")
    code, out, err = cli(capsys, "lr-sweep", one, *args, "-j", 1)
    assert code == 0, err
    runs = json.loads(out)["runs"]
    code, out, err = cli(capsys, "lr-sweep", two, *args, "-j", 2)
    assert code == 0, err
    assert json.loads(out)["runs"] == runs
    assert _values(one) == _values(two)
    code, out, err = cli(capsys, "compare", one, "--seeds", 2, "-j", 2, "--json", "-q")
    assert code == 0, err
    (r,) = json.loads(out)["fits"]
    assert r["starts"] == 2 and r["final_loss"] == min(r["start_losses"])
    assert "compare" in openpyxl.load_workbook(one).sheetnames


# -- a local Ray cluster ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A one-node Ray cluster on this machine (its GCS address), stopped at the end."""
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("the --cluster tests need Ray when CI=true (pip install -e '.[test]')")
        pytest.skip("ray is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    start = subprocess.run(
        [
            *ray,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        env=env,  # the workers import this excelnet
    )
    try:
        assert start.returncode == 0, start.stderr[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([*ray, "stop"], capture_output=True, env=env)


def test_the_ray_cluster_gives_the_same_results(ray_cluster, tmp_path):
    here, there = _copies(tmp_path / "here"), _copies(tmp_path / "there")
    local = run_cli("fit", *here, "-j", 1, "--json", "-q", "--no-history")
    assert local.returncode == 0, local.stderr
    remote = run_cli("fit", *there, "--cluster", ray_cluster, "--json", "-q", "--no-history")
    assert remote.returncode == 0, remote.stderr
    a, b = json.loads(local.stdout)["books"], json.loads(remote.stdout)["books"]
    for x, y in zip(a, b, strict=True):
        assert Path(x["book"]).name == Path(y["book"]).name
        for got, want in zip(y["fits"], x["fits"], strict=True):
            assert _same(got, want)
            assert got["engine_choice"] == "eager"  # the workers run this excelnet
    for p, q in zip(here, there, strict=True):
        assert _values(p) == _values(q)  # written where they live, by the cluster's workers
    (book,) = _copies(tmp_path / "seeds", ["relu"])
    seeds = run_cli(
        "fit", book, "--seeds", 3, "--cluster", ray_cluster, "--json", "-q", "--no-history"
    )
    assert seeds.returncode == 0, seeds.stderr
    (r,) = json.loads(seeds.stdout)["fits"]
    (want,) = fit(_copies(tmp_path / "seeds-here", ["relu"])[0], history=False, seeds=3)
    assert (r["best_start"], r["final_loss"]) == (want.best_start, want.final_loss)
    bad = run_cli("check", here[0], "--cluster", "127.0.0.1:1", "-q")
    assert bad.returncode == 2 and "cannot connect" in bad.stderr
