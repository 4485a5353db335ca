"""Writes the committed TensorFlow oracle fixture of one seed from a lockstep directory.

Usage: python oracle_fixture.py LOCKSTEP_DIR SEED OUT_DIR

LOCKSTEP_DIR holds export.safetensors, tf.csv and weights/tf-000001.safetensors from
`cargo xtask lockstep --fixture` and tf_replay.py. Writes into OUT_DIR:
  * seed-SEED.csv: TF's per-step d_loss, g_loss, d_real, d_fake, with the TF version and
    the digest of the inputs TF replayed in comment lines;
  * seed-SEED-update1.csv: per weight tensor, TF's update of step 1 (weights after it minus
    the initial weights) summed up as its L2 norm and its dot products with two fixed +-1
    vectors (sign of a multiplicative hash of the entry index, the same in the Rust test),
    so the whole update is checked without committing 1.7 MB of weights.
"""
import os
import sys

import numpy as np
import tensorflow as tf
from safetensors import safe_open
from safetensors.numpy import load_file


def signs(n, k):
    """+-1 for entries 0..n-1: bit 31 of (i * 2654435761 + (k + 1) * 2246822519) mod 2^32."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64((k + 1) * 2246822519)) % np.uint64(2**32)
    return np.where(h < np.uint64(2**31), 1.0, -1.0)


def main():
    src, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    export_path = os.path.join(src, "export.safetensors")
    with safe_open(export_path, framework="numpy") as f:
        digest = f.metadata()["input_digest"]
    header = ("# TensorFlow {} (tf.compat.v1 graph of ts_GAN.py, tools/lockstep/tf_replay.py, 1 thread)\n"
              "# replaying `cargo xtask lockstep --fixture --seed {}`: inputs sha256 {}\n").format(
                  tf.__version__, seed, digest)
    with open(os.path.join(src, "tf.csv")) as f:
        trace = f.read()
    with open(os.path.join(out, "seed-{}.csv".format(seed)), "w") as f:
        f.write(header + trace)
    init = load_file(export_path)
    after = load_file(os.path.join(src, "weights", "tf-000001.safetensors"))
    with open(os.path.join(out, "seed-{}-update1.csv".format(seed)), "w") as f:
        f.write(header)
        f.write("tensor,norm,proj0,proj1\n")
        for name in sorted(after):
            delta = (after[name].astype(np.float64) - init["init." + name].astype(np.float64)).ravel()
            cells = [np.linalg.norm(delta)] + [float(signs(delta.size, k) @ delta) for k in (0, 1)]
            f.write("{},{}\n".format(name, ",".join(repr(float(c)) for c in cells)))


main()
