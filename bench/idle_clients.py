#!/usr/bin/env python3
"""Open many idle SMTP connections to a loopback server and report its memory.

Used by bench/idle.sh. Every connection is opened, its 220 banner read, and then it is left
idle (no command sent) until all are open; the server's VmRSS/VmHWM are then read from
/proc/PID/status, the connections are held for --hold seconds, and everything is closed.
Bounded: at most --count connections, at most --timeout seconds in all. Loopback only.
"""

import argparse
import ipaddress
import resource
import selectors
import socket
import sys
import time


def mem(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--pid", type=int, required=True, help="the server's process id")
    ap.add_argument("--batch", type=int, default=500, help="connections opened between waits")
    ap.add_argument("--hold", type=float, default=3.0, help="seconds to hold them all open")
    ap.add_argument("--timeout", type=float, default=180.0, help="give up after this long")
    args = ap.parse_args()

    if not ipaddress.ip_address(args.host).is_loopback:
        sys.exit(f"refusing {args.host}: this benchmark only targets loopback addresses")
    if not 0 < args.count <= 50000:
        sys.exit("--count must be between 1 and 50000")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 100
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < want:
            sys.exit(f"open-file limit {soft} is below {want}: raise `ulimit -n`")

    deadline = time.monotonic() + args.timeout
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sel = selectors.DefaultSelector()
    socks = []
    greeted = 0
    errors = 0
    base_rss, _ = mem(args.pid)
    t0 = time.monotonic()

    def wait_banners(target):
        nonlocal greeted, errors
        while greeted + errors < target and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.recv(512)
                except OSError:
                    data = b""
                sel.unregister(s)
                if data.startswith(b"220"):
                    greeted += 1
                else:
                    errors += 1

    while len(socks) < args.count and time.monotonic() < deadline:
        n = min(args.batch, args.count - len(socks))
        for _ in range(n):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect((args.host, args.port))
            except OSError as e:
                print(f"connect #{len(socks) + 1}: {e}", file=sys.stderr)
                s.close()
                errors += 1
                continue
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        wait_banners(len(socks))
        if errors > 100:
            break

    opened = time.monotonic() - t0
    time.sleep(1.0)  # let the server settle (lazy allocations, timers)
    rss, hwm = mem(args.pid)
    print(
        f"idle connections: {greeted} greeted of {args.count} asked"
        f" ({errors} errors) in {opened:.1f} s"
    )
    print(f"server RSS before: {base_rss / 1024:.1f} MiB")
    print(f"server RSS with {greeted} idle connections: {rss / 1024:.1f} MiB (VmHWM {hwm / 1024:.1f} MiB)")
    print(f"per connection: {(rss - base_rss) / max(greeted, 1):.1f} KiB")
    print(f"RESULT idle_count={greeted} rss_kib={rss} hwm_kib={hwm} base_kib={base_rss}")
    time.sleep(min(args.hold, max(0.0, deadline - time.monotonic())))
    for s in socks:
        s.close()
    return 0 if greeted == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
