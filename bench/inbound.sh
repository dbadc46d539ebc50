#!/usr/bin/env bash
# bench/inbound.sh — inbound throughput of impulse against Postfix, in one run.
#
# The same smtp-source loads (issue 4) go, one server after the other, to four servers on
# spare 127.0.0.1 ports:
#   impulse          `impulse serve` (release build), durable spool in a temp dir
#   impulse-discard  `impulse serve --discard`: accepts and drops every message
#   smtp-sink        Postfix's smtp-sink test server (writes nothing)
#   postfix-hold     a real Postfix (master, smtpd, cleanup) set up here with its own config
#                    and queue directories in a temp dir; every message goes to its HOLD queue
# and prints msgs/s, the ratios against Postfix and smtp-sink, and impulse's peak RSS.
#
# With impulse among the servers, each round also runs `commit_ceiling` (an example of the
# smtp-server crate) in the same work dir: 20 threads committing 4,400-byte messages with
# the spool's protocol (create in tmp/, write, fdatasync, rename, shared fsync of queue/) and
# no SMTP at all — the most that any server keeping that protocol can do on this disk with
# 20 sessions, printed beside the durable figures.
#
# Loads (smtp-source, 20 parallel sessions):
#   -d -s 20 -m 20000 -l 4096     4 KiB messages, sessions reused
#   -s 20 -m 5000 -l 4096         4 KiB messages, one connection per message
#   -d -s 20 -m 2000 -l 102400    100 KiB messages, sessions reused
#
# Environment:
#   BENCH_SCALE=N     divide every message count by N (smoke test; default 1 = the issue's loads)
#   BENCH_ROUNDS=N    run the three loads N times (servers interleaved) and report medians
#                     (default 1; at most 5)
#   BENCH_TIMEOUT=S   give up on one smtp-source run after S seconds (default 300)
#   BENCH_NO_BUILD=1  use the existing target/release/impulse without `cargo build --release`
#   BENCH_FS=loop     put spools, Postfix's queue and logs on a fresh 8 GiB (sparse) journalled
#                     ext4 image, loop-mounted (root); default: a temp dir under /tmp
#   BENCH_KEEP=1      keep the temp dir (spools, logs, Postfix queue) for inspection
#   BENCH_SERVERS     space-separated subset of: impulse impulse-discard smtp-sink postfix-hold
#   RUST_LOG          impulse's log level (default info, as an operator runs it; to a file)
#
# Needs: cargo, python3, smtp-source and smtp-sink (Debian: apt-get install postfix), and for
# the Postfix column root and the postfix user/postdrop group that the package creates.
# Bounded: at most 27,000 messages per server and round, each run under BENCH_TIMEOUT; every process
# started here is stopped on exit. Loopback only.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

SCALE=${BENCH_SCALE:-1}
TMO=${BENCH_TIMEOUT:-300}
SERVERS=${BENCH_SERVERS:-impulse impulse-discard smtp-sink postfix-hold}
ROUNDS=${BENCH_ROUNDS:-1}
FROM=bench-sender@example.com
RCPT=bench-rcpt@example.net
HELO=bench-client.example.com

LOAD_NAMES=("4k-reuse" "4k-conn/msg" "100k-reuse")
LOAD_ARGS=("-d -s 20 -m 20000 -l 4096" "-s 20 -m 5000 -l 4096" "-d -s 20 -m 2000 -l 102400")

# ---------------------------------------------------------------- tools
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
build_impulse || { say "cannot build impulse"; exit 2; }
case " $SERVERS " in *" impulse "*)
    build_ceiling || { say "cannot build the commit_ceiling example"; exit 2; } ;;
esac

raise_nofile 65536
WORK=$(mktemp -d /tmp/impulse-bench.XXXXXX)
PIDS=()
POSTFIX_CONF=""
IMG=""
if [ "${BENCH_FS:-}" = loop ]; then
    # A fresh journalled ext4 (mkfs defaults) on a loop device, mounted on the work dir: the
    # same file system for every run, with no other process's files and no recently deleted
    # inodes (see docs/BENCHMARKS.md).
    IMG=$(mktemp /tmp/impulse-bench-fs.XXXXXX)
    if ! { truncate -s 8G "$IMG" && mkfs.ext4 -q -F "$IMG" && mount -o loop "$IMG" "$WORK"; }; then
        say "BENCH_FS=loop: cannot make or mount an ext4 image (needs root, mkfs.ext4, loop devices)"
        rm -f "$IMG"
        rmdir "$WORK"
        exit 2
    fi
fi
chmod 755 "$WORK" # Postfix's unprivileged daemons must reach their queue directory

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    if [ -n "$POSTFIX_CONF" ]; then
        stop_postfix
    fi
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ -n "$IMG" ]; then
        umount "$WORK" 2>/dev/null || { sleep 1; umount "$WORK"; }
        rm -f "$IMG"
        rmdir "$WORK"
    elif [ "${BENCH_KEEP:-0}" = 1 ]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- servers
declare -A PORT PID IMPULSE_PID CPU_PID

start_impulse() { # NAME EXTRA-ARGS...
    local name=$1
    shift
    local port
    port=$(free_port)
    mkdir -p "$WORK/$name"
    write_impulse_config "$WORK/$name/impulse.toml" "$port" "$WORK/$name/spool"
    RUST_LOG=${RUST_LOG:-info} "$IMPULSE" serve --config "$WORK/$name/impulse.toml" "$@" \
        2>"$WORK/$name/log" &
    PID[$name]=$!
    IMPULSE_PID[$name]=$!
    CPU_PID[$name]=$!
    PIDS+=("$!")
    PORT[$name]=$port
    wait_port "$port" 30 || { say "$name did not start: $(tail -5 "$WORK/$name/log")"; return 1; }
}

start_sink() {
    local port user_args=()
    port=$(free_port)
    [ "$(id -u)" = 0 ] && user_args=(-u nobody) # smtp-sink refuses to run as root without -u
    "$SMTP_SINK" "${user_args[@]}" "127.0.0.1:$port" 1024 2>"$WORK/smtp-sink.log" &
    PID[smtp-sink]=$!
    CPU_PID[smtp-sink]=$!
    PIDS+=("$!")
    PORT[smtp-sink]=$port
    wait_port "$port" 10 || { say "smtp-sink did not start: $(cat "$WORK/smtp-sink.log")"; return 1; }
}

# A private Postfix instance (lib.sh's postfix_start): own main.cf/master.cf, queue and data
# directories under $WORK, smtpd on 127.0.0.1:PORT only, every message put on HOLD (cleanup
# writes it to queue/hold/ and fsyncs it before smtpd answers 250; nothing is delivered).
start_postfix() {
    local why port dir=$WORK/postfix
    why=$(postfix_unavailable)
    if [ -n "$why" ]; then
        loud "POSTFIX SMTPD CANNOT BE STARTED: $why" "the postfix-hold column is skipped; the rest still runs"
        return 1
    fi
    port=$(free_port)
    POSTFIX_CONF=$dir/conf
    if ! postfix_start "$dir" "$port" "# Keep every message: the HOLD action of an access table that matches every client.
smtpd_client_restrictions = check_client_access static:HOLD
# Nothing is ever delivered here, so arrival must not wait for delivery tokens.
in_flow_delay = 0"; then
        loud "the postfix-hold column is skipped; the rest still runs"
        return 1
    fi
    PORT[postfix-hold]=$port
    CPU_PID[postfix-hold]=$(postfix_master_pid "$dir")
}

stop_postfix() {
    postfix_stop "$WORK/postfix"
    POSTFIX_CONF=""
}

# Messages each server has kept so far (for the check that every message was accepted).
stored() {
    case $1 in
        impulse) find "$WORK/impulse/spool/queue" -type f 2>/dev/null | wc -l ;;
        postfix-hold) find "$WORK/postfix/queue/hold" -type f 2>/dev/null | wc -l ;;
        *) echo 0 ;;
    esac
}

# ---------------------------------------------------------------- run
say "impulse inbound benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
say "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "postfix tools: $SMTP_SOURCE (Postfix $(postconf -d -h mail_version 2>/dev/null || echo '?')); impulse: $IMPULSE"
say "work dir: $WORK (spools on $(df -T "$WORK" | awk 'NR==2 {print $2 " " $1}')$([ -n "$IMG" ] && echo ", fresh loop-mounted image"))"

ACTIVE=()
for s in $SERVERS; do
    case $s in
        impulse) start_impulse impulse && ACTIVE+=(impulse) ;;
        impulse-discard) start_impulse impulse-discard --discard && ACTIVE+=(impulse-discard) ;;
        smtp-sink) start_sink && ACTIVE+=(smtp-sink) ;;
        postfix-hold) start_postfix && ACTIVE+=(postfix-hold) ;;
        *) say "unknown server $s" ;;
    esac
done
dev=$(df "$WORK" | awk 'NR==2 {print $1}')
if [ -r "/sys/fs/ext4/${dev##*/}/journal_task" ]; then
    jt=$(cat "/sys/fs/ext4/${dev##*/}/journal_task")
    [ "$jt" = "<none>" ] && say "note: ext4 without a journal here: creating files right after many were deleted is slow (see docs/BENCHMARKS.md)"
fi
for s in "${ACTIVE[@]}"; do say "  $s on 127.0.0.1:${PORT[$s]}"; done
[ ${#ACTIVE[@]} -gt 0 ] || { say "no server could be started"; exit 1; }

declare -A RATE NOTE HWM CPU RATES CPUS
CEILINGS=""
for round in $(seq "$ROUNDS"); do
for i in "${!LOAD_NAMES[@]}"; do
    load=${LOAD_NAMES[$i]}
    # shellcheck disable=SC2206
    args=(${LOAD_ARGS[$i]})
    for j in "${!args[@]}"; do
        [ "${args[$j]}" = -m ] && args[j+1]=$((args[j + 1] / SCALE))
    done
    msgs=0
    for j in "${!args[@]}"; do [ "${args[$j]}" = -m ] && msgs=${args[j + 1]}; done
    say ""
    say "== round $round/$ROUNDS, load $load: smtp-source ${args[*]} (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for s in "${ACTIVE[@]}"; do
        before=$(stored "$s")
        cpu0=""
        [ -n "${CPU_PID[$s]:-}" ] && cpu0=$(cpu_ms "${CPU_PID[$s]}")
        t0=$(date +%s.%N)
        timeout "$TMO" "$SMTP_SOURCE" "${args[@]}" -f "$FROM" -t "$RCPT" -M "$HELO" \
            "127.0.0.1:${PORT[$s]}" >"$WORK/source-$s-$i.out" 2>&1
        rc=$?
        t1=$(date +%s.%N)
        after=$(stored "$s")
        cpu=""
        if [ -n "$cpu0" ]; then
            cpu1=$(cpu_ms "${CPU_PID[$s]}")
            cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v m="$msgs" 'BEGIN { printf "%.0f", (b - a) * 1000 / m }')
            CPUS[$s,$i]+=" $cpu"
        fi
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        rate=$(awk -v m="$msgs" -v t="$secs" 'BEGIN { printf "%.0f", m / t }')
        note=""
        [ $rc = 124 ] && note="TIMEOUT after ${TMO}s"
        [ $rc != 0 ] && [ $rc != 124 ] && note="smtp-source exit $rc: $(head -c 200 "$WORK/source-$s-$i.out")"
        [ -z "$note" ] && [ -s "$WORK/source-$s-$i.out" ] && note="smtp-source said: $(head -c 200 "$WORK/source-$s-$i.out")"
        case $s in impulse | postfix-hold)
            [ $((after - before)) != "$msgs" ] && note="$note stored $((after - before)) of $msgs" ;;
        esac
        RATES[$s,$i]+=" $rate"
        [ -n "$note" ] && NOTE[$s,$i]+="[round $round] $note "
        extra=""
        if [ -n "${IMPULSE_PID[$s]:-}" ]; then
            HWM[$s,$i]=$(mem_kib "${IMPULSE_PID[$s]}" VmHWM)
            extra=", impulse VmHWM $(mib "${HWM[$s,$i]}") MiB"
        fi
        say "   $(printf '%-16s %8s msgs/s  (%s msgs in %s s, server CPU %s us/msg%s) %s' "$s" "$rate" "$msgs" "$secs" "${cpu:-?}" "$extra" "$note")"
    done
done
if [ -n "${PORT[impulse]:-}" ]; then
    # The commit protocol alone, 20 committers (as smtp-source's 20 sessions), no SMTP.
    n=$((20000 / SCALE))
    line=$("$CEILING" "$WORK/ceiling-$round" 20 "$n" 4400 2>&1)
    c=$(echo "$line" | awk '/^commits\/s/ {print $2}')
    say "   $(printf '%-16s %8s commits/s (%s)' "commit ceiling" "${c:-?}" "$line")"
    [ -n "$c" ] && CEILINGS+=" $c"
fi
done

# ---------------------------------------------------------------- report
median() { # numbers -> their median (the lower middle one for an even count)
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
for k in "${!RATES[@]}"; do
    # shellcheck disable=SC2086
    RATE[$k]=$(median ${RATES[$k]})
done
for k in "${!CPUS[@]}"; do
    # shellcheck disable=SC2086
    CPU[$k]=$(median ${CPUS[$k]})
done
ratio() { # A B -> A/B with two decimals, or n/a
    if [ -n "${1:-}" ] && [ -n "${2:-}" ] && [ "$2" != 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo "n/a"
    fi
}
get() { echo "${RATE[$1,$2]:-}"; }

echo ""
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo ""
printf '| %-12s | %9s | %9s | %9s | %9s | %8s | %8s | %8s |\n' load impulse discard smtp-sink postfix \
    "imp/pfx" "imp/sink" "disc/sink"
printf '|%s|\n' "--------------|-----------|-----------|-----------|-----------|----------|----------|-----------"
for i in "${!LOAD_NAMES[@]}"; do
    imp=$(get impulse "$i")
    dis=$(get impulse-discard "$i")
    snk=$(get smtp-sink "$i")
    pfx=$(get postfix-hold "$i")
    printf '| %-12s | %9s | %9s | %9s | %9s | %8s | %8s | %9s |\n' "${LOAD_NAMES[$i]}" \
        "${imp:-n/a}" "${dis:-n/a}" "${snk:-n/a}" "${pfx:-n/a}" \
        "$(ratio "$imp" "$pfx")" "$(ratio "$imp" "$snk")" "$(ratio "$dis" "$snk")"
done
[ "$ROUNDS" -gt 1 ] && echo "(medians of $ROUNDS rounds; every round's figures are above)"
if [ -n "$CEILINGS" ]; then
    # shellcheck disable=SC2086
    ceil=$(median $CEILINGS)
    snk=$(get smtp-sink 0)
    echo "commit-protocol ceiling (commit_ceiling: 20 committers, 4,400 bytes, no SMTP): $ceil commits/s;" \
        "impulse durable 4k-reuse = $(ratio "$(get impulse 0)" "$ceil") of it; the ceiling ÷ smtp-sink = $(ratio "$ceil" "$snk")"
fi
echo "(msgs/s; imp/pfx target >= 3, imp/sink target >= 0.5, disc/sink target >= 1.0)"
echo ""
echo "server CPU time per message (user+system, microseconds; Postfix: master and its children):"
printf '| %-12s | %9s | %9s | %9s | %9s |\n' load impulse discard smtp-sink postfix
printf '|%s|\n' "--------------|-----------|-----------|-----------|-----------"
for i in "${!LOAD_NAMES[@]}"; do
    printf '| %-12s | %9s | %9s | %9s | %9s |\n' "${LOAD_NAMES[$i]}" "${CPU[impulse,$i]:-n/a}" \
        "${CPU[impulse-discard,$i]:-n/a}" "${CPU[smtp-sink,$i]:-n/a}" "${CPU[postfix-hold,$i]:-n/a}"
done
echo ""
for s in impulse impulse-discard; do
    [ -n "${HWM[$s,0]:-}" ] || continue
    echo "$s peak RSS (VmHWM): after the 4k-reuse run $(mib "${HWM[$s,0]}") MiB," \
        "after all runs $(mib "${HWM[$s,2]:-0}") MiB (target < 64 MiB)"
done
fails=0
for k in "${!NOTE[@]}"; do
    if [ -n "${NOTE[$k]}" ]; then
        echo "NOTE ${k%,*} load ${LOAD_NAMES[${k#*,}]}: ${NOTE[$k]}"
        fails=$((fails + 1))
    fi
done
[ -z "${PORT[postfix-hold]:-}" ] && case " $SERVERS " in *" postfix-hold "*)
    echo "NOTE: Postfix smtpd could not be started; its column is n/a (see the message above)" ;;
esac
exit $((fails > 0))
