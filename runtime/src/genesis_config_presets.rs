//! Genesis presets: `development` (one collator, Alice), `local_testnet` (two
//! collators, Alice and Bob), both with sudo for convenience, and
//! `medchain_local`, a consortium as a region would launch it: no sudo key, a
//! founding council of three hospitals (Alice and Bob collate) and three
//! regulators. Chain specs are generated from these with no hand-edited JSON.

use alloc::{vec, vec::Vec};
use cumulus_primitives_core::ParaId;
use frame_support::build_struct_json_patch;
use medchain_primitives::{HospitalGrade, InstitutionKind, Roles};
use serde_json::Value;
use sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};
use sp_keyring::Sr25519Keyring;

use crate::{
	AccountId, AuraId, BalancesConfig, FlTaskConfig, ParachainInfoConfig, ReputationConfig, RuntimeGenesisConfig,
	SessionConfig, SessionKeys, SudoConfig, UNIT,
};

/// The parachain id used by the dev and local presets (and by zombienet).
pub const PARACHAIN_ID: u32 = 2000;

/// Initial balance of each endowed dev account.
pub const ENDOWMENT: u128 = 1_000_000 * UNIT;

/// The name of the production-style preset (`--chain medchain-local`).
pub const MEDCHAIN_LOCAL_PRESET: &str = "medchain_local";

/// A genesis institution: `(account, name, kind, roles)`.
type GenesisInstitution = (AccountId, Vec<u8>, InstitutionKind, Roles);

/// A tier-3A hospital that produces and validates (a council member).
fn genesis_hospital(who: &AccountId, index: usize) -> GenesisInstitution {
	let name = alloc::format!("Genesis Hospital {}", index + 1).into_bytes();
	(
		who.clone(),
		name,
		InstitutionKind::Hospital { level: 3, grade: HospitalGrade::A },
		Roles { producer: true, validator: true, auditor: false },
	)
}

/// A health regulator with the auditor role (a member of the regulators).
fn genesis_regulator(who: &AccountId, index: usize) -> GenesisInstitution {
	let name = alloc::format!("Regional Health Regulator {}", index + 1).into_bytes();
	(who.clone(), name, InstitutionKind::Regulator, Roles::only(medchain_primitives::Role::Auditor))
}

fn session_keys(aura: AuraId) -> SessionKeys {
	SessionKeys { aura }
}

fn genesis(
	invulnerables: Vec<(AccountId, AuraId)>,
	institutions: Vec<GenesisInstitution>,
	endowed: Vec<AccountId>,
	root: Option<AccountId>,
	id: ParaId,
	loopback_stores: bool,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed.iter().cloned().map(|k| (k, ENDOWMENT)).collect::<Vec<_>>(),
		},
		parachain_info: ParachainInfoConfig { parachain_id: id },
		reputation: ReputationConfig {
			institutions,
			invulnerables: invulnerables.iter().cloned().map(|(acc, _)| acc).collect::<Vec<_>>(),
		},
		session: SessionConfig {
			keys: invulnerables
				.into_iter()
				.map(|(acc, aura)| (acc.clone(), acc, session_keys(aura)))
				.collect::<Vec<_>>(),
		},
		sudo: SudoConfig { key: root },
		fl_task: FlTaskConfig { loopback_stores },
	})
}

fn collator(k: Sr25519Keyring) -> (AccountId, AuraId) {
	(k.to_account_id(), k.public().into())
}

/// Genesis hospitals for the collators.
fn hospitals(collators: &[(AccountId, AuraId)]) -> Vec<GenesisInstitution> {
	collators.iter().enumerate().map(|(i, (acc, _))| genesis_hospital(acc, i)).collect()
}

/// A convenience chain: `collators` are its hospitals, the well-known
/// accounts are funded and `//Alice` is sudo. With `loopback_stores`,
/// model stores on the node's own machine (`http://127.0.0.1:…`) may be
/// registered: for a single-machine development chain only.
fn with_sudo(collators: Vec<(AccountId, AuraId)>, loopback_stores: bool) -> Value {
	genesis(
		collators.clone(),
		hospitals(&collators),
		Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect(),
		Some(Sr25519Keyring::Alice.to_account_id()),
		PARACHAIN_ID.into(),
		loopback_stores,
	)
}

fn development() -> Value {
	with_sudo(vec![collator(Sr25519Keyring::Alice)], true)
}

fn local_testnet() -> Value {
	with_sudo(vec![collator(Sr25519Keyring::Alice), collator(Sr25519Keyring::Bob)], false)
}

/// A consortium as a region launches it: no sudo key. The founding council
/// is three hospitals (Alice and Bob collate, Charlie does not), the
/// regulators are Dave, Eve and Ferdie. A region replaces these accounts with
/// its own in the chain spec (see the README).
fn medchain_local() -> Value {
	use Sr25519Keyring::*;
	let collators = vec![collator(Alice), collator(Bob)];
	let mut institutions: Vec<_> = [Alice, Bob, Charlie]
		.iter()
		.enumerate()
		.map(|(i, k)| genesis_hospital(&k.to_account_id(), i))
		.collect();
	institutions.extend(
		[Dave, Eve, Ferdie].iter().enumerate().map(|(i, k)| genesis_regulator(&k.to_account_id(), i)),
	);
	genesis(
		collators,
		institutions,
		Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect(),
		None,
		PARACHAIN_ID.into(),
		false,
	)
}

/// The JSON genesis patch of preset `id`, if it exists.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_str() {
		DEV_RUNTIME_PRESET => development(),
		LOCAL_TESTNET_RUNTIME_PRESET => local_testnet(),
		MEDCHAIN_LOCAL_PRESET => medchain_local(),
		_ => return None,
	};
	serde_json::to_vec(&patch).ok()
}

/// Names of the presets this runtime provides.
pub fn preset_names() -> Vec<PresetId> {
	vec![
		PresetId::from(DEV_RUNTIME_PRESET),
		PresetId::from(LOCAL_TESTNET_RUNTIME_PRESET),
		PresetId::from(MEDCHAIN_LOCAL_PRESET),
	]
}
