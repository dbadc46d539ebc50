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
