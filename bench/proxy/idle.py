# Opens N idle proxied pairs through the proxy at PORT (each carries one PING/PONG first, so both
# sides are up), then prints the proxy's VmRSS before and after and the difference per pair.
import socket, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PING\r\n")
    assert s.recv(64) == b"+PONG\r\n"
    socks.append(s)
time.sleep(1)
after = rss()
print(f"pairs={n} rss_before_kib={before} rss_after_kib={after} per_pair_bytes={(after-before)*1024/n:.0f}")
