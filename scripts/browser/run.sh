#!/usr/bin/env bash
# scripts/browser/run.sh runs the browser and Node interop tests of the chat
# page on a fresh Debian machine with Go, Node.js 20+ and npm: it installs
# Debian's chromium (and a CJK font, so screenshots show Chinese text) when
# missing, the pinned npm packages, builds fastws with -race, and runs
# browser.test.mjs against it. Screenshots land in scripts/browser/screenshots/.
#
#   scripts/browser/run.sh
#
# Loopback only; the daemon runs on free ports with a temporary config.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && go build -race -o "$tmp/fastws" .)

cd "$root"
# The committed screenshots change only when asked: UPDATE_SCREENSHOTS=1.
shots="$tmp/screenshots"
[ "${UPDATE_SCREENSHOTS:-}" = 1 ] && shots="$here/screenshots"
mkdir -p "$shots"
FASTWS_BIN="$tmp/fastws" SCREENSHOT_DIR="$shots" node --test scripts/browser/browser.test.mjs
