//! Builds the runtime's Wasm blob (`scripts/benchmark-pallets.sh` builds it
//! with `runtime-benchmarks`, copies that blob aside, and rebuilds the
//! ordinary one; `scripts/build-upgrade-runtime.sh` builds the `upgrade-test`
//! blob under a name of its own).

#[cfg(feature = "std")]
fn main() {
	let builder = substrate_wasm_builder::WasmBuilder::init_with_defaults();
	#[cfg(feature = "metadata-hash")]
	let builder = builder.enable_metadata_hash("MED", 12);
	if std::env::var_os("CARGO_FEATURE_UPGRADE_TEST").is_none() {
		builder.build();
		return;
	}
	// The upgrade test's blob gets a name of its own, so building it never
	// replaces the blob the node embeds. The builder names the generated
	// Rust file after the blob; the runtime includes `wasm_binary.rs`.
	const NAME: &str = "medchain_runtime_upgrade";
	builder.set_file_name(NAME).build();
	let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
	std::fs::copy(out_dir.join(NAME), out_dir.join("wasm_binary.rs")).expect("the builder wrote its file");
}

#[cfg(not(feature = "std"))]
fn main() {}
