# Opens N idle connections to the server PID listening on PORT, each after one exchange (so that
# the server has handled a request and gone back to waiting), then prints the server's VmRSS
# before and after and the growth per connection.
#   python3 bench/idle_rss.py PID PORT N echo    # the connection sends 5 bytes, expects them back
#   python3 bench/idle_rss.py PID PORT N redis   # PING / +PONG through a proxy to redis-server
import socket, sys, time

pid, port, n, protocol = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
request, answer = {"echo": (b"hello", b"hello"), "redis": (b"PING\r\n", b"+PONG\r\n")}[protocol]


def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def exchange(s):
    s.sendall(request)
    got = b""
    while len(got) < len(answer):
        chunk = s.recv(64)
        if not chunk:
            sys.exit("the server closed a connection")
        got += chunk
    if got != answer:
        sys.exit(f"unexpected answer {got!r}")


before = rss_kib()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    exchange(s)
    socks.append(s)
time.sleep(1)
after = rss_kib()
print(f"connections={n} rss_before_kib={before} rss_after_kib={after} "
      f"per_connection_bytes={(after - before) * 1024 / n:.0f}")
