"""Issue 19's "where the time goes": `perf record` of the whole machine while one artel
worker drains a pre-filled queue, split by process, then the worker's hottest symbols.

Usage (from the repository root, as root or with perf_event_paranoid <= 1, after
`cargo build --release -p artel-cli`):
    python3 bench/profile.py [--broker URL] [--tasks 200000] [--artel PATH] [--top 25]

It runs `artel bench broker --broker URL --tasks N` (a scratch SQLite file without
--broker); the fill phase runs unrecorded, and perf records from the moment the drain's
worker process starts until it exits (`perf record -a`: the broker's server and the
kernel count too). Printed: the bench table, the CPU share of each command (comm) during
the drain, and the worker's threads and its symbols above 0.5% of its samples. The
release build keeps its symbol table, so names are Rust functions after inlining (a
cost is charged to the function it was inlined into).
"""

import argparse
import subprocess
import sys
import tempfile
import time

WORKER = "worker -Q bench"  # how bench broker starts its draining worker


def drain_worker(bench):
    """The pid of the bench's first draining worker, once it starts."""
    while bench.poll() is None:
        found = subprocess.run(["pgrep", "-f", "--", WORKER], capture_output=True, text=True).stdout.split()
        if found:
            return found[0]
        time.sleep(0.02)
    sys.exit(f"artel bench broker ended before its worker started (exit {bench.returncode})")


def report(data, *options):
    out = subprocess.run(
        ["perf", "report", "-i", data, "--stdio", "--no-children", *options],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip() and not line.startswith("#")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", help="broker URL (default: a scratch SQLite file)")
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--artel", default="target/release/artel")
    parser.add_argument("--top", type=int, default=25, help="worker symbols to print")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="artel-profile-") as scratch:
        data = f"{scratch}/perf.data"
        command = [args.artel, "--log-level", "error", "bench", "broker", "--tasks", str(args.tasks), "--round-trips", "10"]
        if args.broker:
            command[3:3] = ["--broker", args.broker]
        bench = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        pid = drain_worker(bench)
        # Sampling at 999 Hz on every CPU until the worker exits (`tail --pid` waits for it).
        subprocess.run(
            ["perf", "record", "-a", "-F", "999", "-o", data, "--", "tail", f"--pid={pid}", "-f", "/dev/null"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        print(bench.communicate()[0])
        if bench.returncode != 0:
            sys.exit(f"artel bench broker failed (exit {bench.returncode})")

        print("CPU during the drain, by command (both cores = 100%; swapper is idle):")
        for line in report(data, "--sort", "comm")[:8]:
            print("  " + " ".join(line.split()))
        print(f"\nthe worker (pid {pid}) by thread:")
        for line in report(data, "--pid", pid, "--percentage", "relative", "--sort", "comm")[:6]:
            print("  " + " ".join(line.split()))
        print("its symbols above 0.5% of its samples:")
        options = ["--pid", pid, "--percentage", "relative", "--sort", "dso,symbol", "--percent-limit", "0.5"]
        for line in report(data, *options)[: args.top]:
            print("  " + " ".join(line.split()[:4]))


if __name__ == "__main__":
    main()
