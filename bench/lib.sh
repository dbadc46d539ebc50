# Shared helpers of bench/inbound.sh and bench/idle.sh (sourced, not run).
# Everything here listens on and connects to loopback addresses only.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
IMPULSE=$TARGET_DIR/release/impulse

say() { printf '%s\n' "$*" >&2; }
loud() {
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    printf '!!! %s\n' "$@" >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}

# find_tool NAME: prints the path of NAME (PATH, /usr/sbin, /usr/lib/postfix/sbin) or nothing.
find_tool() {
    local t
    t=$(command -v "$1" 2>/dev/null) && { echo "$t"; return 0; }
    for d in /usr/sbin /usr/lib/postfix/sbin /usr/libexec/postfix; do
        [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}

# free_port: a TCP port nothing listens on at 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: until 127.0.0.1:PORT answers with a 220 banner.
wait_port() {
    python3 - "$1" "${2:-20}" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            if s.recv(512).startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
}

# mem_kib PID FIELD: VmRSS or VmHWM of PID in KiB.
mem_kib() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# raise_nofile N: raise the soft open-file limit of this shell (and its children) to N or
# as close as the hard limit allows.
raise_nofile() {
    local want=$1 hard
    hard=$(ulimit -Hn)
    [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ] && want=$hard
    ulimit -n "$want" 2>/dev/null || true
}

# build_impulse: cargo build --release (unless BENCH_NO_BUILD=1 and the binary exists).
build_impulse() {
    if [ "${BENCH_NO_BUILD:-0}" = 1 ] && [ -x "$IMPULSE" ]; then
        return 0
    fi
    command -v cargo >/dev/null || { say "cargo is missing: install Rust (rustup)"; return 1; }
    say "building impulse (cargo build --release) ..."
    (cd "$ROOT" && cargo build --release --quiet --bin impulse) || return 1
    [ -x "$IMPULSE" ] || { say "no binary at $IMPULSE"; return 1; }
}

# The commit-protocol ceiling tool (smtp-server/examples/commit_ceiling.rs).
CEILING=$TARGET_DIR/release/examples/commit_ceiling

# build_ceiling: builds it (unless BENCH_NO_BUILD=1 and it exists).
build_ceiling() {
    if [ "${BENCH_NO_BUILD:-0}" = 1 ] && [ -x "$CEILING" ]; then
        return 0
    fi
    (cd "$ROOT" && cargo build --release --quiet -p smtp-server --example commit_ceiling) || return 1
    [ -x "$CEILING" ]
}

# write_impulse_config FILE PORT SPOOL: a config for a benchmark instance on 127.0.0.1:PORT.
write_impulse_config() {
    cat >"$1" <<EOF
hostname = "impulse-bench.localdomain"
listen = ["127.0.0.1:$2"]
[limits]
connections = 20000        # 10,000 idle connections must fit
exempt_loopback = true     # loopback load generators are not held to connections_per_ip
[spool]
dir = "$3"
EOF
}

# cpu_ms PID: CPU time (user + system, milliseconds) used so far by PID, its reaped children,
# and its live direct children (for Postfix: master, smtpd, cleanup, ...).
cpu_ms() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
tck = os.sysconf("SC_CLK_TCK")
def fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
total = 0
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        f = fields(name)
    except OSError:
        continue
    if int(name) == root or int(f[1]) == root:
        total += sum(int(x) for x in f[11:15])
print(total * 1000 // tck)
PY
}

# ---------------------------------------------------------------- a private Postfix
# Used by inbound.sh (every message held) and relay.sh (everything relayed to a sink).

# postfix_unavailable: prints why a private Postfix cannot run here (nothing when it can).
postfix_unavailable() {
    if ! find_tool postfix >/dev/null; then
        echo "the postfix command is missing (apt-get install postfix)"
    elif ! find_tool postconf >/dev/null; then
        echo "postconf is missing"
    elif [ "$(id -u)" != 0 ]; then
        echo "Postfix's master must be started as root"
    elif ! id postfix >/dev/null 2>&1; then
        echo "no 'postfix' user (the Debian package creates it)"
    elif ! getent group postdrop >/dev/null 2>&1; then
        echo "no 'postdrop' group"
    fi
}

# postfix_start DIR PORT EXTRA_MAIN_CF: writes DIR/conf/{main,master}.cf (queue and data under
# DIR, smtpd on 127.0.0.1:PORT only, no chroot, no DNS, relaying for 127.0.0.0/8, logging to
# DIR/maillog through postlogd), appends EXTRA_MAIN_CF to main.cf and starts the instance.
# Returns non-zero (and prints why) when it does not answer on PORT.
postfix_start() {
    local dir=$1 port=$2 extra=$3 postfix_bin
    postfix_bin=$(find_tool postfix) || return 1
    mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
    chown postfix "$dir/data"
    cat >"$dir/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix-bench.localdomain
mydomain = localdomain
myorigin = \$myhostname
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
disable_dns_lookups = yes
biff = no
$extra
EOF
    cat >"$dir/conf/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    if ! "$postfix_bin" -c "$dir/conf" start >"$dir/start.log" 2>&1 || ! wait_port "$port" 20; then
        loud "POSTFIX SMTPD COULD NOT BE STARTED on 127.0.0.1:$port" \
            "$(cat "$dir/start.log" 2>/dev/null) $(tail -5 "$dir/maillog" 2>/dev/null)"
        return 1
    fi
}

# postfix_master_pid DIR: the master's pid of the instance in DIR.
postfix_master_pid() {
    tr -d ' ' <"$1/queue/pid/master.pid" 2>/dev/null
}

# postfix_stop DIR: `postfix stop`, then abort and SIGKILL if the master is still there after 10 s.
postfix_stop() {
    local dir=$1 postfix_bin master
    postfix_bin=$(find_tool postfix) || return 0
    master=$(postfix_master_pid "$dir")
    "$postfix_bin" -c "$dir/conf" stop >/dev/null 2>&1
    if [ -n "$master" ]; then
        for _ in $(seq 100); do
            kill -0 "$master" 2>/dev/null || break
            # a defunct master (no parent reaps it) counts as stopped
            grep -q '^State:.*Z' "/proc/$master/status" 2>/dev/null && break
            sleep 0.1
        done
        if kill -0 "$master" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$master/status" 2>/dev/null; then
            "$postfix_bin" -c "$dir/conf" abort >/dev/null 2>&1
            kill -KILL "$master" 2>/dev/null
        fi
    fi
}

# postfix_queued DIR: messages in the instance's incoming, active, deferred and hold queues.
postfix_queued() {
    find "$1/queue/incoming" "$1/queue/active" "$1/queue/deferred" "$1/queue/hold" \
        -type f 2>/dev/null | wc -l
}

# ---------------------------------------------------------------- counting smtp-sink
# `smtp-sink -c` writes "sess=N quit=N mesg=N\r" to its standard output after every event.

# sink_count FILE: the last mesg= count in a `smtp-sink -c` output file (0 when none yet).
sink_count() {
    python3 - "$1" <<'PY'
import re, sys
try:
    with open(sys.argv[1], "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 256))
        tail = f.read()
except OSError:
    tail = b""
m = re.findall(rb"mesg=(\d+)", tail)
print(int(m[-1]) if m else 0)
PY
}

# sink_wait FILE TARGET STALL: polls a `smtp-sink -c` output file every 5 ms until its count
# reaches TARGET, or until it has not moved for STALL seconds. Prints "COUNT EPOCH", EPOCH
# being the wall-clock time (date +%s.%N scale) when COUNT was first seen.
sink_wait() {
    python3 - "$1" "$2" "$3" <<'PY'
import re, sys, time
path, target, stall = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pat = re.compile(rb"mesg=(\d+)")
def count():
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 256))
            m = pat.findall(f.read())
    except OSError:
        return 0
    return int(m[-1]) if m else 0
last, seen, moved = -1, time.time(), time.monotonic()
while True:
    n = count()
    if n != last:
        last, seen, moved = n, time.time(), time.monotonic()
    if n >= target or time.monotonic() - moved > stall:
        break
    time.sleep(0.005)
print(last, f"{seen:.3f}")
PY
}

# wait_log FILE PATTERN SECONDS: until FILE has a line matching PATTERN (a Python regular
# expression); prints the wall-clock time it was first seen (date +%s.%N scale), or returns 1
# after SECONDS. Reads only what was appended since its last look.
wait_log() {
    python3 - "$1" "$2" "$3" <<'PY'
import re, sys, time
path, pat, limit = sys.argv[1], re.compile(sys.argv[2].encode()), float(sys.argv[3])
end = time.monotonic() + limit
pos, rest = 0, b""
while time.monotonic() < end:
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except OSError:
        data = b""
    if data:
        pos += len(data)
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        if any(pat.search(l) for l in lines):
            print(f"{time.time():.3f}")
            sys.exit(0)
    time.sleep(0.005)
sys.exit(1)
PY
}

# wait_banner PORT SECONDS: polls 127.0.0.1:PORT every 10 ms until it answers with a 220
# banner; prints the wall-clock time of that answer (date +%s.%N scale), or returns 1.
wait_banner() {
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            if s.recv(512).startswith(b"220"):
                print(f"{time.time():.3f}")
                s.sendall(b"QUIT\r\n")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.01)
sys.exit(1)
PY
}

# relay_config FILE PORT SPOOL HOP INTERVAL: a benchmark config (write_impulse_config) whose
# [relay] routes example.net to HOP (tls none), retrying every INTERVAL.
relay_config() {
    write_impulse_config "$1" "$2" "$3"
    cat >>"$1" <<EOF
[relay]
domains = []
[relay.retry]
intervals = ["$5"]
[[relay.route]]
domains = ["example.net"]
hosts = ["$4"]
tls = "none"
EOF
}

# thread_cpu PID: CPU time (user+system, ms) of PID's live threads so far, summed by thread
# name (trailing digits dropped: spool-sync-0..15 are one line), one "NAME MS THREADS" line
# each, the busiest first.
thread_cpu() {
    python3 - "$1" <<'PY'
import collections, os, sys
pid = sys.argv[1]
tck = os.sysconf("SC_CLK_TCK")
ms, n = collections.Counter(), collections.Counter()
try:
    tids = os.listdir(f"/proc/{pid}/task")
except OSError:
    tids = []
for tid in tids:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            head, rest = f.read().rsplit(")", 1)
    except OSError:
        continue
    name = head.split("(", 1)[1].rstrip("0123456789").rstrip("-") or "?"
    fields = rest.split()
    ms[name] += (int(fields[11]) + int(fields[12])) * 1000 // tck
    n[name] += 1
for name, v in ms.most_common():
    print(name, v, n[name])
PY
}

# loop_fs_mount DIR: mounts a fresh journalled ext4 (mkfs defaults, an 8 GiB sparse image in
# /tmp, loop device; root) on the empty directory DIR and sets LOOP_IMG; the same file system
# for every run, with no other process's files and no recently deleted inodes. Returns 1
# (and removes the image) when it cannot.
LOOP_IMG=""
loop_fs_mount() {
    LOOP_IMG=$(mktemp /tmp/impulse-bench-fs.XXXXXX)
    if ! { truncate -s 8G "$LOOP_IMG" && mkfs.ext4 -q -F "$LOOP_IMG" && mount -o loop "$LOOP_IMG" "$1"; }; then
        say "BENCH_FS=loop: cannot make or mount an ext4 image (needs root, mkfs.ext4, loop devices)"
        rm -f "$LOOP_IMG"
        LOOP_IMG=""
        return 1
    fi
}

# loop_fs_umount DIR: unmounts what loop_fs_mount mounted on DIR and removes the image and DIR.
loop_fs_umount() {
    [ -n "$LOOP_IMG" ] || return 0
    umount "$1" 2>/dev/null || { sleep 1; umount "$1"; }
    rm -f "$LOOP_IMG"
    rmdir "$1"
    LOOP_IMG=""
}
