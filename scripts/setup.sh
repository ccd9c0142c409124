#!/usr/bin/env bash
# Installs everything Medchain's scripts need. Idempotent: a second run on a
# prepared machine only checks and returns.
#
#   scripts/setup.sh            system packages, Rust Wasm toolchain, npm deps,
#                               Python venv with SecantusDB (MongoDB wire protocol)
set -euo pipefail
. "$(dirname "$0")/env.sh"
STAMP_DIR="$HOME/.cache/medchain"
mkdir -p "$STAMP_DIR"

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ $apt_updated = 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# --- 1. Native build dependencies (RocksDB bindings, libp2p protobufs) ------
if command -v apt-get >/dev/null; then
    # zstd: compresses the runtime Wasm for an on-chain upgrade (debug builds
    # leave it uncompressed, over the block size).
    apt_install clang libclang-dev protobuf-compiler curl ca-certificates zstd
fi

# --- 2. Rust toolchain --------------------------------------------------------
if ! command -v cargo >/dev/null; then
    log "installing rustup"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "$HOME/.cargo/env"
fi

# --- 3. Wasm target for the runtime ------------------------------------------
# The ordinary path first: rustup can fetch the target and the std sources.
wasm_ok() {
    rustup target list --installed 2>/dev/null | grep -qx wasm32v1-none
}
if [ -f "$STAMP_DIR/wasm-toolchain" ]; then
    log "Wasm toolchain: $(cat "$STAMP_DIR/wasm-toolchain") (Debian compiler + sysroot)"
elif wasm_ok; then
    log "Wasm toolchain: rustup wasm32v1-none"
elif rustup target add wasm32v1-none >/dev/null 2>&1 && rustup component add rust-src >/dev/null 2>&1; then
    log "Wasm toolchain: installed wasm32v1-none with rustup"
else
    # rustup cannot download here: build a wasm32v1-none sysroot from Debian's
    # compiler, which ships its standard library sources.
    log "rustup cannot fetch wasm32v1-none; building a sysroot from Debian's rustc"
    apt_install rustc-web cargo-web rust-web-src lld
    sysroot=/usr/lib/rustlib/wasm32v1-none/lib
    if ! ls "$sysroot"/libcore-*.rlib >/dev/null 2>&1; then
        tmp=$(mktemp -d)
        (
            cd "$tmp"
            /usr/bin/cargo init --lib --name sysroot-seed -q
            printf '#![no_std]\n' > src/lib.rs
            # Bitcode is needed: the runtime blob links with LTO.
            RUSTFLAGS="-C embed-bitcode=yes" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$tmp/target" \
                /usr/bin/cargo build -q --release -Zbuild-std=core,alloc --target wasm32v1-none
            as_root mkdir -p "$sysroot"
            as_root cp target/wasm32v1-none/release/deps/lib{core,alloc,compiler_builtins}-*.rlib "$sysroot/"
        )
        rm -rf "$tmp"
    fi
    as_root mkdir -p /usr/lib/rustlib/x86_64-unknown-linux-gnu/bin
    as_root ln -sf /usr/bin/lld /usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld
    d=/opt/rust-wasm-toolchain
    as_root mkdir -p $d/bin
    for t in rustc cargo rustdoc; do as_root ln -sf /usr/bin/$t $d/bin/$t; done
    as_root ln -sfn /usr/lib $d/lib
    rustup toolchain link medchain-wasm $d
    echo medchain-wasm > "$STAMP_DIR/wasm-toolchain"
    log "Wasm toolchain: medchain-wasm ($(/usr/bin/rustc --version))"
fi

# --- 4. JavaScript test and client dependencies ------------------------------
if [ -f "$MEDCHAIN_ROOT/package-lock.json" ]; then
    if ! command -v node >/dev/null; then apt_install nodejs npm; fi
    # The clients use the WebCrypto global and `node:test` of Node.js 20.
    node_major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$node_major" -lt 20 ]; then
        echo "setup: Node.js $(node --version) is too old; Medchain's clients and tests need Node.js 20 or newer" >&2
        echo "setup: (Debian 12 ships 18: install 20 or 22 from https://nodejs.org or NodeSource, then run setup again)" >&2
        exit 1
    fi
    lock_sum=$(sha256sum "$MEDCHAIN_ROOT/package-lock.json" | cut -c1-16)
    if [ "$(cat "$MEDCHAIN_ROOT/node_modules/.medchain-lock" 2>/dev/null)" != "$lock_sum" ]; then
        log "npm ci"
        (cd "$MEDCHAIN_ROOT" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$lock_sum" > "$MEDCHAIN_ROOT/node_modules/.medchain-lock"
    fi
fi
# --- 5. Headless Chromium for the patient portal's browser tests -------------
if command -v apt-get >/dev/null && [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
fi

# --- 6. MongoDB wire-protocol server for the record-store tests ---------------
# SecantusDB (PyPI, GPL-2.0, run as a separate process) speaks MongoDB's wire
# protocol; production stores point the same code at a real MongoDB.
VENV="$HOME/.cache/medchain/venv"
SECANTUS_VERSION=0.7.0b3
# pymongo: the end-to-end tests look into an institution's store and journal
# behind its gateway (tests/e2e/lib/services.mjs, mongoPython).
if ! "$VENV/bin/python" -c "import importlib.metadata as m, pymongo; assert m.version('SecantusDB') == '$SECANTUS_VERSION'" 2>/dev/null; then
    command -v python3 >/dev/null || apt_install python3 python3-venv
    log "python venv with SecantusDB $SECANTUS_VERSION"
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
    "$VENV/bin/pip" install -q "SecantusDB==$SECANTUS_VERSION" "pymongo>=4.6,<5"
fi

log "ready (target dir: $CARGO_TARGET_DIR)"
