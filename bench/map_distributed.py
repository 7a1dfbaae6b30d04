"""`artel map --broker` beside Celery for the same fan-out, in one run.

Usage (from the repository root, after `cargo build --release -p artel-cli` and with the
interop venv: `python3 -m venv .venv-interop && .venv-interop/bin/pip install 'celery[redis]==5.*'`):
    .venv-interop/bin/python bench/map_distributed.py [--items 100000] [--celery-items 20000]

Each way runs ITEMS no-op calls on 2 worker processes through Redis on 127.0.0.1:6379
(db 0, a fresh key prefix removed at the end) and collects every result:
- artel map --broker redis://… -c 1000: 2 `artel worker -c 64` processes;
- artel map --broker sqlite://… (the embedded broker, no server), 2 workers likewise;
- Celery 5: 2 `celery worker -P threads -c 64` processes, the producer sending chunks of
  1,000 `apply_async` and joining each chunk with `ResultSet.join_native()` (the
  recipe that keeps the producer's memory flat).
Prints items/s for each.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

REDIS = "redis://127.0.0.1:6379/0"


def drop_keys(prefix):
    subprocess.run(f"redis-cli --scan --pattern '{prefix}*' | xargs -r redis-cli del > /dev/null", shell=True)


def start(command, env=None):
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def stop(processes):
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def artel_run(artel, url, items_file, out, items):
    workers = [start([artel, "--log-level", "warn", "--broker", url, "worker", "-c", "64"]) for _ in range(2)]
    try:
        time.sleep(1.0)
        started = time.perf_counter()
        subprocess.run([artel, "--log-level", "warn", "--broker", url, "map", "--task", "noop", "--args", "[]",
                        "-c", "1000", "-q", "--input", items_file, "--output", out], check=True)
        took = time.perf_counter() - started
    finally:
        stop(workers)
    with open(out) as f:
        written = sum(1 for _ in f)
    assert written == items, f"{written} of {items} results written"
    return took


CELERY_APP = """
from celery import Celery
app = Celery("bench", broker="{redis}", backend="{redis}")
app.conf.broker_transport_options = {{"global_keyprefix": "{prefix}"}}
app.conf.result_backend_transport_options = {{"global_keyprefix": "{prefix}"}}
app.conf.worker_prefetch_multiplier = 16

@app.task(name="noop")
def noop():
    return None
"""


def celery_run(work, items):
    prefix = f"artel-bench-celery-{uuid.uuid4().hex}:"
    with open(os.path.join(work, "bench_celery_app.py"), "w") as f:
        f.write(textwrap.dedent(CELERY_APP.format(redis=REDIS, prefix=prefix)))
    env = dict(os.environ, PYTHONPATH=work)
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    workers = [start([celery, "-A", "bench_celery_app", "worker", "-P", "threads", "-c", "64", "-n", f"w{i}@%h",
                      "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"], env=env)
               for i in range(2)]
    sys.path.insert(0, work)
    try:
        from celery.result import ResultSet
        import bench_celery_app
        time.sleep(3.0)
        started = time.perf_counter()
        for chunk in range(0, items, 1000):
            results = [bench_celery_app.noop.apply_async() for _ in range(chunk, min(chunk + 1000, items))]
            ResultSet(results).join_native(timeout=120)
        took = time.perf_counter() - started
    finally:
        stop(workers)
        drop_keys(prefix)
    return took


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100000)
    parser.add_argument("--celery-items", type=int, default=20000)
    parser.add_argument("--artel", default="target/release/artel")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="artel-map-dist-")
    items_file = os.path.join(work, "items.txt")
    with open(items_file, "w") as f:
        f.write("x\n" * args.items)
    rows = []
    prefix = f"artel-bench-{uuid.uuid4().hex}"
    try:
        took = artel_run(args.artel, f"{REDIS}?prefix={prefix}", items_file, os.path.join(work, "redis.jsonl"), args.items)
    finally:
        drop_keys(prefix)
    rows.append(("artel map, redis://", args.items, took))
    took = artel_run(args.artel, f"sqlite://{work}/broker.db", items_file, os.path.join(work, "sqlite.jsonl"), args.items)
    rows.append(("artel map, sqlite://", args.items, took))
    rows.append(("Celery 5, redis", args.celery_items, celery_run(work, args.celery_items)))
    print(f"no-op calls through a broker to 2 worker processes, every result collected")
    print(f"{'way':<24} {'items':>8} {'wall':>8} {'items/s':>9}")
    for name, items, took in rows:
        print(f"{name:<24} {items:>8} {took:>7.2f}s {items / took:>9.0f}")


if __name__ == "__main__":
    sys.exit(main())
