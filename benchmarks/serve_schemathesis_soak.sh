#!/usr/bin/env bash
# Schemathesis against a real `sketchrec serve` on loopback for a fixed time (issue 28: no 5xx in
# ten minutes). Every check, 100 examples per operation and run, seeds 1, 2, ... until time is up.
#   bash benchmarks/serve_schemathesis_soak.sh BUNDLE [SECONDS=600] [PORT=8931]
# Prints one line per seed; each run's report is in $out/run_SEED.log. Any 5xx fails the
# not_a_server_error check and shows as a finding there.
set -u
bundle=$1; seconds=${2:-600}; port=${3:-8931}
cd "$(dirname "$0")/.."
out=$(mktemp -d); key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'); echo "$key" > "$out/key"
.venv/bin/sketchrec serve "$bundle" --port "$port" --api-key-file "$out/key" > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 1; done
end=$(( $(date +%s) + seconds )); seed=1
while [ "$(date +%s)" -lt "$end" ]; do
  timeout "$(( end - $(date +%s) ))" .venv/bin/schemathesis run "http://127.0.0.1:$port/openapi.json" \
    -H "X-API-Key: $key" --seed "$seed" -n 100 --continue-on-failure > "$out/run_$seed.log" 2>&1
  echo "seed $seed: $(grep -E 'passed|failed' "$out/run_$seed.log" | tail -1 | tr -s ' ')"
  seed=$((seed + 1))
done
echo "cases: $(grep -h generated "$out"/run_*.log | awk '{s += $1} END {print s}'); findings by kind:"
grep -h '^- [A-Z]' "$out"/run_*.log | sort | uniq -c
echo "reports in $out"
