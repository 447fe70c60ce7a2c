#!/usr/bin/env bash
# Step 1 of the local workflow: train in the image on the sample /opt/ml tree, as SageMaker does.
#
#   local_test/train_local.sh [IMAGE]     (default IMAGE: sagemaker-xgboost-byoc:latest)
#
# local_test/test_dir is copied to OPT_ML (default /tmp/xgboost-byoc-opt-ml), so the checkout
# stays clean; the model lands in $OPT_ML/model and a failure reason in $OPT_ML/output/failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=${1:-sagemaker-xgboost-byoc:latest}
opt_ml=${OPT_ML:-/tmp/xgboost-byoc-opt-ml}

rm -rf "$opt_ml"
mkdir -p "$opt_ml"
cp -r "$here/test_dir/." "$opt_ml/"
echo "train_local: training $image on $opt_ml" >&2
docker run --rm --name xgboost-byoc-train-local -v "$opt_ml:/opt/ml" "$image" train
echo "train_local: model written to $opt_ml/model" >&2
