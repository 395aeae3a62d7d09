#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every unit and integration
# suite. Meant for a fresh Debian 12 (run as root, or with sudo available) and for reruns.
#
#   tools/test.sh                 # everything
#   tools/test.sh --suite storage # extra arguments go to `meson test`
#
# Environment: BUILD_DIR (default: build), SLUICE_SKIP_APT=1 to never touch apt.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-build}"
cd "$repo"

# Debian packages the build and the tests use. nodejs/npm are checked as commands, because
# a NodeSource nodejs bundles npm and conflicts with Debian's npm package.
packages=(meson ninja-build pkg-config g++ liburing-dev libzookeeper-mt-dev zookeeper
          default-jre-headless libfmt-dev doctest-dev libssl-dev nlohmann-json3-dev kcat
          python3-confluent-kafka python3-kafka python3-pytest python3-kazoo
          python3-snappy python3-lz4 python3-zstandard librdkafka-dev clang
          zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev openssl)

log() { printf '\n== %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    if [ ${#missing[@]} -eq 0 ]; then
        log "all Debian packages present"
        return
    fi
    if [ "${SLUICE_SKIP_APT:-0}" = 1 ]; then
        echo "missing packages and SLUICE_SKIP_APT=1: ${missing[*]}" >&2
        exit 1
    fi
    log "installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_kafkajs() {
    local js="$repo/tests/integration/js"
    if [ -f "$js/node_modules/kafkajs/package.json" ] &&
       grep -q '"version": "2.2.4"' "$js/node_modules/kafkajs/package.json"; then
        log "kafkajs 2.2.4 present"
        return
    fi
    log "npm ci (kafkajs)"
    (cd "$js" && npm ci --no-audit --no-fund)
}

build() {
    if [ ! -f "$build_dir/build.ninja" ]; then
        log "meson setup $build_dir"
        meson setup "$build_dir" --buildtype=debugoptimized
    fi
    log "meson compile"
    meson compile -C "$build_dir"
}

install_missing
install_kafkajs
build
log "meson test (unit and integration suites)"
# Tests run in their own suites; the integration ones are is_parallel: false.
exec meson test -C "$build_dir" --print-errorlogs --num-processes 2 "$@"
