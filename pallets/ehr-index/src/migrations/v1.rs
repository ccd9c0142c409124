//! Storage version 0 → 1: fee-less calls for registered patients.
//!
//! From version 1 an [`IndexConsent`] records whether the issuer registered
//! the patient (`sponsored`), and every patient with a sponsored consent in
//! force has a [`crate::FreeCalls`] entry counting them, and the provider reference
//! that keeps its account alive without a balance. Version 0 did not record
//! who submitted a consent, so this migration counts every consent in force
//! as sponsored (a patient that consented by itself gets free calls it would
//! not get now: the lenient choice for existing patients). Records erased
//! before version 1 still named their patient: they are unlinked as
//! `erase_record` now does. One read and write per consent ever given, one
//! entry and provider write per patient, one read per record; on a chain
//! with many, a multi-block migration would take its place.

use crate::{Config, IndexConsent, IndexConsents, Pallet, RecordStatus, Records};
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
		let mut records = 0u64;
		let mut erased = alloc::vec::Vec::new();
		for (id, r) in Records::<T>::iter() {
			records = records.saturating_add(1);
			if r.status == RecordStatus::Erased && r.patient != Pallet::<T>::nobody(&r.issuer) {
				erased.push(id);
			}
		}
		let unlinked = erased.len() as u64;
		for id in erased {
			Records::<T>::mutate_extant(id, |r| Pallet::<T>::unlink_erased(id, r));
		}
		// Each consent read and rewritten; per sponsored consent the
		// patient's entry (read and written) and, at most, its account (read
		// and written). The version is counted by `VersionedMigration`.
		// Per erased record unlinked: read again, it and the patient's list
		// entry written.
		T::DbWeight::get().reads_writes(
			consents.saturating_add(sponsored.saturating_mul(2)).saturating_add(records).saturating_add(unlinked),
			consents.saturating_add(sponsored.saturating_mul(2)).saturating_add(unlinked.saturating_mul(2)),
		)
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(_: Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		Pallet::<T>::do_try_state()
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

	#[test]
	fn v0_state_gets_fee_less_patients_and_unlinked_erasures() {
		new_test_ext(|| {
			// A record erased before version 1: it still names its patient.
			let erased = crate::NextRecordId::<Test>::get();
			frame_support::assert_ok!(Pallet::<Test>::publish_record(
				RuntimeOrigin::signed(HOSPITAL),
				PATIENT,
				crate::RecordKind::Imaging,
				crate::ContentDigest { algorithm: crate::DigestAlgorithm::Sm3, digest: [1; 32] },
				crate::StorePointer {
					store_id: b"s".to_vec().try_into().unwrap(),
					collection: b"c".to_vec().try_into().unwrap(),
					object_id: [1; 12],
				},
				1,
				Default::default(),
			));
			Records::<Test>::mutate_extant(erased, |r| {
				r.status = RecordStatus::Erased;
				r.pointer = None;
			});
			// As version 0 stored them: the patient's two consents in force,
			// a withdrawn one, no allowances, no provider reference.
			FreeCalls::<Test>::remove(PATIENT);
			frame_system::Pallet::<Test>::dec_providers(&PATIENT).unwrap();
			put_v0(PATIENT, HOSPITAL, true, 0);
			put_v0(PATIENT, OTHER_HOSPITAL, true, 2);
			put_v0(STRANGER, HOSPITAL, false, 1);
			StorageVersion::new(0).put::<Pallet<Test>>();
			MigrateV0ToV1::<Test>::on_runtime_upgrade();
			assert_eq!(Records::<Test>::get(erased).unwrap().patient, Pallet::<Test>::nobody(&HOSPITAL));
			assert!(!crate::PatientRecords::<Test>::contains_key(PATIENT, erased));
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
}
