#!/usr/bin/env bash
# product-detail.sh: how close the monolith's hottest read comes to a minimal handler.
#
# What it measures
#   1. Throughput and latency of `GET /api/products/{id}` on the monolith
#      (`shoplab serve monolith`) and on `bench-baseline` (bench/src/bin/bench-baseline.rs:
#      a bare axum + sqlx handler doing the same three queries on the same SQLite file),
#      side by side in one run. The issue's target: monolith >= 0.8x baseline (ratio of
#      medians).
#   2. Idle RSS of the monolith (VmRSS from /proc/PID/status, after /ready and before any
#      load). Target: <= 20 MiB.
#   3. Start to ready: spawning `shoplab serve monolith` on an already seeded file (no
#      --seed) until `GET /ready` answers 200, median of STARTS starts. Target: <= 300 ms.
#
# How
#   Builds both binaries in release mode, seeds a fresh SQLite file in a temp dir
#   (`--seed 42`, 1000 products), starts the monolith and the baseline on it, pins both
#   servers to CPU 0 and wrk to CPU 1 with taskset (when there are >= 2 CPUs), warms each
#   server up, then runs wrk (1 thread, CONNECTIONS connections, --latency) ROUNDS times per
#   server. Runs are interleaved and the order flips every round (M B, B M, M B, ...) so
#   neither server always runs on a machine the other just heated. A wrk Lua script walks
#   product ids 1..1000 in the same order for both servers. Server CPU time per request is
#   read from /proc/PID/stat and wrk's own CPU use from /usr/bin/time, because the two cores
#   are shared: a server can only look slow in comparison, inside one run.
#
# How to read the output
#   A table per round, then medians with the min-max spread over the rounds, and the ratio
#   monolith/baseline of the medians. Trust the ratio more than the absolute req/s (they
#   move with whatever else the machine is doing); a wide spread means a noisy run: run it
#   again. "server CPU us/req" is the least noisy cost figure. Everything is also written
#   to bench/results/product-detail-<date>.md with the machine, settings and git commit.
#
# How long it takes
#   The release build (minutes the first time), then about
#   2 * (WARMUP + ROUNDS * DURATION) seconds of load (defaults: ~2 minutes) and a few
#   seconds of starts. ROUNDS=3 DURATION=5 gives a quick look in under a minute.
#
# Usage
#   bench/product-detail.sh                      # defaults: 5 rounds x 10 s, 32 connections
#   ROUNDS=3 DURATION=5 bench/product-detail.sh  # quick look
#
# Environment (all optional)
#   ROUNDS=5 DURATION=10 CONNECTIONS=32 WARMUP=3 STARTS=5 POOL=8
#   RESULTS_DIR=bench/results    where the results file goes
#   SKIP_BUILD=1                 use the binaries already in target/release
#   BENCH_SHOPLAB_BIN=PATH       a different shoplab binary (e.g. one built from another
#                                commit); deliberately not SHOPLAB_*, since the monolith reads
#                                every SHOPLAB_* variable as a setting
#   KEEP_TMP=1                   keep the temp dir (database, server logs, raw wrk output)
#
# Every process this script starts is stopped by PID when it exits; nothing is killed by name.

set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=1
WARMUP=${WARMUP:-3}
STARTS=${STARTS:-5}
# Read-pool size for both servers (the monolith's db_max_connections default), set
# explicitly on both so neither wins by holding more SQLite connections.
POOL=${POOL:-8}
SEED=42
PRODUCTS=1000
READY_DEADLINE_MS=30000

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results}
SHOPLAB_BIN=${BENCH_SHOPLAB_BIN:-$REPO/target/release/shoplab}
BASELINE_BIN=$REPO/target/release/bench-baseline

# Shared helpers: process bookkeeping (and the EXIT trap), readiness, /proc readings,
# statistics, one wrk run.
source "$REPO/bench/lib.sh"

# ---------------------------------------------------------------------------------------
# Tools, build, machine

for tool in curl awk taskset; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v wrk >/dev/null || [[ ! -x /usr/bin/time ]]; then
    log "installing wrk and time with apt-get"
    apt-get update -qq && apt-get install -y -qq wrk time >/dev/null
fi

cd "$REPO"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release -p shoplab -p bench"
    cargo build --release -p shoplab -p bench
fi
[[ -x $SHOPLAB_BIN ]] || die "$SHOPLAB_BIN not found (build it: cargo build --release -p shoplab)"
[[ -x $BASELINE_BIN ]] || die "$BASELINE_BIN not found (build it: cargo build --release -p bench)"

CPUS=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
if ((CPUS >= 2)); then
    SERVER_PIN=(taskset -c 0)
    WRK_PIN=(taskset -c 1)
    PINNING="servers on CPU 0, wrk on CPU 1 (taskset)"
else
    SERVER_PIN=()
    WRK_PIN=()
    PINNING="none (only $CPUS CPU): servers and wrk share it"
fi

TMP=$(mktemp -d -t shoplab-bench.XXXXXX)
DB_URL="sqlite://$TMP/shop.db"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

cat >"$TMP/products.lua" <<EOF
-- Walks product ids 1..$PRODUCTS in order, so both servers get the same sequence of requests.
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/products/" .. ((counter % $PRODUCTS) + 1))
end
EOF

# The monolith reads every SHOPLAB_* variable as a setting; these are the ones the lab sets.
MONOLITH_ENV=(
    env
    SHOPLAB_ADMIN_TOKEN=bench
    SHOPLAB_TOKEN_SECRET=bench
    SHOPLAB_LOG_FORMAT=json
    SHOPLAB_DB_MAX_CONNECTIONS="$POOL"
)

# ---------------------------------------------------------------------------------------
# 1. Seed, start both servers, idle RSS

log "starting the monolith with --seed $SEED on $DB_URL"
start_server "$TMP/monolith.log" "${MONOLITH_ENV[@]}" \
    "$SHOPLAB_BIN" serve monolith --port 0 --db "$DB_URL" --seed "$SEED"
MONOLITH_PID=$STARTED_PID
wait_ready monolith "$MONOLITH_PID" "$TMP/monolith.log"
MONOLITH_ADDR=$READY_ADDR
MONOLITH_IDLE_RSS_SEEDED=$(rss_kib "$MONOLITH_PID")

log "starting bench-baseline on the same file"
start_server "$TMP/baseline.log" "$BASELINE_BIN" --port 0 --db "$DB_URL" --max-connections "$POOL"
BASELINE_PID=$STARTED_PID
wait_ready baseline "$BASELINE_PID" "$TMP/baseline.log"
BASELINE_ADDR=$READY_ADDR
BASELINE_IDLE_RSS=$(rss_kib "$BASELINE_PID")
BASELINE_BANNER=$(grep -m1 'listening on' "$TMP/baseline.log")

# Same work: the two servers must give the same answers before their speeds mean anything.
SAME_ANSWERS=yes
for id in 1 2 $((PRODUCTS / 2)) "$PRODUCTS" $((PRODUCTS + 1)); do
    monolith_answer=$(curl -s -w '\n%{http_code}' "http://$MONOLITH_ADDR/api/products/$id")
    baseline_answer=$(curl -s -w '\n%{http_code}' "http://$BASELINE_ADDR/api/products/$id")
    if [[ $monolith_answer != "$baseline_answer" ]]; then
        SAME_ANSWERS="no (first difference at product $id)"
        log "answers differ for product $id:"
        printf '  monolith: %s\n  baseline: %s\n' "${monolith_answer//$'\n'/ HTTP }" \
            "${baseline_answer//$'\n'/ HTTP }" >&2
        break
    fi
done
log "same answers from both servers: $SAME_ANSWERS"

# ---------------------------------------------------------------------------------------
# 2. Load: warm-up, then ROUNDS interleaved rounds

log "warm-up: ${WARMUP}s each"
run_wrk "$MONOLITH_PID" "http://$MONOLITH_ADDR" "$WARMUP" "$TMP/warmup-monolith"
run_wrk "$BASELINE_PID" "http://$BASELINE_ADDR" "$WARMUP" "$TMP/warmup-baseline"
MONOLITH_LOG_BYTES_BEFORE=$(stat -c %s "$TMP/monolith.log")

M_RPS=() M_P50=() M_P99=() M_CPU=() M_WRK=()
B_RPS=() B_P50=() B_P99=() B_CPU=() B_WRK=()
ERRORS=0
MONOLITH_REQUESTS=0
ROUND_TABLES=""
TABLE_HEAD="| round | server | req/s | p50 ms | p99 ms | server CPU us/req | wrk CPU % | non-2xx | socket errors |
|---|---|---:|---:|---:|---:|---:|---:|---:|"

for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then order=(monolith baseline); else order=(baseline monolith); fi
    rows=""
    for server in "${order[@]}"; do
        if [[ $server == monolith ]]; then
            run_wrk "$MONOLITH_PID" "http://$MONOLITH_ADDR" "$DURATION" "$TMP/round$round-monolith"
            M_RPS+=("$RUN_RPS") M_P50+=("$RUN_P50") M_P99+=("$RUN_P99")
            M_CPU+=("$RUN_CPU_US_PER_REQ") M_WRK+=("$RUN_WRK_CPU_PCT")
            MONOLITH_REQUESTS=$((MONOLITH_REQUESTS + RUN_REQUESTS))
        else
            run_wrk "$BASELINE_PID" "http://$BASELINE_ADDR" "$DURATION" "$TMP/round$round-baseline"
            B_RPS+=("$RUN_RPS") B_P50+=("$RUN_P50") B_P99+=("$RUN_P99")
            B_CPU+=("$RUN_CPU_US_PER_REQ") B_WRK+=("$RUN_WRK_CPU_PCT")
        fi
        ERRORS=$((ERRORS + RUN_NON2XX + RUN_SOCKET_ERRORS))
        rows+="| $round | $server | $(fmt "$RUN_RPS") | $RUN_P50 | $RUN_P99 | $RUN_CPU_US_PER_REQ | $RUN_WRK_CPU_PCT | $RUN_NON2XX | $RUN_SOCKET_ERRORS |"$'\n'
    done
    printf '\n%s\n%s' "$TABLE_HEAD" "$rows"
    ROUND_TABLES+=$rows
done
echo

MONOLITH_LOG_BYTES=$(($(stat -c %s "$TMP/monolith.log") - MONOLITH_LOG_BYTES_BEFORE))
MONOLITH_RSS_AFTER=$(rss_kib "$MONOLITH_PID") MONOLITH_HWM=$(hwm_kib "$MONOLITH_PID")
BASELINE_RSS_AFTER=$(rss_kib "$BASELINE_PID") BASELINE_HWM=$(hwm_kib "$BASELINE_PID")

stop_server "$BASELINE_PID"
stop_server "$MONOLITH_PID"
SEEDED_STOP_MS=$STOPPED_MS

# ---------------------------------------------------------------------------------------
# 3. Start to ready, on the now seeded file, without --seed

log "start to ready: $STARTS starts on the seeded file"
START_MS=() START_RSS=() STOP_MS=()
for ((start = 1; start <= STARTS; start++)); do
    t0=$(now_us)
    start_server "$TMP/start$start.log" "${MONOLITH_ENV[@]}" \
        "$SHOPLAB_BIN" serve monolith --port 0 --db "$DB_URL"
    pid=$STARTED_PID
    wait_ready monolith "$pid" "$TMP/start$start.log"
    START_MS+=($((($(now_us) - t0) / 1000)))
    START_RSS+=("$(rss_kib "$pid")")
    stop_server "$pid"
    STOP_MS+=("$STOPPED_MS")
done

# ---------------------------------------------------------------------------------------
# 4. Summary and results file

M_RPS_MED=$(median "${M_RPS[@]}") B_RPS_MED=$(median "${B_RPS[@]}")
RATIO=$(divide "$M_RPS_MED" "$B_RPS_MED")
START_MED=$(median "${START_MS[@]}")
START_RSS_MED=$(median "${START_RSS[@]}")

summary_row() { # name rps[] p50[] p99[] cpu[] wrk[] as space-separated strings
    local name=$1 rps=($2) p50=($3) p99=($4) cpu=($5) wrk=($6)
    printf '| %s | %s (%s-%s) | %s (%s-%s) | %s (%s-%s) | %s (%s-%s) | %s |\n' "$name" \
        "$(fmt "$(median "${rps[@]}")")" "$(fmt "$(minimum "${rps[@]}")")" "$(fmt "$(maximum "${rps[@]}")")" \
        "$(fmt "$(median "${p50[@]}")" 2)" "$(minimum "${p50[@]}")" "$(maximum "${p50[@]}")" \
        "$(fmt "$(median "${p99[@]}")" 2)" "$(minimum "${p99[@]}")" "$(maximum "${p99[@]}")" \
        "$(fmt "$(median "${cpu[@]}")" 1)" "$(minimum "${cpu[@]}")" "$(maximum "${cpu[@]}")" \
        "$(fmt "$(median "${wrk[@]}")")"
}

STAMP=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
RESULTS_FILE=$RESULTS_DIR/product-detail-$STAMP.md
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$REPO" status --porcelain 2>/dev/null) ]]; then COMMIT+=" (work tree has uncommitted changes)"; fi

{
    echo "# GET /api/products/{id}: monolith vs minimal axum + sqlx baseline"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M:%S UTC') by \`bench/product-detail.sh\`."
    echo
    echo "## Summary"
    echo
    echo "| target | measured | |"
    echo "|---|---|---|"
    echo "| throughput >= 0.8x baseline | **${RATIO}x** (medians: monolith $(fmt "$M_RPS_MED") req/s, baseline $(fmt "$B_RPS_MED") req/s) | $(verdict "$RATIO" 0.8 '>=') |"
    echo "| idle RSS <= 20 MiB | **$(mib "$START_RSS_MED") MiB** plain start (median of $STARTS); $(mib "$MONOLITH_IDLE_RSS_SEEDED") MiB after the --seed start | $(verdict "$(mib "$(maximum "$START_RSS_MED" "$MONOLITH_IDLE_RSS_SEEDED")")" 20 '<=') |"
    echo "| start to /ready <= 300 ms (SQLite) | **${START_MED} ms** (median of $STARTS: ${START_MS[*]}) | $(verdict "$START_MED" 300 '<=') |"
    echo
    echo "Same answers from both servers (products 1, 2, $((PRODUCTS / 2)), $PRODUCTS and a missing one): $SAME_ANSWERS."
    echo "Non-2xx responses and socket errors over all measured runs: $ERRORS."
    echo
    echo "## Load: medians over $ROUNDS rounds (min-max)"
    echo
    echo "| server | req/s | p50 ms | p99 ms | server CPU us/req | wrk CPU % |"
    echo "|---|---:|---:|---:|---:|---:|"
    summary_row monolith "${M_RPS[*]}" "${M_P50[*]}" "${M_P99[*]}" "${M_CPU[*]}" "${M_WRK[*]}"
    summary_row baseline "${B_RPS[*]}" "${B_P50[*]}" "${B_P99[*]}" "${B_CPU[*]}" "${B_WRK[*]}"
    echo
    echo "Ratio monolith/baseline of the medians: req/s ${RATIO}x, server CPU per request $(divide "$(median "${M_CPU[@]}")" "$(median "${B_CPU[@]}")")x, p50 $(divide "$(median "${M_P50[@]}")" "$(median "${B_P50[@]}")")x."
    echo
    echo "### Every round"
    echo
    echo "$TABLE_HEAD"
    printf '%s' "$ROUND_TABLES"
    echo
    echo "## Memory and lifecycle"
    echo
    echo "| | monolith | baseline |"
    echo "|---|---:|---:|"
    echo "| idle RSS, plain start on the seeded file (median of $STARTS) | $(mib "$START_RSS_MED") MiB | |"
    echo "| idle RSS after ready (the monolith was started with --seed) | $(mib "$MONOLITH_IDLE_RSS_SEEDED") MiB | $(mib "$BASELINE_IDLE_RSS") MiB |"
    echo "| RSS after the load | $(mib "$MONOLITH_RSS_AFTER") MiB | $(mib "$BASELINE_RSS_AFTER") MiB |"
    echo "| peak RSS (VmHWM) | $(mib "$MONOLITH_HWM") MiB | $(mib "$BASELINE_HWM") MiB |"
    echo "| SIGTERM to exit, idle (median of $STARTS) | $(median "${STOP_MS[@]}") ms | |"
    echo "| SIGTERM to exit, after the load | $SEEDED_STOP_MS ms | |"
    echo "| log written during the measured runs | $MONOLITH_LOG_BYTES bytes ($(fmt "$(divide "$MONOLITH_LOG_BYTES" "$MONOLITH_REQUESTS")" 1) bytes per request) | none |"
    echo
    echo "Start to ready is measured by this script from spawning the process to the first 200 from"
    echo "\`GET /ready\` (polling the log for the address, then curl, every 5 ms), so it includes a few"
    echo "ms of shell and curl."
    echo
    echo "## Settings"
    echo
    echo "- rounds: $ROUNDS x ${DURATION}s per server, interleaved, order flipped every round; warm-up ${WARMUP}s per server"
    echo "- wrk: -t$THREADS -c$CONNECTIONS --latency, product ids 1..$PRODUCTS in order (Lua script)"
    echo "- pinning: $PINNING"
    echo "- database: SQLite file in a temp dir, seeded by the monolith with --seed $SEED ($PRODUCTS products)"
    echo "- read pool: $POOL connections on both (SHOPLAB_DB_MAX_CONNECTIONS / --max-connections)"
    echo "- monolith: \`shoplab serve monolith --port 0 --db sqlite://… --seed $SEED\` with SHOPLAB_LOG_FORMAT=json, log to a file"
    echo "- baseline: \`$BASELINE_BANNER\`"
    echo
    echo "## Machine"
    echo
    echo "- CPUs: $CPUS ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), memory $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "- kernel: $(uname -r)"
    echo "- $(rustc --version 2>/dev/null || echo 'rustc: unknown')"
    echo "- $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2)"
    echo "- git commit: $COMMIT"
    echo "- load average at start: $LOAD_AT_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) (the cores are shared: compare within one run)"
} >"$RESULTS_FILE"

echo
cat "$RESULTS_FILE"
echo
log "written to ${RESULTS_FILE#"$REPO"/}"
