#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-only
"""A python-grpcio client of the agent, run in the agent's namespace by the
end-to-end tests (grpc's own threads must live in that namespace). Stubs are
generated from proto/ into STUBS (argv[1]) by the test; health and reflection
get module names that do not shadow the grpc package. Prints JSON lines."""
import json
import sys

stubs, target, cmd, *args = sys.argv[1:]
sys.path.insert(0, stubs)

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
from google.protobuf.json_format import MessageToDict  # noqa: E402

import es_health_pb2 as health_pb2  # noqa: E402
import es_health_pb2_grpc as health_grpc  # noqa: E402
import es_reflection_pb2 as refl_pb2  # noqa: E402
import es_reflection_pb2_grpc as refl_grpc  # noqa: E402
from ebpfsentinel.v1 import alerts_pb2, alerts_pb2_grpc  # noqa: E402


def out(**kw):
    print(json.dumps(kw), flush=True)


def channel():
    if target.startswith("tls:"):
        _, ca, addr = target.split(":", 2)
        creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
        return grpc.secure_channel(addr, creds,
                                   options=[("grpc.ssl_target_name_override", "localhost")])
    return grpc.insecure_channel(target)


def main():
    ch = channel()
    md = [("authorization", args[-1])] if args and args[-1].startswith("Bearer ") else None
    try:
        if cmd == "health":
            r = health_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=args[0]),
                                                 timeout=5)
            out(status=health_pb2.HealthCheckResponse.ServingStatus.Name(r.status))
        elif cmd == "watch":
            for r in health_grpc.HealthStub(ch).Watch(
                    health_pb2.HealthCheckRequest(service=args[0]), timeout=float(args[1])):
                out(status=health_pb2.HealthCheckResponse.ServingStatus.Name(r.status))
        elif cmd == "stream":
            sev, comp, limit, timeout = args[0], args[1], int(args[2]), float(args[3])
            call = alerts_pb2_grpc.AlertStreamServiceStub(ch).StreamAlerts(
                alerts_pb2.StreamAlertsRequest(min_severity=sev, component=comp),
                timeout=timeout, metadata=md)
            out(subscribed=bool(call.initial_metadata() is not None))
            n = 0
            for ev in call:
                out(alert=MessageToDict(ev, preserving_proto_field_name=True,
                                        including_default_value_fields=True))
                n += 1
                if n >= limit:
                    call.cancel()
                    break
        elif cmd == "count":
            # Count alerts until `limit` or `idle` seconds without one (benchmarks).
            import time
            limit, idle = int(args[0]), float(args[1])
            call = alerts_pb2_grpc.AlertStreamServiceStub(ch).StreamAlerts(
                alerts_pb2.StreamAlertsRequest(), metadata=md)
            out(subscribed=bool(call.initial_metadata() is not None))
            n, first, last = 0, None, None
            it = iter(call)
            import threading
            done = threading.Event()

            def watchdog():
                while not done.wait(0.2):
                    if last is not None and time.monotonic() - last > idle:
                        call.cancel()
                        return
            threading.Thread(target=watchdog, daemon=True).start()
            try:
                for _ in it:
                    now = time.monotonic()
                    first = first if first is not None else now
                    last = now
                    n += 1
                    if n >= limit:
                        break
            except grpc.RpcError:
                pass
            done.set()
            call.cancel()
            out(count=n, seconds=(last - first) if n > 1 else 0.0)
        elif cmd == "reflect":
            stub = refl_grpc.ServerReflectionStub(ch)
            reqs = [refl_pb2.ServerReflectionRequest(host="x", list_services=""),
                    refl_pb2.ServerReflectionRequest(
                        host="x", file_containing_symbol="ebpfsentinel.v1.AlertStreamService"),
                    refl_pb2.ServerReflectionRequest(
                        host="x", file_containing_symbol="grpc.health.v1.Health.Check"),
                    refl_pb2.ServerReflectionRequest(host="x", file_by_filename="nope.proto")]
            for r in stub.ServerReflectionInfo(iter(reqs), timeout=5):
                kind = r.WhichOneof("message_response")
                if kind == "list_services_response":
                    out(services=[s.name for s in r.list_services_response.service])
                elif kind == "file_descriptor_response":
                    files = []
                    for raw in r.file_descriptor_response.file_descriptor_proto:
                        fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
                        files.append({"name": fd.name, "package": fd.package,
                                      "services": [s.name for s in fd.service],
                                      "messages": [m.name for m in fd.message_type]})
                    out(files=files)
                else:
                    out(error=r.error_response.error_code)
    except grpc.RpcError as e:
        out(code=e.code().name, details=e.details())


main()
