#!/usr/bin/env bash
# Download every package the image installs into a wheel folder on the host, for a build with no
# network inside it (the Dockerfile installs with `pip --no-index --find-links wheels/`).
#
#   scripts/wheels.sh [--platform linux/amd64|linux/arm64] [DIR]     (default DIR: ./wheels)
#
# Wheels are fetched for the image's platform and Python (3.11, glibc 2.36), whatever the host
# is; a package with no such wheel is fetched as an sdist and built in the image's builder stage. Cached: a folder already complete for these lock files and this
# platform (its stamp file matches) is reused without asking PyPI. Copy a complete folder to an
# air-gapped machine and pass it to ./build_and_push.sh --wheel-dir.
set -euo pipefail

cd "$(dirname "$0")/.."
LOCKS=(requirements.lock requirements-build.lock)
if [[ -z ${PYTHON:-} ]]; then
	PYTHON=python3
	[[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python
fi

say() { echo "wheels: $*" >&2; }
die() {
	say "$*"
	exit 1
}

platform=linux/amd64
dir=wheels
while [[ $# -gt 0 ]]; do
	case "$1" in
	--platform)
		[[ $# -ge 2 ]] || die "--platform needs a value such as linux/amd64."
		platform=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) die "unknown option '$1'; see scripts/wheels.sh --help." ;;
	*)
		dir=$1
		shift
		;;
	esac
done

case "$platform" in
linux/amd64) arch=x86_64 ;;
linux/arm64) arch=aarch64 ;;
*) die "platform '$platform' is not supported; use linux/amd64 (SageMaker) or linux/arm64." ;;
esac
# pip does not widen a given platform tag to older ones: list every glibc the image can run.
platform_args=()
for minor in $(seq 36 -1 17); do platform_args+=(--platform "manylinux_2_${minor}_$arch"); done
platform_args+=(--platform "manylinux2014_$arch")

mkdir -p "$dir"
stamp="$dir/.complete-${platform//\//-}"
wanted=$(cat "${LOCKS[@]}" | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(<"$stamp") == "$wanted" ]]; then
	say "reusing $dir (complete for $platform)"
	exit 0
fi

requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
grep -hvE '^\s*(#|$)' "${LOCKS[@]}" >"$requirements"
say "downloading $(wc -l <"$requirements") packages for $platform into $dir"
# --no-deps: the lock files are already the full closure. A package with no wheel for the platform
# comes as an sdist; the builder stage compiles it.
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --prefer-binary \
	--dest "$dir" "${platform_args[@]}" --python-version 3.11 --implementation cp \
	-r "$requirements" || die "pip download failed; check that PyPI is reachable (or copy a complete wheel folder here)."
echo "$wanted" >"$stamp"
say "done: $(find "$dir" -maxdepth 1 -type f ! -name '.*' | wc -l) files in $dir"
