"""The seed table: this project's seed sweep beside the TF program's seeds, both scored by
`cargo xtask eval`, with medians, ranges and Mann-Whitney rank tests.

Usage: python seed_table.py --project SWEEP_DIR --tf TF_DIR
  SWEEP_DIR: `runner experiments/seeds.yaml --run-dir SWEEP_DIR` (seed=S/ run directories)
  TF_DIR:    tools/lockstep/tf-seeds.sh TF_DIR (seed-S/ directories)
Needs numpy and scipy (installed into the TF environment by the caller if missing).
"""
import argparse
import csv
import glob
import json
import os
import re
from collections import defaultdict

import numpy as np
from scipy.stats import mannwhitneyu


def metrics(path):
    g = json.load(open(path))["generated"]
    return {
        "fid": g["fid"],
        "coverage": g["coverage"]["classes_over_5pct"],
        "parzen": g["parzen"]["mean_ll"] if g.get("parzen") else float("nan"),
        "is": g["inception_score"],
    }


def project_runs(root):
    out = {}
    for d in glob.glob(os.path.join(root, "seed=*")):
        seed = int(re.search(r"seed=(\d+)$", d).group(1))
        if not os.path.exists(os.path.join(d, "metrics.json")):
            continue
        sums = defaultdict(lambda: [0.0, 0.0, 0])
        with open(os.path.join(d, "losses.csv")) as f:
            for r in csv.DictReader(f):
                s = sums[int(r["epoch"])]
                s[0] += float(r["d_loss"]); s[1] += float(r["g_loss"]); s[2] += 1
        info = json.load(open(os.path.join(d, "run.json")))
        row = metrics(os.path.join(d, "metrics.json"))
        row["d49"] = sums[49][0] / sums[49][2]
        row["d99"] = sums[99][0] / sums[99][2]
        row["g99"] = sums[99][1] / sums[99][2]
        row["train_s"] = sum(info["epoch_seconds"])
        out[seed] = row
    return out


def tf_runs(root):
    out = {}
    for d in glob.glob(os.path.join(root, "seed-*")):
        seed = int(re.search(r"seed-(\d+)$", d).group(1))
        if not os.path.exists(os.path.join(d, "metrics.json")):
            continue
        means = {int(r["epoch"]): r for r in csv.DictReader(open(os.path.join(d, "loss_means.csv")))}
        epochs = list(csv.DictReader(open(os.path.join(d, "losses.csv"))))
        row = metrics(os.path.join(d, "metrics.json"))
        row["d49"] = float(means[49]["d_loss_mean"])
        row["d99"] = float(means[99]["d_loss_mean"])
        row["g99"] = float(means[99]["g_loss_mean"])
        row["train_s"] = sum(float(r["seconds_for_epoch"]) for r in epochs)
        out[seed] = row
    return out


COLUMNS = [("fid", "FID", "{:.1f}"), ("coverage", "classes", "{:d}"), ("parzen", "Parzen (nats)", "{:.1f}"),
           ("is", "IS", "{:.2f}"), ("d49", "mean D loss ep. 49", "{:.3f}"), ("d99", "mean D loss ep. 99", "{:.3f}"),
           ("g99", "mean G loss ep. 99", "{:.3f}"), ("train_s", "training s", "{:.0f}")]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--project", required=True)
    p.add_argument("--tf", required=True)
    args = p.parse_args()
    programs = [("this project", project_runs(args.project)), ("TF program", tf_runs(args.tf))]
    print("| program, seed | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for name, runs in programs:
        for seed in sorted(runs):
            print("| {} {} | {} |".format(name, seed, " | ".join(f.format(runs[seed][k]) for k, _, f in COLUMNS)))
    print()
    print("| program (seeds) | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for name, runs in programs:
        cells = []
        for k, _, f in COLUMNS:
            v = np.array([runs[s][k] for s in runs], dtype=float)
            fmt = f.replace(":d", ":.0f")
            cells.append((fmt + " ({} to {})").format(np.median(v), fmt.format(v.min()), fmt.format(v.max())))
        print("| {} ({}) median (range) | {} |".format(name, len(runs), " | ".join(cells)))
    print()
    (_, a), (_, b) = programs
    print("Mann-Whitney U, two-sided, this project vs TF program:\n")
    for k, label, _ in COLUMNS:
        x = [a[s][k] for s in a]
        y = [b[s][k] for s in b]
        r = mannwhitneyu(x, y, alternative="two-sided")
        print("- {}: U = {:.1f}, p = {:.3f}".format(label, r.statistic, r.pvalue))


main()
