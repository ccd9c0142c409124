//! Builds the runtime's Wasm blob (`scripts/benchmark-pallets.sh` builds it
//! with `runtime-benchmarks`, copies that blob aside, and rebuilds the
//! ordinary one).

#[cfg(feature = "std")]
fn main() {
	let builder = substrate_wasm_builder::WasmBuilder::init_with_defaults();
	#[cfg(feature = "metadata-hash")]
	let builder = builder.enable_metadata_hash("MED", 12);
	builder.build();
}

#[cfg(not(feature = "std"))]
fn main() {}
