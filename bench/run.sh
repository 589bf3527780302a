#!/bin/sh
# Run every executable bench/<topic>/run in turn (DEVELOPING.md, "Benchmarks").
#   BENCH_OUT    results directory (default build/bench/<timestamp>, linked as
#                build/bench/latest; build/bench/smoke in smoke mode)
#   BENCH_SMOKE  1: a quick check-only pass (seconds), as run by make test
#   BENCH_ONLY   space-separated topics to run (default: all)
# Each topic writes $BENCH_OUT/<topic>.json and prints its table. Figures never
# fail a run; a topic that cannot run does (exit status 1 at the end).
set -u
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: needs root (network namespaces, BPF)" >&2
	exit 1
fi
export BENCH_SMOKE="${BENCH_SMOKE:-0}"
if [ -z "${BENCH_OUT:-}" ]; then
	if [ "$BENCH_SMOKE" = 1 ]; then
		BENCH_OUT=build/bench/smoke
	else
		BENCH_OUT=build/bench/$(date -u +%Y%m%dT%H%M%SZ)
	fi
fi
mkdir -p "$BENCH_OUT"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
export BENCH_OUT
[ "$BENCH_SMOKE" = 1 ] || ln -sfn "$BENCH_OUT" build/bench/latest

failed=""
start=$(date +%s)
for run in bench/*/run; do
	[ -x "$run" ] || continue
	topic=$(basename "$(dirname "$run")")
	if [ -n "${BENCH_ONLY:-}" ]; then
		case " $BENCH_ONLY " in *" $topic "*) ;; *) continue ;; esac
	fi
	echo "== bench $topic$([ "$BENCH_SMOKE" = 1 ] && echo ' (smoke)')"
	t0=$(date +%s)
	if ! "$run"; then
		echo "bench: topic $topic FAILED" >&2
		failed="$failed $topic"
	elif [ ! -s "$BENCH_OUT/$topic.json" ]; then
		echo "bench: topic $topic wrote no $BENCH_OUT/$topic.json" >&2
		failed="$failed $topic"
	fi
	echo "   ($topic: $(($(date +%s) - t0)) s)"
done
echo "bench: $(($(date +%s) - start)) s, results in $BENCH_OUT"
if [ -n "$failed" ]; then
	echo "bench: failed topics:$failed" >&2
	exit 1
fi
