#!/usr/bin/env python3
"""Memory under churn (issue 21, item 6): starts chat-server with
`--new-names-per-minute 0 --max-held-names 1000` (and any further
arguments, e.g. --in-memory or --data-dir DIR), runs CYCLES of connect,
log in with a new name, close, and prints its VmRSS every SAMPLE cycles.
Memory is bounded when the figures level off.

Usage: benches/churn_rss.py target/release/chat-server [CHAT-SERVER ARGS...]
Env: CYCLES (20000), SAMPLE (2000). Linux only (/proc); 127.0.0.1 only.
"""
import base64, json, os, re, socket, struct, subprocess, sys, tempfile, time

cycles = int(os.environ.get("CYCLES", "20000"))
sample = int(os.environ.get("SAMPLE", "2000"))
log = tempfile.TemporaryFile(mode="w+")
server = subprocess.Popen(
    [sys.argv[1], "--listen", "127.0.0.1:0", "--new-names-per-minute", "0",
     "--max-held-names", "1000", *sys.argv[2:]],
    stdout=log, stderr=subprocess.STDOUT)
pid, port = server.pid, None
for _ in range(100):
    log.seek(0)
    found = re.search(r"listening on wss?://[^ ]*:(\d+)", log.read())
    if found:
        port = int(found.group(1))
        break
    time.sleep(0.1)
if port is None:
    server.kill()
    sys.exit("chat-server did not say where it listens")

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def frame(opcode, payload):
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + b"\0\0\0\0" + payload  # mask key 0: payload as is

def read_frame(s, buf):
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7F
            at = 2
            if n == 126:
                if len(buf) >= 4: n, at = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) >= 10: n, at = struct.unpack(">Q", buf[2:10])[0], 10
            if n < 126 or at > 2:
                if len(buf) >= at + n:
                    return buf[0] & 0x0F, buf[at:at + n], buf[at + n:]
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk

def cycle(i):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk: raise EOFError
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    login = json.dumps({"type": "login", "id": "l", "username": f"churn{i}"}).encode()
    s.sendall(frame(1, login))
    while True:
        op, payload, buf = read_frame(s, buf)
        if op == 1 and b"loginMessage" in payload:
            break
        if op == 1 and b"errorMessage" in payload:
            raise RuntimeError(payload)
    s.sendall(frame(8, struct.pack(">H", 1000)))
    s.close()

start = time.time()
try:
    print(f"cycle 0 rss_kib {rss_kib()}", flush=True)
    for i in range(cycles):
        cycle(i)
        if (i + 1) % sample == 0:
            print(f"cycle {i + 1} rss_kib {rss_kib()} t {time.time() - start:.1f}s", flush=True)
finally:
    server.terminate()  # this script's own child, by its PID
    server.wait()
