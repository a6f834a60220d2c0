"""A minimal OTLP/HTTP trace receiver: what a collector such as Jaeger accepts.

    otlp_receiver.py OUT_FILE [--tls WORKDIR]

Listens on 127.0.0.1 (a free port), prints `READY host:port`, and serves until stdin
closes. With --tls it serves HTTPS, with a fresh CA and a certificate for 127.0.0.1 and
localhost written into WORKDIR (tls_broker.py's make_pki: ca.pem, server.pem, ...). Every POST to /v1/traces is decoded as a protobuf ExportTraceServiceRequest with
the OpenTelemetry project's own message definitions (the opentelemetry-proto package),
and each span in it is appended to OUT_FILE as one JSON line: its name, ids, parent,
attributes and the service.name of its resource. Anything else is answered with an
HTTP error, so a wrong path or body shows up as missing spans.
"""
import argparse
import http.server
import json
import os
import ssl
import sys
import threading

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def value(any_value):
    """An AnyValue as a plain Python value (the kinds strait's spans use)."""
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


def spans(request):
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "name": span.name,
                    "service": resource.get("service.name"),
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "attributes": attributes(span.attributes),
                }


def handler(out):
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                self.send_error(404 if self.path != "/v1/traces" else 415)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with lock:
                for span in spans(request):
                    out.write(json.dumps(span) + "\n")
                out.flush()
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tls", metavar="WORKDIR")
    args = ap.parse_args()
    out = open(args.out, "a", encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(out))
    if args.tls:
        from tls_broker import make_pki
        make_pki(args.tls)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(args.tls, "server.pem"), os.path.join(args.tls, "server.key"))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address
    print(f"READY {host}:{port}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
