//! Builds the runtime's Wasm blob. With `runtime-benchmarks`
//! (`scripts/benchmark-pallets.sh`) or `upgrade-test`
//! (`scripts/build-upgrade-runtime.sh`) the blob gets a name of its own, next
//! to the ordinary one, which stays what the node embeds.

#[cfg(feature = "std")]
fn main() {
	let builder = substrate_wasm_builder::WasmBuilder::init_with_defaults();
	#[cfg(feature = "metadata-hash")]
	let builder = builder.enable_metadata_hash("MED", 12);
	// Blobs built for tests and benchmarks get names of their own, so
	// building them never replaces the blob the node embeds. The builder
	// names the generated Rust file after the blob; the runtime includes
	// `wasm_binary.rs`.
	let feature = |name: &str| std::env::var_os(format!("CARGO_FEATURE_{name}")).is_some();
	let name = if feature("UPGRADE_TEST") {
		"medchain_runtime_upgrade"
	} else if feature("RUNTIME_BENCHMARKS") {
		"medchain_runtime_benchmarks"
	} else {
		builder.build();
		return;
	};
	builder.set_file_name(name).build();
	let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
	std::fs::copy(out_dir.join(name), out_dir.join("wasm_binary.rs")).expect("the builder wrote its file");
}

#[cfg(not(feature = "std"))]
fn main() {}
