//! Storage version 0 → 1: fee-less calls for registered patients.
//!
//! From version 1 an [`IndexConsent`] records whether the issuer registered
//! the patient (`sponsored`), and every patient with a sponsored consent in
//! force has a [`crate::FreeCalls`] entry counting them, and the provider reference
//! that keeps its account alive without a balance. Version 0 did not record
//! who submitted a consent, so this migration counts every consent in force
//! as sponsored (a patient that consented by itself gets free calls it would
//! not get now: the lenient choice for existing patients). Records erased
//! before version 1 still name their patient: [`super::v2`], which runs
//! after this one, unlinks them as `erase_record` now does (the record layout
//! changed in version 2, so this migration leaves records alone). One read
//! and write per consent ever given, one entry and provider write per
//! patient; on a chain with many, a multi-block migration would take its
//! place.

use crate::{Config, IndexConsent, IndexConsents, Pallet};
#[cfg(feature = "try-runtime")]
use alloc::vec::Vec;
use codec::{Decode, Encode};
use frame_support::{
	migrations::VersionedMigration,
	traits::{Get, UncheckedOnRuntimeUpgrade},
	weights::Weight,
};

/// An index consent as version 0 stored it.
#[derive(Encode, Decode)]
pub struct IndexConsentV0 {
	/// Whether the consent is in force.
	pub given: bool,
	/// How often the patient withdrew consent from this issuer.
	pub generation: u32,
}

/// Marks consents in force sponsored and counts them into [`crate::FreeCalls`].
pub struct InnerMigrateV0ToV1<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV0ToV1<T> {
	fn on_runtime_upgrade() -> Weight {
		let mut consents = 0u64;
		let mut sponsored = 0u64;
		IndexConsents::<T>::translate::<IndexConsentV0, _>(|patient, _issuer, old| {
			consents = consents.saturating_add(1);
			if old.given {
				sponsored = sponsored.saturating_add(1);
				Pallet::<T>::sponsor(&patient);
			}
			Some(IndexConsent { given: old.given, generation: old.generation, sponsored: old.given })
		});
		// Each consent read and rewritten; per sponsored consent the
		// patient's entry (read and written) and, at most, its account (read
		// and written). The version is counted by `VersionedMigration`.
		T::DbWeight::get().reads_writes(
			consents.saturating_add(sponsored.saturating_mul(2)),
			consents.saturating_add(sponsored.saturating_mul(2)),
		)
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(_: Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		// The records are checked after `super::v2` (their layout is
		// version 1's until then); here, each patient's allowance counts its
		// consents in force.
		let mut in_force = alloc::collections::btree_map::BTreeMap::<T::AccountId, u32>::new();
		for (patient, _, consent) in IndexConsents::<T>::iter() {
			frame_support::ensure!(consent.sponsored == consent.given, "a consent in force does not sponsor");
			if consent.given {
				let n = in_force.entry(patient).or_default();
				*n = n.saturating_add(1);
			}
		}
		for (patient, allowance) in crate::FreeCalls::<T>::iter() {
			frame_support::ensure!(
				allowance.sponsors == in_force.remove(&patient).unwrap_or(0),
				"sponsors differ from the consents in force"
			);
		}
		frame_support::ensure!(in_force.is_empty(), "a patient with consents in force has no allowance");
		Ok(())
	}
}

/// [`InnerMigrateV0ToV1`], run only when the on-chain storage version is 0,
/// which it then sets to 1.
pub type MigrateV0ToV1<T> =
	VersionedMigration<0, 1, InnerMigrateV0ToV1<T>, Pallet<T>, <T as frame_system::Config>::DbWeight>;

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{mock::*, FreeCalls};
	use frame_support::{
		storage::unhashed,
		traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion},
	};

	/// An account whose consent was withdrawn.
	const STRANGER: AccountId = 101;

	/// Writes a consent as version 0 encoded it.
	fn put_v0(patient: AccountId, issuer: AccountId, given: bool, generation: u32) {
		unhashed::put(&IndexConsents::<Test>::hashed_key_for(patient, issuer), &IndexConsentV0 { given, generation });
	}

	/// The state version 0 left: the patient's two consents in force, a
	/// withdrawn one, no allowances, no provider reference.
	fn put_v0_state() {
		FreeCalls::<Test>::remove(PATIENT);
		frame_system::Pallet::<Test>::dec_providers(&PATIENT).unwrap();
		put_v0(PATIENT, HOSPITAL, true, 0);
		put_v0(PATIENT, OTHER_HOSPITAL, true, 2);
		put_v0(STRANGER, HOSPITAL, false, 1);
		StorageVersion::new(0).put::<Pallet<Test>>();
	}

	#[test]
	fn v0_state_gets_fee_less_patients() {
		new_test_ext(|| {
			put_v0_state();
			MigrateV0ToV1::<Test>::on_runtime_upgrade();
			assert_eq!(
				IndexConsents::<Test>::get(PATIENT, OTHER_HOSPITAL),
				IndexConsent { given: true, generation: 2, sponsored: true }
			);
			assert_eq!(
				IndexConsents::<Test>::get(STRANGER, HOSPITAL),
				IndexConsent { given: false, generation: 1, sponsored: false }
			);
			assert_eq!(FreeCalls::<Test>::get(PATIENT).map(|a| a.sponsors), Some(2));
			assert!(frame_system::Pallet::<Test>::account_exists(&PATIENT));
			assert!(Pallet::<Test>::free_call_available(&PATIENT));
			// Withdrawn consents sponsor nothing.
			assert_eq!(FreeCalls::<Test>::get(STRANGER), None);
			assert!(!Pallet::<Test>::free_call_available(&STRANGER));
			assert_eq!(Pallet::<Test>::on_chain_storage_version(), 1);
			// Once at version 1 it does nothing.
			MigrateV0ToV1::<Test>::on_runtime_upgrade();
			assert_eq!(frame_system::Pallet::<Test>::providers(&PATIENT), 1);
		});
	}

	#[cfg(feature = "try-runtime")]
	#[test]
	fn the_migration_passes_its_try_runtime_checks() {
		new_test_ext(|| {
			put_v0_state();
			MigrateV0ToV1::<Test>::try_on_runtime_upgrade(true).expect("each consent in force sponsors");
		});
	}
}
