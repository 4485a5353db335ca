#!/usr/bin/env python3
"""How much of a generator's FID its class histogram alone explains: the FID of real
training images drawn in the proportions of a given histogram (10 counts, digits 0-9, e.g.
a metrics.json's `coverage.histogram`) against the 10,000 test images, in the features of
this project's classifier (data/classifier/mnist-mlp.safetensors, its penultimate layer,
as `gan eval` computes them). The first line is a random draw of 10,000 real images (MNIST's
own proportions).

This recomputes the features and the Frechet distance in NumPy/SciPy, so its figures are
close to, not identical with, `gan eval`'s (a random draw gives about 1.3 here; `gan eval
--reference` reports 1.79 for its own 10,000 training images).

Usage (a Python with numpy, scipy and safetensors), from the workspace root after
`cargo xtask fetch-mnist` and `cargo xtask train-classifier`:
  python tools/analysis/class_mix_fid.py '[1532, 819, 601, 1012, 372, 1010, 1130, 1440, 745, 1339]'
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file
from scipy import linalg

WEIGHTS = load_file("data/classifier/mnist-mlp.safetensors")


def features(x):
    h = np.maximum(x @ WEIGHTS["0.0.weight"].T + WEIGHTS["0.0.bias"], 0)
    return np.maximum(h @ WEIGHTS["1.0.weight"].T + WEIGHTS["1.0.bias"], 0)


def idx(path, labels=False):
    data = open(path, "rb").read()
    if labels:
        return np.frombuffer(data[8:], np.uint8)
    return np.frombuffer(data[16:], np.uint8).reshape(-1, 784).astype(np.float64) / 255


def fid(a, b):
    m1, m2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(c1 @ c2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * root))


def main():
    test = features(idx("data/mnist/t10k-images-idx3-ubyte"))
    images = idx("data/mnist/train-images-idx3-ubyte")
    labels = idx("data/mnist/train-labels-idx1-ubyte", labels=True)
    rng = np.random.default_rng(0)
    for hist in [None] + [json.loads(h) for h in sys.argv[1:]]:
        if hist is None:
            pick = rng.choice(len(images), 10000, replace=False)
        else:
            pick = np.concatenate([rng.choice(np.flatnonzero(labels == c), n, replace=False)
                                   for c, n in enumerate(hist)])
        print(f"{hist or 'random draw'}: FID {fid(features(images[pick]), test):.2f}")


if __name__ == "__main__":
    main()
