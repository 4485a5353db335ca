#!/usr/bin/env bash
# Regenerates crates/model/tests/fixtures/tf_oracle/: the tutorial's TensorFlow program
# replaying this project's first 300 steps on the committed MNIST fixture, for seeds 1-3.
# Needs the TF environment of ../shared/bench/peers.sh (PEERS_HOME, default ~/.cache/gan-peers)
# with the safetensors package (this script installs it there if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PEERS_HOME:-$HOME/.cache/gan-peers}/tf/bin/python
[ -x "$py" ] || { echo "no TF environment at $py: run ../shared/bench/peers.sh --only tf once" >&2; exit 1; }
"$py" -c 'import safetensors' 2>/dev/null || "$py" -m pip install -q safetensors
out=crates/model/tests/fixtures/tf_oracle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for seed in 1 2 3; do
  cargo xtask lockstep --fixture --seed "$seed" --steps 300 --out "$work/$seed" --weights-every 0 --weights-at 1
  "$py" tools/lockstep/tf_replay.py "$work/$seed" --weights-every 0 --weights-at 1
  "$py" tools/lockstep/oracle_fixture.py "$work/$seed" "$seed" "$out"
done
ls -l "$out"
