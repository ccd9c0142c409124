//! `medchain-bencher pallet --runtime <wasm> --pallet <name> ...`: runs a
//! pallet's frame benchmarks inside the given runtime blob (built with the
//! `runtime-benchmarks` feature) and, with `--output`, writes its weight file.
//! `scripts/benchmark-pallets.sh` drives it for every Medchain pallet.

use clap::Parser;
use frame_benchmarking_cli::PalletCmd;
use sp_runtime::traits::BlakeTwo256;

/// Host functions the Medchain runtime imports beyond Substrate's defaults:
/// the storage-proof size that parachain weight reclaim reads.
type ExtraHostFunctions = (cumulus_primitives_proof_size_hostfunction::storage_proof_size::HostFunctions,);

/// Medchain's benchmark runner.
#[derive(Debug, Parser)]
#[command(version, about)]
enum Command {
	/// Benchmarks a pallet's extrinsics in a runtime blob.
	Pallet(Box<PalletCmd>),
}

fn main() -> sc_cli::Result<()> {
	// Errors inside the runtime (a failing benchmark's reason) are logged.
	sc_cli::LoggerBuilder::new("").init()?;
	match Command::parse() {
		Command::Pallet(cmd) => cmd.run_with_spec::<BlakeTwo256, ExtraHostFunctions>(None),
	}
}
