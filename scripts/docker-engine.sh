#!/usr/bin/env bash
# Make a Docker engine available, idempotently, and stop it again only if this script started it.
#
#   scripts/docker-engine.sh [start]   install missing host tools, start dockerd unless one runs,
#                                      wait for `docker info`; prints `started` or `reused`
#   scripts/docker-engine.sh stop      stop dockerd if (and only if) `start` started it; prints
#                                      `stopped`, `gone` or `not-ours`
#   scripts/docker-engine.sh tools     only install the missing host tools
#
# Host tools installed with apt-get when missing: docker.io (dockerd), curl, debootstrap (local
# base image), docker-registry (push tests) and shellcheck. dockerd's output goes to a log file,
# never to the caller's stdout/stderr, so a CI run is not held open by it.
set -euo pipefail

STATE_DIR=${DOCKER_ENGINE_STATE_DIR:-/var/tmp/xgboost-byoc-docker-engine}
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
START_TIMEOUT_S=${DOCKER_ENGINE_START_TIMEOUT_S:-60}

say() { echo "docker-engine: $*" >&2; }
die() {
	say "$*"
	exit 1
}

# command -> Debian package that provides it
declare -A PACKAGE_FOR=(
	[dockerd]=docker.io
	[curl]=curl
	[debootstrap]=debootstrap
	[docker-registry]=docker-registry
	[docker-compose]=docker-compose
	[shellcheck]=shellcheck
)

install_tools() {
	local missing=() cmd
	for cmd in "${!PACKAGE_FOR[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 ||
			missing+=("${PACKAGE_FOR[$cmd]}")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	[[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get here; install Docker and those tools by hand."
	say "installing ${missing[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 || die "apt-get update failed; check that the Debian mirror in /etc/apt/sources.list.d is reachable."
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed; run it by hand to see why."
}

engine_up() { docker info >/dev/null 2>&1; }

dockerd_running() { pgrep -x dockerd >/dev/null 2>&1; }

start() {
	install_tools
	if engine_up; then
		echo reused
		return 0
	fi
	local started_here=false
	if dockerd_running; then
		say "a dockerd process runs but does not answer yet; waiting for it"
	else
		mkdir -p "$STATE_DIR"
		# An engine killed with its session leaves its pid file behind; dockerd refuses to start
		# if that old pid has since been taken by another process.
		rm -f /var/run/docker.pid
		say "starting dockerd (log: $LOG_FILE)"
		local dockerd_bin
		dockerd_bin=$(PATH="$PATH:/usr/sbin:/sbin" command -v dockerd)
		setsid "$dockerd_bin" </dev/null >"$LOG_FILE" 2>&1 &
		echo $! >"$PID_FILE"
		started_here=true
	fi
	local waited=0
	until engine_up; do
		((waited < START_TIMEOUT_S)) ||
			die "dockerd did not answer within ${START_TIMEOUT_S}s; read $LOG_FILE for the reason."
		sleep 1
		waited=$((waited + 1))
	done
	say "engine up after ${waited}s"
	if $started_here; then echo started; else echo reused; fi
}

stop() {
	if [[ ! -f $PID_FILE ]]; then
		say "not stopping: this script did not start the running engine"
		echo not-ours
		return 0
	fi
	local pid
	pid=$(<"$PID_FILE")
	rm -f "$PID_FILE"
	if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != dockerd ]]; then
		say "dockerd $pid already gone"
		echo gone
		return 0
	fi
	say "stopping dockerd $pid"
	kill -TERM "$pid"
	local waited=0
	while kill -0 "$pid" 2>/dev/null; do
		if ((waited >= 30)); then
			say "dockerd $pid did not stop in 30s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 1
		waited=$((waited + 1))
	done
	echo stopped
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
tools) install_tools ;;
-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "unknown mode '$1'; use start, stop or tools." ;;
esac
