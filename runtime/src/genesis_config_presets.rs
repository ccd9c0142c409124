//! Genesis presets: `development` (one collator, Alice) and `local_testnet`
//! (two collators, Alice and Bob). Chain specs are generated from these with
//! no hand-edited JSON.

use alloc::{vec, vec::Vec};
use cumulus_primitives_core::ParaId;
use frame_support::build_struct_json_patch;
use medchain_primitives::{HospitalGrade, InstitutionKind, Roles};
use serde_json::Value;
use sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};
use sp_keyring::Sr25519Keyring;

use crate::{
	AccountId, AuraId, BalancesConfig, ParachainInfoConfig, ReputationConfig, RuntimeGenesisConfig,
	SessionConfig, SessionKeys, SudoConfig, UNIT,
};

/// The parachain id used by the dev and local presets (and by zombienet).
pub const PARACHAIN_ID: u32 = 2000;

/// Initial balance of each endowed dev account.
pub const ENDOWMENT: u128 = 1_000_000 * UNIT;

/// Genesis collators are registered as tier-3A hospitals that produce and
/// validate.
fn genesis_institution(who: &AccountId, index: usize) -> (AccountId, Vec<u8>, InstitutionKind, Roles) {
	let name = alloc::format!("Genesis Hospital {}", index + 1).into_bytes();
	(
		who.clone(),
		name,
		InstitutionKind::Hospital { level: 3, grade: HospitalGrade::A },
		Roles { producer: true, validator: true, auditor: false },
	)
}

fn session_keys(aura: AuraId) -> SessionKeys {
	SessionKeys { aura }
}

fn genesis(
	invulnerables: Vec<(AccountId, AuraId)>,
	endowed: Vec<AccountId>,
	root: AccountId,
	id: ParaId,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed.iter().cloned().map(|k| (k, ENDOWMENT)).collect::<Vec<_>>(),
		},
		parachain_info: ParachainInfoConfig { parachain_id: id },
		reputation: ReputationConfig {
			institutions: invulnerables
				.iter()
				.enumerate()
				.map(|(i, (acc, _))| genesis_institution(acc, i))
				.collect::<Vec<_>>(),
			invulnerables: invulnerables.iter().cloned().map(|(acc, _)| acc).collect::<Vec<_>>(),
		},
		session: SessionConfig {
			keys: invulnerables
				.into_iter()
				.map(|(acc, aura)| (acc.clone(), acc, session_keys(aura)))
				.collect::<Vec<_>>(),
		},
		sudo: SudoConfig { key: Some(root) },
	})
}

fn collator(k: Sr25519Keyring) -> (AccountId, AuraId) {
	(k.to_account_id(), k.public().into())
}

fn development() -> Value {
	genesis(
		vec![collator(Sr25519Keyring::Alice)],
		Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect(),
		Sr25519Keyring::Alice.to_account_id(),
		PARACHAIN_ID.into(),
	)
}

fn local_testnet() -> Value {
	genesis(
		vec![collator(Sr25519Keyring::Alice), collator(Sr25519Keyring::Bob)],
		Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect(),
		Sr25519Keyring::Alice.to_account_id(),
		PARACHAIN_ID.into(),
	)
}

/// The JSON genesis patch of preset `id`, if it exists.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_str() {
		DEV_RUNTIME_PRESET => development(),
		LOCAL_TESTNET_RUNTIME_PRESET => local_testnet(),
		_ => return None,
	};
	serde_json::to_vec(&patch).ok()
}

/// Names of the presets this runtime provides.
pub fn preset_names() -> Vec<PresetId> {
	vec![PresetId::from(DEV_RUNTIME_PRESET), PresetId::from(LOCAL_TESTNET_RUNTIME_PRESET)]
}
