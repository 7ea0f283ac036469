#!/usr/bin/env bash
# gateway-vs-monolith.sh: what the microservice boundary costs in throughput and memory,
# both builds of the shop side by side in one run.
#
# What it measures
#   1. Throughput and latency through the gateway (`shoplab serve micro`) and on the monolith
#      (`shoplab serve monolith`) for two reads:
#        list     `GET /api/products`        gateway -> catalog: one internal hop
#        product  `GET /api/products/{id}`   gateway -> catalog, then inventory and
#                                            recommendations at once: three hops, two of
#                                            them on the critical path
#      and the ratio gateway/monolith of the medians for each. The issue's target: >= 0.45x
#      for the list.
#   2. Idle RSS (VmRSS from /proc/PID/status, after /ready and before any load) of every
#      process of the micro build: the supervisor and each child. Target: <= 20 MiB each.
#
# How
#   Builds `shoplab` in release mode and starts both builds from that one binary, each seeded
#   with --seed 42 (1000 products) on its own SQLite files in a temp dir. The monolith and the
#   whole micro build (supervisor, seven services, gateway: taskset is inherited) are pinned
#   to CPU 0 and wrk to CPU 1, so both builds get the same CPU budget: one core, used by one
#   process or by eight. The idle build only holds memory while the other is measured. Both
#   read every SHOPLAB_* setting from the same environment (pool size, log format), so no
#   setting differs between them except the topology.
#   Each round runs wrk (1 thread, CONNECTIONS connections, --latency) on every endpoint
#   against both builds; the order flips every round so neither build always runs on a
#   machine the other just heated. The product endpoint walks ids 1..1000 in the same order
#   for both. Server CPU time per request is read from /proc/PID/stat (for the micro build,
#   the sum over its processes, also shown per process) and wrk's own CPU use from
#   /usr/bin/time.
#
# How to read the output
#   Medians over the rounds with the min-max spread, the ratio gateway/monolith of the
#   medians, CPU us/req per build and per micro process, RSS per process. With one core per
#   build, req/s is close to 1 / (CPU per request), so the CPU columns explain the ratio.
#   Everything is also written to bench/results/<date>-gateway-vs-monolith.md with the
#   machine, settings, load average and git commit.
#
# How long it takes
#   The release build (minutes the first time), then
#   4 * (WARMUP + ROUNDS * DURATION) seconds of load (defaults: ~3.5 minutes).
#   ROUNDS=3 DURATION=5 gives a quick look in about a minute.
#
# Usage
#   bench/gateway-vs-monolith.sh                      # 5 rounds x 10 s, 32 connections
#   ROUNDS=3 DURATION=5 bench/gateway-vs-monolith.sh  # quick look
#
# Environment (all optional)
#   ROUNDS=5 DURATION=10 CONNECTIONS=32 WARMUP=3 POOL=8
#   RESULTS_DIR=bench/results  SKIP_BUILD=1  KEEP_TMP=1
#   BENCH_SHOPLAB_BIN=PATH     another shoplab binary (not SHOPLAB_*: those are settings)
#
# Every process this script starts is stopped by PID when it exits; nothing is killed by name.

set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=1
WARMUP=${WARMUP:-3}
# Read-pool size of every process that has a database (the monolith, each service).
POOL=${POOL:-8}
SEED=42
PRODUCTS=1000
READY_DEADLINE_MS=60000

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results}
SHOPLAB_BIN=${BENCH_SHOPLAB_BIN:-$REPO/target/release/shoplab}

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
    log "cargo build --release -p shoplab"
    cargo build --release -p shoplab
fi
[[ -x $SHOPLAB_BIN ]] || die "$SHOPLAB_BIN not found (build it: cargo build --release -p shoplab)"

CPUS=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
if ((CPUS >= 2)); then
    SERVER_PIN=(taskset -c 0)
    WRK_PIN=(taskset -c 1)
    PINNING="monolith and every micro process on CPU 0, wrk on CPU 1 (taskset)"
else
    SERVER_PIN=()
    WRK_PIN=()
    PINNING="none (only $CPUS CPU): servers and wrk share it"
fi

TMP=$(mktemp -d -t shoplab-gvm.XXXXXX)
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

cat >"$TMP/list.lua" <<'EOF'
-- The first page of the catalogue, the same request every time.
request = function()
  return wrk.format("GET", "/api/products")
end
EOF
cat >"$TMP/product.lua" <<EOF
-- Walks product ids 1..$PRODUCTS in order, so both builds get the same sequence of requests.
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/products/" .. ((counter % $PRODUCTS) + 1))
end
EOF

# Both builds read the same SHOPLAB_* settings; the micro supervisor passes its environment
# on to every child. The lab's own variables, nothing else.
SHOP_ENV=(
    env
    SHOPLAB_ADMIN_TOKEN=bench
    SHOPLAB_TOKEN_SECRET=bench
    SHOPLAB_LOG_FORMAT=json
    SHOPLAB_DB_MAX_CONNECTIONS="$POOL"
)

# ---------------------------------------------------------------------------------------
# 1. Start both builds, read idle RSS

log "starting the monolith with --seed $SEED"
start_server "$TMP/monolith.log" "${SHOP_ENV[@]}" \
    "$SHOPLAB_BIN" serve monolith --port 0 --db "sqlite://$TMP/monolith.db" --seed "$SEED"
MONOLITH_PID=$STARTED_PID
wait_ready monolith "$MONOLITH_PID" "$TMP/monolith.log"
MONOLITH_ADDR=$READY_ADDR

log "starting the micro build with --seed $SEED"
start_server "$TMP/micro.log" "${SHOP_ENV[@]}" \
    "$SHOPLAB_BIN" serve micro --port 0 --admin-port 0 --data-dir "$TMP/micro" --seed "$SEED"
SUPERVISOR_PID=$STARTED_PID
wait_ready micro "$SUPERVISOR_PID" "$TMP/micro.log" "shoplab micro listening on"
GATEWAY_ADDR=$READY_ADDR

# The supervisor prints its map (service, replica, pid, url) before the listening line.
MICRO_NAMES=(supervisor) MICRO_PIDS=("$SUPERVISOR_PID")
while read -r name pid; do
    MICRO_NAMES+=("$name") MICRO_PIDS+=("$pid")
done < <(awk '$1 ~ /^(catalog|inventory|cart|payments|users|recommendations|orders|gateway)$/ &&
    $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ && $4 ~ /^http:/ {print $1, $3}' "$TMP/micro.log")
((${#MICRO_PIDS[@]} == 9)) || die "expected 8 micro processes in the map, found $((${#MICRO_PIDS[@]} - 1)): $(cat "$TMP/micro.log" | head -n 40)"
for pid in "${MICRO_PIDS[@]}"; do
    [[ $(awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$pid/status") == 0 || $CPUS -lt 2 ]] ||
        die "micro process $pid is not pinned to CPU 0"
done

# Idle: after /ready, before any request but the readiness checks and the comparison below.
MONOLITH_IDLE_RSS=$(rss_kib "$MONOLITH_PID")
MICRO_IDLE_RSS=()
for pid in "${MICRO_PIDS[@]}"; do MICRO_IDLE_RSS+=("$(rss_kib "$pid")"); done

# Same work: both builds must give the same answers before their speeds mean anything.
SAME_ANSWERS=yes
for path in /api/products /api/products/1 /api/products/2 /api/products/$((PRODUCTS / 2)) \
    /api/products/$PRODUCTS /api/products/$((PRODUCTS + 1)); do
    monolith_answer=$(curl -s -w '\n%{http_code}' "http://$MONOLITH_ADDR$path")
    gateway_answer=$(curl -s -w '\n%{http_code}' "http://$GATEWAY_ADDR$path")
    if [[ $monolith_answer != "$gateway_answer" ]]; then
        SAME_ANSWERS="no (first difference at $path)"
        log "answers differ for $path:"
        printf '  monolith: %s\n  gateway:  %s\n' "${monolith_answer//$'\n'/ HTTP }" \
            "${gateway_answer//$'\n'/ HTTP }" >&2
        break
    fi
done
log "same answers from both builds: $SAME_ANSWERS"

# ---------------------------------------------------------------------------------------
# 2. Load: warm-up, then ROUNDS interleaved rounds per endpoint

ENDPOINTS=(list product)
declare -A PATH_OF=([list]="/api/products" [product]="/api/products/{id}")
declare -A RPS P50 P99 CPU WRK   # key "build endpoint" -> space-separated values per round
declare -A PROC_TICKS            # key "endpoint pid" -> ticks summed over the rounds
declare -A REQUESTS              # key "build endpoint" -> requests summed over the rounds
ERRORS=0
ROUND_TABLES=""
TABLE_HEAD="| round | endpoint | build | req/s | p50 ms | p99 ms | server CPU us/req | wrk CPU % | non-2xx | socket errors |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|"

# measure BUILD ENDPOINT SECONDS OUT: one wrk run; fills RUN_*.
measure() {
    local build=$1 endpoint=$2 seconds=$3 out=$4
    if [[ $build == monolith ]]; then
        run_wrk "$MONOLITH_PID" "http://$MONOLITH_ADDR" "$seconds" "$out" "$TMP/$endpoint.lua"
    else
        run_wrk "${MICRO_PIDS[*]}" "http://$GATEWAY_ADDR" "$seconds" "$out" "$TMP/$endpoint.lua"
    fi
}

log "warm-up: ${WARMUP}s per build and endpoint"
for endpoint in "${ENDPOINTS[@]}"; do
    for build in monolith gateway; do
        measure "$build" "$endpoint" "$WARMUP" "$TMP/warmup-$build-$endpoint"
    done
done
LOAD_BEFORE_RUNS=$(cut -d' ' -f1-3 /proc/loadavg)

for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then order=(monolith gateway); else order=(gateway monolith); fi
    rows=""
    for endpoint in "${ENDPOINTS[@]}"; do
        for build in "${order[@]}"; do
            measure "$build" "$endpoint" "$DURATION" "$TMP/round$round-$build-$endpoint"
            key="$build $endpoint"
            RPS[$key]+="$RUN_RPS " P50[$key]+="$RUN_P50 " P99[$key]+="$RUN_P99 "
            CPU[$key]+="$RUN_CPU_US_PER_REQ " WRK[$key]+="$RUN_WRK_CPU_PCT "
            REQUESTS[$key]=$((${REQUESTS[$key]:-0} + RUN_REQUESTS))
            if [[ $build == gateway ]]; then
                for pid in "${MICRO_PIDS[@]}"; do
                    PROC_TICKS["$endpoint $pid"]=$((${PROC_TICKS["$endpoint $pid"]:-0} + RUN_TICKS[$pid]))
                done
            fi
            ERRORS=$((ERRORS + RUN_NON2XX + RUN_SOCKET_ERRORS))
            rows+="| $round | ${PATH_OF[$endpoint]} | $build | $(fmt "$RUN_RPS") | $RUN_P50 | $RUN_P99 | $RUN_CPU_US_PER_REQ | $RUN_WRK_CPU_PCT | $RUN_NON2XX | $RUN_SOCKET_ERRORS |"$'\n'
        done
    done
    printf '\n%s\n%s' "$TABLE_HEAD" "$rows"
    ROUND_TABLES+=$rows
done
echo
LOAD_AFTER_RUNS=$(cut -d' ' -f1-3 /proc/loadavg)

MONOLITH_RSS_AFTER=$(rss_kib "$MONOLITH_PID") MONOLITH_HWM=$(hwm_kib "$MONOLITH_PID")
MICRO_RSS_AFTER=() MICRO_HWM=()
for pid in "${MICRO_PIDS[@]}"; do
    MICRO_RSS_AFTER+=("$(rss_kib "$pid")") MICRO_HWM+=("$(hwm_kib "$pid")")
done

stop_server "$SUPERVISOR_PID"
stop_server "$MONOLITH_PID"

# ---------------------------------------------------------------------------------------
# 3. Summary and results file

med() { median $1; }
ratio() { divide "$(med "${RPS[gateway $1]}")" "$(med "${RPS[monolith $1]}")"; }
summary_row() { # endpoint build
    local rps=(${RPS["$2 $1"]}) p50=(${P50["$2 $1"]}) p99=(${P99["$2 $1"]}) cpu=(${CPU["$2 $1"]}) wrk=(${WRK["$2 $1"]})
    printf '| %s | %s | %s (%s-%s) | %s (%s-%s) | %s (%s-%s) | %s (%s-%s) | %s |\n' "${PATH_OF[$1]}" "$2" \
        "$(fmt "$(median "${rps[@]}")")" "$(fmt "$(minimum "${rps[@]}")")" "$(fmt "$(maximum "${rps[@]}")")" \
        "$(fmt "$(median "${p50[@]}")" 2)" "$(minimum "${p50[@]}")" "$(maximum "${p50[@]}")" \
        "$(fmt "$(median "${p99[@]}")" 2)" "$(minimum "${p99[@]}")" "$(maximum "${p99[@]}")" \
        "$(fmt "$(median "${cpu[@]}")" 1)" "$(minimum "${cpu[@]}")" "$(maximum "${cpu[@]}")" \
        "$(fmt "$(median "${wrk[@]}")")"
}
LIST_RATIO=$(ratio list)
PRODUCT_RATIO=$(ratio product)
WORST_RSS=$(maximum "${MICRO_IDLE_RSS[@]}")

STAMP=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
RESULTS_FILE=$RESULTS_DIR/$STAMP-gateway-vs-monolith.md
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$REPO" status --porcelain 2>/dev/null) ]]; then COMMIT+=" (work tree has uncommitted changes)"; fi

{
    echo "# Gateway vs monolith: throughput of two reads, and idle memory of every micro process"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M:%S UTC') by \`bench/gateway-vs-monolith.sh\`."
    echo
    echo "## Summary"
    echo
    echo "| target | measured | |"
    echo "|---|---|---|"
    echo "| \`GET /api/products\` through the gateway >= 0.45x the monolith | **${LIST_RATIO}x** (medians: gateway $(fmt "$(med "${RPS[gateway list]}")") req/s, monolith $(fmt "$(med "${RPS[monolith list]}")") req/s) | $(verdict "$LIST_RATIO" 0.45 '>=') |"
    echo "| \`GET /api/products/{id}\` through the gateway (no target; three hops) | **${PRODUCT_RATIO}x** (medians: gateway $(fmt "$(med "${RPS[gateway product]}")") req/s, monolith $(fmt "$(med "${RPS[monolith product]}")") req/s) | |"
    echo "| idle RSS <= 20 MiB per micro process | **$(mib "$WORST_RSS") MiB** the largest (every process below) | $(verdict "$(mib "$WORST_RSS")" 20 '<=') |"
    echo
    echo "Same answers from both builds (the list, products 1, 2, $((PRODUCTS / 2)), $PRODUCTS and a missing one): $SAME_ANSWERS."
    echo "Non-2xx responses and socket errors over all measured runs: $ERRORS."
    echo
    echo "## Load: medians over $ROUNDS rounds (min-max)"
    echo
    echo "| endpoint | build | req/s | p50 ms | p99 ms | server CPU us/req | wrk CPU % |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for endpoint in "${ENDPOINTS[@]}"; do
        summary_row "$endpoint" monolith
        summary_row "$endpoint" gateway
    done
    echo
    for endpoint in "${ENDPOINTS[@]}"; do
        echo "- \`${PATH_OF[$endpoint]}\`: gateway/monolith req/s $(ratio "$endpoint")x; server CPU per request $(divide "$(med "${CPU[gateway $endpoint]}")" "$(med "${CPU[monolith $endpoint]}")")x; p50 $(divide "$(med "${P50[gateway $endpoint]}")" "$(med "${P50[monolith $endpoint]}")")x."
    done
    echo
    echo "### Where the micro build spends its CPU (us per request, all rounds)"
    echo
    echo "| process | pid | \`/api/products\` | \`/api/products/{id}\` |"
    echo "|---|---:|---:|---:|"
    for i in "${!MICRO_PIDS[@]}"; do
        pid=${MICRO_PIDS[$i]}
        echo "| ${MICRO_NAMES[$i]} | $pid | $(ticks_us_per_req "${PROC_TICKS["list $pid"]}" "${REQUESTS[gateway list]}") | $(ticks_us_per_req "${PROC_TICKS["product $pid"]}" "${REQUESTS[gateway product]}") |"
    done
    echo
    echo "Ticks are /proc/PID/stat utime + stime at $CLK_TCK Hz, so a process that used less than"
    echo "a tick per round shows as 0."
    echo
    echo "### Why the product page costs more than the list"
    echo
    echo "Both builds run the same handler (\`api::public\`) and the same SQL (\`store\`); the micro"
    echo "build adds hops. \`GET /api/products\` is one hop (gateway -> catalog, which runs the two"
    echo "listing queries). \`GET /api/products/{id}\` is three hops: catalog first, then inventory"
    echo "and recommendations at once, so three HTTP requests to encode, send, route, decode and"
    echo "answer for one page, two of them one after the other on the critical path. The work per"
    echo "hop is roughly constant, and the monolith's work per product page is small (three"
    echo "indexed queries), so the page's ratio falls below the list's: the more of a request's"
    echo "cost is hops rather than queries, the further its ratio drops. With one core per build,"
    echo "req/s is close to 1 / (CPU per request), which is why the CPU columns above explain the"
    echo "ratios."
    echo
    echo "### Every round"
    echo
    echo "$TABLE_HEAD"
    printf '%s' "$ROUND_TABLES"
    echo
    echo "## Memory"
    echo
    echo "| process | pid | idle RSS | RSS after the load | peak RSS (VmHWM) |"
    echo "|---|---:|---:|---:|---:|"
    echo "| monolith | $MONOLITH_PID | $(mib "$MONOLITH_IDLE_RSS") MiB | $(mib "$MONOLITH_RSS_AFTER") MiB | $(mib "$MONOLITH_HWM") MiB |"
    total_idle=0
    for i in "${!MICRO_PIDS[@]}"; do
        total_idle=$((total_idle + MICRO_IDLE_RSS[i]))
        echo "| micro: ${MICRO_NAMES[$i]} | ${MICRO_PIDS[$i]} | $(mib "${MICRO_IDLE_RSS[$i]}") MiB | $(mib "${MICRO_RSS_AFTER[$i]}") MiB | $(mib "${MICRO_HWM[$i]}") MiB |"
    done
    echo "| micro: all ${#MICRO_PIDS[@]} processes | | $(mib "$total_idle") MiB | | |"
    echo
    echo "Idle means after \`/ready\` answered and before any load (the supervisor's readiness"
    echo "checks and this script's comparison requests aside). Every process was started with"
    echo "--seed, which allocates memory that may not go back to the OS; RSS counts shared"
    echo "pages (the one binary's text) in every process."
    echo
    echo "## Settings"
    echo
    echo "- rounds: $ROUNDS x ${DURATION}s per build and endpoint, interleaved, order flipped every round; warm-up ${WARMUP}s each"
    echo "- wrk: -t$THREADS -c$CONNECTIONS --latency; the list asks for the first page every time, the product page walks ids 1..$PRODUCTS in order (Lua scripts)"
    echo "- pinning: $PINNING"
    echo "- monolith: \`shoplab serve monolith --port 0 --db sqlite://… --seed $SEED\`"
    echo "- micro: \`shoplab serve micro --port 0 --admin-port 0 --data-dir … --seed $SEED\` (one SQLite file per service, one replica each)"
    echo "- both: SHOPLAB_DB_MAX_CONNECTIONS=$POOL, SHOPLAB_LOG_FORMAT=json, logs to a file; every other setting at its default (hop budget, retries and resilience settings as in \`api::Settings\`)"
    echo
    echo "## Machine"
    echo
    echo "- CPUs: $CPUS ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), memory $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); a VM whose cores are shared with other work"
    echo "- kernel: $(uname -r)"
    echo "- $(rustc --version 2>/dev/null || echo 'rustc: unknown')"
    echo "- $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2)"
    echo "- git commit: $COMMIT"
    echo "- load average (1, 5, 15 min) at start: $LOAD_AT_START; before the measured rounds: $LOAD_BEFORE_RUNS; after them: $LOAD_AFTER_RUNS. The load this script itself makes (one busy server core, wrk on the other) is about 2; more than that was other work."
} >"$RESULTS_FILE"

echo
cat "$RESULTS_FILE"
echo
log "written to ${RESULTS_FILE#"$REPO"/}"
