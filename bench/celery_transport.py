"""An artel worker vs Python Celery workers on Celery's own Redis transport, same run.

Usage (from the repository root; `scripts/bench-celery-transport` makes the venv):
    .venv-interop/bin/python bench/celery_transport.py [--tasks 5000] [--sleep-tasks 1000]
        [--cpu-tasks 0] [--systems artel,artel-python,celery-prefork,celery-threads]

`artel-python` is `artel worker --python celery_tasks:app -c 2`: the same Python
functions as the Celery workers run, in two Python children of an artel worker.

One Python Celery client (this process) publishes the tasks with `send_task` to a
staging list while the worker under test waits, already connected; the clock starts
when the staging list is renamed into the worker's queue (all tasks appear at once, so
the producer's own speed does not cap the figure) and stops when every result is in
Celery's result backend. Each run has its own kombu global_keyprefix, removed
afterwards. Prints a table and JSON.
"""

import argparse
import os
import subprocess
import sys
import time
import uuid

import redis

from report import print_results

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def worker_command(system, queue, artel, url, prefix):
    venv_bin = os.path.dirname(sys.executable)
    celery = [f"{venv_bin}/celery", "-A", "celery_tasks", "worker", "-Q", queue, "-l", "warning",
              "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if system == "artel":
        return [artel, "--broker", f"celery+{url}?prefix={prefix}", "worker", "-Q", queue, "-c", "200"]
    if system == "artel-python":
        return [artel, "--broker", f"celery+{url}?prefix={prefix}", "worker", "-Q", queue, "-c", "2",
                "--python", "celery_tasks:app", "--python-exe", sys.executable]
    if system == "celery-prefork":
        return celery + ["-P", "prefork", "-c", "2"]
    if system == "celery-threads":
        return celery + ["-P", "threads", "-c", "100"]
    raise ValueError(system)


CONCURRENCY = {"artel": "200 async", "artel-python": "2 Python processes", "celery-prefork": "2 processes",
               "celery-threads": "100 threads"}


def run(system, n, task, url, artel):
    run_id = uuid.uuid4().hex[:8]
    prefix, queue = f"bench-{run_id}:", "bench"
    os.environ.update(BENCH_REDIS_URL=url, BENCH_PREFIX=prefix)
    sys.modules.pop("celery_tasks", None)
    sys.path.insert(0, HERE)
    import celery_tasks  # noqa: E402  (reads the prefix from the environment)

    r = redis.Redis.from_url(url)
    worker = subprocess.Popen(worker_command(system, queue, artel, url, prefix), cwd=HERE,
                              env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        name, args = task
        enqueue_started = time.perf_counter()
        ids = [celery_tasks.app.send_task(name, args=args, queue="staging").id for _ in range(n)]
        enqueued = time.perf_counter() - enqueue_started
        time.sleep(3)  # let the worker start and connect before the clock starts
        started = time.perf_counter()
        r.rename(f"{prefix}staging", f"{prefix}{queue}")
        deadline = time.time() + 600
        # A thousand ids per EXISTS: one round trip per id capped the figure at this
        # process's ~12,000 checks/s, below what an artel worker does.
        for at in range(0, n, 1000):
            keys = [f"{prefix}celery-task-meta-{task_id}" for task_id in ids[at:at + 1000]]
            while r.exists(*keys) < len(keys):
                if time.time() > deadline:
                    return {"system": system, "tasks": n, "error": "not finished in 600 s"}
                time.sleep(0.001)
        total = time.perf_counter() - started
        return {"system": system, "concurrency": CONCURRENCY[system], "tasks": n,
                "enqueue_per_s": n / enqueued, "tasks_per_s": n / total, "seconds": total}
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        for key in r.scan_iter(match=f"{prefix}*", count=1000):
            r.delete(key)
        for key in r.scan_iter(match=f"*{run_id}*", count=1000):
            r.delete(key)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5000, help="no-op tasks per worker")
    parser.add_argument("--sleep-tasks", type=int, default=1000, help="100 ms tasks per worker")
    parser.add_argument("--cpu-tasks", type=int, default=0, help="1 ms CPU tasks per worker")
    parser.add_argument("--url", default=os.environ.get("ARTEL_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--artel", default=os.path.join(ROOT, "target", "release", "artel"))
    parser.add_argument("--systems", default="artel,celery-prefork,celery-threads")
    args = parser.parse_args()
    results = []
    workloads = [("noop", args.tasks, ("noop", ())), ("sleep 100 ms", args.sleep_tasks, ("sleep", (0.1,))),
                 ("cpu 1 ms", args.cpu_tasks, ("spin", (0.001,)))]
    for workload, n, task in workloads:
        if n == 0:
            continue
        for system in args.systems.split(","):
            print(f"{workload}: {system}...", file=sys.stderr, flush=True)
            row = run(system, n, task, args.url, args.artel)
            row["workload"] = workload
            results.append(row)
    print_results(results, system_title="worker", concurrency_width=12)


if __name__ == "__main__":
    main()
