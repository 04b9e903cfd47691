#!/usr/bin/env bash
# One prepared training run for a lent GPU machine (issue 13): Keras on JAX with XLA,
# no TensorFlow and no network there, so the wheels and the data travel with the tree.
#
#   bash gpu/train.sh MODEL SECONDS [zoo train flags...]
#
# MODEL is a handwriting config (synthesis, prediction, recognizer) and SECONDS the
# training time budget; the rest goes to `python -m zoo train` (e.g. --init-from
# saved_models/iam-synthesis --batch-size 64). Steps, in one command so the machine
# is never held idle:
#   1. install .whl/ (gpu/fetch-wheels: ../shared/gpu/fetch-wheels.sh) into .site/ when
#      Keras is missing;
#   2. fail fast: import, build and one training step on 8 lines, under a 3-minute
#      limit, so a version clash costs seconds of device time, not the session's;
#   3. train for SECONDS on cache/iam-ondb.npz (`python -m zoo prepare` makes it);
#   4. copy the preset, history, loss curve and log to $OUT, then evaluate the preset on
#      testset_v into $OUT (the device
#      tool brings back at most 8 files of 16 MiB).
# On the device:  run(command="bash gpu/train.sh synthesis 360", carry=[".whl", "cache/iam-ondb.npz"])
# The tree and the carried files must stay under 64 MiB: `bash gpu/slim.sh PRESET` takes the
# presets the run does not need out of the index for the call; `bash gpu/slim.sh --undo` after.
# A warm machine keeps runs/ between calls: give a second run its own ZOO_GPU_RUN, or it
# resumes the first (already at its budget). ZOO_GPU_EVALUATE=0 skips the evaluation.
# Tested here on CPU (tests/test_jax_backend.py) with PYTHON=../jaxenv/bin/python and a
# budget of seconds: same script, same entry point.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bash gpu/train.sh MODEL SECONDS [zoo train flags]}
budget=${2:?usage: bash gpu/train.sh MODEL SECONDS [zoo train flags]}
shift 2
python=${PYTHON:-python3}
data=${ZOO_GPU_DATA:-cache/iam-ondb.npz}
out=${OUT:-runs/gpu-out}
run=${ZOO_GPU_RUN:-runs/gpu-$model}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
log="$out/train.log"
say() { echo "[gpu/train.sh $(date -u +%H:%M:%S)] $*" | tee -a "$log"; }

[ -f "$data" ] || { say "no $data: run 'python -m zoo prepare --data ../shared/data --out $data' and carry it"; exit 2; }
if ! "$python" -c "import keras, tensorflow_probability" 2>/dev/null; then
    [ -d .whl ] || { say "Keras is not installed and there is no .whl/: run ../shared/gpu/fetch-wheels.sh and carry .whl"; exit 2; }
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .site .whl/*.whl
    export PYTHONPATH="$PWD:$PWD/.site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$python" - <<'PY' 2>&1 | tee -a "$log"
import jax, keras
print("python ok: jax", jax.__version__, "keras", keras.__version__, "devices", jax.devices())
PY

say "smoke test: import, build, one step"
smoke=$(mktemp -d)
if ! timeout 180 "$python" -m zoo train "$model" --data "$data" --out "$smoke/run" --epochs 1 --steps-per-epoch 1 \
        --max-train-lines 8 --max-val-lines 8 --batch-size 4 --units 16 --layers 1 >> "$log" 2>&1; then
    say "smoke test failed (log above): stopping before the real run"; tail -30 "$log"; exit 3
fi
rm -rf "$smoke"

say "training $model for $budget s: $*"
start=$(date +%s)
"$python" -m zoo train "$model" --data "$data" --out "$run" --time-budget "$budget" --hardware "${ZOO_HARDWARE:-$("$python" -c 'import jax; d = jax.devices()[0]; print(d.platform, getattr(d, "device_kind", ""))')}" "$@" 2>&1 \
    | stdbuf -oL tr '\r' '\n' | awk '!/━/ || /val_loss/' >> "$log" || { say "training failed"; tail -30 "$log"; exit 4; }
say "trained in $(( $(date +%s) - start )) s"

# The preset goes to $OUT first: should the evaluation run past the command's limit,
# the trained weights still come back.
cp "$run"/preset/{config.json,metadata.json,model.weights.h5,README.md} "$run/history.csv" "$out"/
[ -f "$run/loss.png" ] && cp "$run/loss.png" "$out"/
# ZOO_GPU_EVALUATE=0 skips it: testset_v's many line lengths are as many XLA compiles,
# minutes of device time that the CPU here can spend instead.
if [ "${ZOO_GPU_EVALUATE:-1}" != 0 ]; then
    "$python" -m zoo evaluate --model "$run/preset" --data "$data" --split testset_v --quiet > "$out/evaluation.json" 2>> "$log" \
        || say "evaluation failed (the preset still comes back)"
fi
say "done: $(cat "$out/evaluation.json" 2>/dev/null | tr -d '\n ')"
tail -5 "$run/history.csv" | tee -a "$log"
