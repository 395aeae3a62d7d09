#!/usr/bin/env bash
# Quick start: install dependencies, build, and run a single-broker Sluice with a private
# ZooKeeper, both on 127.0.0.1. Ctrl-C stops the broker (SIGTERM, waits), then ZooKeeper.
#
#   sudo tools/quickstart.sh            # bootstrap 127.0.0.1:9092
#   PORT=19092 tools/quickstart.sh      # another port
#   KEEP_DATA=1 tools/quickstart.sh     # keep the temporary data directory afterwards
#
# The ZooKeeper is Debian's zookeeper package run directly from its jars
# (org.apache.zookeeper.server.ZooKeeperServerMain), not the system service.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-build}"
port="${PORT:-9092}"
cd "$repo"

packages=(meson ninja-build pkg-config g++ liburing-dev libzookeeper-mt-dev zookeeper
          default-jre-headless libfmt-dev doctest-dev libssl-dev nlohmann-json3-dev kcat
          python3-confluent-kafka python3-kafka python3-pytest python3-kazoo librdkafka-dev clang
          zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev)

say() { printf '%s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ -f "$build_dir/build.ninja" ] || meson setup "$build_dir" --buildtype=debugoptimized
meson compile -C "$build_dir"
sluice="$build_dir/sluice"
[ -x "$sluice" ] || sluice="$build_dir/broker/sluice"
[ -x "$sluice" ] || { say "build did not produce $build_dir/sluice"; exit 1; }

# A free loopback port for ZooKeeper (the kernel's choice).
zk_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is already in use; set PORT=... to use another"
    exit 1
fi

work="$(mktemp -d -t sluice-quickstart.XXXXXX)"
zk_pid=""
broker_pid=""

cleanup() {
    trap - INT TERM EXIT
    if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
        say "stopping broker (pid $broker_pid)"
        kill -TERM "$broker_pid"
        for _ in $(seq 300); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$broker_pid" 2>/dev/null; then
            say "broker did not stop within 30 s; killing it"
            kill -KILL "$broker_pid"
        fi
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [ -n "$zk_pid" ] && kill -0 "$zk_pid" 2>/dev/null; then
        say "stopping ZooKeeper (pid $zk_pid)"
        kill -TERM "$zk_pid"
        wait "$zk_pid" 2>/dev/null || true
    fi
    if [ "${KEEP_DATA:-0}" = 1 ]; then
        say "data kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$work/zk-data" "$work/kafka-logs"
cat > "$work/zoo.cfg" <<CFG
tickTime=2000
dataDir=$work/zk-data
clientPort=$zk_port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
CFG

classpath=/usr/share/java/zookeeper.jar
[ -f /usr/share/java/slf4j-simple.jar ] && classpath="$classpath:/usr/share/java/slf4j-simple.jar"
java -Xmx256m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$classpath" \
    org.apache.zookeeper.server.ZooKeeperServerMain "$work/zoo.cfg" > "$work/zookeeper.log" 2>&1 &
zk_pid=$!

# `ruok` answers imok while the database is still loading; `srvr` reports a Mode only
# once requests are served.
zk_ok() {
    exec 3<>"/dev/tcp/127.0.0.1/$zk_port" || return 1
    printf srvr >&3
    local answer
    answer="$(timeout 2 cat <&3 || true)"
    exec 3<&-
    [[ "$answer" == *"Mode: "* ]]
}
for i in $(seq 300); do
    zk_ok 2>/dev/null && break
    kill -0 "$zk_pid" 2>/dev/null || { say "ZooKeeper exited:"; cat "$work/zookeeper.log" >&2; exit 1; }
    [ "$i" -eq 300 ] && { say "ZooKeeper did not start serving within 30 s"; exit 1; }
    sleep 0.1
done
say "ZooKeeper is up on 127.0.0.1:$zk_port (data in $work/zk-data)"

cat > "$work/server.properties" <<CFG
broker.id=0
log.dirs=$work/kafka-logs
zookeeper.connect=127.0.0.1:$zk_port/sluice
listeners=PLAINTEXT://127.0.0.1:$port
offsets.topic.replication.factor=1
CFG

"$sluice" "$work/server.properties" &
broker_pid=$!
for i in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$broker_pid" 2>/dev/null || { wait "$broker_pid" || say "sluice exited with status $?"; exit 1; }
    [ "$i" -eq 300 ] && { say "sluice did not listen on $port within 30 s"; exit 1; }
    sleep 0.1
done

echo "Sluice is up: bootstrap 127.0.0.1:$port"
say "try:  echo hello | kcat -P -b 127.0.0.1:$port -t demo && kcat -C -b 127.0.0.1:$port -t demo -e"
say "Ctrl-C stops the broker and ZooKeeper (config: $work/server.properties)"
wait "$broker_pid" || true
broker_pid=""
say "sluice exited"
