#!/bin/sh
# Install everything build, run and tests need: Debian packages, then the npm
# packages of package.json. Idempotent; quick when all is already present.
set -eu
cd "$(dirname "$0")/.."

PKGS="
gcc make pkg-config clang llvm libbpf-dev bpftool linux-libc-dev libelf-dev zlib1g-dev
libulfius-dev libmicrohttpd-dev libgnutls28-dev libjansson-dev libyaml-dev
libcurl4-gnutls-dev libsqlite3-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
librhonabwy-dev libvectorscan-dev libpcre2-dev libmaxminddb-dev
iproute2 ethtool iputils-ping curl openssl ca-certificates
libcriterion-dev python3 python3-pytest python3-scapy python3-grpcio python3-grpc-tools
python3-jwt python3-cryptography python3-requests python3-aiosmtpd libmaxmind-db-writer-perl
hping3 iperf3 nftables iptables xdp-tools valgrind prometheus testssl.sh tcpdump dnsutils ncat
chromium clang-format nodejs npm
"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# nodejs/npm may come from outside Debian on some machines: accept working binaries.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
missing=$(echo $missing)

if [ -n "$missing" ]; then
	echo "deps: installing Debian packages: $missing"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends $missing; then
		apt-get update
		apt-get install -y --no-install-recommends $missing
	fi
else
	echo "deps: Debian packages present"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
	[ ! -d node_modules/swagger-ui-dist ] || [ ! -d node_modules/@apidevtools/swagger-parser ]; then
	echo "deps: installing npm packages"
	npm ci --no-audit --no-fund
else
	echo "deps: npm packages present"
fi
