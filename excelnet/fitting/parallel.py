"""Jobs side by side — `excelnet fit|calc|check|eval` over many workbooks, an lr sweep's rates,
a fit's seeded starts — in worker processes on this machine (-j N) or on a Ray cluster
(--cluster). A job is a module-level function and its picklable arguments; each comes back as
an Outcome: its value, or its error in one line, with the warnings it raised. One job's failure
stops no other.

Local workers start by forkserver where there is one (else spawn): torch and a forked process
do not mix well (a thread pool the parent started is not in the child). Each worker runs a
share of the cores' threads, so that N workers do not fight over them. With one worker, or one
job, the jobs run in this process, one after the other: no start-up to pay.

On a Ray cluster the same function runs as a Ray task (`ray.remote`), on whichever node has a
free CPU; the workbooks are read and written where their paths lead there, so the paths must
name the same files on every node (a shared file system), and every node needs excelnet.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from excelnet.errors import ExcelnetError

CLUSTER_HELP = (
    "run the jobs on a Ray cluster: ray://HOST:PORT (Ray Client), HOST:PORT (its GCS) or auto "
    "(the one this machine belongs to); the workbooks' paths must lead to the same files on "
    "every node (pip install 'excelnet[cluster]')"
)


# What the forkserver loads once for every worker it forks (each would take seconds to import)
PRELOAD = [
    "torch",
    "excelnet.fitting.parallel",
    "excelnet.fitting.pipeline",
    "excelnet.fitting.train",
    "excelnet.xlsx.read",
    "excelnet.xlsx.recalc",
    "excelnet.xlsx.writeback",
]


@dataclass
class Outcome:
    """What one job gave: its value, or its error (one line); the warnings it raised."""

    value: object = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def cores() -> int:
    """The cores this process may use (the default number of workers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_workers(workers: int | None) -> int:
    if workers is None:
        return cores()
    if workers < 1:
        raise ExcelnetError(f"-j: the number of workers must be 1 or more, not {workers}")
    return workers


def attempt(fn: Callable, args: tuple) -> Outcome:
    """fn(*args) as an Outcome: what a worker runs for each job."""
    import warnings

    start = time.perf_counter()
    value, error = None, None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            value = fn(*args)
        except ExcelnetError as e:
            error = e.command_line
        except MemoryError:
            error = "out of memory; nothing was written"
        except Exception as e:  # one job's failure, whatever it is, stops no other
            text = str(e).strip().splitlines()
            error = f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")
    said = list(dict.fromkeys(str(w.message) for w in seen))
    return Outcome(value, error, said, time.perf_counter() - start)


def _start_worker(threads: int) -> None:
    """A local worker's first act: its share of the cores' threads."""
    import torch

    from excelnet.fitting import engines

    torch.set_num_threads(threads)
    engines.THREADS = threads


def _context():
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":  # the workers fork from a server that loaded
        ctx.set_forkserver_preload(PRELOAD)  # torch and excelnet once, before any thread
    return ctx


def run_jobs(
    fn: Callable,
    jobs: Sequence[tuple],
    workers: int | None = None,
    cluster: str | None = None,
    done: Callable[[int, Outcome], None] | None = None,
) -> list[Outcome]:
    """fn(*job) for every job: on `workers` local processes (default: the cores), or on the Ray
    cluster at `cluster`. The outcomes in the order of the jobs; done(i, outcome) as each ends."""
    done = done or (lambda i, o: None)
    if cluster is not None:
        return _on_ray(fn, jobs, cluster, done)
    workers = min(check_workers(workers), len(jobs))
    out: list[Outcome | None] = [None] * len(jobs)
    if workers <= 1:
        for i, job in enumerate(jobs):
            out[i] = attempt(fn, job)
            done(i, out[i])
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, cores() // workers)
    with ProcessPoolExecutor(
        workers, mp_context=_context(), initializer=_start_worker, initargs=(threads,)
    ) as pool:
        futures = {pool.submit(attempt, fn, job): i for i, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                i = futures[future]
                try:
                    out[i] = future.result()
                except Exception as e:  # the worker itself died (killed, out of memory)
                    out[i] = Outcome(error=f"its worker process failed ({type(e).__name__})")
                done(i, out[i])
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return out


def connect(cluster: str):
    """Ray, connected to the cluster at `cluster` (refused in one line when it cannot be)."""
    try:
        import ray
    except ImportError:
        raise ExcelnetError(
            "--cluster needs Ray, which is not installed: pip install 'excelnet[cluster]'"
        ) from None
    import logging

    if not ray.is_initialized():
        _reachable(cluster)
        try:
            ray.init(address=cluster, logging_level=logging.ERROR, log_to_driver=False)
        except Exception as e:
            text = str(e).strip().splitlines()
            raise ExcelnetError(
                f"--cluster {cluster}: cannot connect to the Ray cluster "
                f"({type(e).__name__}: {text[0] if text else ''})"
            ) from None
    return ray


def _reachable(cluster: str, timeout: float = 10.0) -> None:
    """Refuse at once an address nothing listens on (Ray itself would retry for minutes)."""
    import socket

    if cluster == "auto":
        return
    host, _, port = cluster.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout).close()
    except (OSError, ValueError) as e:
        raise ExcelnetError(
            f"--cluster {cluster}: cannot connect to the Ray cluster there "
            f"({type(e).__name__}: {e})"
        ) from None


def _on_ray(fn: Callable, jobs: Sequence[tuple], cluster: str, done) -> list[Outcome]:
    ray = connect(cluster)
    task = ray.remote(num_cpus=1)(attempt)
    refs = {task.remote(fn, job): i for i, job in enumerate(jobs)}
    out: list[Outcome | None] = [None] * len(jobs)
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            i = refs[ref]
            try:
                out[i] = ray.get(ref)
            except Exception as e:  # the task's worker died, or the node left
                out[i] = Outcome(error=f"its Ray task failed ({type(e).__name__})")
            done(i, out[i])
    return out
