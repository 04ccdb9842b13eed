#!/bin/sh
# Calibrates a platform and trains the planner's models for it, in one go:
#   tools/calibrate_and_train.sh <platform> <outdir> [coexec-calibrate options...]
# e.g.  tools/calibrate_and_train.sh pocl-16 out/pocl-16
#       tools/calibrate_and_train.sh nvidia out/nvidia --budget-seconds=900
# Needs a built coexec-calibrate (COEXEC_CALIBRATE, default build/tools/coexec-calibrate) and
# python3 with tools/requirements.txt (scikit-learn, numpy; matplotlib for report.py only).
# Writes to <outdir>: linear.csv and totals.csv (measurements; rerunning resumes them),
# <platform>.model (run-time model file), <name>.hpp (generated header, namespace
# coexec::predict::models::<name>, name = platform with '-' as '_'), predictions.csv and
# train.log (held-out accuracy). To ship them: copy <platform>.model to models/ and <name>.hpp
# to include/coexec/predict/models/, and list the platform in models/shipped.hpp.
set -eu
if [ $# -lt 2 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
platform=$1 outdir=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
calibrate=${COEXEC_CALIBRATE:-$here/../build/tools/coexec-calibrate}
name=$(echo "$platform" | tr -- '-' '_')
mkdir -p "$outdir"
"$calibrate" --platform="$platform" --out="$outdir/linear.csv" --totals="$outdir/totals.csv" --resume "$@"
python3 "$here/train_predictor.py" "$outdir/linear.csv" --model "$outdir/$platform.model" \
  --header "$outdir/$name.hpp" --name "$name" --predictions "$outdir/predictions.csv" | tee "$outdir/train.log"
