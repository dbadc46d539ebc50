#!/usr/bin/env bash
# bench/idle.sh — impulse's memory with many idle connections (issue 4: 10,000 < 160 MB).
#
# Starts `impulse serve` (release build, durable spool in a temp dir) on a spare 127.0.0.1
# port, opens IDLE_COUNT connections to it (bench/idle_clients.py: each reads its 220 banner,
# then sends nothing), reads the server's VmRSS and VmHWM from /proc, closes them all and
# stops the server. Loopback only; bounded (IDLE_COUNT <= 50,000, 180 s for the clients).
#
# Environment:
#   IDLE_COUNT=N      connections (default 10000)
#   BENCH_NO_BUILD=1  use the existing target/release/impulse without `cargo build --release`
#   BENCH_KEEP=1      keep the temp dir (server log, spool)

set -uo pipefail
. "$(dirname "$0")/lib.sh"

COUNT=${IDLE_COUNT:-10000}
command -v python3 >/dev/null || { say "python3 is missing"; exit 2; }
build_impulse || { say "cannot build impulse"; exit 2; }

# The server and the clients each hold COUNT descriptors.
raise_nofile $((COUNT + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((COUNT + 200)) ]; then
    say "open-file limit $(ulimit -n) is too low for $COUNT connections (hard limit $(ulimit -Hn))"
    exit 2
fi

WORK=$(mktemp -d /tmp/impulse-idle.XXXXXX)
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then
        kill -TERM "$SERVER" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER" 2>/dev/null
        wait "$SERVER" 2>/dev/null
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(free_port)
write_impulse_config "$WORK/impulse.toml" "$PORT" "$WORK/spool"
# info logging costs two lines per connection; warn keeps the log small for 10,000 of them.
RUST_LOG=${RUST_LOG:-warn} "$IMPULSE" serve --config "$WORK/impulse.toml" 2>"$WORK/log" &
SERVER=$!
wait_port "$PORT" 30 || { say "impulse did not start: $(tail -5 "$WORK/log")"; exit 1; }

echo "impulse idle-connection memory — $(date -u '+%Y-%m-%d %H:%M:%S UTC')," \
    "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server pid $SERVER on 127.0.0.1:$PORT, open-file limit $(ulimit -n)"
python3 "$BENCH_DIR/idle_clients.py" --host 127.0.0.1 --port "$PORT" --count "$COUNT" \
    --pid "$SERVER" --hold 2 --timeout 180 | tee "$WORK/result"
rc=${PIPESTATUS[0]}
rss=$(sed -n 's/.*rss_kib=\([0-9]*\).*/\1/p' "$WORK/result")
if [ -n "$rss" ]; then
    verdict=missed
    [ "$rss" -lt $((160 * 1024)) ] && verdict=met
    echo "target: $COUNT idle connections < 160 MiB: $verdict ($(mib "$rss") MiB)"
fi
exit "$rc"
