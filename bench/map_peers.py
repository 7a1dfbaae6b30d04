"""`artel map` beside the Python recipes people write for the same job, in one run.

Usage (from the repository root, after `cargo build --release -p artel-cli`):
    python3 bench/map_peers.py [--items 10000] [--seconds 0.1] [--concurrency 1000]

Each way makes ITEMS calls that take SECONDS (a sleep standing in for an API call) and
writes one JSON line per result:
- artel map: `--concurrency N`, results streamed to a file;
- multiprocessing.Pool(200) with apply_async in chunks of 1,000 and a callback that
  appends to a list written out per chunk (the recipe that keeps memory down);
- asyncio with a Semaphore(N) and one task per item, gathered in chunks of 10,000.
Wall time and peak RSS (children included for the pool) are measured with
resource.getrusage; prints a table.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time


def call(seconds):
    time.sleep(seconds)
    return seconds


def pool_recipe(items, seconds, out):
    with multiprocessing.Pool(200) as pool, open(out, "w") as f:
        for start in range(0, items, 1000):
            done = []
            results = [pool.apply_async(call, (seconds,), callback=done.append) for _ in range(start, min(start + 1000, items))]
            for r in results:
                r.wait()
            f.write("".join(json.dumps({"ok": v}) + "\n" for v in done))


async def asyncio_recipe(items, seconds, concurrency, out):
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i):
        async with semaphore:
            await asyncio.sleep(seconds)
            return {"index": i, "ok": seconds}

    with open(out, "w") as f:
        for start in range(0, items, 10000):
            results = await asyncio.gather(*(one(i) for i in range(start, min(start + 10000, items))))
            f.write("".join(json.dumps(r) + "\n" for r in results))


def measure(name, run, children=False):
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    started = time.perf_counter()
    run()
    took = time.perf_counter() - started
    return name, took, resource.getrusage(who).ru_maxrss / 1024


def in_child(target, *args):
    """Runs target in a fresh process, so its peak RSS is its own."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    process.join()


def asyncio_main(items, seconds, concurrency, out):
    asyncio.run(asyncio_recipe(items, seconds, concurrency, out))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--artel", default="target/release/artel")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="artel-map-bench-")
    items = os.path.join(work, "items.jsonl")
    with open(items, "w") as f:
        f.write(f"{args.seconds}\n" * args.items)
    rows = []
    command = [args.artel, "--log-level", "warn", "map", "--task", "sleep", "--format", "jsonl", "--args", '["{}"]',
               "-c", str(args.concurrency), "-q", "--input", items, "--output", os.path.join(work, "artel.jsonl")]
    rows.append(measure("artel map", lambda: subprocess.run(command, check=True), children=True))
    rows.append(measure("asyncio + Semaphore", lambda: in_child(asyncio_main, args.items, args.seconds, args.concurrency, os.path.join(work, "asyncio.jsonl")), children=True))
    rows.append(measure("multiprocessing.Pool(200)", lambda: in_child(pool_recipe, args.items, args.seconds, os.path.join(work, "pool.jsonl")), children=True))
    print(f"{args.items} calls of {args.seconds} s, concurrency {args.concurrency} (the pool: 200 processes)")
    print(f"{'way':<28} {'wall':>8} {'peak RSS':>10}")
    # RUSAGE_CHILDREN's maxrss is the largest child so far: each row is measured in order,
    # so a row is only comparable when it is larger than the rows above (noted).
    for name, took, rss in rows:
        print(f"{name:<28} {took:>7.2f}s {rss:>8.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
