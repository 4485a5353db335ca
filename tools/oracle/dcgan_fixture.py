#!/usr/bin/env python3
"""Writes crates/model/tests/fixtures/dcgan_oracle.safetensors (with --no-d-batch-norm
dcgan_oracle_no_bn.safetensors, with --d-dropout dcgan_oracle_dropout.safetensors, with
--d-dense dcgan_oracle_dense.safetensors: D with a dense layer of DENSE units, with
--conditional dcgan_oracle_conditional.safetensors: a conditional GAN over CLASSES classes,
G's noise rows ending in the label one-hot and D's logit gaining the projection
embed[label] . features, with a dense layer in D as well, computed in float64): three
training steps of the
DCGAN family as PyTorch's autograd computes them, the oracle of
crates/model/tests/dcgan.rs (dfdx 0.13's Conv2D and ConvTrans2D exist only behind its
`nightly` feature, which does not build on a stable compiler).

The networks are tools/peers/gan_torch_dcgan.py's, imported from it (and gan_model::dcgan's):
G and D with batch normalisation, no bias before it, LeakyReLU(0.2) in D, ReLU and tanh in G; D sees its
real and its fake images as two batches (with --no-d-batch-norm, D's second convolution
has a bias and no normalisation, as model.d_batch_norm: false; with --d-dropout, D drops
30% of the units after each activation, as model.d_dropout: 0.3, with masks from `det`
that the test makes the same way, since the project draws its own; each step stores how
many units its masks keep, so the two cannot silently differ; that file also holds the
final G's standing statistics: its batch normalisation's statistics averaged over four
batches of noise in training mode, as an averaged G is sampled). Widths are small (noise 32, G 32-16, D 16-32) so
the file stays small, the batch is 16 so both of the layers' lanes and an uneven group
are used; the layers themselves are checked at full DCGAN sizes by conv_fixture.py.

Each step: z and the real batch from a formula exact in f64 (`det`, as in the test); D's
update with the non-saturating cross-entropy from logits; G's update with the same z against
the updated D; both optimisers are TensorFlow 1's Adam (the project's rule: epsilon outside
the bias correction), lr 2e-4, betas (0.5, 0.999), applied in float32. Stored per step: the
losses, D(x), D(G(z)), every parameter gradient of both networks; after the last step every
parameter and G's running statistics.

Usage (any Python with torch, numpy and safetensors, e.g. peers.sh's torch environment):
  python tools/oracle/dcgan_fixture.py [--no-d-batch-norm | --d-dropout | --d-dense |
                                       --conditional] [OUT]
"""
import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

# The networks are the PyTorch peer's, so the oracle and the timed peer cannot drift apart.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
from gan_torch_dcgan import Discriminator, Generator  # noqa: E402

NOISE, G_CH, D_CH, BATCH, STEPS = 32, (32, 16), (16, 32), 16, 3
LR, BETA1, BETA2, EPS = 2e-4, 0.5, 0.999, 1e-8
DROPOUT = 0.3
DENSE = 24
CLASSES = 10
STANDING = 4


class GivenMasks(torch.nn.Module):
    """Dropout whose masks are given (0 or 1 / (1 - p)), taken in the order D applies them."""

    def __init__(self):
        super().__init__()
        self.queue = []

    def forward(self, x):
        return x * self.queue.pop(0)


def masks(rows, widths, salt):
    """One mask per unit of each layer for `rows` images: dropped where det < DROPOUT."""
    keep = np.float32(1) / (np.float32(1) - np.float32(DROPOUT))
    return [torch.where(det([rows, *w], salt + i, 0.5, 0.5) < DROPOUT,
                        torch.tensor(0.0), torch.tensor(keep)) for i, w in enumerate(widths)]


KINK_MARGIN = 5e-7


def watch_kinks():
    """Makes every ReLU and LeakyReLU call check that no input sits within KINK_MARGIN
    (relative to the largest) of 0."""
    def checked(f):
        def g(x, *args, **kwargs):
            margin = float(x.detach().abs().min() / x.detach().abs().max())
            assert margin >= KINK_MARGIN, f"an activation's input {margin:.1e} from its kink"
            return f(x, *args, **kwargs)
        return g
    F.relu, F.leaky_relu = checked(F.relu), checked(F.leaky_relu)


def det(shape, salt, scale, offset=0.0):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    v = ((i * 7919 + salt * 104729) % 2001).astype(np.float64) / 1000.0 - 1.0
    # Rounded to float32 (the project's inputs), then in the precision the steps run in.
    return torch.from_numpy((v * scale + offset).astype(np.float32).reshape(shape)).to(
        torch.get_default_dtype())


def set_params(module, base):
    """Every parameter from `det`, in the module's order (the project's buffer order)."""
    for i, (name, p) in enumerate(module.named_parameters()):
        scale, offset = (0.1, 1.0) if name.startswith("bn") and name.endswith("weight") else (0.05, 0.0)
        with torch.no_grad():
            p.copy_(det(list(p.shape), base + i, scale, offset))


class Adam:
    """TensorFlow 1's update in float32, as gan_model::adam applies it."""

    def __init__(self, params):
        self.params = list(params)
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        lr_t = np.float32(LR * np.sqrt(1.0 - BETA2 ** self.t) / (1.0 - BETA1 ** self.t))
        b1, b2 = np.float32(BETA1), np.float32(BETA2)
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.m, self.v):
                m.mul_(b1).add_((np.float32(1) - b1) * g)
                v.mul_(b2).add_((np.float32(1) - b2) * (g * g))
                p.sub_(lr_t * m / (v.sqrt() + np.float32(EPS)))


def main():
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    args = sys.argv[1:]
    d_batch_norm = "--no-d-batch-norm" not in args
    dropout = "--d-dropout" in args
    conditional = "--conditional" in args
    if conditional:
        # In float64 (from the same float32 inputs), and no activation's input closer to
        # its kink than KINK_MARGIN of the layer's largest: an earlier label formula left
        # one of D's pre-activations 2e-8 (relative) from LeakyReLU's kink at step 2, where
        # float32 rounding decides the side, and the gradients 2e-3 apart.
        torch.set_default_dtype(torch.float64)
        watch_kinks()
    dense = DENSE if "--d-dense" in args or conditional else 0
    classes = CLASSES if conditional else 0
    args = [a for a in args
            if a not in ("--no-d-batch-norm", "--d-dropout", "--d-dense", "--conditional")]
    name = "dcgan_oracle_conditional.safetensors" if conditional else \
        "dcgan_oracle_dropout.safetensors" if dropout else \
        "dcgan_oracle_dense.safetensors" if dense else \
        "dcgan_oracle.safetensors" if d_batch_norm else "dcgan_oracle_no_bn.safetensors"
    path = args[0] if args else os.path.join(
        here, "..", "..", "crates", "model", "tests", "fixtures", name)
    G = Generator(NOISE, *G_CH, classes=classes)
    D = Discriminator(*D_CH, batch_norm=d_batch_norm, dense=dense, classes=classes)
    set_params(G, 100)
    set_params(D, 200)
    given = GivenMasks()
    if dropout:
        D.drop = given
    widths = [(D_CH[0], 14, 14), (D_CH[1], 7, 7)]
    opt_g, opt_d = Adam(G.parameters()), Adam(D.parameters())
    out = {}
    for step in range(1, STEPS + 1):
        x01 = det([BATCH, 1, 28, 28], 300 + step, 0.5, 0.5)
        x = 2.0 * x01 - 1.0
        z = det([BATCH, NOISE], 400 + step, 1.0)
        real_y = fake_y = None
        if classes:
            # Labels from a formula (the test reads them back): uneven, every class used.
            real_y = (torch.arange(BATCH) * 7 + step) % classes
            fake_y = (torch.arange(BATCH) * 3 + 2 * step + 5) % classes
            out[f"step{step}.real_labels"] = real_y.float()
            out[f"step{step}.fake_labels"] = fake_y.float()
            z = torch.cat([z, F.one_hot(fake_y, classes).to(z.dtype)], 1)
        fake = G(z)
        if dropout:
            # The project's order: D's update draws layer 1's masks for the real and the
            # fake images, then layer 2's; G's update draws one more of each.
            (d1, d2), (g1, g2) = masks(2 * BATCH, widths, 600 + 10 * step), \
                masks(BATCH, widths, 605 + 10 * step)
            given.queue = [d1[:BATCH], d2[:BATCH], d1[BATCH:], d2[BATCH:], g1, g2]
            out[f"step{step}.masks_kept"] = torch.tensor(
                [float(sum(int((m != 0).sum()) for m in (d1, d2, g1, g2)))])
        real_logits, fake_logits = D(x, real_y), D(fake.detach(), fake_y)
        ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)
        d_loss = F.binary_cross_entropy_with_logits(real_logits, ones) + \
            F.binary_cross_entropy_with_logits(fake_logits, zeros)
        grads_d = torch.autograd.grad(d_loss, list(D.parameters()))
        opt_d.step(grads_d)
        g_loss = F.binary_cross_entropy_with_logits(D(fake, fake_y), ones)
        grads_g = torch.autograd.grad(g_loss, list(G.parameters()))
        assert not given.queue, "every mask used once"
        opt_g.step(grads_g)
        s = f"step{step}"
        out[f"{s}.stats"] = torch.tensor([
            -d_loss.item(), -g_loss.item(),
            torch.sigmoid(real_logits).mean().item(), torch.sigmoid(fake_logits).mean().item()])
        for (name, _), g in zip(D.named_parameters(), grads_d):
            out[f"{s}.grad.discriminator.{name}"] = g
        for (name, _), g in zip(G.named_parameters(), grads_g):
            out[f"{s}.grad.generator.{name}"] = g
    for name, p in D.named_parameters():
        out[f"final.discriminator.{name}"] = p.detach()
    for name, p in G.named_parameters():
        out[f"final.generator.{name}"] = p.detach()
    for name, b in G.named_buffers():
        if "running" in name:
            out[f"final.generator.{name}"] = b
    if dropout:
        # Standing statistics of the final G (what a moving average of G is sampled with):
        # fresh running statistics averaged over STANDING batches in training mode, which is
        # what PyTorch's batch normalisation keeps with momentum=None.
        standing = copy.deepcopy(G)
        for m in standing.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        with torch.no_grad():
            for i in range(STANDING):
                standing(det([BATCH, NOISE], 700 + i, 1.0))
        for name, b in standing.named_buffers():
            if "running" in name:
                out[f"standing.generator.{name}"] = b
    # Sampling: G in inference mode (the running statistics), pixels mapped to [0, 1].
    G.eval()
    with torch.no_grad():
        z = det([8, NOISE], 500, 1.0)
        if classes:
            z = torch.cat([z, F.one_hot(torch.arange(8) % classes, classes).to(z.dtype)], 1)
        out["final.samples"] = (G(z) + 1.0) / 2.0
    out = {k: v.contiguous().float() for k, v in out.items()}
    save_file(out, path, metadata={"torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
