//! Runtime tests, run natively in `TestExternalities` built from the genesis
//! presets the chain specs use.

use frame_support::{assert_noop, assert_ok, traits::fungible::Inspect};
use medchain_runtime::{
	configs::MAX_CONTRACT_CODE_LEN,
	genesis_config_presets::{get_preset, preset_names, ENDOWMENT, PARACHAIN_ID},
	AccountId, Balances, Contracts, ParachainInfo, Reputation, Runtime, RuntimeGenesisConfig,
	RuntimeOrigin, Session, System, EXISTENTIAL_DEPOSIT, UNIT,
};
use medchain_primitives::{InstitutionRegistry, Role};
use pallet_contracts::Determinism;
use serde_json::Value;
use sp_keyring::Sr25519Keyring::{Alice, Bob, Charlie, Ferdie};

/// Applies a JSON patch onto a JSON document, as the chain-spec builder does.
fn merge(base: &mut Value, patch: Value) {
	match (base, patch) {
		(Value::Object(base), Value::Object(patch)) => {
			for (k, v) in patch {
				merge(base.entry(k).or_insert(Value::Null), v);
			}
		},
		(base, patch) => *base = patch,
	}
}

/// Externalities holding the genesis state of preset `name`.
fn genesis(name: &str) -> sp_io::TestExternalities {
	let patch: Value =
		serde_json::from_slice(&get_preset(&name.to_string()).expect("preset exists")).unwrap();
	let mut full = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
	merge(&mut full, patch);
	let config: RuntimeGenesisConfig = serde_json::from_value(full).expect("patch fits the config");
	let storage = frame_support::sp_runtime::BuildStorage::build_storage(&config).unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

fn account(k: sp_keyring::Sr25519Keyring) -> AccountId {
	k.to_account_id()
}

#[test]
fn presets_are_listed() {
	let names = preset_names();
	assert_eq!(names, vec!["development".to_string(), "local_testnet".to_string()]);
	assert!(get_preset(&"no-such-preset".to_string()).is_none());
}

#[test]
fn development_preset_builds_with_one_collator() {
	genesis("development").execute_with(|| {
		assert_eq!(ParachainInfo::parachain_id(), PARACHAIN_ID.into());
		assert_eq!(
			pallet_reputation::Invulnerables::<Runtime>::get().into_inner(),
			vec![account(Alice)]
		);
		assert_eq!(Session::validators(), vec![account(Alice)]);
		// Alice is a tier-3A hospital producing blocks, at the initial credit.
		assert!(<Reputation as InstitutionRegistry<_>>::has_role(&account(Alice), Role::Producer));
		assert_eq!(pallet_reputation::Credits::<Runtime>::get(account(Alice)), Some(600));
		// Her institution bond is held.
		assert_eq!(
			Balances::balance(&account(Alice)),
			ENDOWMENT - medchain_runtime::configs::InstitutionBond::get()
		);
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(account(Alice)));
		assert_eq!(Balances::balance(&account(Ferdie)), ENDOWMENT);
	});
}

#[test]
fn local_testnet_preset_builds_with_two_collators() {
	genesis("local_testnet").execute_with(|| {
		assert_eq!(
			pallet_reputation::Invulnerables::<Runtime>::get().into_inner(),
			vec![account(Alice), account(Bob)]
		);
		assert_eq!(pallet_reputation::InstitutionCount::<Runtime>::get(), 2);
		assert_eq!(Session::validators(), vec![account(Alice), account(Bob)]);
	});
}

#[test]
fn transfer_moves_balance() {
	genesis("development").execute_with(|| {
		let amount = 42 * UNIT;
		assert_ok!(Balances::transfer_keep_alive(
			RuntimeOrigin::signed(account(Charlie)),
			account(Ferdie).into(),
			amount
		));
		assert_eq!(Balances::balance(&account(Charlie)), ENDOWMENT - amount);
		assert_eq!(Balances::balance(&account(Ferdie)), ENDOWMENT + amount);
	});
}

#[test]
fn transfer_beyond_balance_fails_and_changes_nothing() {
	genesis("development").execute_with(|| {
		assert_noop!(
			Balances::transfer_keep_alive(
				RuntimeOrigin::signed(account(Charlie)),
				account(Ferdie).into(),
				ENDOWMENT + 1
			),
			sp_runtime::TokenError::FundsUnavailable
		);
		assert!(EXISTENTIAL_DEPOSIT > 0);
	});
}

/// The smallest module `pallet-contracts` accepts: imported memory, `deploy`
/// and `call` exported.
fn minimal_contract(data_len: usize) -> Vec<u8> {
	let data = "\\00".repeat(data_len);
	let wat = format!(
		r#"(module
			(import "env" "memory" (memory 1 16))
			(func (export "deploy"))
			(func (export "call"))
			(data (i32.const 0) "{data}")
		)"#
	);
	wat::parse_str(wat).expect("valid wat")
}

#[test]
fn contract_upload_within_limits_is_stored() {
	genesis("development").execute_with(|| {
		let code = minimal_contract(16);
		assert!(code.len() < MAX_CONTRACT_CODE_LEN as usize);
		let free_before = Balances::balance(&account(Alice));
		assert_ok!(Contracts::upload_code(
			RuntimeOrigin::signed(account(Alice)),
			code.clone(),
			None,
			Determinism::Enforced
		));
		let hash = sp_core::H256(sp_io::hashing::blake2_256(&code));
		let stored = System::events().into_iter().any(|r| {
			matches!(
				r.event,
				medchain_runtime::RuntimeEvent::Contracts(pallet_contracts::Event::CodeStored {
					code_hash, ..
				}) if code_hash == hash
			)
		});
		assert!(stored, "CodeStored event for the uploaded code");
		// The storage deposit is held from the uploader.
		assert!(Balances::balance(&account(Alice)) < free_before);
	});
}

#[test]
fn oversized_contract_upload_is_rejected_with_code_too_large() {
	genesis("development").execute_with(|| {
		let code = minimal_contract(MAX_CONTRACT_CODE_LEN as usize + 1);
		assert!(code.len() > MAX_CONTRACT_CODE_LEN as usize);
		assert_noop!(
			Contracts::upload_code(
				RuntimeOrigin::signed(account(Alice)),
				code,
				None,
				Determinism::Enforced
			),
			pallet_contracts::Error::<Runtime>::CodeTooLarge
		);
	});
}

#[test]
fn contract_upload_that_is_not_wasm_is_rejected() {
	genesis("development").execute_with(|| {
		assert_noop!(
			Contracts::upload_code(
				RuntimeOrigin::signed(account(Alice)),
				b"definitely not wasm".to_vec(),
				None,
				Determinism::Enforced
			),
			pallet_contracts::Error::<Runtime>::CodeRejected
		);
	});
}
