#!/usr/bin/env bash
# scripts/prometheus/e2e.sh checks fastws's /metrics with a real Prometheus
# server (Debian's prometheus package): it builds fastws, starts it as a
# daemon with a telnet and a websocket instance and metrics on loopback,
# starts Prometheus scraping it every second, holds K telnet connections
# open, and polls Prometheus's HTTP API until up{job="fastws"} is 1 and
# sum(fastws_connections) is K; then it runs every query of
# scripts/grafana-dashboard.json and expects data from each. It prints PASS,
# or FAIL and the logs, and stops only what it started, by pid. Every wait is
# bounded; after the build the whole run takes well under a minute.
#
#   scripts/prometheus/e2e.sh          K=5 clients
#   K=20 scripts/prometheus/e2e.sh
#
# Needs: go, prometheus and promtool (apt-get install prometheus), curl.
set -euo pipefail
cd "$(dirname "$0")/../.."

K=${K:-5}
POLL_SECONDS=40 # how long Prometheus gets to report the expected values

fail() { echo "FAIL: $*" >&2; exit 1; }

for cmd in go prometheus promtool curl timeout; do
	command -v "$cmd" >/dev/null || fail "$cmd not found (scripts/test.sh installs prometheus and curl on Debian)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fastws-prom-e2e.XXXXXX")
daemon_pid=
prom_pid=
clients=()

cleanup() {
	local code=$?
	set +e
	if [ "$code" != 0 ]; then
		for log in "$work/run/fastws.log" "$work/prometheus.log"; do
			[ -s "$log" ] && { echo "--- $log (last 30 lines)"; tail -n 30 "$log"; } >&2
		done
	fi
	for fd in "${clients[@]}"; do exec {fd}>&-; done
	if [ -n "$prom_pid" ] && kill -0 "$prom_pid" 2>/dev/null; then
		kill -TERM "$prom_pid"
		for _ in $(seq 50); do kill -0 "$prom_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$prom_pid" 2>/dev/null # our child: its pid is not reused before wait
		wait "$prom_pid" 2>/dev/null
	fi
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		timeout 15 "$work/fastws" -c "$work/config.ini" stop >/dev/null 2>&1
		for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
		# Not our child (start -d detaches it): make sure the pid is still
		# this run's daemon before forcing it.
		if grep -qF "$work/config.ini" "/proc/$daemon_pid/cmdline" 2>/dev/null; then
			kill -KILL "$daemon_pid"
		fi
	fi
	rm -rf "$work"
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building fastws"
go build -o "$work/fastws" .

# free_port prints a loopback port nothing listens on, below the kernel's
# ephemeral range (where outgoing connections take theirs) and not given out
# before by this script.
read -r ephemeral_lo _ </proc/sys/net/ipv4/ip_local_port_range
taken=" "
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((10000 + RANDOM % (ephemeral_lo - 10000)))
		case "$taken" in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			taken="$taken$p "
			echo "$p"
			return
		fi
	done
	fail "no free port found"
}

# Start the daemon; a port taken between the probe and the bind is retried.
for attempt in 1 2 3; do
	telnet_port=$(free_port)
	ws_port=$(free_port)
	metrics_port=$(free_port)
	cat >"$work/config.ini" <<EOF
[fastws]
runDir = ./run
metricsListen = 127.0.0.1:$metrics_port
stopTimeout = 5s

[instance.telnet]
instanceName = E2E-Telnet
protocol = telnet
host = 127.0.0.1
port = $telnet_port
childProcessCount = 2

[instance.websocket]
instanceName = E2E-WebSocket
protocol = websocket
host = 127.0.0.1
port = $ws_port
childProcessCount = 1
EOF
	if out=$(timeout 30 "$work/fastws" -c "$work/config.ini" start -d 2>&1); then
		break
	fi
	case "$out" in
	*"address already in use"*) [ "$attempt" -lt 3 ] && continue ;;
	esac
	fail "fastws start -d: $out"
done
daemon_pid=$(sed -n 's/.*started as a daemon (pid \([0-9]*\)).*/\1/p' <<<"$out")
[ -n "$daemon_pid" ] || fail "fastws start -d printed no pid: $out"
echo "fastws pid $daemon_pid: telnet 127.0.0.1:$telnet_port, metrics http://127.0.0.1:$metrics_port/metrics"

health=$(curl -sS --max-time 5 -w ' %{http_code}' "http://127.0.0.1:$metrics_port/healthz") || fail "GET /healthz: $health"
[ "$health" = "ok
 200" ] || fail "GET /healthz: got '$health', want 'ok' and 200"

# Prometheus, on the shipped scrape config with this run's target, every 1s.
sed -e "s/127\.0\.0\.1:19990/127.0.0.1:$metrics_port/" \
	-e 's/scrape_interval: 15s/scrape_interval: 1s/' \
	-e 's/scrape_timeout: 10s/scrape_timeout: 1s/' \
	-e 's/evaluation_interval: 15s/evaluation_interval: 1s/' \
	scripts/prometheus/prometheus.yml >"$work/prometheus.yml"
promtool check config "$work/prometheus.yml" >/dev/null || fail "promtool check config $work/prometheus.yml"
prom_port=$(free_port)
prometheus --config.file="$work/prometheus.yml" \
	--storage.tsdb.path="$work/tsdb" \
	--web.listen-address="127.0.0.1:$prom_port" \
	>"$work/prometheus.log" 2>&1 &
prom_pid=$!
echo "prometheus pid $prom_pid on 127.0.0.1:$prom_port"

# K telnet clients: connections this shell holds open until it exits.
for _ in $(seq "$K"); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$telnet_port" || fail "connect to 127.0.0.1:$telnet_port"
	clients+=("$fd")
done
echo "$K telnet clients connected"

# query EXPR prints the value of an instant query that returns one sample,
# or nothing (no such sample, or Prometheus not answering yet).
query() {
	local body
	body=$(curl -sS --max-time 2 -G "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" 2>/dev/null) || return 0
	sed -n 's/.*"result":\[{"metric":{[^}]*},"value":\[[^,]*,"\([^"]*\)"\]}\].*/\1/p' <<<"$body"
}

deadline=$((SECONDS + POLL_SECONDS))
while :; do
	kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
	up=$(query 'up{job="fastws"}')
	conns=$(query 'sum(fastws_connections{job="fastws"})')
	telnet=$(query 'fastws_connections{job="fastws",exported_instance="E2E-Telnet"}')
	build=$(query 'count(fastws_build_info{job="fastws"})')
	if [ "$up" = 1 ] && [ "$conns" = "$K" ] && [ "$telnet" = "$K" ] && [ "$build" = 1 ]; then
		break
	fi
	[ "$SECONDS" -lt "$deadline" ] ||
		fail "after ${POLL_SECONDS}s Prometheus reports up=${up:-none}, sum(fastws_connections)=${conns:-none}," \
			"fastws_connections{exported_instance=\"E2E-Telnet\"}=${telnet:-none}, build_info=${build:-none}; want 1, $K, $K, 1"
	sleep 0.5 # poll interval
done
echo "prometheus: up{job=\"fastws\"} = $up, sum(fastws_connections) = $conns (want $K)"

# Every query of the Grafana dashboard is valid PromQL and finds data here;
# rate() needs two scrapes in its window, so wait for three.
until [ "$(query 'count_over_time(up{job="fastws"}[1m])')" -ge 3 ] 2>/dev/null; do
	[ "$SECONDS" -lt "$deadline" ] || fail "Prometheus did not scrape fastws 3 times within ${POLL_SECONDS}s"
	sleep 0.5 # poll interval
done
n=0
while IFS= read -r expr; do
	expr=${expr//'$job'/fastws}
	expr=${expr//'$instance'/.*}
	expr=${expr//'$__rate_interval'/1m}
	body=$(curl -sS --max-time 5 -G "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$expr") ||
		fail "dashboard query $expr: $body"
	case "$body" in
	*'"status":"success"'*'"result":[{'*) n=$((n + 1)) ;;
	*) fail "dashboard query $expr: $body" ;;
	esac
done < <(sed -n 's/^ *"expr": "\(.*\)",\{0,1\}$/\1/p' scripts/grafana-dashboard.json | sed 's/\\"/"/g')
[ "$n" -gt 0 ] || fail "found no query in scripts/grafana-dashboard.json"
echo "grafana dashboard: $n queries answered"
echo "PASS"
