#!/usr/bin/env bash
# bench/relay.sh — end-to-end relay throughput of impulse against Postfix, in one run.
#
# One counting smtp-sink (`smtp-sink -c`) on a spare 127.0.0.1 port is the next hop of both:
#   impulse   `impulse serve` (release build), durable spool in a temp dir, a [relay] table
#             routing example.net to the sink (tls = "none", retry every "1s")
#   postfix   a private Postfix (master, smtpd, cleanup, qmgr, smtp) with its own config and
#             queue in a temp dir, `relayhost = [127.0.0.1]:SINK`, no DNS, default concurrency
# The same smtp-source load goes to each, one after the other (the order alternates between
# rounds). End-to-end msgs/s = the messages the sink counted for that server ÷ the time from
# smtp-source's start to the sink's last count; the script also prints the accepting rate
# (messages ÷ smtp-source's own run time), checks that each queue drains, and gives impulse's
# peak RSS and both servers' CPU per message.
#
# Load: smtp-source -d -s 20 -m 20000 -l 4096 (20 sessions reused, 4 KiB messages).
#
# Environment:
#   BENCH_SCALE=N     divide the message count by N (smoke test; default 1)
#   BENCH_ROUNDS=N    rounds, the servers' order alternating (default 1; at most 5); medians
#   BENCH_TIMEOUT=S   give up on one smtp-source run after S seconds (default 300), and on a
#                     delivery that made no progress for 60 s
#   BENCH_NO_BUILD=1  use the existing release binary (CARGO_TARGET_DIR or target/)
#   BENCH_FS=loop     put the work dir (spools, Postfix's queue, logs) on a fresh 8 GiB (sparse)
#                     journalled ext4 image, loop-mounted (root); default: a temp dir under /tmp
#   BENCH_KEEP=1      keep the temp dir (spool, logs, Postfix's queue and maillog)
#   BENCH_SERVERS     space-separated subset of: impulse postfix
#   RUST_LOG          impulse's log level (default info: one line per delivery, to a file)
#
# Needs: cargo, python3, smtp-source and smtp-sink (Debian: apt-get install postfix), and for
# the Postfix column root and the postfix user/postdrop group that the package creates.
# Bounded: at most 20,000 messages per server and round; every process started here is
# stopped on exit; loopback only.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

SCALE=${BENCH_SCALE:-1}
TMO=${BENCH_TIMEOUT:-300}
ROUNDS=${BENCH_ROUNDS:-1}
SERVERS=${BENCH_SERVERS:-impulse postfix}
STALL=60
FROM=bench-sender@example.com
RCPT=bench-rcpt@example.net
HELO=bench-client.example.com
COUNT=$((20000 / SCALE))
LOAD=(-d -s 20 -m "$COUNT" -l 4096)

missing=()
SMTP_SOURCE=$(find_tool smtp-source) || missing+=("smtp-source (apt-get install postfix)")
SMTP_SINK=$(find_tool smtp-sink) || missing+=("smtp-sink (apt-get install postfix)")
command -v python3 >/dev/null || missing+=("python3")
command -v timeout >/dev/null || missing+=("timeout (coreutils)")
if [ ${#missing[@]} -gt 0 ]; then
    say "missing tools: ${missing[*]}"
    say "on Debian/Ubuntu: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix python3"
    exit 2
fi
case $ROUNDS in [1-5]) ;; *) say "BENCH_ROUNDS must be 1..5"; exit 2 ;; esac
[ "$COUNT" -ge 1 ] || { say "BENCH_SCALE leaves no message"; exit 2; }
build_impulse || { say "cannot build impulse"; exit 2; }

raise_nofile 65536
WORK=$(mktemp -d /tmp/impulse-relay-bench.XXXXXX)
if [ "${BENCH_FS:-}" = loop ] && ! loop_fs_mount "$WORK"; then
    rmdir "$WORK"
    exit 2
fi
chmod 755 "$WORK" # Postfix's unprivileged daemons must reach their queue directory
PIDS=()
POSTFIX_DIR=""

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    [ -n "$POSTFIX_DIR" ] && postfix_stop "$POSTFIX_DIR"
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
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

# ---------------------------------------------------------------- the sink and the servers
SINK_PORT=$(free_port)
SINK_OUT=$WORK/smtp-sink.count
user_args=()
[ "$(id -u)" = 0 ] && user_args=(-u nobody) # smtp-sink refuses to run as root without -u
"$SMTP_SINK" "${user_args[@]}" -c "127.0.0.1:$SINK_PORT" 1024 >"$SINK_OUT" 2>"$WORK/smtp-sink.log" &
PIDS+=("$!")
wait_port "$SINK_PORT" 10 || { say "smtp-sink did not start: $(cat "$WORK/smtp-sink.log")"; exit 2; }

declare -A PORT CPU_PID
IMPULSE_PID=""
ACTIVE=()
for s in $SERVERS; do
    case $s in
        impulse)
            PORT[impulse]=$(free_port)
            mkdir -p "$WORK/impulse"
            relay_config "$WORK/impulse/impulse.toml" "${PORT[impulse]}" "$WORK/impulse/spool" \
                "127.0.0.1:$SINK_PORT" 1s
            RUST_LOG=${RUST_LOG:-info} "$IMPULSE" serve --config "$WORK/impulse/impulse.toml" \
                2>"$WORK/impulse/log" &
            IMPULSE_PID=$!
            PIDS+=("$!")
            CPU_PID[impulse]=$IMPULSE_PID
            if wait_port "${PORT[impulse]}" 30; then
                ACTIVE+=(impulse)
            else
                say "impulse did not start: $(tail -5 "$WORK/impulse/log")"
            fi
            ;;
        postfix)
            why=$(postfix_unavailable)
            if [ -n "$why" ]; then
                loud "POSTFIX CANNOT BE STARTED: $why" "the postfix column is skipped; the rest still runs"
                continue
            fi
            PORT[postfix]=$(free_port)
            POSTFIX_DIR=$WORK/postfix
            if postfix_start "$POSTFIX_DIR" "${PORT[postfix]}" "# Relay everything to the sink.
relayhost = [127.0.0.1]:$SINK_PORT"; then
                CPU_PID[postfix]=$(postfix_master_pid "$POSTFIX_DIR")
                ACTIVE+=(postfix)
            else
                loud "the postfix column is skipped; the rest still runs"
            fi
            ;;
        *) say "unknown server $s" ;;
    esac
done
[ ${#ACTIVE[@]} -gt 0 ] || { say "no server could be started"; exit 1; }

# queued NAME: messages still in the server's queue.
queued() {
    case $1 in
        impulse) find "$WORK/impulse/spool/queue" -type f 2>/dev/null | wc -l ;;
        postfix) postfix_queued "$POSTFIX_DIR" ;;
    esac
}

say "impulse relay benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "postfix: Postfix $(postconf -d -h mail_version 2>/dev/null || echo '?'); impulse: $IMPULSE"
say "work dir: $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2 " " $1}')$([ -n "$LOOP_IMG" ] && echo ", fresh loop-mounted image"))"
say "sink: smtp-sink -c on 127.0.0.1:$SINK_PORT"
for s in "${ACTIVE[@]}"; do say "  $s on 127.0.0.1:${PORT[$s]}"; done

# ---------------------------------------------------------------- run
declare -A E2E ACC CPU NOTE
HWM=""
for round in $(seq "$ROUNDS"); do
    order=("${ACTIVE[@]}")
    if [ $((round % 2)) = 0 ]; then
        order=()
        for ((k = ${#ACTIVE[@]} - 1; k >= 0; k--)); do order+=("${ACTIVE[$k]}"); done
    fi
    say ""
    say "== round $round/$ROUNDS: smtp-source ${LOAD[*]} (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for s in "${order[@]}"; do
        base=$(sink_count "$SINK_OUT")
        cpu0=$(cpu_ms "${CPU_PID[$s]}")
        t0=$(date +%s.%N)
        timeout "$TMO" "$SMTP_SOURCE" "${LOAD[@]}" -f "$FROM" -t "$RCPT" -M "$HELO" \
            "127.0.0.1:${PORT[$s]}" >"$WORK/source-$s-$round.out" 2>&1
        rc=$?
        t1=$(date +%s.%N)
        read -r got tlast < <(sink_wait "$SINK_OUT" $((base + COUNT)) "$STALL")
        delivered=$((got - base))
        cpu1=$(cpu_ms "${CPU_PID[$s]}")
        # the queue drains: removals may trail the last delivery a little
        left=$(queued "$s")
        for _ in $(seq 100); do
            [ "$left" = 0 ] && break
            sleep 0.1
            left=$(queued "$s")
        done
        note=""
        [ $rc = 124 ] && note="smtp-source TIMEOUT after ${TMO}s;"
        [ $rc != 0 ] && [ $rc != 124 ] && note="smtp-source exit $rc: $(head -c 200 "$WORK/source-$s-$round.out");"
        [ $rc = 0 ] && [ -s "$WORK/source-$s-$round.out" ] && note="smtp-source said: $(head -c 200 "$WORK/source-$s-$round.out");"
        [ "$delivered" != "$COUNT" ] && note="$note the sink counted $delivered of $COUNT (no progress for ${STALL}s);"
        [ "$left" != 0 ] && note="$note $left messages still queued 10 s after the last delivery;"
        e2e=$(awk -v m="$delivered" -v a="$t0" -v b="$tlast" 'BEGIN { printf "%.0f", m / (b - a) }')
        acc=$(awk -v m="$COUNT" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", m / (b - a) }')
        cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v m="$COUNT" 'BEGIN { printf "%.0f", (b - a) * 1000 / m }')
        E2E[$s]+=" $e2e"
        ACC[$s]+=" $acc"
        CPU[$s]+=" $cpu"
        [ -n "$note" ] && NOTE[$s]+="[round $round] $note "
        extra=""
        if [ "$s" = impulse ]; then
            HWM=$(mem_kib "$IMPULSE_PID" VmHWM)
            extra=", VmHWM $(mib "$HWM") MiB"
        fi
        say "   $(printf '%-8s end to end %6s msgs/s (%s delivered in %.3f s); accepting %6s msgs/s (%.3f s); queue left %s; server CPU %s us/msg%s %s' \
            "$s" "$e2e" "$delivered" "$(awk -v a="$t0" -v b="$tlast" 'BEGIN { print b - a }')" \
            "$acc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$left" "$cpu" "$extra" "$note")"
    done
done

# ---------------------------------------------------------------- report
median() { # numbers -> their median (the lower middle one for an even count)
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
ratio() {
    if [ -n "${1:-}" ] && [ -n "${2:-}" ] && [ "$2" != 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo "n/a"
    fi
}
# shellcheck disable=SC2086
{
    ie=$(median ${E2E[impulse]:-}); pe=$(median ${E2E[postfix]:-})
    ia=$(median ${ACC[impulse]:-}); pa=$(median ${ACC[postfix]:-})
    ic=$(median ${CPU[impulse]:-}); pc=$(median ${CPU[postfix]:-})
}
echo ""
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo ""
echo "$COUNT messages of 4 KiB, smtp-source -d -s 20, one smtp-sink as the next hop$([ "$ROUNDS" -gt 1 ] && echo " (medians of $ROUNDS rounds)"):"
printf '| %-26s | %9s | %9s | %8s |\n' "" impulse postfix "imp/pfx"
printf '|%s|\n' "----------------------------|-----------|-----------|----------"
printf '| %-26s | %9s | %9s | %8s |\n' "end to end (msgs/s)" "${ie:-n/a}" "${pe:-n/a}" "$(ratio "$ie" "$pe")"
printf '| %-26s | %9s | %9s | %8s |\n' "accepting (msgs/s)" "${ia:-n/a}" "${pa:-n/a}" "$(ratio "$ia" "$pa")"
printf '| %-26s | %9s | %9s | %8s |\n' "server CPU (us/msg)" "${ic:-n/a}" "${pc:-n/a}" "$(ratio "$ic" "$pc")"
echo "(end-to-end target: impulse >= 3x postfix; every queue drains)"
[ -n "$HWM" ] && echo "impulse peak RSS (VmHWM) after the last run: $(mib "$HWM") MiB"
if [ -n "$IMPULSE_PID" ]; then
    total=0
    [ -n "${E2E[impulse]:-}" ] && total=$((ROUNDS * COUNT))
    echo "impulse CPU by thread over all rounds (ms, us per message, threads):"
    thread_cpu "$IMPULSE_PID" | awk -v m="$total" '$2 > 0 { printf "  %-18s %7d ms %6.0f us/msg  (%d)\n", $1, $2, m ? $2 * 1000 / m : 0, $3 }'
fi
fails=0
for k in "${!NOTE[@]}"; do
    echo "NOTE $k: ${NOTE[$k]}"
    fails=$((fails + 1))
done
exit $((fails > 0))
