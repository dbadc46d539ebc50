#!/usr/bin/env bash
# bench/relay_deferred.sh — impulse with 100,000 deferred messages: memory, and a restart.
#
# `impulse serve` (release build, durable spool in a temp dir) relays example.net to a
# closed 127.0.0.1 port (connection refused: each attempt defers and the next hop is marked
# down). smtp-source puts 100,000 small messages in its queue; once the relay has settled
# (its log and RSS still for 3 s) the script reads impulse's VmRSS and VmHWM, the spool's size
# and the queue's statuses (`impulse queue summary`), then kills the server with SIGKILL,
# starts it again on the same spool, and measures
#   banner   the time from the restart until 127.0.0.1:PORT answers 220 (polled every 10 ms)
#   reload   the time until the log says "queued messages reloaded" (the relay has every
#            message and its state record again)
# and the RSS after the reload. Targets (issue 11): RSS < 256 MB with 100,000 deferred
# messages; serving again within 5 s of a restart.
#
# Environment:
#   BENCH_SCALE=N     divide the message count by N (smoke test; default 1 = 100,000)
#   BENCH_TIMEOUT=S   give up on smtp-source after S seconds (default 600) and on the settling
#                     or the reload after S seconds
#   BENCH_NO_BUILD=1  use the existing release binary (CARGO_TARGET_DIR or target/)
#   BENCH_FS=loop     put the work dir (spool, logs) on a fresh 8 GiB (sparse)
#                     journalled ext4 image, loop-mounted (root); default: a temp dir under /tmp
#   BENCH_KEEP=1      keep the temp dir (spool, logs)
#   RUST_LOG          impulse's log level (default info, to a file)
#
# Needs: cargo, python3, smtp-source (Debian: apt-get install postfix). Disk: about 1 GiB at the
# default count (two files of 4 KiB blocks per message), removed on exit. Loopback only; every
# process started here is stopped on exit.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

SCALE=${BENCH_SCALE:-1}
TMO=${BENCH_TIMEOUT:-600}
COUNT=$((100000 / SCALE))
SIZE=1024
FROM=bench-sender@example.com
RCPT=bench-rcpt@example.net
HELO=bench-client.example.com

missing=()
SMTP_SOURCE=$(find_tool smtp-source) || missing+=("smtp-source (apt-get install postfix)")
command -v python3 >/dev/null || missing+=("python3")
command -v timeout >/dev/null || missing+=("timeout (coreutils)")
if [ ${#missing[@]} -gt 0 ]; then
    say "missing tools: ${missing[*]}"
    exit 2
fi
[ "$COUNT" -ge 1 ] || { say "BENCH_SCALE leaves no message"; exit 2; }
build_impulse || { say "cannot build impulse"; exit 2; }

raise_nofile 65536
WORK=$(mktemp -d /tmp/impulse-deferred-bench.XXXXXX)
if [ "${BENCH_FS:-}" = loop ] && ! loop_fs_mount "$WORK"; then
    rmdir "$WORK"
    exit 2
fi
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then
        kill -TERM "$SERVER" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER" 2>/dev/null
        wait "$SERVER" 2>/dev/null
    fi
    if [ -n "$LOOP_IMG" ]; then
        loop_fs_umount "$WORK"
    elif [ "${BENCH_KEEP:-0}" = 1 ]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(free_port)
CLOSED=$(free_port) # nothing listens there: every connection is refused
CONF=$WORK/impulse.toml
SPOOL=$WORK/spool
relay_config "$CONF" "$PORT" "$SPOOL" "127.0.0.1:$CLOSED" 5m

start() { # LOG: starts impulse serve, its stderr to LOG
    RUST_LOG=${RUST_LOG:-info} "$IMPULSE" serve --config "$CONF" 2>"$1" &
    SERVER=$!
}

# settle LOG: until LOG and the server's VmRSS have not changed for 3 s (at most TMO s).
settle() {
    local last="" now i stable=0
    for ((i = 0; i < TMO * 2; i++)); do
        now="$(stat -c %s "$1" 2>/dev/null) $(mem_kib "$SERVER" VmRSS)"
        if [ "$now" = "$last" ]; then
            stable=$((stable + 1))
            [ "$stable" -ge 6 ] && return 0
        else
            stable=0
        fi
        last=$now
        sleep 0.5
    done
    return 1
}

# statuses: recipients by status, from `impulse queue list --json` (through the control socket)
statuses() {
    timeout 120 "$IMPULSE" queue list --json --spool "$SPOOL" 2>/dev/null | python3 -c '
import collections, json, sys
try:
    msgs = json.load(sys.stdin)
except ValueError:
    print("(queue list gave no JSON)"); sys.exit(0)
c = collections.Counter(r["status"] for m in msgs for r in m["recipients"])
print(len(msgs), "messages;", ", ".join(f"{k} {v}" for k, v in sorted(c.items())))'
}

say "impulse deferred-queue benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "work dir: $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2 " " $1}')$([ -n "$LOOP_IMG" ] && echo ", fresh loop-mounted image")); impulse on 127.0.0.1:$PORT, next hop 127.0.0.1:$CLOSED (closed)"

start "$WORK/log.1"
wait_port "$PORT" 30 || { say "impulse did not start: $(tail -5 "$WORK/log.1")"; exit 1; }
rss0=$(mem_kib "$SERVER" VmRSS)

# ---------------------------------------------------------------- fill the queue
say "queueing $COUNT messages of $SIZE bytes: smtp-source -d -s 20 -m $COUNT -l $SIZE"
t0=$(date +%s.%N)
timeout "$TMO" "$SMTP_SOURCE" -d -s 20 -m "$COUNT" -l "$SIZE" -f "$FROM" -t "$RCPT" -M "$HELO" \
    "127.0.0.1:$PORT" >"$WORK/source.out" 2>&1
rc=$?
t1=$(date +%s.%N)
fails=0
[ $rc != 0 ] && { say "smtp-source exit $rc: $(head -c 300 "$WORK/source.out")"; fails=$((fails + 1)); }
say "  accepted in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s (%.0f msgs/s)", b - a, '"$COUNT"' / (b - a) }')"
settle "$WORK/log.1" || say "  the relay did not settle within ${TMO}s"
queued=$(find "$SPOOL/queue" -type f | wc -l)
records=$(find "$SPOOL/state" -type f 2>/dev/null | wc -l)
rss=$(mem_kib "$SERVER" VmRSS)
hwm=$(mem_kib "$SERVER" VmHWM)
disk=$(du -sk "$SPOOL" | cut -f1)
deferred_lines=$(grep -c 'status=deferred' "$WORK/log.1")
refused_lines=$(grep -c 'Connection refused' "$WORK/log.1")
st=$(statuses)
threads=$(thread_cpu "$SERVER" | awk -v m="$COUNT" '$2 > 0 { printf "  %-18s %7d ms %6.0f us/msg  (%d)\n", $1, $2, $2 * 1000 / m, $3 }')
[ "$queued" != "$COUNT" ] && { say "  NOTE: $queued messages in queue/, $COUNT sent"; fails=$((fails + 1)); }

# ---------------------------------------------------------------- kill -9 and restart
kill -KILL "$SERVER"
wait "$SERVER" 2>/dev/null
SERVER=""
tk=$(date +%s.%N)
start "$WORK/log.2"
tb=$(wait_banner "$PORT" "$TMO") || { say "impulse did not answer after the restart: $(tail -5 "$WORK/log.2")"; exit 1; }
rss_banner=$(mem_kib "$SERVER" VmRSS)
tr=$(wait_log "$WORK/log.2" "queued messages reloaded" "$TMO") || tr=""
rss_reload=$(mem_kib "$SERVER" VmRSS)
settle "$WORK/log.2" || true
rss_after=$(mem_kib "$SERVER" VmRSS)
hwm_after=$(mem_kib "$SERVER" VmHWM)
reloaded=$(grep -o '[0-9]* queued messages reloaded' "$WORK/log.2" | head -1)

# ---------------------------------------------------------------- report
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
echo ""
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo ""
echo "$COUNT messages of $SIZE bytes queued for a refusing next hop:"
echo "  spool: $queued in queue/, $records state records, $(mib "$disk") MiB on disk"
echo "  queue list: $st"
echo "  log: $deferred_lines status=deferred lines, $refused_lines lines saying Connection refused (the next hop is marked down after the first: the others wait, pending, no attempt counted)"
echo "  impulse VmRSS $(mib "$rss") MiB (VmHWM $(mib "$hwm") MiB; $(mib "$rss0") MiB before any message)  (target < 256 MB)"
echo "  impulse CPU by thread while queueing (ms, us per message, threads):"
echo "$threads"
echo "kill -9 and restart on the same spool:"
echo "  banner answered after $(secs "$tk" "$tb") s  (target < 5 s)"
if [ -n "$tr" ]; then
    echo "  \"$reloaded\" after $(secs "$tk" "$tr") s"
else
    echo "  no \"queued messages reloaded\" line within ${TMO}s"
    fails=$((fails + 1))
fi
echo "  VmRSS at the banner $(mib "$rss_banner") MiB, at the reload $(mib "$rss_reload") MiB," \
    "settled $(mib "$rss_after") MiB (VmHWM $(mib "$hwm_after") MiB)"
exit $((fails > 0))
