"""Is there a systematic offset between two traces, or only chaos? Over several lockstep
directories (one per seed), for each window of steps and each quantity: the mean of a - b per
seed, how many seeds have it positive, and a two-sided sign test. A systematic difference
keeps its sign across seeds; rounding chaos does not. Run it for project:tf and for a
rounding-only control (project:nudge, project:dfdx) side by side.

Usage: python offsets.py --pair project:tf DIR1 DIR2 ...
"""
import argparse
import csv
import os

import numpy as np
from scipy.stats import binomtest

QUANTITIES = ["d_loss", "g_loss", "d_real", "d_fake"]
WINDOWS = [(1, 100), (101, 500), (501, 1000), (1001, 2000), (2001, 5000)]


def trace(path):
    rows = list(csv.DictReader(open(path)))
    return {q: np.array([float(r[q]) for r in rows]) for q in QUANTITIES}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pair", default="project:tf")
    p.add_argument("dirs", nargs="+")
    args = p.parse_args()
    a, b = args.pair.split(":")
    pairs = [(trace(os.path.join(d, a + ".csv")), trace(os.path.join(d, b + ".csv")))
             for d in args.dirs if os.path.exists(os.path.join(d, b + ".csv"))]
    n = min(len(x["d_loss"]) for x, _ in pairs)
    print("## {} - {}: {} seeds, {} steps\n".format(a, b, len(pairs), n))
    print("Per window: median over seeds of mean({a} - {b}), seeds with it > 0, sign-test p\n".format(a=a, b=b))
    print("| steps | " + " | ".join(QUANTITIES) + " |")
    print("|---|" + "---|" * len(QUANTITIES))
    for lo, hi in WINDOWS:
        if lo > n:
            break
        hi = min(hi, n)
        cells = []
        for q in QUANTITIES:
            means = np.array([(x[q][lo - 1:hi] - y[q][lo - 1:hi]).mean() for x, y in pairs])
            pos = int((means > 0).sum())
            nonzero = int((means != 0).sum())
            pval = binomtest(pos, nonzero).pvalue if nonzero else float("nan")
            cells.append("{:+.1e}, {}/{}, p {:.2f}".format(np.median(means), pos, len(means), pval))
        print("| {}-{} | {} |".format(lo, hi, " | ".join(cells)))
    print()


main()
