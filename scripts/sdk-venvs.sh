#!/usr/bin/env bash
# Create the two SageMaker Python SDK virtualenvs the examples and tests/sdk use:
#   .venv-sdk2  sagemaker[local] 2.x: Estimator / Predictor / Transformer (removed in 3.x)
#   .venv-sdk3  sagemaker 3.x: ModelTrainer
# They are separate because the two SDK majors pin conflicting dependencies.
# Idempotent: a venv is rebuilt only when its pinned requirement line changes (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."

SDK2_REQUIREMENTS=("sagemaker[local]==2.257.7" "scikit-learn==1.9.1")
SDK3_REQUIREMENTS=("sagemaker==3.27.0")
PYTHON="${PYTHON:-python3}"

usage() {
    cat <<USAGE
Usage: scripts/sdk-venvs.sh [sdk2|sdk3]...

Creates .venv-sdk2 (${SDK2_REQUIREMENTS[*]}) and .venv-sdk3 (${SDK3_REQUIREMENTS[*]}),
or only the ones named. A venv whose stamp matches its pins is left as it is.
USAGE
}

# make_venv DIR REQUIREMENT...: create DIR with exactly these pins unless its stamp says it has them.
make_venv() {
    local dir="$1"
    shift
    local stamp="$dir/.sdk-installed"
    local wanted="$*"
    if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        echo "$dir: up to date ($wanted)"
        return 0
    fi
    echo "$dir: installing $wanted"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    if ! "$dir/bin/python" -m pip install --quiet "$@"; then
        echo "Could not install $wanted into $dir; check that PyPI is reachable and retry." >&2
        exit 1
    fi
    echo "$wanted" >"$stamp"
    echo "$dir: ready"
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(sdk2 sdk3)
fi
for target in "${targets[@]}"; do
    case "$target" in
    sdk2) make_venv .venv-sdk2 "${SDK2_REQUIREMENTS[@]}" ;;
    sdk3) make_venv .venv-sdk3 "${SDK3_REQUIREMENTS[@]}" ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "Unknown target '$target'; use sdk2, sdk3 or nothing for both." >&2
        exit 2
        ;;
    esac
done
