#!/usr/bin/env bash
# scripts/test.sh runs the whole test suite on a fresh Debian machine with Go
# (and, for the browser tests, Node.js and npm): it installs what the tests
# need, then checks formatting, vet, staticcheck and the chat import rule,
# runs every Go test with -race, the bench tool in its smoke mode, each fuzz
# target for a bounded time, a real Prometheus server against the daemon,
# and the browser tests. It exits non-zero on the first failure.
#
#   scripts/test.sh            everything
#   FUZZTIME=10s scripts/test.sh   longer fuzzing (default 3s per target)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-3s}
STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools, pinned

step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() { # apt_install PACKAGE... installs the ones whose command is missing
	if [ -z "$apt_updated" ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

step "installing test dependencies"
command -v telnet >/dev/null || apt_install telnet
# tmux gives the real telnet client a terminal, as a user has (the 8-bit test).
command -v tmux >/dev/null || apt_install tmux
# promtool checks a /metrics scrape in the Go tests; scripts/prometheus/e2e.sh
# runs the prometheus server and queries it with curl.
command -v promtool >/dev/null && command -v prometheus >/dev/null || apt_install prometheus
command -v curl >/dev/null || apt_install curl
GOBIN=$(go env GOPATH)/bin
[ -x "$GOBIN/staticcheck" ] && "$GOBIN/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}" ||
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
"$GOBIN/staticcheck" ./...

step "chat imports no network, gnet or metrics package"
bad=$(go list -deps ./chat/... | grep -E '^(net|net/http|net/.*)$|panjf2000/gnet|prometheus' || true)
if [ -n "$bad" ]; then
	echo "chat/ depends on: $bad (STYLE.md keeps chat free of them)"; exit 1
fi

step "go test -race"
go test -race -count=1 ./...

step "bench smoke: every bench case, tiny (go run ./scripts/bench -smoke)"
go run ./scripts/bench -smoke >/dev/null
step "bench smoke: cases 1 and 2 against a baseline that accepts as fastws does (-baseline-accept enroll)"
go run ./scripts/bench -smoke -only 'case' -baseline-accept enroll >/dev/null

step "fuzz targets, $FUZZTIME each"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "--- $target ($pkg)"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/fastws-fuzz.log 2>&1 ||
			{ cat /tmp/fastws-fuzz.log; exit 1; }
		tail -n 1 /tmp/fastws-fuzz.log
	done
done

step "a real Prometheus server scrapes the daemon"
scripts/prometheus/e2e.sh

if [ -x scripts/browser/run.sh ]; then
	step "browser and Node interop tests"
	scripts/browser/run.sh
fi

step "all tests passed"
