#!/bin/sh
# make run: start the agent with the bundled default configuration.
#   IFACE=<name>  attach to that interface of the current namespace instead of
#                 the demo lab (you choose it: never the host's uplink by accident).
# Without IFACE a demo lab is created: namespaces es-demo (agent) and
# es-demo-peer joined by a veth pair on 198.51.100.0/24; the agent runs in
# es-demo and the lab is removed when it stops.
set -eu
cd "$(dirname "$0")/.."
BIN=build/ebpfsentinel-agent
CFG=build/run/config.yaml
mkdir -p build/run

if [ -n "${IFACE:-}" ]; then
	sed "s/interfaces: \[eth0\]/interfaces: [$IFACE]/; s/swagger_ui: false/swagger_ui: true/" \
		config/ebpfsentinel.yaml > "$CFG"
	echo "API: http://127.0.0.1:8080  (Swagger UI at /swagger-ui/)"
	exec "$BIN" --config "$CFG" --log-format text
fi

NS=es-demo PEER=es-demo-peer
cleanup() {
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$PEER" 2>/dev/null || true
}
cleanup
trap cleanup EXIT INT TERM
ip netns add "$NS"
ip netns add "$PEER"
ip link add esdemo0 netns "$NS" type veth peer name esdemo1 netns "$PEER"
ip -n "$NS" addr add 198.51.100.1/24 dev esdemo0
ip -n "$PEER" addr add 198.51.100.2/24 dev esdemo1
ip -n "$NS" link set lo up
ip -n "$PEER" link set lo up
ip -n "$NS" link set esdemo0 up
ip -n "$PEER" link set esdemo1 up
sed "s/interfaces: \[eth0\]/interfaces: [esdemo0]/; s/swagger_ui: false/swagger_ui: true/" \
	config/ebpfsentinel.yaml > "$CFG"

cat <<MSG
eBPFsentinel demo lab
  agent namespace : $NS (esdemo0, 198.51.100.1)
  peer namespace  : $PEER (esdemo1, 198.51.100.2)
  API             : http://127.0.0.1:8080 inside $NS, e.g.
      nsenter --net=/run/netns/$NS curl -s http://127.0.0.1:8080/api/v1/agent/status
      nsenter --net=/run/netns/$NS $BIN status
      nsenter --net=/run/netns/$NS curl -s http://127.0.0.1:8080/swagger-ui/
  traffic         : ip netns exec $PEER ping 198.51.100.1
Stop with Ctrl-C (the lab is removed).
MSG
# nsenter --net keeps the host's bpffs (ip netns exec would remount /sys).
nsenter --net=/run/netns/$NS "$BIN" --config "$CFG" --log-format text
