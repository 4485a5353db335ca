# -*- coding: utf-8 -*-
"""Replays a run exported by `cargo xtask lockstep` in the tutorial's own TensorFlow program.

The graph below is ts_GAN.py's as ported to TF 2 in ../shared/reference/peers/seed_tf.py,
unchanged: tf.nn.sigmoid outputs, loss_D = mean(log D_real + log(1 - D_gene)),
loss_G = mean(log D_gene), two AdamOptimizer(0.0002) minimising -loss_D over D's variables
and -loss_G over G's, one sess.run for D then one for G with the same noise.

Only the inputs come from the export instead of TF's and numpy's random generators:
  * the initial weights (PyTorch layout [out, in] in the export, transposed to TF's [in, out]),
    and, when the export starts from a checkpoint, both Adams' moments (TF's slots m and v)
    and step counts (TF's beta1_power and beta2_power, multiplied up in float32 as TF does);
  * every step's batch: export indices into the training images, scaled as
    input_data does (uint8 -> float32, times float32(1/255));
  * every step's noise batch (float32; the tutorial feeds float64 numpy noise that the
    placeholder casts to float32).
Two fetches are added that the graph computes anyway: mean(D_real) and mean(D_gene).

Writes DIR/<label>.csv (step,d_loss,g_loss,d_real,d_fake) and DIR/weights/<label>-<step>.safetensors
in the project's names and layout, so tools/lockstep/compare.py can set both side by side.

Usage: python tf_replay.py DIR [--threads 1] [--label tf] [--weights-every 500] [--weights-at 1,10] [--steps N]
"""
import argparse
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

tf = tf.compat.v1
tf.disable_v2_behavior()

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--threads", type=int, default=1,
               help="intra_op and inter_op parallelism (1: deterministic)")
p.add_argument("--label", default="tf")
p.add_argument("--weights-every", type=int, default=500)
p.add_argument("--weights-at", default="", help="also save after these steps (comma-separated)")
p.add_argument("--steps", type=int, default=0, help="replay only the first N steps (0: all)")
args = p.parse_args()

export_path = os.path.join(args.dir, "export.safetensors")
export = load_file(export_path)
with safe_open(export_path, framework="numpy") as f:
    meta = f.metadata()
first_step = int(meta["init.steps_done"]) + 1
indices = export["indices"]
noises = export["noise"]
steps = indices.shape[0] if args.steps <= 0 else min(args.steps, indices.shape[0])
# input_data: images.astype(float32); numpy.multiply(images, 1.0 / 255.0) (float32 result)
images = np.multiply(export["train_images"].astype(np.float32), np.float32(1.0 / 255.0))

batch_size = indices.shape[1]
learning_rate = 0.0002
n_hidden = 256
n_input = 28 * 28
n_noise = 128
assert noises.shape[1:] == (batch_size, n_noise), noises.shape

########
# The tutorial's graph (seed_tf.py), unchanged
######
X = tf.placeholder(tf.float32, [None, n_input])
Z = tf.placeholder(tf.float32, [None, n_noise])

G_W1 = tf.Variable(tf.random_normal([n_noise, n_hidden], stddev=0.01))
G_b1 = tf.Variable(tf.zeros([n_hidden]))
G_W2 = tf.Variable(tf.random_normal([n_hidden, n_input], stddev=0.01))
G_b2 = tf.Variable(tf.zeros([n_input]))

D_W1 = tf.Variable(tf.random_normal([n_input, n_hidden], stddev=0.01))
D_b1 = tf.Variable(tf.zeros([n_hidden]))
D_W2 = tf.Variable(tf.random_normal([n_hidden, 1], stddev=0.01))
D_b2 = tf.Variable(tf.zeros([1]))


def generator(noise_z):
    hidden = tf.nn.relu(
        tf.matmul(noise_z, G_W1) + G_b1)
    output = tf.nn.sigmoid(
        tf.matmul(hidden, G_W2) + G_b2)
    return output


def discriminator(inputs):
    hidden = tf.nn.relu(
        tf.matmul(inputs, D_W1) + D_b1)
    output = tf.nn.sigmoid(
        tf.matmul(hidden, D_W2) + D_b2)
    return output


G = generator(Z)
D_gene = discriminator(G)
D_real = discriminator(X)

loss_D = tf.reduce_mean(tf.log(D_real) + tf.log(1 - D_gene))
loss_G = tf.reduce_mean(tf.log(D_gene))

D_var_list = [D_W1, D_b1, D_W2, D_b2]
G_var_list = [G_W1, G_b1, G_W2, G_b2]

# (the optimisers are named so that a checkpoint's Adam state can be loaded into them)
opt_D = tf.train.AdamOptimizer(learning_rate)
train_D = opt_D.minimize(-loss_D, var_list=D_var_list)
opt_G = tf.train.AdamOptimizer(learning_rate)
train_G = opt_G.minimize(-loss_G, var_list=G_var_list)
######
# end of the tutorial's graph; the two extra fetches:
mean_D_real = tf.reduce_mean(D_real)
mean_D_gene = tf.reduce_mean(D_gene)

config = tf.ConfigProto(intra_op_parallelism_threads=args.threads,
                        inter_op_parallelism_threads=args.threads)
sess = tf.Session(config=config)
sess.run(tf.global_variables_initializer())

# (TF variable, export name, transpose to TF's [in, out])
NAMES = [
    (G_W1, "generator.0.weight", True), (G_b1, "generator.0.bias", False),
    (G_W2, "generator.2.weight", True), (G_b2, "generator.2.bias", False),
    (D_W1, "discriminator.0.weight", True), (D_b1, "discriminator.0.bias", False),
    (D_W2, "discriminator.2.weight", True), (D_b2, "discriminator.2.bias", False),
]
def tf_layout(value, transpose):
    return np.ascontiguousarray(value.T if transpose else value, dtype=np.float32)


for var, name, transpose in NAMES:
    var.load(tf_layout(export["init." + name], transpose), sess)
    net, param = name.split(".", 1)
    opt = opt_G if net == "generator" else opt_D
    opt.get_slot(var, "m").load(tf_layout(export["init.adam.{}.exp_avg.{}".format(net, param)], transpose), sess)
    opt.get_slot(var, "v").load(tf_layout(export["init.adam.{}.exp_avg_sq.{}".format(net, param)], transpose), sess)
for net, opt in (("generator", opt_G), ("discriminator", opt_D)):
    # TF1's Adam starts beta_power at beta and multiplies it by beta (float32) after each update
    b1, b2 = np.float32(0.9), np.float32(0.999)
    p1, p2 = b1, b2
    for _ in range(int(meta["init.adam.{}.step".format(net)])):
        p1, p2 = np.float32(p1 * b1), np.float32(p2 * b2)
    beta1_power, beta2_power = opt._get_beta_accumulators()
    beta1_power.load(p1, sess)
    beta2_power.load(p2, sess)

os.makedirs(os.path.join(args.dir, "weights"), exist_ok=True)


def save_weights(step):
    values = sess.run([v for v, _, _ in NAMES])
    tensors = {name: np.ascontiguousarray(v.T if t else v, dtype=np.float32)
               for (_, name, t), v in zip(NAMES, values)}
    save_file(tensors, os.path.join(args.dir, "weights",
                                    "{}-{:06d}.safetensors".format(args.label, step)))


weights_at = {int(v) for v in args.weights_at.split(",") if v}
rows = []
for s in range(steps):
    batch_xs = images[indices[s]]
    noise = noises[s]
    _, loss_val_D, d_real, d_fake = sess.run([train_D, loss_D, mean_D_real, mean_D_gene],
                                             feed_dict={X: batch_xs, Z: noise})
    _, loss_val_G = sess.run([train_G, loss_G],
                             feed_dict={Z: noise})
    step = first_step + s
    rows.append((step, loss_val_D, loss_val_G, d_real, d_fake))
    done = s + 1  # replayed steps so far; files are named by the run's step number
    if (args.weights_every > 0 and done % args.weights_every == 0) or done in weights_at:
        save_weights(step)

with open(os.path.join(args.dir, args.label + ".csv"), "w") as f:
    f.write("step,d_loss,g_loss,d_real,d_fake\n")
    for r in rows:
        # repr of a float32 converted to Python float: exact, round-trips
        f.write("{},{}\n".format(r[0], ",".join(repr(float(np.float32(v))) for v in r[1:])))
print("replayed steps {}-{} into {}".format(first_step, first_step + steps - 1, args.dir))
