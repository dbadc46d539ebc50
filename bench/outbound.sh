#!/usr/bin/env bash
# bench/outbound.sh — outbound throughput and memory of `impulse send` (the mio engine)
# against Postfix's smtp-source, in one run, both sending to the same smtp-sink.
#
# Throughput (issue 5): 4 KiB messages, 20 concurrent connections, to one smtp-sink on a spare
# 127.0.0.1 port. Each round runs three clients, one after the other (the order alternates
# between rounds so that drifts in the machine's load hit all of them alike):
#   impulse           impulse send --count 20000 --concurrency 20 --size 4096
#                     (each connection carries up to 1000 messages, like smtp-source -d)
#   smtp-source -d    smtp-source -d -s 20 -m 20000 -l 4096   (sessions reused)
#   smtp-source       smtp-source -s 20 -m 20000 -l 4096      (a connection per message)
# and prints each client's msgs/s (wall clock), its CPU time per message, the medians over the
# rounds and the ratios impulse ÷ smtp-source.
#
# Memory per connection: peak RSS of `impulse send` with BENCH_MEM_CONNS connections (default
# 1000) minus its peak RSS with 1 connection, divided by BENCH_MEM_CONNS - 1; the same for
# smtp-source -d (-s N) for comparison. Peak RSS is GNU time's maximum resident set size.
#
# Environment:
#   BENCH_SCALE=N      divide every message count by N (smoke test; default 1)
#   BENCH_ROUNDS=N     rounds of the throughput loads (default 3, at most 9)
#   BENCH_MEM_CONNS=N  connections for the memory figure (default 1000, at most 5000)
#   BENCH_TIMEOUT=S    give up on one client run after S seconds (default 300)
#   BENCH_NO_BUILD=1   use the existing target/release/impulse without `cargo build --release`
#   BENCH_KEEP=1       keep the temp dir (client outputs, smtp-sink log)
#
# Needs: cargo, python3, GNU time (/usr/bin/time), smtp-source and smtp-sink (Debian:
# apt-get install postfix time). Loopback only; bounded: at most 20,000 messages per client
# and round, each run under BENCH_TIMEOUT; every process started here is stopped on exit.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

SCALE=${BENCH_SCALE:-1}
ROUNDS=${BENCH_ROUNDS:-3}
MEM_CONNS=${BENCH_MEM_CONNS:-1000}
TMO=${BENCH_TIMEOUT:-300}
FROM=bench-sender@example.com
RCPT=bench-rcpt@example.net
HELO=bench-client.example.com
COUNT=$((20000 / SCALE))
SIZE=4096
CONC=20

# ---------------------------------------------------------------- tools
missing=()
SMTP_SOURCE=$(find_tool smtp-source) || missing+=("smtp-source (apt-get install postfix)")
SMTP_SINK=$(find_tool smtp-sink) || missing+=("smtp-sink (apt-get install postfix)")
command -v python3 >/dev/null || missing+=("python3")
command -v timeout >/dev/null || missing+=("timeout (coreutils)")
GNU_TIME=/usr/bin/time
"$GNU_TIME" -f %M true >/dev/null 2>&1 || missing+=("GNU time at /usr/bin/time (apt-get install time)")
if [ ${#missing[@]} -gt 0 ]; then
    say "missing tools: ${missing[*]}"
    say "on Debian/Ubuntu: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix python3 time"
    exit 2
fi
case $ROUNDS in [1-9]) ;; *) say "BENCH_ROUNDS must be 1..9"; exit 2 ;; esac
case $SCALE in '' | *[!0-9]* | 0) say "BENCH_SCALE must be a positive integer"; exit 2 ;; esac
case $MEM_CONNS in '' | *[!0-9]* | 0 | 1) say "BENCH_MEM_CONNS must be 2..5000"; exit 2 ;; esac
[ "$MEM_CONNS" -le 5000 ] || { say "BENCH_MEM_CONNS must be 2..5000"; exit 2; }
build_impulse || { say "cannot build impulse"; exit 2; }

raise_nofile $((MEM_CONNS * 2 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((MEM_CONNS * 2 + 200)) ]; then
    say "open-file limit $(ulimit -n) is too low for $MEM_CONNS connections (hard limit $(ulimit -Hn))"
    exit 2
fi

WORK=$(mktemp -d /tmp/impulse-outbound.XXXXXX)
SINK_PID=""
cleanup() {
    if [ -n "$SINK_PID" ]; then
        kill -TERM "$SINK_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$SINK_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the sink
PORT=$(free_port)
user_args=()
[ "$(id -u)" = 0 ] && user_args=(-u nobody) # smtp-sink refuses to run as root without -u
# The backlog must hold the memory run's connections arriving at once.
"$SMTP_SINK" "${user_args[@]}" "127.0.0.1:$PORT" $((MEM_CONNS + 64)) 2>"$WORK/smtp-sink.log" &
SINK_PID=$!
wait_port "$PORT" 10 || { say "smtp-sink did not start: $(cat "$WORK/smtp-sink.log")"; exit 2; }

# ---------------------------------------------------------------- clients
# run_client NAME MESSAGES CONNECTIONS: runs one client against the sink under GNU time.
# Prints "seconds user_s sys_s maxrss_kib status" on stdout; the client's output goes to
# $WORK/NAME.out.
run_client() {
    local name=$1 msgs=$2 conns=$3 out=$WORK/$1.out cmd
    case $name in
        impulse*)
            cmd=("$IMPULSE" send --server "127.0.0.1:$PORT" --from "$FROM" --to "$RCPT"
                --helo "$HELO" --count "$msgs" --concurrency "$conns" --size "$SIZE") ;;
        smtp-source-d*)
            cmd=("$SMTP_SOURCE" -d -s "$conns" -m "$msgs" -l "$SIZE" -f "$FROM" -t "$RCPT"
                -M "$HELO" "127.0.0.1:$PORT") ;;
        smtp-source*)
            cmd=("$SMTP_SOURCE" -s "$conns" -m "$msgs" -l "$SIZE" -f "$FROM" -t "$RCPT"
                -M "$HELO" "127.0.0.1:$PORT") ;;
    esac
    local start end status
    start=$(date +%s.%N)
    RUST_LOG=warn timeout "$TMO" "$GNU_TIME" -o "$WORK/$name.time" -f '%U %S %M' \
        "${cmd[@]}" >"$out" 2>&1
    status=$?
    end=$(date +%s.%N)
    read -r user sys rss <"$WORK/$name.time" 2>/dev/null || { user=0; sys=0; rss=0; }
    # GNU time writes "Command exited with non-zero status N" first on failure.
    [ "$user" = Command ] && read -r user sys rss < <(tail -1 "$WORK/$name.time")
    echo "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }') $user $sys $rss $status"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

say "impulse outbound benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
say "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "smtp-source: $SMTP_SOURCE (Postfix $(postconf -d -h mail_version 2>/dev/null || echo '?')); impulse: $IMPULSE"
say "sink: smtp-sink on 127.0.0.1:$PORT; $COUNT messages of $SIZE bytes per run, $CONC connections"

CLIENTS=(impulse smtp-source-d smtp-source)
declare -A RATE CPU
fails=0
for round in $(seq "$ROUNDS"); do
    order=("${CLIENTS[@]}")
    [ $((round % 2)) = 0 ] && order=(smtp-source smtp-source-d impulse)
    for c in "${order[@]}"; do
        read -r secs user sys rss status < <(run_client "$c" "$COUNT" "$CONC")
        rate=$(awk -v n="$COUNT" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
        cpu=$(awk -v n="$COUNT" -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", (u + s) * 1e6 / n }')
        RATE[$c]="${RATE[$c]:-} $rate"
        CPU[$c]="${CPU[$c]:-} $cpu"
        note=""
        if [ "$status" != 0 ]; then
            note="  EXIT STATUS $status: $(tail -3 "$WORK/$c.out" | tr '\n' ' ')"
            fails=$((fails + 1))
        elif [ "$c" = impulse ] && ! grep -q "recipients: $COUNT delivered, 0 deferred, 0 bounced" "$WORK/$c.out"; then
            note="  NOT ALL DELIVERED: $(tr '\n' ' ' <"$WORK/$c.out")"
            fails=$((fails + 1))
        fi
        say "round $round: $(printf '%-14s' "$c") ${secs} s  $(printf '%6s' "$rate") msgs/s  ${cpu} µs CPU/msg  peak RSS ${rss} KiB  (load $(cut -d' ' -f1 /proc/loadavg))$note"
    done
done

echo ""
echo "== throughput: $COUNT × $SIZE-byte messages, $CONC connections, to smtp-sink ($ROUNDS rounds, medians)"
printf '%-16s %10s %14s   %s\n' client msgs/s "µs CPU/msg" "all rounds (msgs/s)"
declare -A MED
for c in "${CLIENTS[@]}"; do
    # shellcheck disable=SC2086
    MED[$c]=$(median ${RATE[$c]})
    # shellcheck disable=SC2086
    printf '%-16s %10s %14s   %s\n' "$c" "${MED[$c]}" "$(median ${CPU[$c]})" "${RATE[$c]# }"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# Per-round ratios too: the clients of one round ran within seconds of each other.
paired() {
    local a=(${RATE[impulse]}) b=(${RATE[$1]}) i out=""
    for i in "${!a[@]}"; do out="$out $(ratio "${a[$i]}" "${b[$i]:-0}")"; done
    echo "${out# }"
}
echo "impulse / smtp-source -d (sessions reused): $(ratio "${MED[impulse]}" "${MED[smtp-source-d]}") (per round: $(paired smtp-source-d))  (target >= 1.0)"
echo "impulse / smtp-source (connection per message, the issue's command): $(ratio "${MED[impulse]}" "${MED[smtp-source]}") (per round: $(paired smtp-source))"

echo ""
echo "== memory: peak RSS with 1 and $MEM_CONNS connections ($((MEM_CONNS * 3)) messages each run)"
MEM_MSGS=$((MEM_CONNS * 3))
for c in impulse smtp-source-d; do
    read -r _ _ _ rss1 st1 < <(run_client "$c-mem1" "$MEM_MSGS" 1)
    read -r _ _ _ rssn stn < <(run_client "$c-memN" "$MEM_MSGS" "$MEM_CONNS")
    per=$(awk -v a="$rssn" -v b="$rss1" -v n="$MEM_CONNS" 'BEGIN { printf "%.1f", (a - b) / (n - 1) }')
    extra=""
    [ "$c" = impulse ] && extra=" (target < 32 KB); $(grep -o 'over up to.*' "$WORK/$c-memN.out")"
    [ "$st1" = 0 ] && [ "$stn" = 0 ] || { extra="$extra  EXIT STATUS $st1/$stn"; fails=$((fails + 1)); }
    echo "$c: 1 connection $(mib "$rss1") MiB, $MEM_CONNS connections $(mib "$rssn") MiB: $per KiB per connection$extra"
done
echo ""
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $((fails > 0))
