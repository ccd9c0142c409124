#!/usr/bin/env bash
# Builds the runtime one `spec_version` later (the runtime crate's
# `upgrade-test` feature), compacted and compressed the way a real upgrade is
# shipped, for the runtime-upgrade test. Prints the blob's path.
#
# The blob has a name of its own (runtime/build.rs), so this never replaces
# the runtime the node embeds. Only the runtime crate is compiled again (once
# natively, twice to Wasm for the metadata hash); its dependencies are reused.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
# `release` here only makes the builder compact and compress the blob: the
# Wasm half is built with the release profile either way.
WASM_BUILD_TYPE=release cargo build --locked -p medchain-runtime --features upgrade-test >&2
blob="$CARGO_TARGET_DIR/debug/wbuild/medchain-runtime/medchain_runtime_upgrade.compact.compressed.wasm"
[ -s "$blob" ] || { echo "build-upgrade-runtime: no blob at $blob" >&2; exit 1; }
echo "$blob"
