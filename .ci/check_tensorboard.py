"""Reads runs' TensorBoard logs with TensorBoard's own event reader and checks them against
the runs' files; exits non-zero on any mismatch.

Usage: python check_tensorboard.py RUN [SAME_RUN_ELSEWHERE]
  RUN: a run directory (its log is RUN/events.out.tfevents.*). Checks tags, step counts, every scalar
       against losses.csv, the epoch means, the pictures (decodable, one per samples/*.png,
       same bytes), the spec text, the hparams and, if metrics.json exists, the metrics.
  SAME_RUN_ELSEWHERE: a run that must hold the same log content (e.g. a resumed copy of an
       uninterrupted run): every tag's (step, value) list and every picture are compared.
"""
import csv
import io
import json
import os
import re
import sys

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2

QUANTITIES = ["d_loss", "g_loss", "d_real", "d_fake"]


def fail(message):
    print("tensorboard check failed: " + message, file=sys.stderr)
    sys.exit(1)


def load(run):
    acc = ea.EventAccumulator(run,
                              size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0})
    acc.Reload()
    return acc


def check(run):
    acc = load(run)
    tags = acc.Tags()
    want = {"step/" + q for q in QUANTITIES} | {"epoch/" + q for q in QUANTITIES}
    if not want <= set(tags["scalars"]):
        fail("{}: scalar tags {} lack {}".format(run, tags["scalars"], sorted(want - set(tags["scalars"]))))
    rows = list(csv.DictReader(open(os.path.join(run, "losses.csv"))))
    for q in QUANTITIES:
        events = acc.Scalars("step/" + q)
        if [e.step for e in events] != [int(r["step"]) for r in rows]:
            fail("{}: step/{} has steps {}..{} ({}), losses.csv {} rows".format(
                run, q, events[0].step, events[-1].step, len(events), len(rows)))
        for e, r in zip(events, rows):
            if np.float32(e.value) != np.float32(float(r[q])):
                fail("{}: step/{} at step {}: {} vs losses.csv {}".format(run, q, e.step, e.value, r[q]))
        epochs = sorted({int(r["epoch"]) for r in rows})
        means = acc.Scalars("epoch/" + q)
        if len(means) != len(epochs):
            fail("{}: epoch/{} has {} points for {} epochs".format(run, q, len(means), len(epochs)))
        for e, epoch in zip(means, epochs):
            sel = [float(r[q]) for r in rows if int(r["epoch"]) == epoch]
            last = max(int(r["step"]) for r in rows if int(r["epoch"]) == epoch)
            want_mean = np.float32(sum(sel) / len(sel))
            if e.step != last or abs(e.value - want_mean) > 1e-6 * max(1.0, abs(want_mean)):
                fail("{}: epoch/{} of epoch {}: step {} value {}, expected step {} value {}".format(
                    run, q, epoch, e.step, e.value, last, want_mean))
    pictures = sorted(os.listdir(os.path.join(run, "samples")))
    images = acc.Images("samples") if "samples" in tags["images"] else []
    if len(images) != len(pictures):
        fail("{}: {} images in the log, {} in samples/".format(run, len(images), len(pictures)))
    for img, name in zip(images, pictures):
        decoded = Image.open(io.BytesIO(img.encoded_image_string))
        decoded.load()
        on_disk = open(os.path.join(run, "samples", name), "rb").read()
        if img.encoded_image_string != on_disk or (img.width, img.height) != decoded.size:
            fail("{}: picture at step {} is not samples/{}".format(run, img.step, name))
    spec = acc.Tensors("spec")[0].tensor_proto.string_val[0].decode()
    spec_text = open(os.path.join(run, "spec.yaml")).read()
    if spec_text.strip() not in spec:
        fail("{}: the spec text is not spec.yaml".format(run))
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    if "seed" not in start.hparams:
        fail("{}: no seed in hparams {}".format(run, dict(start.hparams)))
    # The resolved spec.yaml is the reference: its train.lr and train.batch_size lines.
    for key, line in (("train.lr", "lr"), ("train.batch_size", "batch_size")):
        on_disk = float(re.search(r"^  {}: (\S+)$".format(line), spec_text, re.M).group(1))
        if abs(start.hparams[key].number_value - on_disk) > 1e-12:
            fail("{}: hparam {} is not spec.yaml's {}: {}".format(run, key, on_disk, dict(start.hparams)))
    metrics_file = os.path.join(run, "metrics.json")
    if os.path.exists(metrics_file):
        fid = json.load(open(metrics_file))["generated"]["fid"]
        logged = acc.Scalars("metrics/fid")[-1].value
        if abs(logged - fid) > 1e-4 * max(1.0, abs(fid)):
            fail("{}: metrics/fid {} vs metrics.json {}".format(run, logged, fid))
    print("{}: {} steps, {} epochs, {} pictures, {} scalar tags, spec and hparams: as on disk".format(
        run, len(rows), len(acc.Scalars("epoch/d_loss")), len(images), len(tags["scalars"])))
    return acc


def same(a, b, run_a, run_b):
    for tag in a.Tags()["scalars"]:
        xa = [(e.step, e.value) for e in a.Scalars(tag)]
        xb = [(e.step, e.value) for e in b.Scalars(tag)] if tag in b.Tags()["scalars"] else None
        if xa != xb:
            fail("{} and {} differ in {}".format(run_a, run_b, tag))
    ia = [(i.step, i.encoded_image_string) for i in a.Images("samples")]
    ib = [(i.step, i.encoded_image_string) for i in b.Images("samples")]
    if ia != ib:
        fail("{} and {} differ in their pictures".format(run_a, run_b))
    print("{} and {}: the same log content".format(run_a, run_b))


def main():
    runs = sys.argv[1:]
    if not runs or len(runs) > 2:
        fail(__doc__)
    accs = [check(r) for r in runs]
    if len(accs) == 2:
        same(accs[0], accs[1], runs[0], runs[1])


main()
