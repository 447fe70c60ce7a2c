#!/usr/bin/env bash
# Regenerate requirements.lock (the full pinned closure of pyproject.toml's runtime dependencies,
# what the image installs) and requirements-build.lock (what builds the one sdist in that closure),
# resolved by pip in a clean Python 3.11 venv. Run after changing pyproject.toml's dependencies:
#
#   scripts/lock.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
venv=$(mktemp -d /var/tmp/xgboost-byoc-lock.XXXXXX)
trap 'rm -rf "$venv"' EXIT

"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "need Python 3.11"' ||
	{
		echo "lock: run this with Python 3.11 (PYTHON=python3.11 scripts/lock.sh), the image's Python." >&2
		exit 1
	}
"$PYTHON" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
# The runtime closure of this project (not its test extra), without the project itself. pip is in
# it because sagemaker-training requires it; setuptools and wheel only build an sdist.
"$venv/bin/pip" install --quiet .
{
	echo "# The image's runtime dependencies: the full pinned closure of pyproject.toml's"
	echo "# [project.dependencies] on Python 3.11, linux x86_64. Regenerate with: scripts/lock.sh"
	"$venv/bin/pip" freeze --all --exclude sagemaker-xgboost-byoc --exclude setuptools --exclude wheel |
		LC_ALL=C sort -f
} >requirements.lock
before=$("$venv/bin/pip" freeze --all | LC_ALL=C sort)
"$venv/bin/pip" install --quiet --upgrade setuptools wheel
{
	echo "# Build-only: builds sagemaker-training's C extension in the image's builder stage."
	echo "# Regenerate with: scripts/lock.sh"
	LC_ALL=C comm -13 <(echo "$before") <("$venv/bin/pip" freeze --all | LC_ALL=C sort)
} >requirements-build.lock
echo "lock: wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages) and requirements-build.lock" >&2
