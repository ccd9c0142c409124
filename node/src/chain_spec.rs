//! Built-in chain specs, generated from the runtime's genesis presets.
//!
//! | id                 | preset           | collators  | sudo  | chain type  |
//! |--------------------|------------------|------------|-------|-------------|
//! | `dev` (or empty)   | `development`    | Alice      | Alice | Development |
//! | `local`            | `local_testnet`  | Alice, Bob | Alice | Local       |
//! | `medchain-local`   | `medchain_local` | Alice, Bob | none  | Local       |
//! | a path to a JSON   | as written       |            |       |             |

use medchain_runtime::genesis_config_presets::PARACHAIN_ID;
use polkadot_omni_node_lib::chain_spec::{
	ChainSpec, DiskChainSpecLoader, Extensions, GenericChainSpec, LoadSpec,
};
use sc_service::{ChainType, Properties};

/// The relay chain the local chain specs expect (zombienet starts it).
pub const RELAY_CHAIN: &str = "rococo-local";

/// Loads `dev`, `local` and `medchain-local` from the runtime, anything else
/// from disk.
pub struct MedchainSpecLoader;

impl LoadSpec for MedchainSpecLoader {
	fn load_spec(&self, id: &str) -> Result<Box<dyn ChainSpec>, String> {
		match id {
			"" | "dev" | "medchain-dev" => Ok(Box::new(development()?)),
			"local" | "medchain-testnet" => Ok(Box::new(local_testnet()?)),
			"medchain-local" => Ok(Box::new(medchain_local()?)),
			path => DiskChainSpecLoader.load_spec(path),
		}
	}
}

fn properties() -> Properties {
	let mut p = Properties::new();
	p.insert("tokenSymbol".into(), "MED".into());
	p.insert("tokenDecimals".into(), 12.into());
	p.insert("ss58Format".into(), 42.into());
	p
}

fn wasm() -> Result<&'static [u8], String> {
	medchain_runtime::WASM_BINARY
		.ok_or_else(|| "the Medchain runtime Wasm was not built (SKIP_WASM_BUILD set?)".to_string())
}

/// Single-node development chain: Alice collates, well-known accounts funded.
pub fn development() -> Result<GenericChainSpec, String> {
	Ok(GenericChainSpec::builder(wasm()?, Extensions::new(RELAY_CHAIN.into(), PARACHAIN_ID))
		.with_name("Medchain Development")
		.with_id("medchain-dev")
		.with_chain_type(ChainType::Development)
		.with_genesis_config_preset_name("development")
		.with_properties(properties())
		.build())
}

/// Local testnet for zombienet: Alice and Bob collate.
pub fn local_testnet() -> Result<GenericChainSpec, String> {
	Ok(GenericChainSpec::builder(wasm()?, Extensions::new(RELAY_CHAIN.into(), PARACHAIN_ID))
		.with_name("Medchain Local Testnet")
		.with_id("medchain-testnet")
		.with_chain_type(ChainType::Local)
		.with_genesis_config_preset_name("local_testnet")
		.with_protocol_id("medchain-testnet")
		.with_properties(properties())
		.build())
}

/// A consortium as a region launches it: no sudo, a founding council of
/// three hospitals and three regulators; the template for a region's own
/// raw chain spec.
pub fn medchain_local() -> Result<GenericChainSpec, String> {
	Ok(GenericChainSpec::builder(wasm()?, Extensions::new(RELAY_CHAIN.into(), PARACHAIN_ID))
		.with_name("Medchain Consortium (local)")
		.with_id("medchain-local")
		.with_chain_type(ChainType::Local)
		.with_genesis_config_preset_name(medchain_runtime::genesis_config_presets::MEDCHAIN_LOCAL_PRESET)
		.with_protocol_id("medchain-local")
		.with_properties(properties())
		.build())
}

