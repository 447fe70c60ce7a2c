#!/usr/bin/env bash
# Print the name of a base image the Dockerfile can build FROM, making one when needed.
#
#   scripts/base-image.sh            the Dockerfile's default BASE_IMAGE if it is here or can be
#                                    pulled; otherwise a Debian 12 image built with debootstrap
#   scripts/base-image.sh --local    skip the pull: always the debootstrap image
#
# The debootstrap image (LOCAL_BASE_IMAGE, default xgboost-byoc-base:bookworm) is cached: an
# existing one is reused, so only the first run pays its ~1 minute. `docker rmi` it to refresh.
# It uses the Debian mirrors this machine's apt already uses (copied from its apt sources).
# Logs go to stderr; stdout is only the image name, for `--base-image "$(scripts/base-image.sh)"`.
set -euo pipefail

cd "$(dirname "$0")/.."
LOCAL_BASE_IMAGE=${LOCAL_BASE_IMAGE:-xgboost-byoc-base:bookworm}
PULL_TIMEOUT_S=${BASE_IMAGE_PULL_TIMEOUT_S:-60}
SUITE=bookworm

say() { echo "base-image: $*" >&2; }
die() {
	say "$*"
	exit 1
}

default_base_image() {
	sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile | head -n 1
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

mirror() {
	local sources=/etc/apt/sources.list.d/debian.sources
	if [[ -f $sources ]]; then
		awk '/^URIs:/{print $2; exit}' "$sources"
	else
		awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null
	fi
}

build_local() {
	command -v debootstrap >/dev/null || PATH="$PATH:/usr/sbin:/sbin" command -v debootstrap >/dev/null ||
		die "debootstrap is missing; run scripts/docker-engine.sh tools (or apt-get install debootstrap)."
	[[ $(id -u) -eq 0 ]] || die "debootstrap needs root; run this script as root, or pass a base image you have."
	local url rootfs
	url=$(mirror)
	[[ -n $url ]] || die "no Debian mirror found in this machine's apt sources; pass --base-image with an image you have."
	rootfs=$(mktemp -d /var/tmp/xgboost-byoc-rootfs.XXXXXX)
	# shellcheck disable=SC2064 # expand now: the path is fixed
	trap "rm -rf '$rootfs'" EXIT
	say "building $LOCAL_BASE_IMAGE with debootstrap from $url (about a minute, once)"
	PATH="$PATH:/usr/sbin:/sbin" debootstrap --variant=minbase "$SUITE" "$rootfs" "$url" >&2 ||
		die "debootstrap failed; check that $url is reachable, then run this script again."
	# The same suites as this machine (updates and security too), and no downloaded packages.
	if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
		cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
		rm -f "$rootfs/etc/apt/sources.list"
	fi
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	tar -C "$rootfs" -c . | docker import \
		--change 'ENV LANG=C.UTF-8' \
		--change 'CMD ["/bin/bash"]' \
		- "$LOCAL_BASE_IMAGE" >&2 || die "docker import failed; check that the Docker engine runs (scripts/docker-engine.sh)."
}

mode=${1:-}
case "$mode" in
"" | --local) ;;
-h | --help)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown option '$mode'; use --local or no option." ;;
esac

if [[ $mode != --local ]]; then
	default=$(default_base_image)
	[[ -n $default ]] || die "no 'ARG BASE_IMAGE=' line in Dockerfile; restore it."
	if have_image "$default"; then
		echo "$default"
		exit 0
	fi
	if ! have_image "$LOCAL_BASE_IMAGE"; then
		say "pulling $default (at most ${PULL_TIMEOUT_S}s)"
		if timeout "$PULL_TIMEOUT_S" docker pull --quiet "$default" >&2; then
			echo "$default"
			exit 0
		fi
		say "no registry answered; falling back to a local Debian base"
	fi
fi
if have_image "$LOCAL_BASE_IMAGE"; then
	say "reusing $LOCAL_BASE_IMAGE"
else
	build_local
fi
echo "$LOCAL_BASE_IMAGE"
