#!/usr/bin/env bash
# Times this workspace's own PyTorch peers, beside ../shared/bench/peers.sh (which times the
# tutorial's model in TensorFlow, PyTorch and JAX). Prints one line per peer, in peers.sh's form:
#   <peer> threads=<T> train_step_ms=<median after 20 warm-up steps>
#
# Usage: tools/peers/peer.sh [--steps N] [--threads T] [--data DIR] [--batch B] [improved|dcgan]...
#   improved   experiments/improved.yaml's networks and step (gan_torch_improved.py)
#   dcgan      an MNIST DCGAN, G 128-64 and D 64-128 channels (gan_torch_dcgan.py; issue 16),
#              batch 100, or B with --batch (25 is experiments/dcgan-plain.yaml's step)
# PyTorch comes from peers.sh's environment under ${PEERS_HOME:-$HOME/.cache/gan-peers}/torch,
# made here the same way if it is missing. Compare with `cargo xtask bench --spec <spec>` in the
# same sitting, alternating: these machines' speed drifts by 10-20% within minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
home=${PEERS_HOME:-$HOME/.cache/gan-peers}
steps=620; threads=2; data="$root/../shared/mnist"; batch=""; peers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2;;
    --threads) threads=$2; shift 2;;
    --data) data=$2; shift 2;;
    --batch) batch=$2; shift 2;;
    -h|--help) sed -n "2,12p" "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    improved|dcgan) peers+=("$1"); shift;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2;;
  esac
done
[ ${#peers[@]} -gt 0 ] || peers=(improved)
if [ -n "$batch" ] && [[ " ${peers[*]} " == *" improved "* ]]; then
  echo "--batch is only for the dcgan peer (improved trains experiments/improved.yaml's batch)" >&2
  exit 2
fi
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
  echo "no gzipped MNIST in $data: pass --data DIR (the folder of train-images-idx3-ubyte.gz)" >&2
  exit 2
fi
py="$home/torch/bin/python"
if [ ! -x "$py" ] || ! "$py" -c 'import torch' 2>/dev/null; then
  python3 -m venv "$home/torch" >&2
  "$home/torch/bin/pip" install -q torch numpy >&2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for p in "${peers[@]}"; do
  "$py" "$here/gan_torch_$p.py" --data "$data" --out "$out/$p" --steps "$steps" \
    --threads "$threads" --seed 1 ${batch:+--batch "$batch"} >/dev/null
  ms=$("$py" -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["median_ms_per_step"],3))' "$out/$p/timing.json")
  echo "torch-$p threads=$threads train_step_ms=$ms"
done
