"""What this workspace's PyTorch peers share: MNIST's training images as the tutorial's
input_data splits them, the timed loop over shuffled batches, and timing.json in the form of
../shared/reference/peers (median ms per step after the warm-up steps)."""
import gzip
import json
import os
import struct
import time

import numpy as np
import torch


def load_train_images(data_dir):
    """The 55,000 training images after the first 5,000 (the validation split), as uint8
    rows of 784 pixels."""
    with gzip.open(os.path.join(data_dir, "train-images-idx3-ubyte.gz"), "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, magic
        buf = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    return buf.reshape(n, rows * cols)[5000:]


def load_train_labels(data_dir):
    """The digits of load_train_images's images, as uint8."""
    with gzip.open(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"), "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        assert magic == 2049, magic
        buf = np.frombuffer(f.read(n), dtype=np.uint8)
    return buf[5000:]


def time_steps(train_step, data, batch, steps):
    """Calls train_step on `steps` batches of `data` (reshuffled each pass); the seconds of each."""
    times, step = [], 0
    while step < steps:
        perm = torch.randperm(data.shape[0])
        for i in range(data.shape[0] // batch):
            t0 = time.perf_counter()
            train_step(data[perm[i * batch:(i + 1) * batch]])
            times.append(time.perf_counter() - t0)
            step += 1
            if step >= steps:
                break
    return times


def write_timing(out_dir, times, warmup, **info):
    """OUT/timing.json with the median, p10 and p90 ms per step after `warmup` steps."""
    st = np.array(times[warmup:]) * 1e3
    timing = dict(framework="torch", version=torch.__version__,
                  threads=torch.get_num_threads(), steps=len(times), **info,
                  median_ms_per_step=float(np.median(st)),
                  p10_ms=float(np.percentile(st, 10)), p90_ms=float(np.percentile(st, 90)))
    with open(os.path.join(out_dir, "timing.json"), "w") as f:
        json.dump(timing, f, indent=1)
    print(json.dumps(timing))
