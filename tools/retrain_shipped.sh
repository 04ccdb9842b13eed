#!/bin/sh
# Retrains the shipped models from the calibration measurements committed with them
# (models/calibration/<platform>[-conv][-noise].csv) and writes them in place: models/<platform>.model
# and include/coexec/predict/models/<name>.hpp. For changes to the trainer, not to the kernels
# (those need a new calibration: tools/calibrate_and_train.sh).
#   tools/retrain_shipped.sh [platform...]     (default: pocl-2 pocl-16 nvidia)
# Needs python3 with tools/requirements.txt, or the interpreter named by COEXEC_PYTHON.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ $# -gt 0 ] || set -- pocl-2 pocl-16 nvidia
for platform in "$@"; do
  name=$(echo "$platform" | tr -- '-' '_') from=$root/models/calibration/$platform
  # The trainer names its inputs in the outputs' provenance line: give them calibrate_and_train.sh's names.
  cp "$from.csv" "$work/linear.csv"
  cp "$from-conv.csv" "$work/conv.csv"
  cp "$from-noise.csv" "$work/linear_noise.csv"
  cp "$from-conv-noise.csv" "$work/conv_noise.csv"
  echo "== $platform"
  (cd "$work" && "${COEXEC_PYTHON:-python3}" "$root/tools/train_predictor.py" linear.csv conv.csv \
    --noise linear_noise.csv conv_noise.csv --model "$root/models/$platform.model" \
    --header "$root/include/coexec/predict/models/$name.hpp" --name "$name")
done
