"""Issue 19's memory figures: an artel worker's resident memory idle and with 10,000 tasks
in flight, and the bytes a queued task takes in each broker.

Usage (from the repository root, after `cargo build --release -p artel-cli`):
    python3 bench/memory.py [--in-flight 10000] [--queued 100000] [--sleep 2] [--timeline] [--artel PATH]
        [--redis redis://127.0.0.1:6379/0] [--postgres postgres://postgres@127.0.0.1:5432/test]

Per broker (a scratch SQLite file, a fresh Redis database key prefix, a fresh PostgreSQL
schema, each removed at the end):
* idle: one `artel worker -c 200`, 2 s after it started;
* in flight: the same worker with `-c IN_FLIGHT`, peak RSS while `artel map` keeps
  IN_FLIGHT `sleep(SLEEP)` calls running on it (with `--timeline`, its RSS every 0.5 s);
  a run where any call failed is refused, since those were never in flight;
* queued: `artel map` publishes QUEUED no-op calls with no worker running; the broker's
  growth (Redis `used_memory`, the SQLite file with its WAL, PostgreSQL's `messages`
  table) divided by QUEUED.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

ARTEL = "target/release/artel"  # --artel: another build, to compare two


def rss_kib(pid):
    """Resident and anonymous memory of a process, KiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                fields[key] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("RssAnon", 0)


def worker(url, concurrency):
    return subprocess.Popen(
        [ARTEL, "--log-level", "warn", "--broker", url, "worker", "-c", str(concurrency), "--prefetch", str(concurrency)],
        stdout=subprocess.DEVNULL,
    )


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def mapping(url, items, task, args, concurrency):
    """`artel map` calling `task` once per item, in the background (its input file is
    returned for removal)."""
    source = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    source.write("".join(f"{i}\n" for i in range(items)))
    source.close()
    command = [ARTEL, "--log-level", "error", "--broker", url, "map", "--task", task, "--input", source.name,
               "--output", os.devnull, "-c", str(concurrency)]
    if args is not None:
        command += ["--args", args]
    return subprocess.Popen(command), source.name


def queued(url):
    """Messages waiting in every queue (`artel queues --json`)."""
    out = subprocess.run([ARTEL, "--log-level", "error", "--broker", url, "queues", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return sum(q["ready"] + q["delayed"] + q["leased"] for q in json.loads(out))


def measure(name, url, size, args):
    idle = worker(url, 200)
    time.sleep(2)
    idle_rss = rss_kib(idle.pid)
    stop(idle)

    busy = worker(url, args.in_flight)
    time.sleep(1)
    calls, source = mapping(url, args.in_flight, "sleep", f"[{args.sleep}]", args.in_flight)
    peak, began, shown = (0, 0), time.time(), 0.0
    while calls.poll() is None:
        now = rss_kib(busy.pid)
        peak = max(peak, now)
        if args.timeline and time.time() - shown >= 0.5:
            shown = time.time()
            print(f"  {name} {shown - began:5.1f} s: RSS {now[0] / 1024:6.1f} MiB, heap {now[1] / 1024:6.1f} MiB",
                  flush=True)
        time.sleep(0.05)
    os.unlink(source)
    stop(busy)
    if calls.returncode != 0:
        # A call that failed (its publish timed out, say) was never in flight.
        sys.exit(f"{name}: some of the {args.in_flight:,} calls failed (artel map said how many above), "
                 "so fewer were in flight than the figure would claim")

    before = size()
    calls, source = mapping(url, args.queued, "noop", None, args.queued)
    deadline = time.time() + 120
    while queued(url) < args.queued and time.time() < deadline:
        time.sleep(0.5)
    calls.kill()
    calls.wait()
    os.unlink(source)
    # Divided by what is queued now, should the deadline have come first.
    per_task = (size() - before) / max(queued(url), 1)
    print(f"| {name} | {idle_rss[0] / 1024:.1f} MiB ({idle_rss[1] / 1024:.1f} heap) "
          f"| {peak[0] / 1024:.1f} MiB ({peak[1] / 1024:.1f} heap) | {per_task:,.0f} B |", flush=True)


def main():
    global ARTEL
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in-flight", type=int, default=10_000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--sleep", type=float, default=2, help="seconds each in-flight call sleeps")
    parser.add_argument("--timeline", action="store_true",
                        help="print the worker's RSS every 0.5 s while the calls are in flight")
    parser.add_argument("--redis", default=os.environ.get("ARTEL_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--postgres", default=os.environ.get("ARTEL_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--artel", default=ARTEL, help="the artel binary to measure")
    args = parser.parse_args()
    ARTEL = args.artel
    if not os.access(ARTEL, os.X_OK):
        sys.exit(f"{ARTEL} is missing: run `cargo build --release -p artel-cli` first")
    print(f"| broker | worker idle (`-c 200`) | worker, {args.in_flight:,} in flight | bytes per queued task |")
    print("|---|---:|---:|---:|")
    tag = uuid.uuid4().hex[:12]

    db = os.path.join(tempfile.gettempdir(), f"artel-memory-{tag}.db")
    def sqlite_size():
        return sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
    try:
        measure("`sqlite://`", f"sqlite://{db}", sqlite_size, args)
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        subprocess.run(["rm", "-rf", db + ".wake"])

    prefix = f"artel-memory-{tag}"
    redis_url = f"{args.redis}?prefix={prefix}" if "?" not in args.redis else f"{args.redis}&prefix={prefix}"
    def redis_size():
        info = subprocess.run(["redis-cli", "-u", args.redis, "info", "memory"], capture_output=True, text=True).stdout
        return next(int(l.split(":")[1]) for l in info.splitlines() if l.startswith("used_memory:"))
    try:
        measure("`redis://`", redis_url, redis_size, args)
    finally:
        keys = subprocess.run(["redis-cli", "-u", args.redis, "--scan", "--pattern", f"{prefix}*"],
                              capture_output=True, text=True).stdout.split()
        for i in range(0, len(keys), 500):
            subprocess.run(["redis-cli", "-u", args.redis, "unlink", *keys[i:i + 500]], capture_output=True)

    schema = f"artel_memory_{tag}"
    pg_url = f"{args.postgres}?schema={schema}" if "?" not in args.postgres else f"{args.postgres}&schema={schema}"
    def pg_size():
        out = subprocess.run(["psql", args.postgres, "-Atc",
                              f"SELECT coalesce(pg_total_relation_size('{schema}.messages'), 0)"],
                             capture_output=True, text=True).stdout.strip()
        return int(out or 0)
    try:
        measure("`postgres://`", pg_url, pg_size, args)
    finally:
        subprocess.run(["psql", args.postgres, "-qc", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], capture_output=True)


if __name__ == "__main__":
    main()
