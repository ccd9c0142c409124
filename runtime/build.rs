//! Builds the runtime's Wasm blob. A `runtime-benchmarks` build writes its
//! blob under another name so it never replaces the one the node embeds.

#[cfg(feature = "std")]
fn main() {
	let builder = substrate_wasm_builder::WasmBuilder::init_with_defaults();
	#[cfg(feature = "metadata-hash")]
	let builder = builder.enable_metadata_hash("MED", 12);
	#[cfg(feature = "runtime-benchmarks")]
	let builder = builder.set_file_name("medchain_runtime_benchmarks");
	builder.build();
}

#[cfg(not(feature = "std"))]
fn main() {}
