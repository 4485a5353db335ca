#!/usr/bin/env python3
"""Writes crates/model/tests/fixtures/conv_oracle.safetensors: PyTorch's outputs and
gradients for the convolution layers of the DCGAN family, at MNIST DCGAN sizes, the oracle
of crates/model/tests/conv.rs.

dfdx 0.13's Conv2D and ConvTrans2D exist only behind its `nightly` feature, which does not
build on a stable compiler, so PyTorch's autograd is the outside reference for them.
Inputs are not stored: both sides compute them from a formula exact in f64
(`det` here, `det` in the test), so only PyTorch's results are in the file.

Usage (any Python with torch, numpy and safetensors, e.g. peers.sh's torch environment):
  python tools/oracle/conv_fixture.py [OUT]
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file


def det(shape, salt, scale, offset=0.0):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    v = ((i * 7919 + salt * 104729) % 2001).astype(np.float64) / 1000.0 - 1.0
    return torch.from_numpy((v * scale + offset).astype(np.float32).reshape(shape))


def conv_case(name, x_shape, w_shape, dy_shape, salt, transposed, out):
    x = det(x_shape, salt, 1.0).requires_grad_()
    w = det(w_shape, salt + 1, 0.05).requires_grad_()
    channels = w_shape[1] if transposed else w_shape[0]
    b = det([channels], salt + 2, 0.05).requires_grad_()
    op = F.conv_transpose2d if transposed else F.conv2d
    y = op(x, w, b, stride=2, padding=1)
    assert list(y.shape) == list(dy_shape), (name, y.shape)
    y.backward(det(dy_shape, salt + 3, 1.0))
    out.update({f"{name}.y": y.detach(), f"{name}.dx": x.grad, f"{name}.dw": w.grad,
                f"{name}.db": b.grad})


def main():
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "..", "crates", "model", "tests", "fixtures", "conv_oracle.safetensors")
    out = {}
    # D's convolutions (1 -> 64 -> 128 channels, 28 -> 14 -> 7 pixels), G's transposed ones
    # (128 -> 64 -> 1 channels, 7 -> 14 -> 28), kernel 4, stride 2, padding 1.
    conv_case("conv1", [4, 1, 28, 28], [64, 1, 4, 4], [4, 64, 14, 14], 1, False, out)
    conv_case("conv2", [2, 64, 14, 14], [128, 64, 4, 4], [2, 128, 7, 7], 5, False, out)
    conv_case("convt1", [2, 128, 7, 7], [128, 64, 4, 4], [2, 64, 14, 14], 9, True, out)
    conv_case("convt2", [2, 64, 14, 14], [64, 1, 4, 4], [2, 1, 28, 28], 13, True, out)
    # Batch normalisation in training mode, one update of the running statistics.
    x = det([2, 64, 14, 14], 17, 2.0, 0.3).requires_grad_()
    gamma = det([64], 18, 0.5, 1.0).requires_grad_()
    beta = det([64], 19, 0.1).requires_grad_()
    running_mean, running_var = torch.zeros(64), torch.ones(64)
    y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=0.1,
                     eps=1e-5)
    y.backward(det([2, 64, 14, 14], 20, 1.0))
    out.update({"bn.y": y.detach(), "bn.dx": x.grad, "bn.dgamma": gamma.grad,
                "bn.dbeta": beta.grad, "bn.running_mean": running_mean,
                "bn.running_var": running_var})
    save_file({k: v.contiguous() for k, v in out.items()}, path,
              metadata={"torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors, torch {torch.__version__}")


if __name__ == "__main__":
    main()
