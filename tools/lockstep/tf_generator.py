"""Converts the TF program's generator (seed_tf.py --save-generator FILE.npz: G_W1 [128, 256],
G_b1, G_W2 [256, 784], G_b2) into the project's names and layout, so
`cargo xtask eval --generator OUT.safetensors` scores it exactly as it scores a run.

Usage: python tf_generator.py IN.npz OUT.safetensors
"""
import sys

import numpy as np
from safetensors.numpy import save_file

src, dst = sys.argv[1], sys.argv[2]
w = np.load(src)
save_file({
    "generator.0.weight": np.ascontiguousarray(w["G_W1"].T, dtype=np.float32),
    "generator.0.bias": np.ascontiguousarray(w["G_b1"], dtype=np.float32),
    "generator.2.weight": np.ascontiguousarray(w["G_W2"].T, dtype=np.float32),
    "generator.2.bias": np.ascontiguousarray(w["G_b2"], dtype=np.float32),
}, dst)
print("wrote", dst)
