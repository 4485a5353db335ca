#!/usr/bin/env bash
# A lockstep comparison on real MNIST: this project, its 1-ULP nudge, its dfdx-autograd engine
# and the tutorial's TensorFlow program, all from the same initial weights, batches and noise.
#
# Usage: tools/lockstep/run.sh SEED STEPS DIR [--from CHECKPOINT] [--no-dfdx]
# Needs MNIST in data/mnist (cargo xtask fetch-mnist) and the TF environment of
# ../shared/bench/peers.sh (PEERS_HOME, default ~/.cache/gan-peers); installs safetensors there.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
seed=$1 steps=$2 dir=$3; shift 3
from=() dfdx=1
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from=(--from "$2"); shift 2;;
    --no-dfdx) dfdx=0; shift;;
    *) echo "unknown argument: $1" >&2; exit 2;;
  esac
done
py=${PEERS_HOME:-$HOME/.cache/gan-peers}/tf/bin/python
[ -x "$py" ] || { echo "no TF environment at $py: run ../shared/bench/peers.sh --only tf once" >&2; exit 1; }
"$py" -c 'import safetensors' 2>/dev/null || "$py" -m pip install -q safetensors
every=$(( steps >= 1000 ? 500 : 100 ))
common=(--seed "$seed" --steps "$steps" --out "$dir" --weights-every "$every" --weights-at 1 "${from[@]}")
cargo xtask lockstep "${common[@]}"
cargo xtask lockstep "${common[@]}" --label nudge --nudge --no-export
[ "$dfdx" = 1 ] && cargo xtask lockstep "${common[@]}" --label dfdx --engine dfdx --no-export
TF_CPP_MIN_LOG_LEVEL=3 "$py" tools/lockstep/tf_replay.py "$dir" --weights-every "$every" --weights-at 1 2>/dev/null
pairs=(project:tf project:nudge)
[ "$dfdx" = 1 ] && pairs+=(project:dfdx dfdx:tf)
"$py" tools/lockstep/compare.py "$dir" --pairs "${pairs[@]}" | tee "$dir/report.md"
