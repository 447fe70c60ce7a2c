#!/usr/bin/env bash
# Makes sure `serve` finds nginx, the buffering front it runs before gunicorn
# (container/serving/front.py). A system nginx (the image installs Debian's with apt) is used as
# it is; otherwise Debian's nginx package is fetched with apt and its binary unpacked into the
# virtual environment (VENV/bin/nginx): no root, no service started, nothing else changed.
set -euo pipefail
venv=${1:?usage: scripts/nginx.sh VENV}

if [ -x "$venv/bin/nginx" ] || command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "serve needs nginx and this is not a Debian system: install nginx with its package manager." >&2
    exit 1
fi
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
chmod 0777 "$download"  # apt's download user writes here
echo "Fetching Debian's nginx package into $venv/nginx"
if ! (cd "$download" && apt-get download nginx >/dev/null 2>&1); then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update >/dev/null
    fi
    (cd "$download" && apt-get download nginx >/dev/null) || {
        echo "apt-get could not fetch the nginx package; install it with: apt-get install nginx" >&2
        exit 1
    }
fi
rm -rf "$venv/nginx"
dpkg-deb -x "$download"/nginx_*.deb "$venv/nginx"
if ldd "$venv/nginx/usr/sbin/nginx" | grep -q 'not found'; then
    echo "nginx's libraries are missing; install nginx with: apt-get install nginx" >&2
    exit 1
fi
ln -sf ../nginx/usr/sbin/nginx "$venv/bin/nginx"
"$venv/bin/nginx" -v
