#!/usr/bin/env bash
# Step 2 of the local workflow: serve the model that train_local.sh wrote (Ctrl-C stops it).
#
#   local_test/serve_local.sh [IMAGE] [PORT]   (defaults: sagemaker-xgboost-byoc:latest, 8080)
#
# The container uses the host's network and listens on PORT (SAGEMAKER_BIND_TO_PORT).
set -euo pipefail

image=${1:-sagemaker-xgboost-byoc:latest}
port=${2:-8080}
opt_ml=${OPT_ML:-/tmp/xgboost-byoc-opt-ml}

[[ -d $opt_ml/model ]] || {
	echo "serve_local: no model in $opt_ml/model; run local_test/train_local.sh first." >&2
	exit 1
}
echo "serve_local: serving $opt_ml/model with $image on 127.0.0.1:$port" >&2
exec docker run --rm --name xgboost-byoc-serve-local --network host \
	-e SAGEMAKER_BIND_TO_PORT="$port" -v "$opt_ml/model:/opt/ml/model:ro" "$image" serve
