"""A real WebSocket client (the `websockets` package) against the example
server: echo of text and binary messages (1 MiB included), the chat room
with two clients, the close handshake, and the server's limits (a message
over --max-message, an idle socket).

    python client.py ws://127.0.0.1:PORT IDLE_SECS MAX_MESSAGE

Exits non-zero on the first failed check, saying which.
"""

import os
import sys
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

base, idle, max_message = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])


def ws(path):
    # No proxy from the environment: the server is on the loopback.
    return connect(base + path, proxy=None, max_size=4 * max_message, open_timeout=5)


def echo():
    with ws("/echo") as conn:
        conn.send("hello, keel")
        assert conn.recv(timeout=5) == "hello, keel"
        conn.send(bytes(range(256)))
        assert conn.recv(timeout=5) == bytes(range(256))
        big = os.urandom(max_message)  # exactly the limit: allowed
        conn.send(big)
        assert conn.recv(timeout=10) == big, "1 MiB binary echo differs"
        text = "é" * (max_message // 2)  # 1 MiB of UTF-8
        conn.send(text)
        assert conn.recv(timeout=10) == text, "1 MiB text echo differs"
        conn.ping(b"are you there").wait(timeout=5) or fail("no pong")
        conn.close()
        assert conn.close_code == 1000, f"close code {conn.close_code}"


def too_big():
    with ws("/echo") as conn:
        conn.send(b"x" * (max_message + 1))
        try:
            conn.recv(timeout=5)
        except ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == 1009, f"closed with {e.rcvd}"
            return
        fail("a message over the limit was echoed")


def chat():
    a = ws("/chat")
    welcome = a.recv(timeout=5)
    assert welcome.startswith("* you are guest-"), welcome
    id_a = welcome.split("guest-")[1].split(";")[0]
    b = ws("/chat")
    welcome = b.recv(timeout=5)
    id_b = welcome.split("guest-")[1].split(";")[0]
    assert welcome.endswith("; 2 here"), welcome
    assert a.recv(timeout=5) == f"* guest-{id_b} joined"
    a.send("hello from a")
    assert b.recv(timeout=5) == f"guest-{id_a}: hello from a"
    b.send("hi a")
    assert a.recv(timeout=5) == f"guest-{id_b}: hi a"
    b.send(b"\x00\x01binary")
    assert a.recv(timeout=5) == b"\x00\x01binary"
    b.close()
    assert b.close_code == 1000
    assert a.recv(timeout=5) == f"* guest-{id_b} left"
    a.close()
    assert a.close_code == 1000


def idle_socket_is_closed():
    with ws("/echo") as conn:
        started = time.monotonic()
        try:
            conn.recv(timeout=idle + 5)
        except ConnectionClosed as e:
            waited = time.monotonic() - started
            assert e.rcvd is not None and e.rcvd.code == 1001, f"closed with {e.rcvd}"
            assert waited >= idle * 0.9, f"closed after {waited:.1f} s"
            return
        fail("an idle socket was not closed")


def fail(message):
    raise AssertionError(message)


checks = [echo, too_big, chat, idle_socket_is_closed]
failed = 0
for check in checks:
    try:
        check()
        print(f"ok {check.__name__}")
    except Exception as e:  # report every check, then fail
        failed += 1
        print(f"FAILED {check.__name__}: {type(e).__name__}: {e}")
print(f"{len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
