#!/usr/bin/env bash
# Instructions per call of one implementation of the echo bench, counted by callgrind: the
# figure that stays put when the machine is noisy (calls/s here varies by ±10% run to run).
# The client and the server each run under valgrind, twice (a short and a long run), and
# the difference between the runs divided by the difference in calls is the cost of one
# call, without the set-up (handshake, certificates) that both runs share.
#
#   cargo build --release -p rpcnet-bench
#   bash rpcnet-bench/instructions.sh rpcnet 64 64      # impl, payload bytes, concurrency
set -euo pipefail
impl=${1:?impl (quinn, rpcnet, rpcnet-deadline, rpcnet-vec, typed, balanced1)}
payload=${2:-64}
concurrency=${3:-64}
short=${SHORT:-2}
long=${LONG:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/target/release/rpcnet-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bench" write-certs "$work/certs"

# Prints "calls client_instructions server_instructions" for a run of $1 seconds.
run() {
  local seconds=$1 out=$work/run-$1
  taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out.server" \
    "$bench" serve --implementation "$impl" --cert-dir "$work/certs" >"$out.listen" 2>/dev/null &
  local server=$!
  for _ in $(seq 300); do grep -q LISTENING "$out.listen" 2>/dev/null && break; sleep 0.1; done
  local addr
  addr=$(sed 's/LISTENING //' "$out.listen" | head -1)
  taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out.client" \
    "$bench" client --implementation "$impl" --addr "$addr" --cert-dir "$work/certs" \
    --payload "$payload" --concurrency "$concurrency" --duration "$seconds" --warmup 0.01 \
    >"$out.result" 2>/dev/null
  # SIGTERM, not SIGINT: a background job of a script ignores SIGINT; valgrind still writes
  # its counts when the process dies of SIGTERM.
  kill -TERM "$server"; wait "$server" 2>/dev/null || true
  local calls client server_ir
  calls=$(grep -o 'calls=[0-9]*' "$out.result" | cut -d= -f2)
  client=$(grep -hE '^(summary|totals):' "$out.client" | head -1 | awk '{print $2}')
  server_ir=$(grep -hE '^(summary|totals):' "$out.server" | head -1 | awk '{print $2}')
  echo "$calls $client $server_ir"
}

read -r c1 i1 s1 < <(run "$short")
read -r c2 i2 s2 < <(run "$long")
calls=$((c2 - c1))
echo "$impl, $payload B x $concurrency: $(( (i2 - i1) / calls )) client + $(( (s2 - s1) / calls )) server = $(( (i2 - i1 + s2 - s1) / calls )) instructions per call (from $c1 and $c2 calls)"
