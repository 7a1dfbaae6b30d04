"""artel vs Celery (prefork, threads), RQ and Dramatiq on the same Redis, same run.

Usage (from the repository root; `scripts/bench-redis-peers` makes the venv):
    .venv-bench/bin/python bench/redis_peers.py [--tasks 5000] [--sleep-tasks 1000]

For each system and workload (no-op, 100 ms sleep) it starts the system's own worker
on a fresh queue already holding the whole batch (published from this process first),
and times the drain from the first task done to the last, so neither the Python
producer (about 1,000-5,000 publishes/s) nor the worker's start-up is in the figure.
artel is measured with its own `artel --broker URL bench broker` in the same run: its
"drain" phase (a pre-filled queue of no-ops, like the peers') for the no-op workload,
its "enqueue + drain" phase (a worker running while sleeps are published at 20,000/s
and more) for the sleep one. Last, `redis-benchmark -q -P 64 -t lpush` says what this
Redis does with pipelined pushes, and artel's rate is printed as a fraction of it.
Each worker's resident memory is reported beside its rate: the peak while it drained
and what it settled to a second after, summed over its processes (a prefork parent and
its children); artel's is the peak RSS `bench broker` samples from its worker process.
Prints a table and JSON.
"""

import argparse
import os
import re
import subprocess
import sys
import time
import uuid

import redis

from report import print_results

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def peer_env(counter, queue, sleep, url):
    env = dict(os.environ)
    env.update(PEER_COUNTER=counter, PEER_QUEUE=queue, PEER_SLEEP=str(sleep), PEER_REDIS_URL=url, PYTHONPATH=HERE,
               PEER_KEYPREFIX=f"{queue}:")
    return env


def worker_command(system, queue, venv_bin):
    if system == "celery-prefork":
        return [f"{venv_bin}/celery", "-A", "peers_tasks:celery_app", "worker", "-Q", queue, "-P", "prefork", "-c", "2",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]
    if system == "celery-threads":
        return [f"{venv_bin}/celery", "-A", "peers_tasks:celery_app", "worker", "-Q", queue, "-P", "threads", "-c", "100",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]
    if system == "rq":
        return [f"{venv_bin}/rq", "worker", "--url", os.environ["PEER_REDIS_URL"], "-q", queue]
    if system == "dramatiq":
        return [f"{venv_bin}/dramatiq", "peers_tasks", "--processes", "2", "--threads", "8", "--queues", queue]
    raise ValueError(system)


CONCURRENCY = {"celery-prefork": "2 processes", "celery-threads": "100 threads", "rq": "1 (fork per job)",
               "dramatiq": "2 processes x 8 threads"}


def tree_rss_kib(pid):
    """Resident memory of a process and all its descendants, KiB (0 once it is gone)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{current}/task/{current}/children") as children:
                todo.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def enqueue(system, queue, n):
    import peers_tasks  # noqa: E402  (needs the env set first)
    if system.startswith("celery"):
        for _ in range(n):
            peers_tasks.celery_work.apply_async(queue=queue)
    elif system == "rq":
        from rq import Queue
        q = Queue(queue, connection=peers_tasks._redis)
        for _ in range(n):
            q.enqueue(peers_tasks.rq_work)
    elif system == "dramatiq":
        for _ in range(n):
            peers_tasks.dramatiq_work.send()


def run_peer(system, n, sleep, url, venv_bin, timeout):
    run = uuid.uuid4().hex[:8]
    queue, counter = f"peerbench-{run}", f"peerbench:{run}:done"
    env = peer_env(counter, queue, sleep, url)
    os.environ.update(env)
    sys.modules.pop("peers_tasks", None)
    sys.path.insert(0, HERE)
    r = redis.Redis.from_url(url)
    published = time.perf_counter()
    enqueue(system, queue, n)
    enqueued = time.perf_counter() - published
    worker = subprocess.Popen(worker_command(system, queue, venv_bin), env=env, cwd=HERE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        done = lambda: int(r.get(counter) or 0)  # noqa: E731
        while done() == 0:
            if time.time() > deadline:
                return {"system": system, "tasks": n, "error": f"nothing done in {timeout}s"}
            time.sleep(0.005)
        started, first = time.perf_counter(), done()
        peak, sampled = 0, 0.0
        while done() < n:
            if time.time() > deadline:
                return {"system": system, "tasks": n, "error": f"only {done()} done in {timeout}s"}
            if time.perf_counter() - sampled > 0.1:
                peak, sampled = max(peak, tree_rss_kib(worker.pid)), time.perf_counter()
            time.sleep(0.005)
        total = time.perf_counter() - started
        time.sleep(1)
        return {"system": system, "concurrency": CONCURRENCY[system], "tasks": n,
                "enqueue_per_s": n / enqueued, "tasks_per_s": (n - first) / total, "seconds": total,
                "rss_peak_mib": peak / 1024, "rss_after_mib": tree_rss_kib(worker.pid) / 1024}
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        for key in r.scan_iter(match=f"*{run}*", count=1000):
            r.delete(key)


def run_artel(n, sleep_ms, url, artel):
    command = [artel, "--broker", url, "bench", "broker", "--tasks", str(n), "--round-trips", "20"]
    if sleep_ms:
        command += ["--sleep-ms", str(sleep_ms)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    phase = "enqueue + drain" if sleep_ms else "drain "  # bench broker's drain phase runs no-ops
    row = next(line for line in out.splitlines() if line.startswith(phase))
    enqueue_row = next(line for line in out.splitlines() if line.startswith("enqueue ") and "batches" in line)
    rate = float(re.split(r"\s{2,}", row)[3])
    enqueue_rate = float(re.split(r"\s{2,}", enqueue_row)[3])
    latency = re.search(r"p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    rss = re.search(r"RSS (?:[\d.]+-)?([\d.]+) MiB", row)
    return {"system": "artel", "concurrency": "200 async", "tasks": n, "enqueue_per_s": enqueue_rate, "tasks_per_s": rate,
            "p50_ms": float(latency.group(1)), "p99_ms": float(latency.group(2)),
            "rss_peak_mib": float(rss.group(1)) if rss else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5000, help="no-op tasks per system")
    parser.add_argument("--sleep-tasks", type=int, default=1000, help="100 ms tasks per system")
    parser.add_argument("--url", default=os.environ.get("ARTEL_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--artel", default=os.path.join(ROOT, "target", "release", "artel"))
    parser.add_argument("--systems", default="artel,celery-prefork,celery-threads,rq,dramatiq")
    args = parser.parse_args()
    os.environ["PEER_REDIS_URL"] = args.url
    venv_bin = os.path.dirname(sys.executable)
    results = []
    for workload, n, sleep in [("noop", args.tasks, 0.0), ("sleep 100 ms", args.sleep_tasks, 0.1)]:
        for system in args.systems.split(","):
            print(f"{workload}: {system}...", file=sys.stderr, flush=True)
            if system == "artel":
                row = run_artel(n, int(sleep * 1000), args.url, args.artel)
            else:
                # RQ forks a process per job: give it a tenth of the batch so the run ends.
                count = max(n // 10, 100) if system == "rq" else n
                row = run_peer(system, count, sleep, args.url, venv_bin, timeout=240)
            row["workload"] = workload
            results.append(row)
    print_results(results, system_title="system", concurrency_width=24)
    lpush = redis_benchmark_lpush(args.url)
    for row in results:
        if row["system"] == "artel" and row["workload"] == "noop" and lpush:
            print(f"redis-benchmark -q -P 64 -t lpush: {lpush:,.0f} pushes/s; artel's no-op drain "
                  f"{row['tasks_per_s']:,.0f} tasks/s is {100 * row['tasks_per_s'] / lpush:.1f}% of it")


def redis_benchmark_lpush(url):
    """Pipelined LPUSHes per second on the server `url` names (`redis-benchmark -P 64`)."""
    from urllib.parse import urlparse
    server = urlparse(url)
    out = subprocess.run(["redis-benchmark", "-h", server.hostname or "127.0.0.1", "-p", str(server.port or 6379),
                          "-q", "-P", "64", "-t", "lpush", "-n", "2000000"], capture_output=True, text=True).stdout
    found = re.search(r"LPUSH: ([\d.]+) requests per second", out)
    return float(found.group(1)) if found else None


if __name__ == "__main__":
    main()
