"""The table (and JSON) both peer benchmarks print: each row against artel's rate."""

import json


def print_results(results, system_title="system", concurrency_width=24):
    """Prints an aligned table of `results` (dicts from a run), then the raw JSON; with a
    worker RSS column when the rows carry one (`rss_peak_mib`, `rss_after_mib`)."""
    artel_rate = {r["workload"]: r["tasks_per_s"] for r in results if r["system"] == "artel" and "error" not in r}
    memory = any("rss_peak_mib" in r for r in results)
    header = (f"{'workload':<13} {system_title:<15} {'concurrency':<{concurrency_width}} {'tasks':>6} "
              f"{'enqueue/s':>10} {'tasks/s':>9} {'artel is':>9}" + (f" {'RSS peak / after, MiB':>22}" if memory else ""))
    print(header)
    print("-" * len(header))
    for r in results:
        if "error" in r:
            print(f"{r['workload']:<13} {r['system']:<15} {r['error']}")
            continue
        ratio = artel_rate.get(r["workload"], 0) / r["tasks_per_s"] if r["tasks_per_s"] else 0
        print(f"{r['workload']:<13} {r['system']:<15} {r['concurrency']:<{concurrency_width}} {r['tasks']:>6} "
              f"{r['enqueue_per_s']:>10.0f} {r['tasks_per_s']:>9.0f} {ratio:>8.1f}x" + (f" {rss(r):>22}" if memory else ""))
    print(json.dumps(results))


def rss(row):
    """`peak / after` in MiB, `-` for what a row lacks."""
    def mib(key):
        return f"{row[key]:.1f}" if row.get(key) is not None else "-"
    return f"{mib('rss_peak_mib')} / {mib('rss_after_mib')}"
