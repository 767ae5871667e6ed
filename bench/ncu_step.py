#!/usr/bin/env python3
"""One decode step's kernels as Nsight Compute measures them, each alone at
the GPU's own clocks: per kernel name, launches, median duration, DRAM
bytes read and their rate, and the step's sum. Run on the GPU machine
(no nsys there; ncu ships with the toolkit):

  ncu --csv --clock-control none --cache-control none --kernel-name regex:^decode_ \
      --launch-skip 294 --launch-count 98 --metrics gpu__time_duration.sum,dram__bytes_read.sum \
      build-gpu/bin/kiln-run .device/engines/l1b.engine --weights DIR --max-tokens 8 --min-tokens 8 \
      --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 --overlap off > ncu.csv
  python3 bench/ncu_step.py ncu.csv

(294 = three decode steps of the 1B shape's 98 launches skipped: the first
captures and times the graph.)
"""
import collections, csv, sys

TIME = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
BYTES = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}

lines = [l for l in open(sys.argv[1]) if l.startswith('"')]
dur, read = collections.defaultdict(list), collections.defaultdict(list)
for r in csv.DictReader(lines):
    try:
        v = float(r["Metric Value"].replace(",", ""))
    except ValueError:
        continue
    if r["Metric Name"] == "gpu__time_duration.sum":
        dur[r["Kernel Name"]].append(v * TIME.get(r["Metric Unit"], 1.0))
    elif r["Metric Name"] == "dram__bytes_read.sum":
        read[r["Kernel Name"]].append(v * BYTES.get(r["Metric Unit"], 1.0))
median = lambda v: sorted(v)[len(v) // 2] if v else 0.0
print(f"{'kernel':28} {'n':>3} {'us':>8} {'MB read':>8} {'GB/s':>7}")
for k in sorted(dur, key=lambda k: -sum(dur[k])):
    d, b = median(dur[k]), median(read[k])
    print(f"{k:28} {len(dur[k]):3d} {d:8.2f} {b / 1e6:8.2f} {b / d / 1e3 if d else 0:7.0f}")
print(f"sum of kernel durations: {sum(map(sum, dur.values())):.1f} us over {sum(map(len, dur.values()))} launches")
