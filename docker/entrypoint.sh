#!/bin/sh
# The image's ENTRYPOINT. SageMaker runs `IMAGE train` or `IMAGE serve`; the SDK's local training
# passes no argument, which means train. Our entrypoints are called by absolute path because
# sagemaker-training installs a `train` console script of its own on PATH.
set -eu

command=${1:-train}
[ "$#" -gt 0 ] && shift

case "$command" in
train) exec /opt/program/train "$@" ;;
serve) exec /opt/program/serve "$@" ;;
*)
	echo "Unknown command '$command': run the image with 'train' or 'serve' (no argument trains)." >&2
	exit 2
	;;
esac
