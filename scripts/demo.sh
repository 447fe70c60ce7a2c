#!/usr/bin/env bash
# Demo: train on the bundled digits sample in a throw-away /opt/ml tree, then (serving part)
# serve the model and predict. Run with .venv/bin first on PATH (`make demo` does that).
set -euo pipefail
cd "$(dirname "$0")/.."

base_dir=$(mktemp -d "${TMPDIR:-/tmp}/xgboost-demo.XXXXXX")
cp -r local_test/test_dir/. "$base_dir/"
echo "Training on local_test/test_dir (digits, 10 classes) in $base_dir ..."
if ! SAGEMAKER_BASE_DIR="$base_dir" ./train; then
    echo "Training failed: $(head -n 1 "$base_dir/output/failure" 2>/dev/null || echo 'no reason written')" >&2
    exit 1
fi
model="$base_dir/model/xgboost-model"
echo "Model written to $model ($(wc -c <"$model") bytes, XGBoost JSON)."

# --- Serving demo (serving issue): serve "$base_dir/model" and predict local_test/payload. ---
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
serve_log="$base_dir/serve.log"
url="http://127.0.0.1:$port"
echo "Starting ./serve on $url (log: $serve_log) ..."
SAGEMAKER_BASE_DIR="$base_dir" SAGEMAKER_BIND_TO_PORT="$port" XGB_SERVER_HOST=127.0.0.1 \
    ./serve >"$serve_log" 2>&1 &
serve_pid=$!

stop_server() {
    if kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid"
        local code=0
        wait "$serve_pid" || code=$?
        echo "Server (PID $serve_pid) stopped, exit code $code."
    fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 300); do
    curl -sf "$url/ping" >/dev/null 2>&1 && break
    if ! kill -0 "$serve_pid" 2>/dev/null; then
        echo "serve exited before answering /ping:" >&2
        tail -n 5 "$serve_log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! curl -sf "$url/ping" >/dev/null; then
    echo "serve did not answer /ping within 30 s; see $serve_log" >&2
    exit 1
fi

payload=local_test/payload/digits-test.csv
labels=local_test/payload/digits-test-labels.csv
echo "POST $payload ($(wc -l <"$payload") rows) to $url/invocations as text/csv ..."
predictions=$(curl -sS --fail-with-body -H 'Content-Type: text/csv' -H 'Accept: text/csv' \
    --data-binary @"$payload" "$url/invocations")
echo "First predictions: $(head -n 10 <<<"$predictions" | paste -sd ' ')"
paste -d, <(printf '%s\n' "$predictions") <(cut -d, -f1 "$labels") |
    awk -F, '{ n++; if ($1 + 0 == $2 + 0) ok++ }
             END { printf "Accuracy against %s: %d/%d = %.1f%%\n", "'"$labels"'", ok, n, 100 * ok / n }'
