#!/bin/sh
# A stand-in for kubectl in the kubernetes target's tests: it appends its arguments to
# `log` beside itself and answers from the files there, so a test can assert the exact
# commands the lab sent and give it the cluster's answers.
dir="$(dirname "$0")"
printf '%s\n' "$*" >> "$dir/log"
case "$*" in
  *" apply -f -")
    cat > "$dir/stdin" ;;
  *" port-forward "*)
    echo $$ > "$dir/forward.pid"
    for spec in "$@"; do
      case "$spec" in
        *:8080|*:8081)
          remote="${spec##*:}"
          echo "Forwarding from 127.0.0.1:$(cat "$dir/port.$remote") -> $remote"
          echo "Forwarding from [::1]:$(cat "$dir/port.$remote") -> $remote" ;;
      esac
    done
    # Stays up, as kubectl does, until the lab kills it by its PID.
    exec sleep 300 ;;
  *" get pods "*)
    calls=$(($(cat "$dir/get-pods.calls" 2>/dev/null || echo 0) + 1))
    echo "$calls" > "$dir/get-pods.calls"
    if [ -f "$dir/pods.$calls.json" ]; then cat "$dir/pods.$calls.json"; else cat "$dir/pods.json"; fi ;;
  *" get deployment "*)
    cat "$dir/deployment.json" ;;
  *" get job/"*)
    cat "$dir/job.json" ;;
  *" logs "*)
    cat "$dir/logs.${*##* }" ;;
  *" scale "*"--replicas=0")
    echo '{"items":[]}' > "$dir/pods.json" ;;
  *" scale "*)
    cp "$dir/pods.ready.json" "$dir/pods.json" ;;
  *" set env "*)
    touch "$dir/bad-release" ;;
  *" rollout undo "*)
    rm -f "$dir/bad-release" ;;
  *" rollout status "*)
    if [ -f "$dir/bad-release" ]; then
      echo 'error: timed out waiting for the condition' >&2
      exit 1
    fi ;;
  *" fail")
    echo 'error: the server is on fire' >&2
    exit 3 ;;
  *" hang")
    exec sleep 30 ;;
esac
exit 0
