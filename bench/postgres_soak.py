"""The PostgreSQL bloat soak of issue 18: a million tasks through a worker, and the size of
artel's tables after each round and once autovacuum has run.

Usage (from the repository root, after `cargo build --release -p artel-cli`; psql on PATH):
    python3 bench/postgres_soak.py [--tasks 1000000] [--rounds 10] [--url postgres://…]

`artel map --broker` sends TASKS/ROUNDS no-op calls per round (every result collected) to
one `artel worker -c 200` whose results expire after 60 s, all in a fresh schema dropped at
the end. After each round it prints the total size (heap, indexes, TOAST) of `messages`,
`results` and the task history; at the end it waits for a vacuum to pass over
`messages` (autovacuum, or artel's own where the server's is off) and prints the sizes
again. The URL defaults to ARTEL_POSTGRES_URL, else
postgres://postgres@127.0.0.1:5432/test.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid

ARTEL = "target/release/artel"
TABLES = ["messages", "results", "history"]


def psql(url, sql):
    out = subprocess.run(["psql", url, "-Atc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def sizes(url, schema):
    """Each table's total size in KiB, and the dead rows autovacuum has yet to clear."""
    rows = psql(
        url,
        f"SELECT c.relname, pg_total_relation_size(c.oid) / 1024, coalesce(s.n_dead_tup, 0) "
        f"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
        f"WHERE n.nspname = '{schema}' AND c.relkind = 'r' AND c.relname IN ({', '.join(repr(t) for t in TABLES)})",
    )
    found = {name: (int(kib), int(dead)) for name, kib, dead in (line.split("|") for line in rows.splitlines())}
    return [found.get(t, (0, 0)) for t in TABLES]


def row(label, done, measured):
    cells = "".join(f"{kib:>12,} KiB {dead:>9,}" for kib, dead in measured)
    print(f"{label:<22}{done:>10,}{cells}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    default_url = os.environ.get("ARTEL_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--url", default=default_url)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # still drop the schema
    if not os.access(ARTEL, os.X_OK):
        sys.exit(f"{ARTEL} is missing: run `cargo build --release -p artel-cli` first")
    schema = f"artel_soak_{uuid.uuid4().hex}"
    sep = "&" if "?" in args.url else "?"
    broker = f"{args.url}{sep}schema={schema}"
    producer = f"{broker}&pool_size=40"  # artel map sends each call on its own
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    worker = subprocess.Popen(
        [ARTEL, "--broker", broker, "--log-level", "warn", "worker", "-c", "200", "--result-expires", "60"], **quiet
    )
    try:
        per_round = args.tasks // args.rounds
        header = "".join(f"{t + ' size':>16} {'dead rows':>9}" for t in TABLES)
        print(f"{'':<22}{'tasks':>10}{header}")
        time.sleep(1)  # the worker creates the schema
        row("start", 0, sizes(args.url, schema))
        started = time.monotonic()
        for n in range(1, args.rounds + 1):
            items = "\n".join(str(i) for i in range(per_round)) + "\n"
            subprocess.run(
                [ARTEL, "--broker", producer, "--log-level", "error", "map", "--task", "noop", "--args", "[]",
                 "--concurrency", "5000", "--quiet", "--output", "/dev/null"],
                input=items, text=True, check=True,
            )
            row(f"after round {n}", n * per_round, sizes(args.url, schema))
        took = time.monotonic() - started
        print(f"{per_round * args.rounds:,} tasks in {took:.0f} s ({per_round * args.rounds / took:,.0f}/s)")
        # Autovacuum, or artel's own vacuum where the server's autovacuum is off (5 s after
        # the queue went quiet, if 1,000 tasks finished since its last), clears the dead
        # rows and gives the emptied pages back.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            dead = psql(args.url, f"SELECT n_dead_tup FROM pg_stat_user_tables "
                                  f"WHERE schemaname = '{schema}' AND relname = 'messages'")
            if int(dead or 0) < 1000:  # what a vacuum leaves: a few rows
                break
            time.sleep(2)
        row("after vacuum", per_round * args.rounds, sizes(args.url, schema))
    finally:
        worker.terminate()
        worker.wait()
        psql(args.url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
