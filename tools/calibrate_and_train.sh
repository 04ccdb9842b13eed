#!/bin/sh
# Calibrates a platform and trains the planner's models for it, in one go:
#   tools/calibrate_and_train.sh <platform> <outdir> [coexec-calibrate options...]
# e.g.  tools/calibrate_and_train.sh pocl-16 out/pocl-16
#       COEXEC_OPS=conv tools/calibrate_and_train.sh nvidia out/nvidia --budget-seconds=900
# Needs a built coexec-calibrate (COEXEC_CALIBRATE, default build/tools/coexec-calibrate) and
# python3 with tools/requirements.txt (scikit-learn, scipy, numpy; matplotlib for report.py only), or
# the interpreter named by COEXEC_PYTHON.
# Calibrates the operators in COEXEC_OPS (default "linear conv"; the options apply to each),
# then trains on every <op>.csv in <outdir>. Writes to <outdir>: <op>.csv, <op>_totals.csv and
# <op>_noise.csv (measurements, each the least of --passes passes seconds apart, and every 8th
# shape measured twice; rerunning with the same options resumes them),
# <platform>.model (run-time model file), <name>.hpp (generated header, namespace
# coexec::predict::models::<name>, name = platform with '-' as '_'), predictions.csv and
# train.log (held-out accuracy beside the noise floor). To ship them: copy <platform>.model to
# models/ and <name>.hpp to include/coexec/predict/models/, and list it in shipped.hpp.
set -eu
if [ $# -lt 2 ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
platform=$1 outdir=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
calibrate=${COEXEC_CALIBRATE:-$here/../build/tools/coexec-calibrate}
name=$(echo "$platform" | tr -- '-' '_')
mkdir -p "$outdir"
for op in ${COEXEC_OPS:-linear conv}; do
  "$calibrate" --platform="$platform" --op="$op" --out="$outdir/$op.csv" --totals="$outdir/${op}_totals.csv" \
    --noise="$outdir/${op}_noise.csv" --resume "$@"
done
existing() { for op in linear conv; do if [ -f "$outdir/$op${1-}.csv" ]; then echo "$outdir/$op${1-}.csv"; fi; done; }
csvs=$(existing) noise=$(existing _noise)
# shellcheck disable=SC2086  # one path per word
"${COEXEC_PYTHON:-python3}" "$here/train_predictor.py" $csvs ${noise:+--noise $noise} --model "$outdir/$platform.model" \
  --header "$outdir/$name.hpp" --name "$name" --predictions "$outdir/predictions.csv" | tee "$outdir/train.log"
