"""Prints bench/vs-mm2's tables (every run, then medians) from its results file.

    python3 bench/vs_mm2_table.py RESULTS RECORDS SIZE PARTITIONS RATE LATENCY_SECONDS

RESULTS lines: `throughput CONTENDER RUN startup_s copy_s cpu_copy_s cpu_total_s peak_rss_kib`
and `latency CONTENDER RUN p50_ms p99_ms max_ms arrived expected`.
"""

import statistics
import sys

NAMES = {
    "bare": "bare rdkafka copy (the limit)",
    "ferry": "Ferry at-least-once",
    "before": "Ferry at-least-once, contender before (FERRY_BENCH_BEFORE_BIN, _EXTRA)",
    "eos": "Ferry exactly-once",
    "identity": "Ferry + identity transform",
    "mm2": "MirrorMaker 2 3.8.1",
}


def read(path, records, size):
    """Per contender (in first-seen order), its runs' measures."""
    runs = {}
    gigabytes = records * size / 1e9
    with open(path) as lines:
        for line in lines:
            fields = line.split()
            kind, contender, run = fields[0], fields[1], int(fields[2])
            row = runs.setdefault(contender, {}).setdefault(run, {})
            if kind == "throughput":
                startup, copy, cpu_copy, cpu_total, peak = map(float, fields[3:8])
                row.update({
                    "MB/s": records * size / 1e6 / copy,
                    "CPU s/GB": cpu_copy / gigabytes,
                    "peak RSS (MiB)": peak / 1024,
                    "start-up (s)": startup,
                    "CPU incl. start-up (s)": cpu_total,
                })
            else:
                p50, p99, peak_latency, count, expected = map(float, fields[3:8])
                row.update({"p50 (ms)": p50, "p99 (ms)": p99, "max (ms)": peak_latency,
                            "arrived": count / expected})
    return runs


COLUMNS = [("MB/s", "{:.1f}"), ("CPU s/GB", "{:.1f}"), ("peak RSS (MiB)", "{:.0f}"),
           ("start-up (s)", "{:.2f}"), ("p50 (ms)", "{:.1f}"), ("p99 (ms)", "{:.1f}")]


def medians(runs):
    """Per contender, the median of each measure over its runs."""
    result = {}
    for contender, by_run in runs.items():
        keys = {key for row in by_run.values() for key in row}
        result[contender] = {}
        for key in keys:
            # A latency run where nothing arrived has no percentiles (nan): left out.
            values = [row[key] for row in by_run.values() if key in row and row[key] == row[key]]
            result[contender][key] = statistics.median(values) if values else float("nan")
    return result


def cell(row, key, form):
    if key not in row:
        return "-"
    if key in LATENCY and row.get("arrived", 1) < 1:
        # Fell behind the paced producer: what arrived in time, a lower bound.
        if row["arrived"] == 0 or row[key] != row[key]:
            return "none arrived"
        return "≥ " + form.format(row[key]) + f" ({row['arrived']:.0%} arrived)"
    return form.format(row[key])


LATENCY = {"p50 (ms)", "p99 (ms)", "max (ms)"}


def main():
    path, records, size, partitions, rate, seconds = sys.argv[1:7]
    records, size = int(records), int(size)
    runs = read(path, records, size)
    middle = medians(runs)
    count = max(len(by_run) for by_run in runs.values())
    print()
    print(f"{records} records x {size} B, {partitions} partitions; latency at {int(rate):,} "
          f"records/s for {seconds} s; medians of {count} runs")
    print()
    print("| contender | " + " | ".join(key for key, _ in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for contender, row in middle.items():
        cells = " | ".join(cell(row, key, form) for key, form in COLUMNS)
        print(f"| {NAMES.get(contender, contender)} | {cells} |")
    if "bare" in middle:
        print()
        print("| contender | MB/s of the bare copy's | CPU per GB vs the bare copy's |")
        print("|---|---|---|")
        base = middle["bare"]
        for contender, row in middle.items():
            print(f"| {NAMES.get(contender, contender)} | {row['MB/s'] / base['MB/s']:.0%} | "
                  f"{row['CPU s/GB'] / base['CPU s/GB']:.1f} x |")
    print()
    print("Every run:")
    print()
    extra = [("CPU incl. start-up (s)", "{:.2f}"), ("max (ms)", "{:.1f}")]
    print("| contender | run | " + " | ".join(key for key, _ in COLUMNS + extra) + " |")
    print("|---|---|" + "---|" * (len(COLUMNS) + len(extra)))
    for contender, by_run in runs.items():
        for run, row in sorted(by_run.items()):
            cells = " | ".join(cell(row, key, form) for key, form in COLUMNS + extra)
            print(f"| {NAMES.get(contender, contender)} | {run} | {cells} |")


if __name__ == "__main__":
    main()
