#!/usr/bin/env python3
"""PyTorch CPU peer of experiments/improved.yaml, for timing this project's step against it.

The same networks and step as the spec (see ARCHITECTURE.md, "The perceptron step"):
  G: 128 -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), tanh output (pixels in [-1, 1])
  D: 784 -> 512 -> 256 -> 1, LeakyReLU(0.2), dropout 0.3 after each hidden layer
  weights ~ N(0, 0.02^2), biases 0; Adam(lr 2e-4, betas (0.5, 0.999), eps 1e-8) per network
  per step: z ~ N(0, 1) (100 x 128); D update on the real batch and G(z) as one 200-row batch
  (non-saturating cross-entropy from logits); then G's update with the same z against the
  updated D (fresh dropout masks), no D weight gradients; then the moving average of G's
  weights (decay 0.999).
Data: the 55,000 training images after the first 5,000, scaled to [-1, 1], reshuffled each
pass, 550 batches of 100.

Usage: gan_torch_improved.py --data DIR --out DIR [--steps N] [--threads T] [--seed S]
Writes OUT/timing.json with the median ms per step after 20 warm-up steps, as the peers in
../shared/reference/peers do.
"""
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from peer_common import load_train_images, time_steps, write_timing

BATCH, NOISE, NX = 100, 128, 784
G_HIDDEN, D_HIDDEN = [256, 512, 1024], [512, 256]
LR, BETAS, EPS, EMA, DROPOUT, SLOPE, STD = 2e-4, (0.5, 0.999), 1e-8, 0.999, 0.3, 0.2, 0.02


class MLP(torch.nn.Module):
    """in -> hidden (LeakyReLU, optional dropout) ... -> out (logits / pre-activation)."""

    def __init__(self, sizes, dropout):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = dropout
        for l in self.layers:
            torch.nn.init.normal_(l.weight, std=STD)
            torch.nn.init.zeros_(l.bias)

    def forward(self, x):
        for l in self.layers[:-1]:
            x = F.leaky_relu(l(x), SLOPE)
            if self.dropout:
                x = F.dropout(x, self.dropout, training=True)
        return self.layers[-1](x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=620)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    data = torch.from_numpy(load_train_images(args.data).astype(np.float32) / 255.0 * 2.0 - 1.0)

    G = MLP([NOISE] + G_HIDDEN + [NX], 0.0)
    D = MLP([NX] + D_HIDDEN + [1], DROPOUT)
    g_params, d_params = list(G.parameters()), list(D.parameters())
    ema = [p.detach().clone() for p in g_params]
    opt_g = torch.optim.Adam(g_params, lr=LR, betas=BETAS, eps=EPS, fused=True)
    opt_d = torch.optim.Adam(d_params, lr=LR, betas=BETAS, eps=EPS, fused=True)
    ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)

    def train_step(x):
        z = torch.randn(BATCH, NOISE)
        fake = torch.tanh(G(z))
        logits = D(torch.cat([x, fake.detach()]))
        d_loss = F.binary_cross_entropy_with_logits(logits[:BATCH], ones) + \
            F.binary_cross_entropy_with_logits(logits[BATCH:], zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(D(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=g_params)
        opt_g.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in g_params], 1.0 - EMA)
        return d_loss.detach(), g_loss.detach()

    times = time_steps(train_step, data, BATCH, args.steps)
    write_timing(args.out, times, args.warmup, model="improved")


if __name__ == "__main__":
    main()
