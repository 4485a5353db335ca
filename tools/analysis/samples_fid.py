#!/usr/bin/env python3
"""FID and class mix of generated digits in this project's classifier features, for
samples `gan eval` cannot draw itself: a `dcgan_screen.py --clusters K` screen's
OUT/s<epoch>.npy (10,000 uint8 rows of 784 pixels, its clusters asked for in their training
frequencies). A .safetensors of an unconditional screen's G (OUT/g<epoch>.safetensors) is
sampled here too (10,000 images, running statistics, torch seed 0), so both kinds are
scored the same way.

The features and the Frechet distance are class_mix_fid.py's (NumPy/SciPy): close to, not
identical with, `gan eval`'s figures, so compare its lines with each other, not with
metrics.json. Each line: FID against the 10,000 test images, the classifier's share of the
rarest and the commonest digit, and the digits' shares.

Usage (the PyTorch peer's Python), from the workspace root after `cargo xtask fetch-mnist`
and `cargo xtask train-classifier`:
  python tools/analysis/samples_fid.py OUT/s1.npy OUT/g4.safetensors ...
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from class_mix_fid import WEIGHTS, features, fid, idx  # noqa: E402


def generated(path):
    if path.endswith(".npy"):
        return np.load(path).astype(np.float64) / 255
    import torch
    from safetensors.torch import load_file
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
    from gan_torch_dcgan import Generator
    tensors = load_file(path)
    state = {k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")}
    c1, noise = state["fc.weight"].shape[0] // 49, state["fc.weight"].shape[1]
    G = Generator(noise, c1, state["up1.weight"].shape[1])
    G.load_state_dict(state, strict=False)
    G.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        x = torch.cat([G(torch.randn(250, noise, generator=g)) for _ in range(40)])
    return ((x.reshape(-1, 784) + 1) / 2).clamp(0, 1).double().numpy()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    test = features(idx("data/mnist/t10k-images-idx3-ubyte"))
    for path in sys.argv[1:]:
        x = generated(path)
        h = features(x)
        digits = (h @ WEIGHTS["2.weight"].T + WEIGHTS["2.bias"]).argmax(1)
        share = np.bincount(digits, minlength=10) / len(digits)
        print(f"{path}: FID {fid(h, test):.2f}, rarest digit {share.min():.1%}, "
              f"commonest {share.max():.1%}, shares {np.round(share * 100, 1).tolist()}")


if __name__ == "__main__":
    main()
