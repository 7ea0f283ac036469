#!/usr/bin/env bash
# Checks the Prometheus exposition of running shop processes: fetches each base URL's
# `/metrics` as a plain scraper would (no OpenMetrics in Accept, so the text format 0.0.4)
# and runs `promtool check metrics` on it, which fails on a family without HELP or TYPE,
# a counter without `_total`, and the other Prometheus naming rules. Installs Debian's
# `prometheus` package (it provides promtool) when promtool is missing.
#
#   SHOPLAB_METRICS_TOKEN=... bash .ci/promtool.sh http://127.0.0.1:8080 http://127.0.0.1:4101 ...
#
# `/metrics` needs the processes' metrics token as a bearer token: SHOPLAB_METRICS_TOKEN
# (the read-only one a scraper holds; the admin token would open it too).
#
# Exits non-zero when any process does not answer or does not pass; names each one.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 BASE_URL [BASE_URL...]" >&2
  exit 2
fi

if [ -z "${SHOPLAB_METRICS_TOKEN:-}" ]; then
  echo "$0: set SHOPLAB_METRICS_TOKEN to the processes' metrics token (/metrics needs it)" >&2
  exit 2
fi

if ! command -v promtool >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi

failed=0
for base in "$@"; do
  url="${base%/}/metrics"
  if ! text="$(curl -fsS --max-time 10 -H "Authorization: Bearer $SHOPLAB_METRICS_TOKEN" "$url")"; then
    echo "FAIL $url: no answer"
    failed=1
    continue
  fi
  if problems="$(printf '%s\n' "$text" | promtool check metrics 2>&1)"; then
    echo "ok   $url"
  else
    echo "FAIL $url: promtool check metrics says:"
    printf '%s\n' "$problems" | sed 's/^/     /'
    failed=1
  fi
done
exit "$failed"
