#!/usr/bin/env bash
# scripts/test.sh runs the whole test suite on a fresh Debian machine with Go
# (and, for the browser tests, Node.js and npm): it installs what the tests
# need, then checks formatting, vet, staticcheck and the chat import rule,
# runs every Go test with -race, the bench tool in its smoke mode, each fuzz
# target for a fixed number of executions, a real Prometheus server against
# the daemon, and the browser tests. It prints one line per step and exits
# non-zero on the first failure, with the end of that step's output; every
# step's full output goes to the log file it names.
#
#   scripts/test.sh                   everything
#   FUZZEXECS=200000 scripts/test.sh  longer fuzzing (default 20000 per target)
set -euo pipefail
cd "$(dirname "$0")/.."

# A fixed number of executions, not a time: under load, Go's fuzzer can
# spend a short -fuzztime on its baseline and fail with no reproducer.
FUZZEXECS=${FUZZEXECS:-20000}
STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools, pinned
LOG=${TEST_LOG:-$(mktemp "${TMPDIR:-/tmp}/fastws-test.XXXXXX.log")}
echo "full output: $LOG"
began=$SECONDS

step() { printf '==> %s\n' "$*"; printf '\n==> %s\n' "$*" >>"$LOG"; }

# quiet CMD... runs CMD with its output in the log; on failure it prints
# the end of that output and exits.
quiet() {
	local from
	from=$(wc -l <"$LOG")
	if ! "$@" >>"$LOG" 2>&1; then
		echo "FAILED: $*"
		tail -n +"$((from + 1))" "$LOG" | tail -n 60
		exit 1
	fi
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() { # apt_install PACKAGE... installs the ones whose command is missing
	if [ -z "$apt_updated" ]; then
		quiet as_root apt-get update -qq
		apt_updated=1
	fi
	quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

step "installing test dependencies"
command -v telnet >/dev/null || apt_install telnet
# tmux gives the real telnet client a terminal, as a user has (the 8-bit test).
command -v tmux >/dev/null || apt_install tmux
# promtool checks a /metrics scrape in the Go tests; scripts/prometheus/e2e.sh
# runs the prometheus server and queries it with curl.
command -v promtool >/dev/null && command -v prometheus >/dev/null || apt_install prometheus
command -v curl >/dev/null || apt_install curl
# systemd-analyze checks the systemd unit.
command -v systemd-analyze >/dev/null || apt_install systemd
# --- Application API examples (scripts/examples, TestExamples): php-cli with
# php-curl, and the Node example's pinned npm packages (jsonwebtoken, ws).
# FASTWS_EXAMPLES=1 makes TestExamples fail, not skip, if they are missing.
command -v php >/dev/null && php -m | grep -qix curl || apt_install php-cli php-curl
quiet npm ci --prefix scripts/examples --no-audit --no-fund --loglevel=error
export FASTWS_EXAMPLES=1
# --- end of the Application API examples
# --- TLS ---
# openssl s_client and socat speak to a TLS telnet instance (server/tls_test.go);
# nginx terminates TLS in front of a plain websocket instance with
# scripts/nginx/fastws.conf (server/nginx_test.go runs it as the test
# user, under a temp dir, on loopback).
command -v openssl >/dev/null || apt_install openssl
command -v socat >/dev/null || apt_install socat
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
# --- end TLS ---
GOBIN=$(go env GOPATH)/bin
[ -x "$GOBIN/staticcheck" ] && "$GOBIN/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}" ||
	quiet go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
quiet go vet ./...

step "staticcheck"
quiet "$GOBIN/staticcheck" ./...

step "chat imports no network, gnet or metrics package"
bad=$(go list -deps ./chat/... | grep -E '^(net|net/http|net/.*)$|panjf2000/gnet|prometheus' || true)
if [ -n "$bad" ]; then
	echo "chat/ depends on: $bad (STYLE.md keeps chat free of them)"; exit 1
fi

step "systemd unit: systemd-analyze verify, with no warning"
unit_dir=$(mktemp -d)
quiet go build -o "$unit_dir/fastws" .
sed "s|/usr/local/bin/fastws|$unit_dir/fastws|g" scripts/fastws.service >"$unit_dir/fastws.service"
unit_out=$(systemd-analyze verify "$unit_dir/fastws.service" 2>&1) || { echo "$unit_out"; exit 1; }
rm -rf "$unit_dir"
if [ -n "$unit_out" ]; then
	echo "systemd-analyze verify warns:"; echo "$unit_out"; exit 1
fi

# --- cluster over NATS ---
# The real nats-server, built from its module into .bin (gitignored), for the
# multi-process cluster tests (cluster_daemon_test.go: three daemons on one
# nats-server; a three-server NATS cluster losing a server). They run within
# "go test -race" below, in parallel with the other packages.
step "cluster: build nats-server v2.15.3 into .bin"
NATS_SERVER_VERSION=v2.15.3
[ -x .bin/nats-server ] && .bin/nats-server --version 2>/dev/null | grep -q "${NATS_SERVER_VERSION#v}" ||
	quiet env GOBIN="$PWD/.bin" go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
export FASTWS_NATS_SERVER=$PWD/.bin/nats-server
# --- end cluster -------------------------------------------------------------

step "go test -race"
# The per-package verdicts are shown; the tests' own output is in the log.
if ! go test -race -count=1 ./... >>"$LOG" 2>&1; then
	grep -E '^(--- FAIL|FAIL|panic:|\s+\S+_test\.go:[0-9]+:)' "$LOG" | tail -n 60
	echo "FAILED: go test (full output: $LOG)"
	exit 1
fi
grep -E '^(ok|\?) ' "$LOG" | sed 's/^/    /'

step "bench smoke: every bench case, tiny (go run ./scripts/bench -smoke)"
quiet go run ./scripts/bench -smoke
step "bench smoke: cases 1 and 2 against a baseline that accepts as fastws does (-baseline-accept enroll)"
quiet go run ./scripts/bench -smoke -only 'case' -baseline-accept enroll

step "fuzz targets, $FUZZEXECS executions each"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		quiet go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZEXECS}x" "$pkg"
		echo "    $target ($pkg): ok"
	done
done

step "a real Prometheus server scrapes the daemon"
quiet scripts/prometheus/e2e.sh

if [ -x scripts/browser/run.sh ]; then
	step "browser and Node interop tests"
	quiet scripts/browser/run.sh
fi

step "all tests passed in $((SECONDS - began))s"
