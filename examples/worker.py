#!/usr/bin/env python3
"""A tcluster worker in plain Python, written from docs/PROTOCOL.md alone.

    python3 examples/worker.py [HOST:PORT] [NAME]

HOST:PORT and NAME default to $TCLUSTER_COORDINATOR and $TCLUSTER_NAME. Set $TCLUSTER_SECRET when
the cluster has a CLUSTER_SECRET, and $TCLUSTER_CLUSTER to its cluster's name in a topology of
several (then it can be lent: it obeys `redirect` and `return`). When the cluster's links are
encrypted, $TCLUSTER_CA names the cluster CA's certificate: the worker then speaks TLS and checks
the coordinator against it.
"""
import hashlib, hmac, json, os, socket, ssl, sys, threading, time

addr = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TCLUSTER_COORDINATOR", "127.0.0.1:7400")
name = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("TCLUSTER_NAME", "py-worker")
secret = os.environ.get("TCLUSTER_SECRET")
home_cluster = os.environ.get("TCLUSTER_CLUSTER", "default")
ca = os.environ.get("TCLUSTER_CA")  # encrypted links: TLS, checked against the cluster CA
tls = ssl.create_default_context(cafile=ca) if ca else None
home = addr
lock, clock = threading.Lock(), 0
sock = lines = None
offset_ms = 0  # what the time master told us to move our clock by, so far (policy clock)


def send(message):  # every message carries our name and our Lamport clock
    global clock
    with lock:
        clock += 1
        sock.sendall((json.dumps(dict(message, **{"from": name, "clock": clock})) + "\n").encode())


def receive():
    global clock
    line = lines.readline()
    if not line:
        sys.exit("the coordinator closed the connection")
    message = json.loads(line)
    with lock:
        clock = max(clock, message.get("clock", 0)) + 1
    return message


def seconds(text):
    for unit, scale in (("ms", 0.001), ("s", 1), ("m", 60)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def run(job, data):
    send({"type": "started", "job": job})
    kind, _, arg = data.partition(" ")
    if kind == "sleep":
        time.sleep(seconds(arg))
        result = "slept " + arg
    elif kind == "echo":
        result = arg
    elif kind == "cpu":
        primes = sum(all(n % d for d in range(2, int(n**0.5) + 1)) for n in range(2, int(arg)))
        result = f"{primes} primes below {arg}"
    elif kind == "fail":
        return send({"type": "job_failed", "job": job, "error": arg or "asked to fail"})
    else:
        result = f"Processado_{data}_por_{name}"
    send({"type": "job_done", "job": job, "result": result})


def connect(to, owner=None):
    """Connects to the coordinator at `to` and registers (saying who owns us when lent)."""
    global sock, lines
    host, port = to.rsplit(":", 1)
    with lock:
        if sock:
            sock.close()
        sock = socket.create_connection((host, int(port)))
        if tls:  # the certificate names the coordinator's address (and its node name)
            sock = tls.wrap_socket(sock, server_hostname=host)
        lines = sock.makefile("r", encoding="utf-8")
    if secret:  # prove we know the secret without sending it
        sign = lambda *parts: hmac.new(secret.encode(), b"".join(p.encode() + b"\0" for p in parts), hashlib.sha256).hexdigest()
        send({"type": "hello", "role": "worker"})
        challenge = receive()
        send({"type": "auth", "proof": sign("tcluster-peer", challenge["nonce"], name)})
        receive()  # welcome
    register = {"type": "register", "slots": 2}
    if owner:
        register["owner"] = owner
    send(register)
    return receive()


registered = connect(home)
print(f"READY {name} registered with {addr}", flush=True)
interval = registered.get("heartbeat_ms", 500) / 1000


def heartbeat():
    while True:
        time.sleep(interval)
        try:
            send({"type": "heartbeat"})
        except OSError:
            pass  # between two coordinators: the next connection carries on


threading.Thread(target=heartbeat, daemon=True).start()
lent = False
while True:
    try:
        message = receive()
    except SystemExit:
        if not lent:
            raise
        # Lost the cluster we were lent to: home at once.
        lent = False
        connect(home)
        print(f"{name} lost its borrower: home again", flush=True)
        continue
    if message["type"] == "assign":
        threading.Thread(target=run, args=(message["job"], message["data"]), daemon=True).start()
    elif message["type"] == "clock_poll":
        # Berkeley: read our clock at once; the master allows for the round trip.
        send({"type": "clock_reading", "round": message["round"], "clock_ms": int(time.time() * 1000) + offset_ms})
    elif message["type"] == "clock_adjust":
        # A real node would slew its clock; this one keeps the correction beside the system's.
        offset_ms += message["adjust_ms"]
        print(f"{name} moves its clock by {message['adjust_ms']}ms", flush=True)
    elif message["type"] == "redirect" and not lent:
        # Lent (only when idle): work for the other cluster, saying who owns us.
        lent = True
        connect(message["address"], owner=home_cluster)
        print(f"{name} lent to {message['cluster']}", flush=True)
    elif message["type"] == "return" and lent:
        lent = False
        connect(home)
        print(f"{name} home again", flush=True)
