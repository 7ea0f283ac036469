# lib.sh: what the bench scripts share — process bookkeeping, readiness polling, /proc
# readings, small statistics and one wrk run. Sourced, never run; bash only.
#
# The sourcing script sets, before calling these: THREADS and CONNECTIONS (wrk), CLK_TCK,
# SERVER_PIN and WRK_PIN (arrays, possibly empty), READY_DEADLINE_MS, and TMP once it has
# a temp dir. Every PID started through start_server is stopped by PID in the EXIT trap
# this file installs; nothing is killed by name.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# Processes: every PID we start goes into PIDS and is stopped in the EXIT trap.

PIDS=()
TMP=""

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait_gone "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ ${KEEP_TMP:-0} == 1 ]]; then
            log "kept $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
}
trap cleanup EXIT

# wait_gone PID TENTHS: true once PID has exited, false after TENTHS tenths of a second.
wait_gone() {
    local pid=$1 tenths=$2 i
    for ((i = 0; i < tenths * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        # A child that exited stays a zombie until waited for; count that as gone.
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
        sleep 0.025
    done
    return 1
}

now_us() { local t=${EPOCHREALTIME//[.,]/}; echo "$t"; }

# start_server LOG COMMAND...: starts it pinned (when pinning), sets STARTED_PID.
start_server() {
    local log_file=$1
    shift
    "${SERVER_PIN[@]}" "$@" >"$log_file" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# stop_server PID: SIGTERM, then measures how long the graceful stop takes (STOPPED_MS);
# SIGKILL after 10 s.
stop_server() {
    local pid=$1 t0 kept=() p
    t0=$(now_us)
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 100; then
        log "pid $pid ignored SIGTERM for 10 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    STOPPED_MS=$((($(now_us) - t0) / 1000))
    # Forget it, so the trap never signals a PID the system may have handed out again.
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")
}

# wait_ready NAME PID LOG [BANNER]: polls the log for "BANNER http://ADDR" (default
# "listening on"), then GET /ready until 200. Sets READY_ADDR. Fails when the process dies
# or after READY_DEADLINE_MS.
wait_ready() {
    local name=$1 pid=$2 log_file=$3 banner=${4:-listening on} t0 address=""
    t0=$(now_us)
    while :; do
        if [[ -z $address ]]; then
            address=$(grep -o -m1 -E "$banner http://[0-9.]+:[0-9]+" "$log_file" 2>/dev/null |
                sed 's|.*http://||' || true)
        fi
        if [[ -n $address ]] && curl -fs -o /dev/null --max-time 2 "http://$address/ready"; then
            READY_ADDR=$address
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
            tail -n 20 "$log_file" >&2 || true
            die "$name exited before it was ready (log above)"
        fi
        if (($(now_us) - t0 > READY_DEADLINE_MS * 1000)); then
            tail -n 20 "$log_file" >&2 || true
            die "$name not ready after ${READY_DEADLINE_MS} ms (log above)"
        fi
        sleep 0.005
    done
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# utime + stime of the whole process (all threads), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# ---------------------------------------------------------------------------------------
# Numbers

# median/min/max of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
minimum() { printf '%s\n' "$@" | sort -g | head -n1; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n1; }
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN {printf "%.*f", d, v}'; }
divide() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b == 0) ? 0 : a / b}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
verdict() { if awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {exit !((op == ">=") ? v >= t : v <= t)}'; then echo meets; else echo "MISSES"; fi; }

# wrk prints latencies as 812.00us, 1.23ms or 1.05s; returns milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else { printf "nan" }
    }'
}

# run_wrk "PID..." URL SECONDS OUT_PREFIX [LUA_SCRIPT]: one wrk run against a server made of
# the given processes (one PID, or every process of a deployment, space-separated); the
# script defaults to $TMP/products.lua. Sets RUN_*; RUN_TICKS[pid] is each process's CPU
# ticks during the run, and RUN_CPU_US_PER_REQ their sum per request.
declare -A RUN_TICKS
run_wrk() {
    local pids=($1) url=$2 seconds=$3 out=$4 script=${5:-$TMP/products.lua} pid total=0
    declare -A before
    for pid in "${pids[@]}"; do before[$pid]=$(cpu_ticks "$pid"); done
    "${WRK_PIN[@]}" /usr/bin/time -v -o "$out.time" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency -s "$script" "$url" \
        >"$out.wrk" 2>&1 || die "wrk failed: $(cat "$out.wrk")"
    RUN_TICKS=()
    for pid in "${pids[@]}"; do
        RUN_TICKS[$pid]=$(($(cpu_ticks "$pid") - before[$pid]))
        total=$((total + RUN_TICKS[$pid]))
    done
    RUN_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out.wrk")
    RUN_REQUESTS=$(awk '/ requests in / {print $1}' "$out.wrk")
    RUN_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out.wrk")")
    RUN_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out.wrk")")
    RUN_NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out.wrk")
    RUN_NON2XX=${RUN_NON2XX:-0}
    RUN_SOCKET_ERRORS=$(awk -F'[ ,]+' '/Socket errors:/ {print $4 + $6 + $8 + $10}' "$out.wrk")
    RUN_SOCKET_ERRORS=${RUN_SOCKET_ERRORS:-0}
    RUN_CPU_US_PER_REQ=$(ticks_us_per_req "$total" "$RUN_REQUESTS")
    RUN_WRK_CPU_PCT=$(awk -v s="$seconds" -F': ' \
        '/User time|System time/ {cpu += $2} END {printf "%.0f", cpu * 100 / s}' "$out.time")
}

# ticks_us_per_req TICKS REQUESTS: CPU microseconds per request.
ticks_us_per_req() {
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN {printf "%.1f", (n == 0) ? 0 : t * 1e6 / hz / n}'
}
