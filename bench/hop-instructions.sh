#!/usr/bin/env bash
# hop-instructions.sh: instructions per call of one catalog hop, counted by callgrind, against
# the bare axum hop through the same client — the measure that does not move with the load on
# a shared machine. Writes bench/results/<date>-hop-instructions.md and keeps each variant's
# callgrind profile in target/callgrind/<date>.<variant> for callgrind_annotate (2 MB each:
# not for the repository).
#
# What it counts (examples/hop-instructions.rs says how)
#   in_process     Catalog::get on the store, as the monolith calls it
#   http_loopback  the same call through micro_rpc's CatalogClient to the real catalog service
#   axum_hello     the same client against a bare axum route (the transport floor)
#   shop_server_hello   the same route on the shop's own server (api::server::serve)
#   shop_layers_hello   ... and with the layers every shop process wears (api::server::finish)
#   For each, callgrind runs the example with CALLS calls and with 2 x CALLS, after the same
#   warm-up; (instructions of the second - the first) / CALLS is the instructions per call,
#   every thread included (caller, service runtime, SQLite worker), the kernel excluded.
#   That is repeated REPEATS times: the count is not quite deterministic (how the threads
#   meet at the SQLite worker's channel varies the polls by a few thousand instructions), so
#   the results give the median and the range.
#   The hop is http_loopback - in_process; issue 17's target is hop <= 1.25 x axum_hello.
#
# Usage
#   bench/hop-instructions.sh            # CALLS=2000
#   CALLS=500 REPEATS=1 bench/hop-instructions.sh  # quicker, noisier
#
# Needs valgrind (apt-get install valgrind; installed here when missing).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results}
PROFILE_DIR=${PROFILE_DIR:-$REPO/target/callgrind}
CALLS=${CALLS:-2000}
REPEATS=${REPEATS:-3}
VARIANTS=(in_process http_loopback axum_hello shop_server_hello shop_layers_hello)

# log, die, median, minimum, maximum, verdict, and the EXIT trap that removes $TMP.
source "$REPO/bench/lib.sh"

[[ $CALLS =~ ^[1-9][0-9]*$ ]] || die "CALLS must be a positive whole number, not '$CALLS'"
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || die "REPEATS must be a positive whole number, not '$REPEATS'"
if ! command -v valgrind >/dev/null; then
    log "installing valgrind with apt-get"
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi

cd "$REPO"
log "cargo build --release -p bench --example hop-instructions"
cargo build --release -p bench --example hop-instructions
BINARY=$REPO/target/release/examples/hop-instructions
TMP=$(mktemp -d)

# instructions VARIANT CALLS: the total instructions callgrind counted over the whole run.
instructions() {
    local out=$TMP/callgrind.out.$1.$2
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BINARY" "$1" "$2" \
        >"$TMP/$1.$2.log" 2>&1 || { cat "$TMP/$1.$2.log" >&2; die "callgrind failed on $1"; }
    awk '/^summary:/ {print $2}' "$out"
}

declare -A PER_CALL RANGE
declare -a HOPS
for variant in "${VARIANTS[@]}"; do
    samples=()
    for repeat in $(seq "$REPEATS"); do
        log "callgrind: $variant, $CALLS and $((2 * CALLS)) calls (repeat $repeat of $REPEATS)"
        once=$(instructions "$variant" "$CALLS")
        twice=$(instructions "$variant" $((2 * CALLS)))
        samples+=($(( (twice - once) / CALLS )))
    done
    PER_CALL[$variant]=$(fmt "$(median "${samples[@]}")")
    RANGE[$variant]="$(minimum "${samples[@]}")-$(maximum "${samples[@]}")"
    cp "$TMP/callgrind.out.$variant.$((2 * CALLS))" "$TMP/keep.$variant"
done

HOP=$(( PER_CALL[http_loopback] - PER_CALL[in_process] ))
FLOOR=${PER_CALL[axum_hello]}
RATIO=$(fmt "$(divide "$HOP" "$FLOOR")" 2)
VERDICT=$(verdict "$RATIO" 1.25 "<=")
SERVER=$(( PER_CALL[shop_server_hello] - PER_CALL[axum_hello] ))
LAYERS=$(( PER_CALL[shop_layers_hello] - PER_CALL[shop_server_hello] ))
SERVICE=$(( HOP - PER_CALL[shop_layers_hello] ))

STAMP=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
RESULTS_FILE=$RESULTS_DIR/$STAMP-hop-instructions.md
mkdir -p "$PROFILE_DIR"
for variant in "${VARIANTS[@]}"; do
    cp "$TMP/keep.$variant" "$PROFILE_DIR/$STAMP.$variant"
done
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$REPO" status --porcelain 2>/dev/null) ]]; then COMMIT+=" (work tree has uncommitted changes)"; fi

{
    echo "# Instructions per hop: one catalog call in-process, over loopback HTTP, and the bare axum hop"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M:%S UTC') by \`bench/hop-instructions.sh\` (CALLS=$CALLS), commit $COMMIT."
    echo
    echo "| measure | instructions per call, median (range) of $REPEATS |"
    echo "|---|---:|"
    echo "| (1) \`Catalog::get\` in-process | ${PER_CALL[in_process]} (${RANGE[in_process]}) |"
    echo "| (3) \`Catalog::get\` over loopback HTTP | ${PER_CALL[http_loopback]} (${RANGE[http_loopback]}) |"
    echo "| one hop, (3) - (1) | **$HOP** |"
    echo "| (4) bare axum hop through the same client | $FLOOR (${RANGE[axum_hello]}) |"
    echo "| hop / bare hop (target <= 1.25) | **$RATIO** ($VERDICT) |"
    echo
    echo "Where the hop's instructions beyond the bare hop go:"
    echo
    echo "| part | instructions per call |"
    echo "|---|---:|"
    echo "| the shop's server instead of \`axum::serve\` (timeouts, connection cap): shop_server_hello - axum_hello | $SERVER |"
    echo "| the layers every shop process wears (\`api::server::finish\`): shop_layers_hello - shop_server_hello | $LAYERS |"
    echo "| the catalog service beyond them (its routes, the service token's check, the deadline, the product's JSON both ways, the database on the service's runtime): hop - shop_layers_hello | $SERVICE |"
    echo
    echo "Counted by callgrind over every thread of the process (the caller's current-thread"
    echo "runtime, the services' one-worker runtime, sqlx's SQLite worker), not the kernel: a"
    echo "syscall costs the instructions around it. Each figure is (count with $((2 * CALLS)) calls -"
    echo "count with $CALLS calls) / $CALLS, after the same 500 warm-up calls, so the lab's start"
    echo "cancels out. The profiles of the last $((2 * CALLS))-call runs were kept in"
    echo "\`${PROFILE_DIR#"$REPO"/}/$STAMP.<variant>\` (\`callgrind_annotate --inclusive=yes\`)."
    echo
    echo "- $(rustc --version 2>/dev/null || echo 'rustc: unknown'); $(valgrind --version)"
} >"$RESULTS_FILE"

cat "$RESULTS_FILE"
log "wrote $RESULTS_FILE"
