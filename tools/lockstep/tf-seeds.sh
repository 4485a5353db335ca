#!/usr/bin/env bash
# The tutorial's TensorFlow program (../shared/reference/peers/seed_tf.py) over seeds, each
# generator scored by this project's own `cargo xtask eval`, for the seed table in docs/notebook/fidelity.md.
#
# Usage: tools/lockstep/tf-seeds.sh DIR [--seeds "1 2 ... 10"] [--threads 1] [--epochs 100]
#        [--data FOLDER_WITH_GZIPPED_MNIST] (default: seed_tf.py's own, ../shared/mnist)
# Writes DIR/seed-S/: seed_tf.py's losses.csv, loss_means.csv and samples/, generator.npz,
# generator.safetensors (the project's layout), metrics.json, wall_seconds (whole process).
# Seeds already done (metrics.json present) are skipped, so it can be restarted.
# Needs the TF environment of ../shared/bench/peers.sh and MNIST in data/mnist.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
dir=$1; shift
seeds="1 2 3 4 5 6 7 8 9 10" threads=1 epochs=100 data=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2;;
    --threads) threads=$2; shift 2;;
    --epochs) epochs=$2; shift 2;;
    --data) data=(--data "$2"); shift 2;;
    *) echo "unknown argument: $1" >&2; exit 2;;
  esac
done
py=${PEERS_HOME:-$HOME/.cache/gan-peers}/tf/bin/python
[ -x "$py" ] || { echo "no TF environment at $py: run ../shared/bench/peers.sh --only tf once" >&2; exit 1; }
"$py" -c 'import safetensors' 2>/dev/null || "$py" -m pip install -q safetensors
program=${SEED_TF:-../shared/reference/peers/seed_tf.py}
for s in $seeds; do
  out=$dir/seed-$s
  [ -f "$out/metrics.json" ] && { echo "seed $s: done already"; continue; }
  mkdir -p "$out"
  if [ ! -f "$out/generator.npz" ]; then
    start=$(date +%s.%N)
    TF_CPP_MIN_LOG_LEVEL=3 "$py" "$program" --seed "$s" --threads "$threads" --epochs "$epochs" \
      "${data[@]}" --out "$out" --save-generator "$out/generator.npz" > "$out/stdout.txt" 2>&1
    echo "$(date +%s.%N) - $start" | bc > "$out/wall_seconds"
  fi
  "$py" tools/lockstep/tf_generator.py "$out/generator.npz" "$out/generator.safetensors"
  cargo xtask eval --generator "$out/generator.safetensors" --out "$out/metrics.json" | sed -n 3p
done
