#!/usr/bin/env bash
# The multi-model walk-through: serve two models from one container the way a SageMaker
# multi-model endpoint does, then load, invoke, list and unload them with curl.
#
#   local_test/multi_model.sh [IMAGE] [PORT]   (defaults: sagemaker-xgboost-byoc:latest, 8080)
#
# It uses the model that train_local.sh wrote ($OPT_ML/model/xgboost-model), packs it as
# model.tar.gz and extracts it twice, as SageMaker does, into $MME_DIR/models/NAME/model.
# The container runs on the host network with SAGEMAKER_MULTI_MODEL=true and is removed at exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=${1:-sagemaker-xgboost-byoc:latest}
port=${2:-8080}
opt_ml=${OPT_ML:-/tmp/xgboost-byoc-opt-ml}
mme_dir=${MME_DIR:-/tmp/xgboost-byoc-mme}
payload=$here/payload/digits-test.csv
name=xgboost-byoc-mme-local
url=http://127.0.0.1:$port

[[ -f $opt_ml/model/xgboost-model ]] || {
	echo "multi_model: no model at $opt_ml/model/xgboost-model; run local_test/train_local.sh first." >&2
	exit 1
}

step() { printf '\n== %s\n' "$*" >&2; }
call() { # METHOD PATH [curl args...]: print the body and the status
	local method=$1 path=$2
	shift 2
	curl --silent --show-error -X "$method" -w ' -> %{http_code}\n' "$@" "$url$path"
}

step "pack the model as model.tar.gz and extract it as SageMaker does"
rm -rf "$mme_dir" && mkdir -p "$mme_dir/models"
tar -czf "$mme_dir/model.tar.gz" -C "$opt_ml/model" xgboost-model
for model in digits-a digits-b; do
	mkdir -p "$mme_dir/models/$model/model"
	tar -xzf "$mme_dir/model.tar.gz" -C "$mme_dir/models/$model/model"
done
chmod -R a+rX "$mme_dir"

step "docker run $image serve in multi-model mode on 127.0.0.1:$port"
docker rm -f "$name" >/dev/null 2>&1 || true
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
docker run --detach --name "$name" --network host \
	-e SAGEMAKER_MULTI_MODEL=true -e SAGEMAKER_BIND_TO_PORT="$port" \
	-v "$mme_dir/models:/opt/ml/models:ro" "$image" serve >/dev/null
for _ in $(seq 120); do
	curl --silent --output /dev/null --fail "$url/ping" && break
	sleep 0.5
done
call GET /ping

step "list (nothing loaded yet)"
call GET /models
for model in digits-a digits-b; do
	step "load $model"
	call POST /models -H 'Content-Type: application/json' \
		--data "{\"model_name\": \"$model\", \"url\": \"/opt/ml/models/$model/model\"}"
done
step "load digits-a again: 409"
call POST /models --data '{"model_name": "digits-a", "url": "/opt/ml/models/digits-a/model"}'
step "invoke digits-a with the first three rows of $payload"
head -n 3 "$payload" | call POST /models/digits-a/invoke -H 'Content-Type: text/csv' \
	-H 'X-Amzn-SageMaker-Target-Model: digits-a.tar.gz' --data-binary @-
step "list and describe"
call GET /models
call GET /models/digits-b
step "unload digits-a, then invoke it: 404"
call DELETE /models/digits-a
head -n 1 "$payload" | call POST /models/digits-a/invoke -H 'Content-Type: text/csv' --data-binary @-
step "what the container logged"
docker logs "$name" 2>&1 | grep -E 'Multi-model|Load|Invoke|Unload' >&2
