#!/usr/bin/env bash
# fetch_bench.sh: how close does the broker's fetch path come to the machine's limits?
#
# In one invocation:
#   1. sluice-limits measures the bare ceilings on a file of the same size (sendfile,
#      splice, pread+write, write from mmap), medians of --runs runs;
#   2. a throwaway ZooKeeper and one broker start on free loopback ports;
#   3. sluice-loadgen fills one partition with --size bytes, the segment files are
#      synced and read once so the partition is page-cached;
#   4. for each fetch.send.strategy the broker is restarted with that strategy and the
#      partition is consumed from offset 0 to its end --runs times by sluice-loadgen's
#      fetch mode, which samples the broker's CPU from /proc/<pid>/stat;
#   5. fetch_report.py prints throughput and broker CPU-s/GB per strategy (medians) next
#      to the bare limits, as ratios, and writes every JSON record to --out.
#
# Everything listens on 127.0.0.1; only processes this script started are stopped, by PID.
# Usage: bench/fetch_bench.sh [--build DIR] [--size 1g] [--runs 3]
#          [--strategies splice,mmap_copy,buffered] [--reactor-threads 1] [--workdir DIR]
#          [--out FILE] [--keep] [--skip-limits] [--wait-idle SECONDS]
# --wait-idle waits (at most SECONDS) for the 1-minute load average to drop below 1.5
# first: on a small shared machine other people's compilers skew every number.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build="$repo/build"
size=1g
runs=3
strategies=splice,mmap_copy,buffered
reactor_threads=1
workdir=""
out=""
keep=0
skip_limits=0
wait_idle=0
topic=fetch-bench

while [[ $# -gt 0 ]]; do
    case "$1" in
        --build) build=$(cd "$2" && pwd); shift 2 ;;
        --size) size=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --strategies) strategies=$2; shift 2 ;;
        --reactor-threads) reactor_threads=$2; shift 2 ;;
        --workdir) workdir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --skip-limits) skip_limits=1; shift ;;
        --wait-idle) wait_idle=$2; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "fetch_bench: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

python=/usr/bin/python3
broker_bin=""
for candidate in "$build/sluice" "$build/broker/sluice"; do
    [[ -x "$candidate" ]] && { broker_bin=$candidate; break; }
done
loadgen="$build/bench/sluice-loadgen"
limits="$build/bench/sluice-limits"
for tool in "$loadgen" "$limits"; do
    [[ -x "$tool" ]] || { echo "fetch_bench: $tool not built (meson compile -C $build)" >&2; exit 1; }
done
[[ -n "$broker_bin" ]] || { echo "fetch_bench: no broker binary at $build/sluice or $build/broker/sluice" >&2; exit 1; }
zk_jar=/usr/share/java/zookeeper.jar
[[ -f "$zk_jar" ]] || { echo "fetch_bench: $zk_jar missing (apt-get install zookeeper)" >&2; exit 1; }

[[ -n "$workdir" ]] || workdir=$(mktemp -d /tmp/sluice-fetch-bench.XXXXXX)
mkdir -p "$workdir"
[[ -n "$out" ]] || out="$workdir/results.jsonl"
: > "$out"
log() { echo "fetch_bench: $*" >&2; }

zk_pid=""
broker_pid=""
stop_pid() {  # stop_pid PID: SIGTERM, wait up to 20 s, then SIGKILL; only our own children
    local pid=$1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }; sleep 0.1; done
    log "pid $pid ignored SIGTERM for 20 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_pid "$broker_pid"
    stop_pid "$zk_pid"
    if [[ $keep -eq 0 ]]; then
        rm -rf "$workdir/zk" "$workdir/logs" "$workdir/limits"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [[ $wait_idle -gt 0 ]]; then
    deadline=$((SECONDS + wait_idle))
    until awk '{ exit !($1 < 1.5) }' /proc/loadavg || [[ $SECONDS -ge $deadline ]]; do sleep 5; done
    log "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
fi

# ---- 1. bare limits -----------------------------------------------------------------
if [[ $skip_limits -eq 0 ]]; then
    log "measuring bare limits on a $size file ($runs runs each)"
    mkdir -p "$workdir/limits"
    "$limits" --dir "$workdir/limits" --file-size "$size" --repeat "$runs" \
        --only tcp_hot_buffer,sendfile,splice_pipe1m,splice_pipe64k,pread_write_1m,pread_write_64k,mmap_write_1m \
        >> "$out" 2> "$workdir/limits.txt" || { cat "$workdir/limits.txt" >&2; exit 1; }
    rm -rf "$workdir/limits"
fi

# ---- 2. ZooKeeper -------------------------------------------------------------------
zk_port=$(free_port)
mkdir -p "$workdir/zk"
java -Dzookeeper.admin.enableServer=false -Dzookeeper.4lw.commands.whitelist=srvr,ruok \
    -cp "/etc/zookeeper/conf:$zk_jar" org.apache.zookeeper.server.ZooKeeperServerMain \
    "$zk_port" "$workdir/zk" > "$workdir/zk.log" 2>&1 &
zk_pid=$!
zk_ready() {
    "$python" - "$zk_port" <<'EOF'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5)
    s.sendall(b"srvr")
    sys.exit(0 if b"Mode:" in s.recv(4096) else 1)
except OSError:
    sys.exit(1)
EOF
}
for i in $(seq 1 150); do zk_ready && break; kill -0 $zk_pid 2>/dev/null || break; sleep 0.2; done
zk_ready || { log "ZooKeeper did not start on port $zk_port"; tail -20 "$workdir/zk.log" >&2; exit 1; }
log "ZooKeeper pid $zk_pid on 127.0.0.1:$zk_port"

# ---- 3. broker + fill ---------------------------------------------------------------
broker_port=$(free_port)
mkdir -p "$workdir/logs"
cat > "$workdir/server.properties" <<EOF
broker.id=0
log.dirs=$workdir/logs
zookeeper.connect=127.0.0.1:$zk_port/sluice-fetch-bench
listeners=PLAINTEXT://127.0.0.1:$broker_port
offsets.topic.replication.factor=1
num.partitions=1
reactor.threads=$reactor_threads
EOF

start_broker() {  # start_broker STRATEGY
    "$broker_bin" "$workdir/server.properties" --override "fetch.send.strategy=$1" \
        > "$workdir/broker-$1.log" 2>&1 &
    broker_pid=$!
    # Ready = answers Metadata (kcat -L is bounded by -m); at most 60 s.
    for i in $(seq 1 120); do
        kill -0 "$broker_pid" 2>/dev/null || break
        if timeout 5 kcat -b "127.0.0.1:$broker_port" -L -m 2 >/dev/null 2>&1; then
            log "broker pid $broker_pid ready (fetch.send.strategy=$1)"
            return 0
        fi
        sleep 0.5
    done
    log "broker did not become ready (strategy $1); last log lines:"
    tail -30 "$workdir/broker-$1.log" >&2
    exit 1
}

IFS=, read -r -a strategy_list <<< "$strategies"
start_broker "${strategy_list[0]}"
log "filling $topic-0 with $size"
"$loadgen" --mode produce --bootstrap "127.0.0.1:$broker_port" --topic "$topic" --partitions 1 \
    --bytes "$size" --record-size 1024 --batch-bytes 512k --pipeline 8 --acks 1 --timeout 600 \
    --broker-pid "$broker_pid" >> "$out" 2> "$workdir/fill.txt" \
    || { cat "$workdir/fill.txt" >&2; log "fill failed"; exit 1; }
cat "$workdir/fill.txt" >&2

# Durable and resident: no writeback competes with the fetch runs, and every page is
# in the page cache (the file was just written, and is read once more to be sure).
shopt -s nullglob
segments=("$workdir"/logs/"$topic"-0/*.log)
shopt -u nullglob
if [[ ${#segments[@]} -eq 0 ]]; then
    log "no segment files under $workdir/logs/$topic-0; syncing everything instead"
    sync
else
    sync "${segments[@]}"
    cat "${segments[@]}" > /dev/null
    log "partition on disk: $(du -ch "${segments[@]}" | tail -1 | cut -f1) in ${#segments[@]} segment(s)"
fi

# ---- 4. fetch runs per strategy -----------------------------------------------------
first=1
for strategy in "${strategy_list[@]}"; do
    if [[ $first -eq 0 ]]; then
        stop_pid "$broker_pid"
        broker_pid=""
        start_broker "$strategy"
    fi
    first=0
    for run in $(seq 1 "$runs"); do
        line=$("$loadgen" --mode fetch --bootstrap "127.0.0.1:$broker_port" --topic "$topic" \
                   --partition-max-bytes 32m --fetch-max-bytes 64m --broker-pid "$broker_pid" --timeout 300 \
                   2> "$workdir/fetch-$strategy-$run.txt") \
            || { cat "$workdir/fetch-$strategy-$run.txt" >&2; log "fetch run failed ($strategy, run $run)"; exit 1; }
        echo "$line" | "$python" -c 'import json,sys; r=json.loads(sys.stdin.read()); r["strategy"]=sys.argv[1]; r["run"]=int(sys.argv[2]); print(json.dumps(r))' \
            "$strategy" "$run" >> "$out"
        log "$strategy run $run: $(tail -n +1 "$workdir/fetch-$strategy-$run.txt" | head -1)"
    done
done

# ---- 5. report ----------------------------------------------------------------------
"$python" "$here/fetch_report.py" "$out"
log "all records: $out"
