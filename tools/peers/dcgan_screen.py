#!/usr/bin/env python3
"""A quality screen in PyTorch: the DCGAN of gan_torch_dcgan.py (its Generator and
Discriminator, so also with --d-dense H, model.d_dense) trained for --epochs passes at
--batch with Adam(--lr, betas (0.5, 0.999)), G saved after every epoch in this project's
model.safetensors layout as OUT/g<epoch>.safetensors, for `gan eval --generator`.

It tries a change to the networks before it is written in Rust: issue 16's dense layer in D
and its conditional DCGAN were screened this way (docs/notebook/sweeps.md, "A DCGAN: a dense
layer in D", "A conditional DCGAN"). With --conditional (model.conditional) G is asked for
uniformly random digits and D sees each image's digit (the real ones' labels). The saved D
is a fresh one of the example's shape (only G is evaluated, and `gan eval` reads the
example's D layout; a conditional one's embedding tells it the classes). One thread by
default, so two screens run side by side.

Changes screened for an unconditional DCGAN's class mix and precision, none kept
(docs/notebook/sweeps.md, "An unconditional DCGAN: screens that did not help"):
  --pack M             PacGAN (Lin et al. 2018): D judges M images at once, stacked as M
                       channels of its first convolution (--batch must be a multiple of M);
  --no-g-batch-norm    G without batch normalisation, a bias per channel instead (saved as
                       a normalisation that changes nothing, so `gan eval` reads it);
  --no-d-batch-norm    D without it (model.d_batch_norm: false);
  --info K             InfoGAN (Chen et al. 2016): G's input ends in a random one-hot code of
                       K categories, and a linear head Q on D's features learns, with G, to
                       tell the code from the image (cross-entropy, weight --info-weight); D's
                       GAN logit never sees the code. Saved like a conditional G of K classes,
                       so `gan eval` asks for every code equally often (its label_accuracy then
                       says how far the codes match the digits).

And one that helps a great deal (docs/notebook/sweeps.md, "An unconditional DCGAN conditioned
on its own clusters: a screen"):
  --clusters K         self-conditioning on fixed clusters (after Liu et al. 2020, "Diverse
                       image generation via self-conditioned GANs", without their re-clustering):
                       k-means on the training images' pixels, no labels used; a conditional
                       DCGAN on the cluster ids, G asked for clusters in their training
                       frequencies, so its mix of shapes follows the data's by construction.
                       `gan eval` would ask for every cluster equally often, so after each epoch
                       this writes OUT/s<epoch>.npy (10,000 samples, clusters in their
                       frequencies, uint8) for tools/analysis/samples_fid.py.

Usage: dcgan_screen.py --data DIR --out DIR [--epochs 5] [--batch 25] [--lr 5e-4]
       [--threads 1] [--seed 1] [--d-dense H] [--conditional] [--pack M]
       [--no-g-batch-norm] [--no-d-batch-norm] [--info K [--info-weight W]] [--clusters K]
"""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from gan_torch_dcgan import ChannelBias, Discriminator, Generator, init
from peer_common import load_train_images, load_train_labels


def kmeans(x, k, seed, iterations=30):
    """Lloyd's k-means on the rows of x from k distinct rows of a seeded draw: each row's
    cluster id."""
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randperm(len(x), generator=g)[:k]].clone()
    for _ in range(iterations):
        d = (x * x).sum(1, keepdim=True) - 2 * x @ centres.T + (centres * centres).sum(1)
        ids = d.argmin(1)
        for c in range(k):
            members = x[ids == c]
            if len(members):
                centres[c] = members.mean(0)
    return ids


@torch.no_grad()
def sample(G, freq, n):
    """n images from G in eval mode (running statistics), clusters drawn in their
    frequencies, as uint8 rows of 784 pixels."""
    g = torch.Generator().manual_seed(0)
    G.eval()
    out = []
    for i in range(0, n, 250):
        z = torch.randn(250, 100, generator=g)
        y = torch.multinomial(freq, 250, replacement=True, generator=g)
        x = G(torch.cat([z, F.one_hot(y, len(freq)).float()], 1))
        out.append(((x.reshape(250, 784) + 1) * 127.5).round().clamp(0, 255).byte())
    G.train()
    return torch.cat(out).numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--d-dense", type=int, default=0)
    ap.add_argument("--conditional", action="store_true")
    ap.add_argument("--pack", type=int, default=1)
    ap.add_argument("--no-g-batch-norm", action="store_true")
    ap.add_argument("--no-d-batch-norm", action="store_true")
    ap.add_argument("--info", type=int, default=0)
    ap.add_argument("--info-weight", type=float, default=1.0)
    ap.add_argument("--clusters", type=int, default=0)
    a = ap.parse_args()
    if a.batch % a.pack:
        ap.error(f"--batch {a.batch} is not a multiple of --pack {a.pack}")
    if sum(map(bool, (a.info, a.conditional, a.clusters))) > 1:
        ap.error("--info, --conditional and --clusters all use G's one-hot inputs: pick one")
    classes = 10 if a.conditional else a.clusters
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    data = torch.from_numpy(
        load_train_images(a.data).reshape(-1, 1, 28, 28).astype(np.float32) / 255 * 2 - 1)
    labels = torch.from_numpy(load_train_labels(a.data).astype(np.int64))
    freq = None
    if a.clusters:
        labels = kmeans(data.reshape(len(data), -1), a.clusters, a.seed)
        freq = torch.bincount(labels, minlength=a.clusters).double() / len(labels)
        print(f"{a.clusters} clusters, sizes {sorted(torch.bincount(labels).tolist())}",
              flush=True)
    codes = classes or a.info
    G = init(Generator(100, 128, 64, classes=codes, batch_norm=not a.no_g_batch_norm))
    D = init(Discriminator(64, 128, batch_norm=not a.no_d_batch_norm, dense=a.d_dense,
                         classes=classes, pack=a.pack))
    opt_g = torch.optim.Adam(G.parameters(), lr=a.lr, betas=(0.5, 0.999))
    Q = init(nn.Linear(a.d_dense or D.c2 * 7 * 7, a.info)) if a.info else None
    d_params = list(D.parameters()) + (list(Q.parameters()) if Q is not None else [])
    opt_d = torch.optim.Adam(d_params, lr=a.lr, betas=(0.5, 0.999))
    b = a.batch
    ones, zeros = torch.ones(b // a.pack, 1), torch.zeros(b // a.pack, 1)
    for epoch in range(1, a.epochs + 1):
        t0, perm, d_sum, g_sum = time.time(), torch.randperm(data.shape[0]), 0.0, 0.0
        steps = data.shape[0] // b
        for i in range(steps):
            x, real_y = data[perm[i * b:(i + 1) * b]], labels[perm[i * b:(i + 1) * b]]
            z, fake_y, code = torch.randn(b, 100), None, None
            if codes:
                code = (torch.multinomial(freq, b, replacement=True) if freq is not None
                        else torch.randint(0, codes, (b,)))
                z = torch.cat([z, F.one_hot(code, codes).float()], 1)
            if classes:
                fake_y = code
            else:
                real_y = None
            fake = G(z)
            h_fake = D.features(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(D(x, real_y), ones) + \
                F.binary_cross_entropy_with_logits(D.head(h_fake, fake_y), zeros)
            if Q is not None:
                # InfoGAN (Chen et al. 2016): Q guesses G's code from D's features.
                d_loss = d_loss + a.info_weight * F.cross_entropy(Q(h_fake), code)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            h_fake = D.features(fake)
            g_loss = F.binary_cross_entropy_with_logits(D.head(h_fake, fake_y), ones)
            if Q is not None:
                g_loss = g_loss + a.info_weight * F.cross_entropy(Q(h_fake), code)
            opt_g.zero_grad()
            g_loss.backward(inputs=list(G.parameters()))
            opt_g.step()
            d_sum, g_sum = d_sum + d_loss.item(), g_sum + g_loss.item()
        print(f"epoch {epoch}: D loss {d_sum / steps:.3f}, G loss {g_sum / steps:.3f}, "
              f"{time.time() - t0:.0f} s", flush=True)
        tensors = {f"generator.{k}": v for k, v in G.state_dict().items()
                   if "num_batches" not in k and not k.startswith(("bn0.", "bn1."))}
        for name in ("bn0", "bn1"):
            bn = getattr(G, name)
            if isinstance(bn, ChannelBias):
                tensors.update({f"generator.{k}": v for k, v in
                                bn.as_batch_norm(name).items()})
            else:
                tensors.update({f"generator.{name}.{k}": v for k, v in bn.state_dict().items()
                                if "num_batches" not in k})
        if freq is not None:
            np.save(os.path.join(a.out, f"s{epoch}.npy"), sample(G, freq, 10000))
        example_d = init(Discriminator(64, 128, classes=codes))
        tensors.update({f"discriminator.{k}": v for k, v in example_d.state_dict().items()
                        if "running" not in k and "num_batches" not in k})
        save_file({k: v.contiguous().float() for k, v in tensors.items()},
                  os.path.join(a.out, f"g{epoch}.safetensors"),
                  metadata={"format": "gan-weights-v1", "architecture": "dcgan",
                            "generator.activation": "relu", "generator.output": "tanh",
                            "discriminator.activation": "leaky_relu:0.2"})


if __name__ == "__main__":
    main()
