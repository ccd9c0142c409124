//! # medchain-node
//!
//! The Medchain node. Two ways to run it:
//!
//! - **Collator** for a real relay chain (zombienet, testnets):
//!   `medchain-node --collator --chain local -- --chain rococo-local.json`.
//! - **Dev mode**, one node and no relay chain: `medchain-node --dev`. Blocks
//!   are sealed on a timer (`--dev-block-time`, 3 s by default) or on each
//!   transaction (`--instant-seal`), relay-chain data is mocked, offchain
//!   workers run, RPC listens on `ws://127.0.0.1:9944` and state lives in a
//!   temporary directory unless `--base-path` is given.
//!
//! The service is the generic parachain node of `polkadot-omni-node-lib`; this
//! crate adds Medchain's built-in chain specs (`dev`, `local`) so no JSON has
//! to be written or edited by hand.

mod chain_spec;

use polkadot_omni_node_lib::{
	chain_spec::ChainSpec,
	run,
	runtime::{AuraConsensusId, BlockNumber, Consensus, Runtime, RuntimeResolver},
	CliConfig, RunConfig,
};

/// Medchain's runtime, known at compile time: `u32` block numbers, Aura
/// with sr25519 keys. The omni node's default resolver finds these out by
/// building the chain spec's genesis state and reading the runtime's
/// metadata, which compiles the runtime's Wasm twice more at every start
/// (about half of a debug node's start-up).
struct MedchainRuntime;

// The two facts the resolver states, checked against the runtime crate.
const _: fn(medchain_runtime::BlockNumber) -> u32 = |n| n;
const _: fn(medchain_runtime::AuraId) -> sp_consensus_aura::sr25519::AuthorityId = |id| id;

impl RuntimeResolver for MedchainRuntime {
	fn runtime(&self, _: &dyn ChainSpec) -> sc_cli::Result<Runtime> {
		Ok(Runtime::Omni(BlockNumber::U32, Consensus::Aura(AuraConsensusId::Sr25519)))
	}
}

/// Identity of the binary as shown by `--version` and in logs.
struct MedchainCli;

impl CliConfig for MedchainCli {
	fn impl_version() -> String {
		env!("CARGO_PKG_VERSION").to_string()
	}

	fn description(executable_name: String) -> String {
		format!(
			"Medchain node: collator for the Medchain parachain, or a single dev node.\n\n\
			 Dev chain:  {executable_name} --dev\n\
			 Collator:   {executable_name} --collator --chain local [args] -- [relay-chain args]"
		)
	}

	fn author() -> String {
		env!("CARGO_PKG_AUTHORS").to_string()
	}

	fn support_url() -> String {
		"https://example.invalid/medchain/issues".to_string()
	}

	fn copyright_start_year() -> u16 {
		2026
	}
}

fn main() -> sc_cli::Result<()> {
	let config = RunConfig::new(
		Box::new(MedchainRuntime),
		Box::new(chain_spec::MedchainSpecLoader),
	);
	run::<MedchainCli>(config)
}
