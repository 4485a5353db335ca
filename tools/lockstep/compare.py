"""Sets traces of one lockstep export side by side: how and when they part.

Usage: python compare.py DIR [--pairs project:tf project:nudge ...]

For every pair (a, b) of traces in DIR (<label>.csv, weights/<label>-*.safetensors) it prints:
  * per quantity (d_loss, g_loss, d_real, d_fake), the first step where |a - b| exceeds
    1e-6, 1e-4, 1e-3, 1e-2 and 1e-1;
  * per window of steps, the median |a - b| and the mean of a - b in units of its standard
    error (a systematic offset shows as a large |t| that keeps its sign; chaotic drift does
    not);
  * per weight dump, the relative L2 difference ||a - b|| / ||b|| of every tensor;
  * when both wrote weights after the first replayed step, the relative difference of that
    step's updates, ||(a1 - a0) - (b1 - b0)|| / ||b1 - b0|| per tensor: one step's arithmetic
    compared without chaotic amplification (f32 rounding gives about 1e-6 to 1e-4; a
    different formula gives far more).
"""
import argparse
import csv
import glob
import math
import os
import re

import numpy as np

QUANTITIES = ["d_loss", "g_loss", "d_real", "d_fake"]
THRESHOLDS = [1e-6, 1e-4, 1e-3, 1e-2, 1e-1]


def read_trace(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {q: np.array([float(r[q]) for r in rows], dtype=np.float64) for q in QUANTITIES}


def read_weights(d, label):
    from safetensors.numpy import load_file
    out = {}
    for path in sorted(glob.glob(os.path.join(d, "weights", label + "-*.safetensors"))):
        step = int(re.search(r"-(\d+)\.safetensors$", path).group(1))
        out[step] = load_file(path)
    return out


def windows(n):
    edges = [0, 10, 100, 300, 1000, 2000, 5000, 10000, 20000, 50000, 100000]
    edges = [e for e in edges if e < n] + [n]
    return list(zip(edges[:-1], edges[1:]))


def compare(d, a, b):
    ta, tb = read_trace(os.path.join(d, a + ".csv")), read_trace(os.path.join(d, b + ".csv"))
    n = min(len(ta["d_loss"]), len(tb["d_loss"]))
    print("## {} vs {} ({} steps)\n".format(a, b, n))
    print("First step where |{} - {}| exceeds:\n".format(a, b))
    print("| quantity | " + " | ".join("{:g}".format(t) for t in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for q in QUANTITIES:
        diff = np.abs(ta[q][:n] - tb[q][:n])
        cells = []
        for t in THRESHOLDS:
            over = np.nonzero(diff > t)[0]
            cells.append(str(over[0] + 1) if len(over) else "-")
        print("| {} | {} |".format(q, " | ".join(cells)))
    print("\nPer window: median |{a} - {b}| and mean({a} - {b}) / its standard error:\n".format(a=a, b=b))
    print("| steps | " + " | ".join(QUANTITIES) + " |")
    print("|---|" + "---|" * len(QUANTITIES))
    for lo, hi in windows(n):
        cells = []
        for q in QUANTITIES:
            delta = ta[q][lo:hi] - tb[q][lo:hi]
            med = np.median(np.abs(delta))
            se = delta.std(ddof=1) / math.sqrt(len(delta)) if len(delta) > 1 else float("nan")
            t = delta.mean() / se if se > 0 else float("nan")
            cells.append("{:.2e} (t {:+.1f})".format(med, t))
        print("| {}-{} | {} |".format(lo + 1, hi, " | ".join(cells)))
    wa, wb = read_weights(d, a), read_weights(d, b)
    common = sorted(set(wa) & set(wb))
    if common:
        names = sorted(wa[common[0]])
        short = [n.replace("generator.", "G.").replace("discriminator.", "D.") for n in names]
        print("\nWeights, relative L2 difference ||{a} - {b}|| / ||{b}||:\n".format(a=a, b=b))
        print("| step | " + " | ".join(short) + " |")
        print("|---|" + "---|" * len(names))
        for s in common:
            cells = []
            for name in names:
                x, y = wa[s][name].astype(np.float64), wb[s][name].astype(np.float64)
                cells.append("{:.1e}".format(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30)))
            print("| {} | {} |".format(s, " | ".join(cells)))
        first = first_step(d)
        if first in common:
            from safetensors.numpy import load_file
            init = load_file(os.path.join(d, "export.safetensors"))
            print("\nThe update of step {} (from the same state), ||d{a} - d{b}|| / ||d{b}||:\n".format(first, a=a, b=b))
            print("| " + " | ".join(short) + " |")
            print("|" + "---|" * len(names))
            cells = []
            for name in names:
                w0 = init["init." + name].astype(np.float64)
                da = wa[first][name].astype(np.float64) - w0
                db = wb[first][name].astype(np.float64) - w0
                cells.append("{:.1e}".format(np.linalg.norm(da - db) / max(np.linalg.norm(db), 1e-30)))
            print("| " + " | ".join(cells) + " |")
    print()


def first_step(d):
    from safetensors import safe_open
    with safe_open(os.path.join(d, "export.safetensors"), framework="numpy") as f:
        return int(f.metadata()["init.steps_done"]) + 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--pairs", nargs="+", default=["project:tf"])
    args = p.parse_args()
    for pair in args.pairs:
        a, b = pair.split(":")
        compare(args.dir, a, b)


if __name__ == "__main__":
    main()
