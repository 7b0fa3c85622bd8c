#!/usr/bin/env python3
"""PNG plots of the bench/ results, with matplotlib.

    bench/plot.py vs-mm2 RESULTS OUT.png RECORDS SIZE   bench/vs-mm2's results: MB/s and CPU s per
                                                       GB per contender (bars: medians, dots: runs),
                                                       and p50/p99 latency
    bench/plot.py failover SAMPLES OUT.png KILL_S RATE  bench/failover's samples: records copied per
                                                       second over time, the kill marked
    bench/plot.py chain FOLDER OUT.png                 bench/chain's results folder: records/s and
                                                       records per Ferry CPU-second, both variants

matplotlib comes from a virtualenv in ~/.cache/ferry/bench-venv, created (from PyPI) on first use
if the running Python lacks it; the script then runs itself again in that venv.
"""

import os
import subprocess
import sys

VENV = os.path.expanduser("~/.cache/ferry/bench-venv")


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        sys.exit("plot.py: matplotlib is missing in its own venv")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    check = subprocess.run([python, "-c", "import matplotlib"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "matplotlib"], check=True)
    os.execv(python, [python, *sys.argv])


def vs_mm2(results, out, records, size):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    table = __import__("vs_mm2_table")
    runs = table.read(results, int(records), int(size))
    middle = table.medians(runs)
    short = {"bare": "bare copy\n(the limit)", "ferry": "Ferry\nat-least-once",
             "before": "Ferry (before)", "eos": "Ferry\nexactly-once", "identity": "Ferry +\nidentity transform", "mm2": "MirrorMaker 2\n3.8.1"}
    names = [short.get(c, c) for c in middle]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("MB/s", "throughput (MB/s, higher is better)"),
              ("CPU s/GB", "CPU seconds per GB copied (lower is better)"),
              ("p99 (ms)", "end-to-end latency at 50 % load (ms, log scale)")]
    figure, axes = plt.subplots(1, len(panels), figsize=(16, 5))
    colors = ["#7f7f7f", "#1f77b4", "#17becf", "#d62728", "#9467bd"]
    for axis, (key, title) in zip(axes, panels):
        positions = range(len(middle))
        if key == "p99 (ms)":
            def value(row, key):
                number = row.get(key, 0)
                return 0 if number != number else number
            p50 = [value(row, "p50 (ms)") for row in middle.values()]
            p99 = [value(row, "p99 (ms)") for row in middle.values()]
            width = 0.38
            axis.bar([p - width / 2 for p in positions], p50, width, label="p50",
                     color=colors[:len(middle)], alpha=0.55)
            axis.bar([p + width / 2 for p in positions], p99, width, label="p99",
                     color=colors[:len(middle)])
            for p, a, b, row in zip(positions, p50, p99, middle.values()):
                if row.get("arrived", 1) < 1:
                    axis.annotate(f"fell behind:\n{row['arrived']:.0%} arrived\n(lower bounds)",
                                  (p, max(a, b)), ha="center", va="bottom", fontsize=8)
                    continue
                axis.annotate(f"{a:.0f}", (p - width / 2, a), ha="center", va="bottom", fontsize=8)
                axis.annotate(f"{b:.0f}", (p + width / 2, b), ha="center", va="bottom", fontsize=8)
            # Log scale: a contender that fell behind is orders of magnitude above the others.
            axis.set_yscale("log")
            axis.legend()
        else:
            values = [row.get(key, 0) for row in middle.values()]
            axis.bar(positions, values, color=colors[:len(middle)])
            for p, (contender, by_run) in zip(positions, runs.items()):
                dots = [row[key] for row in by_run.values() if key in row]
                axis.plot([p] * len(dots), dots, "k.", alpha=0.6)
            for p, value in zip(positions, values):
                axis.annotate(f"{value:.1f}", (p, value), ha="center", va="bottom", fontsize=9)
        axis.set_xticks(list(positions))
        axis.set_xticklabels(names, fontsize=9)
        axis.set_title(title, fontsize=10)
    count = max(len(by_run) for by_run in runs.values())
    figure.suptitle(f"bench/vs-mm2: {int(records):,} records x {size} B; bars: medians of "
                    f"{count} runs, dots: runs; one shared 2-vCPU VM")
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    figure.savefig(out, dpi=100)
    print(f"wrote {out}")


def chain(folder, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    variants = {"no plugin": "none", "identity transform": "identity"}
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for axis, (title, measure) in zip(axes, [
            ("records/s", lambda r, wall, cpu: r / wall),
            ("records per Ferry CPU-second", lambda r, wall, cpu: r / cpu)]):
        for index, (name, file) in enumerate(variants.items()):
            with open(os.path.join(folder, file)) as lines:
                values = [measure(int(f[0]), float(f[1]), float(f[2]))
                          for f in (line.split() for line in lines)]
            values.sort()
            axis.bar(index, values[len(values) // 2], color=["#1f77b4", "#17becf"][index])
            axis.plot([index] * len(values), values, "k.")
        axis.set_xticks([0, 1])
        axis.set_xticklabels(list(variants))
        axis.set_title(title)
    figure.suptitle("bench/chain: bars medians, dots runs")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    print(f"wrote {out}")


def failover(samples, out, kill, rate):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    points = [tuple(map(float, line.split())) for line in open(samples)]
    # Records per second over a sliding 1 s window, on a 0.25 s grid; the count between samples
    # is interpolated (a slow watermark answer delays a sample, it does not lose records).
    def count_at(t):
        for (t0, n0), (t1, n1) in zip(points, points[1:]):
            if t0 <= t <= t1:
                return n0 + (n1 - n0) * (t - t0) / (t1 - t0) if t1 > t0 else n1
        return points[-1][1] if t > points[-1][0] else points[0][1]

    times = [points[0][0] + 1 + 0.25 * i for i in range(int((points[-1][0] - points[0][0] - 1) * 4) + 1)]
    rates = [count_at(t) - count_at(t - 1) for t in times]
    figure, axis = plt.subplots(figsize=(10, 4.5))
    axis.plot(times, rates, color="#1f77b4", label="records copied per second (1 s window)")
    axis.axhline(float(rate), color="#7f7f7f", linestyle=":", label=f"producer: {float(rate):,.0f} records/s")
    axis.axvline(float(kill), color="#d62728", linestyle="--", label="2 of 3 instances SIGKILLed")
    axis.set_xlabel("seconds")
    axis.set_ylabel("records/s on the target")
    axis.set_title("bench/failover: three Ferry instances, two killed; one shared 2-vCPU VM")
    axis.legend(loc="upper left", fontsize=9)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    figure.savefig(out, dpi=100)
    print(f"wrote {out}")


def main():
    ensure_matplotlib()
    if len(sys.argv) >= 6 and sys.argv[1] == "vs-mm2":
        vs_mm2(*sys.argv[2:6])
    elif len(sys.argv) >= 6 and sys.argv[1] == "failover":
        failover(*sys.argv[2:6])
    elif len(sys.argv) >= 4 and sys.argv[1] == "chain":
        chain(*sys.argv[2:4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
