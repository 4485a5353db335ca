#!/usr/bin/env python3
"""PyTorch CPU peer of an MNIST DCGAN (issue 16), for timing this project's step against it.

The network family (Radford et al. 2016, at MNIST size), with the widths as arguments:
  G: z (--noise) -> Linear -> C1 x 7 x 7 -> BN -> ReLU -> ConvTranspose(C1 -> C2, 4, 2, 1)
     -> BN -> ReLU -> ConvTranspose(C2 -> 1, 4, 2, 1) -> tanh          (--g-channels C1,C2)
  D: 1 x 28 x 28 -> Conv(1 -> C1, 4, 2, 1) -> LeakyReLU(0.2) -> Conv(C1 -> C2, 4, 2, 1)
     -> BN -> LeakyReLU(0.2) -> Linear(C2 x 7 x 7 -> 1)                (--d-channels C1,C2)
  with --d-dropout P, dropout after each of D's LeakyReLUs (model.d_dropout); with
  --d-dense H, a dense layer Linear(C2 x 7 x 7 -> H) -> LeakyReLU(0.2) before the logit
  (model.d_dense); with --conditional, a conditional GAN over the 10 digits (model.conditional):
  G's noise rows end in the digit one-hot, D's logit gains the projection embed[digit] . h
  (h: the logit's input), as gan_model::dcgan has it (the timed real batch gets random
  digits: only the time is measured)
  no bias before a BN (it would be removed by it), weights ~ N(0, 0.02^2), biases 0, BN
  scale 1; Adam(lr 2e-4, betas (0.5, 0.999)) per network
  per step: z ~ N(0, 1); D update on the real batch and G(z), each its own call of D (so its
  own batch statistics, as PyTorch's DCGAN example does; non-saturating cross-entropy from
  logits); G's update with the same z against the updated D.
This is gan_model::dcgan's network and step (tools/oracle/dcgan_fixture.py checks the two
agree), timed against `cargo xtask bench --dcgan`.
Data: the 55,000 training images after the first 5,000, scaled to [-1, 1], reshuffled each
pass.

Usage: gan_torch_dcgan.py --data DIR --out DIR [--steps N] [--threads T] [--batch B]
       [--noise Z] [--g-channels C1,C2] [--d-channels C1,C2] [--d-dropout P] [--d-dense H]
       [--conditional] [--save-generator FILE]
Writes OUT/timing.json with the median ms per step after 20 warm-up steps, as the peers in
../shared/reference/peers do. With --save-generator it also writes both networks after the
last step in this project's model.safetensors layout (PyTorch's module names under
`generator.` / `discriminator.`, G's running statistics, the `architecture: dcgan`
metadata), so `gan eval --generator FILE` scores PyTorch's training of the same network
(--steps 2750 is 5 epochs of 550 steps).
"""
import argparse
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from peer_common import load_train_images, time_steps, write_timing


def init(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


class ChannelBias(nn.Module):
    """A bias per channel in place of a batch normalisation (a G without one); saved as a
    normalisation that changes nothing (scale 1, running mean 0, running variance 1 - eps)
    so that `gan eval --generator` reads it."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return x + self.bias.view(1, -1, 1, 1)

    def as_batch_norm(self, prefix):
        c = self.bias.shape[0]
        return {f"{prefix}.weight": torch.ones(c), f"{prefix}.bias": self.bias.detach(),
                f"{prefix}.running_mean": torch.zeros(c),
                f"{prefix}.running_var": torch.full((c,), 1 - 1e-5)}


class Generator(nn.Module):
    def __init__(self, noise, c1, c2, classes=0, batch_norm=True):
        super().__init__()
        self.c1 = c1
        self.fc = nn.Linear(noise + classes, c1 * 7 * 7, bias=False)
        self.bn0 = nn.BatchNorm2d(c1) if batch_norm else ChannelBias(c1)
        self.up1 = nn.ConvTranspose2d(c1, c2, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c2) if batch_norm else ChannelBias(c2)
        self.up2 = nn.ConvTranspose2d(c2, 1, 4, 2, 1)

    def forward(self, z):
        x = F.relu(self.bn0(self.fc(z).view(-1, self.c1, 7, 7)))
        x = F.relu(self.bn1(self.up1(x)))
        return torch.tanh(self.up2(x))


class Discriminator(nn.Module):
    """With batch_norm=False (model.d_batch_norm: false) conv2 has a bias and no BN; with
    dropout > 0 (model.d_dropout) each LeakyReLU's output goes through dropout, as in
    TensorFlow's DCGAN tutorial; with dense > 0 (model.d_dense) a dense hidden layer and a
    LeakyReLU come before the logit, as in InfoGAN's MNIST D (registered before `fc`, so
    the parameters come in the project's buffer order)."""

    def __init__(self, c1, c2, batch_norm=True, dropout=0.0, dense=0, classes=0, pack=1):
        super().__init__()
        self.c2, self.pack = c2, pack
        self.conv1 = nn.Conv2d(pack, c1, 4, 2, 1)
        self.conv2 = nn.Conv2d(c1, c2, 4, 2, 1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(c2) if batch_norm else nn.Identity()
        self.dense = nn.Linear(c2 * 7 * 7, dense) if dense else None
        self.fc = nn.Linear(dense or c2 * 7 * 7, 1)
        self.embed = nn.Embedding(classes, dense or c2 * 7 * 7) if classes else None
        self.drop = nn.Dropout(dropout)

    def features(self, x):
        """The logit's input h (the dense layer's output, or the conv features)."""
        x = x.reshape(-1, self.pack, 28, 28)
        x = self.drop(F.leaky_relu(self.conv1(x), 0.2))
        x = self.drop(F.leaky_relu(self.bn2(self.conv2(x)), 0.2))
        x = x.view(-1, self.c2 * 7 * 7)
        if self.dense is not None:
            x = F.leaky_relu(self.dense(x), 0.2)
        return x

    def head(self, x, y=None):
        if self.embed is None:
            return self.fc(x)
        return self.fc(x) + (self.embed(y) * x).sum(1, keepdim=True)

    def forward(self, x, y=None):
        return self.head(self.features(x), y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=220)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--noise", type=int, default=100)
    ap.add_argument("--g-channels", default="128,64")
    ap.add_argument("--d-channels", default="64,128")
    ap.add_argument("--d-dropout", type=float, default=0.0)
    ap.add_argument("--d-dense", type=int, default=0)
    ap.add_argument("--conditional", action="store_true")
    ap.add_argument("--save-generator", default=None)
    args = ap.parse_args()
    gc = [int(c) for c in args.g_channels.split(",")]
    dc = [int(c) for c in args.d_channels.split(",")]

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    data = torch.from_numpy(
        load_train_images(args.data).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0 * 2.0 - 1.0)
    b = args.batch

    classes = 10 if args.conditional else 0
    G = init(Generator(args.noise, *gc, classes=classes))
    D = init(Discriminator(*dc, dropout=args.d_dropout, dense=args.d_dense, classes=classes))
    g_params = list(G.parameters())
    opt_g = torch.optim.Adam(g_params, lr=2e-4, betas=(0.5, 0.999), fused=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

    def train_step(x):
        z = torch.randn(b, args.noise)
        real_y = fake_y = None
        if classes:
            real_y, fake_y = torch.randint(0, classes, (b,)), torch.randint(0, classes, (b,))
            z = torch.cat([z, F.one_hot(fake_y, classes).float()], 1)
        fake = G(z)
        d_loss = F.binary_cross_entropy_with_logits(D(x, real_y), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach(), fake_y), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(D(fake, fake_y), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=g_params)
        opt_g.step()
        return d_loss.detach(), g_loss.detach()

    times = time_steps(train_step, data, b, args.steps)
    write_timing(args.out, times, args.warmup, model="dcgan", batch=b, noise=args.noise,
                 g_channels=gc, d_channels=dc, d_dropout=args.d_dropout,
                 d_dense=args.d_dense, conditional=args.conditional)
    if args.save_generator:
        from safetensors.torch import save_file
        tensors = {f"generator.{k}": v for k, v in G.state_dict().items()
                   if "num_batches" not in k}
        tensors.update({f"discriminator.{k}": v for k, v in D.state_dict().items()
                        if "running" not in k and "num_batches" not in k})
        save_file({k: v.contiguous().float() for k, v in tensors.items()}, args.save_generator,
                  metadata={"format": "gan-weights-v1", "architecture": "dcgan",
                            "generator.activation": "relu", "generator.output": "tanh",
                            "discriminator.activation": "leaky_relu:0.2"})


if __name__ == "__main__":
    main()
