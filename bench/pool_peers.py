"""Submit+get overhead of Python's concurrent.futures executors, and CPU-bound scaling of
its process pools, for `artel bench pool`.

Prints JSON: {executor: {"batch_ns": ..., "one_at_a_time_ns": ..., "cpu_ns": ...}} with
the median nanoseconds per task over --repeat runs. "batch" submits N no-op jobs then
collects every result; "one at a time" waits for each result before submitting the next;
"cpu" runs fib(--fib) --cpu-tasks times (process pools with 1 and 2 workers).
"""

import argparse
import json
import statistics
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor


def noop(x):
    return x


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def cpu_futures(executor, n, fib_n):
    futures = [executor.submit(fib, fib_n) for _ in range(n)]
    for f in futures:
        f.result()


def cpu_pool(pool, n, fib_n):
    pool.map(fib, [fib_n] * n, chunksize=1)


def measure_cpu(executor, fn, n, fib_n, repeat):
    fn(executor, 2, fib_n)  # warm-up: start the workers
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        fn(executor, n, fib_n)
        samples.append((time.perf_counter_ns() - started) / n)
    return statistics.median(samples)


def batch(executor, n):
    futures = [executor.submit(noop, i) for i in range(n)]
    for f in futures:
        f.result()


def one_at_a_time(executor, n):
    for i in range(n):
        executor.submit(noop, i).result()


def measure(executor, fn, n, repeat):
    fn(executor, min(n, 1000))  # warm-up: start the workers
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        fn(executor, n)
        samples.append((time.perf_counter_ns() - started) / n)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--thread-tasks", type=int, default=20_000)
    parser.add_argument("--process-tasks", type=int, default=5_000)
    parser.add_argument("--cpu-tasks", type=int, default=40)
    parser.add_argument("--fib", type=int, default=25)
    args = parser.parse_args()
    report = {}
    for name, make, n in [
        ("ThreadPoolExecutor(2)", lambda: ThreadPoolExecutor(2), args.thread_tasks),
        ("ProcessPoolExecutor(2)", lambda: ProcessPoolExecutor(2), args.process_tasks),
    ]:
        with make() as executor:
            report[name] = {
                "batch_ns": measure(executor, batch, n, args.repeat),
                "one_at_a_time_ns": measure(executor, one_at_a_time, max(n // 4, 1), args.repeat),
            }
    for workers in (1, 2):
        with ProcessPoolExecutor(workers) as executor:
            cpu = measure_cpu(executor, cpu_futures, args.cpu_tasks, args.fib, args.repeat)
            report.setdefault(f"ProcessPoolExecutor({workers})", {})["cpu_ns"] = cpu
        with multiprocessing.Pool(workers) as pool:
            cpu = measure_cpu(pool, cpu_pool, args.cpu_tasks, args.fib, args.repeat)
            report.setdefault(f"multiprocessing.Pool({workers})", {})["cpu_ns"] = cpu
    print(json.dumps(report))


if __name__ == "__main__":
    main()
