//! Storage version 1 → 2: erasure forgets a record's kind and size.
//!
//! From version 2 a [`Record`]'s `kind` is optional: `None` once the record
//! is erased, and its `size` is then 0. Erased records of version 1 kept
//! both (and, before version 1, their patient): this migration rewrites
//! every record in the new layout and unlinks each erased one as
//! `erase_record` now does. One read and write per record, one more write
//! per erased record (the patient's list); on a chain with many records a
//! multi-block migration would take its place.

use crate::{
	Config, ContentDigest, Pallet, Record, RecordId, RecordKind, RecordStatus, Records, StorePointer,
};
#[cfg(feature = "try-runtime")]
use alloc::vec::Vec;
use codec::{Decode, Encode};
use frame_support::{
	migrations::VersionedMigration,
	traits::{Get, UncheckedOnRuntimeUpgrade},
	weights::Weight,
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_core::H256;

/// A record as versions 0 and 1 stored it: the kind always present.
#[derive(Encode, Decode)]
pub struct RecordV1<T: Config> {
	/// The patient the record is about.
	pub patient: T::AccountId,
	/// The publishing institution.
	pub issuer: T::AccountId,
	/// What the record is.
	pub kind: RecordKind,
	/// Digest of the encrypted content.
	pub digest: ContentDigest,
	/// Where the encrypted content is; `None` once erased.
	pub pointer: Option<StorePointer<T::MaxPointerLen>>,
	/// Size of the encrypted content in bytes.
	pub size: u64,
	/// Hash of the capsule that encrypts the record's data key.
	pub capsule_hash: H256,
	/// Block the record was published in.
	pub published_at: BlockNumberFor<T>,
	/// Unix time in milliseconds at publication.
	pub timestamp: u64,
	/// Version number.
	pub version: u32,
	/// The version this one amends, with its digest.
	pub previous: Option<(RecordId, ContentDigest)>,
	/// The version chain's hash.
	pub chain_hash: H256,
	/// Record status.
	pub status: RecordStatus,
	/// Distinct validators that confirmed.
	pub confirmations: u32,
	/// Distinct validators that rejected.
	pub rejections: u32,
	/// Last block at which a vote is accepted.
	pub deadline: BlockNumberFor<T>,
}

impl<T: Config> RecordV1<T> {
	/// `r` as versions 0 and 1 stored it, with `kind` (a version-2 record
	/// may have none): for tests of this migration and of tools that must
	/// tell the layouts apart.
	#[cfg(feature = "std")]
	pub fn downgrade(r: Record<T>, kind: RecordKind) -> Self {
		RecordV1 {
			patient: r.patient,
			issuer: r.issuer,
			kind,
			digest: r.digest,
			pointer: r.pointer,
			size: r.size,
			capsule_hash: r.capsule_hash,
			published_at: r.published_at,
			timestamp: r.timestamp,
			version: r.version,
			previous: r.previous,
			chain_hash: r.chain_hash,
			status: r.status,
			confirmations: r.confirmations,
			rejections: r.rejections,
			deadline: r.deadline,
		}
	}

	/// The same record in the version-2 layout (not yet unlinked if erased).
	pub fn upgrade(self) -> Record<T> {
		Record {
			patient: self.patient,
			issuer: self.issuer,
			kind: Some(self.kind),
			digest: self.digest,
			pointer: self.pointer,
			size: self.size,
			capsule_hash: self.capsule_hash,
			published_at: self.published_at,
			timestamp: self.timestamp,
			version: self.version,
			previous: self.previous,
			chain_hash: self.chain_hash,
			status: self.status,
			confirmations: self.confirmations,
			rejections: self.rejections,
			deadline: self.deadline,
		}
	}
}

/// Rewrites every record with an optional kind; erased ones lose kind, size
/// and patient.
pub struct InnerMigrateV1ToV2<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV1ToV2<T> {
	fn on_runtime_upgrade() -> Weight {
		let mut records = 0u64;
		let mut erased = 0u64;
		Records::<T>::translate::<RecordV1<T>, _>(|id, old| {
			records = records.saturating_add(1);
			let mut r = old.upgrade();
			if r.status == RecordStatus::Erased {
				erased = erased.saturating_add(1);
				Pallet::<T>::unlink_erased(id, &mut r);
			}
			Some(r)
		});
		// Each record read and written, one more read for the end of the
		// map; per erased record, its entry in the patient's list removed.
		// The version is counted by `VersionedMigration`.
		T::DbWeight::get().reads_writes(records.saturating_add(1), records.saturating_add(erased))
	}

	#[cfg(feature = "try-runtime")]
	fn pre_upgrade() -> Result<Vec<u8>, sp_runtime::TryRuntimeError> {
		Ok((Records::<T>::iter_keys().count() as u64).encode())
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(state: Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		let before = u64::decode(&mut &state[..]).map_err(|_| "pre_upgrade state")?;
		// Every record decodes in the new layout: none was lost.
		frame_support::ensure!(Records::<T>::iter().count() as u64 == before, "a record was lost");
		Pallet::<T>::do_try_state()
	}
}

/// [`InnerMigrateV1ToV2`], run only when the on-chain storage version is 1,
/// which it then sets to 2.
pub type MigrateV1ToV2<T> =
	VersionedMigration<1, 2, InnerMigrateV1ToV2<T>, Pallet<T>, <T as frame_system::Config>::DbWeight>;

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{mock::*, PatientRecords};
	use frame_support::{
		storage::unhashed,
		traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion},
	};

	/// Publishes a record of `PATIENT` and writes it back in the version-1
	/// layout, erased (as version 0 left it: still naming its patient) or
	/// not.
	fn put_v1(erased: bool) -> RecordId {
		let id = publish();
		let mut old = RecordV1::downgrade(Records::<Test>::get(id).unwrap(), RecordKind::Imaging);
		if erased {
			old.pointer = None;
			old.status = RecordStatus::Erased;
		} else {
			old.status = RecordStatus::Confirmed;
		}
		unhashed::put(&Records::<Test>::hashed_key_for(id), &old);
		id
	}

	fn publish() -> RecordId {
		let id = crate::NextRecordId::<Test>::get();
		frame_support::assert_ok!(Pallet::<Test>::publish_record(
			RuntimeOrigin::signed(HOSPITAL),
			PATIENT,
			RecordKind::Imaging,
			ContentDigest { algorithm: crate::DigestAlgorithm::Sm3, digest: [id as u8; 32] },
			StorePointer {
				store_id: b"s".to_vec().try_into().unwrap(),
				collection: b"c".to_vec().try_into().unwrap(),
				object_id: [1; 12],
			},
			100,
			Default::default(),
		));
		id
	}

	#[test]
	fn v1_records_get_an_optional_kind_and_erased_ones_lose_kind_size_and_patient() {
		new_test_ext(|| {
			let kept = put_v1(false);
			let erased = put_v1(true);
			StorageVersion::new(1).put::<Pallet<Test>>();
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(Pallet::<Test>::on_chain_storage_version(), 2);
			let k = Records::<Test>::get(kept).unwrap();
			assert_eq!((k.kind, k.size, k.patient), (Some(RecordKind::Imaging), 100, PATIENT));
			assert!(PatientRecords::<Test>::contains_key(PATIENT, kept));
			let e = Records::<Test>::get(erased).unwrap();
			assert_eq!((e.kind, e.size), (None, 0));
			assert_eq!(e.patient, Pallet::<Test>::nobody(&HOSPITAL));
			assert_eq!(e.digest.digest, [erased as u8; 32], "the digest stays");
			assert!(!PatientRecords::<Test>::contains_key(PATIENT, erased));
			Pallet::<Test>::do_try_state().unwrap();
			// Once at version 2 it does nothing.
			let before = Records::<Test>::get(kept);
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(Records::<Test>::get(kept), before);
		});
	}

	#[cfg(feature = "try-runtime")]
	#[test]
	fn the_migration_passes_its_try_runtime_checks() {
		new_test_ext(|| {
			put_v1(false);
			put_v1(true);
			StorageVersion::new(1).put::<Pallet<Test>>();
			MigrateV1ToV2::<Test>::try_on_runtime_upgrade(true).expect("no record lost, every invariant holds");
		});
	}
}
