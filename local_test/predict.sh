#!/usr/bin/env bash
# Step 3 of the local workflow: send a CSV payload to the server that serve_local.sh runs.
#
#   local_test/predict.sh [PAYLOAD] [PORT] [CONTENT_TYPE]
#       defaults: local_test/payload/digits-test.csv, 8080, text/csv
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
payload=${1:-$here/payload/digits-test.csv}
port=${2:-8080}
content_type=${3:-text/csv}

[[ -f $payload ]] || {
	echo "predict: payload file '$payload' does not exist; pass a CSV file." >&2
	exit 1
}
curl --silent --show-error --fail-with-body \
	--data-binary "@$payload" -H "Content-Type: $content_type" \
	"http://127.0.0.1:$port/invocations"
