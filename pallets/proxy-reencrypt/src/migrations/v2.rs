//! v1 → v2: a grantee's grants are listed one key per grant
//! (`GranteeGrants[grantee][grant]`) instead of in one list capped at
//! `MaxGrantsPerAccount`, so that junk grants cannot fill a grantee's list
//! and lock real patients out.
//!
//! One read and one write per listed grant: a grantee's list holds grants
//! of distinct patients, each capped at `MaxGrantsPerAccount` live grants.

use crate::{Config, GrantId, GranteeGrants, Pallet};
use frame_support::{
	migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade, BoundedVec,
};

/// The v1 layout.
pub mod v1 {
	use super::*;

	/// `GranteeGrants` in v1: one capped list per grantee.
	#[frame_support::storage_alias]
	pub type GranteeGrants<T: Config> = StorageMap<
		Pallet<T>,
		Blake2_128Concat,
		<T as frame_system::Config>::AccountId,
		BoundedVec<GrantId, <T as Config>::MaxGrantsPerAccount>,
		ValueQuery,
	>;
}

/// The unversioned step; use [`MigrateV1ToV2`].
pub struct InnerMigrateV1ToV2<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV1ToV2<T> {
	fn on_runtime_upgrade() -> Weight {
		// Drained before anything is written under the same prefix.
		let lists: alloc::vec::Vec<_> = v1::GranteeGrants::<T>::drain().collect();
		let mut listed = 0u64;
		for (grantee, grants) in lists.iter() {
			for grant in grants.iter() {
				GranteeGrants::<T>::insert(grantee, grant, ());
				listed = listed.saturating_add(1);
			}
		}
		let grantees = lists.len() as u64;
		log::info!(target: crate::LOG_TARGET, "v2: {listed} grants of {grantees} grantees listed by key");
		T::DbWeight::get().reads_writes(grantees, grantees.saturating_add(listed))
	}

	#[cfg(feature = "try-runtime")]
	fn pre_upgrade() -> Result<alloc::vec::Vec<u8>, sp_runtime::TryRuntimeError> {
		use codec::Encode;
		let listed: u64 = v1::GranteeGrants::<T>::iter_values().map(|l| l.len() as u64).sum();
		Ok(listed.encode())
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		use codec::Decode;
		let before = u64::decode(&mut &state[..]).map_err(|_| "bad pre-upgrade state")?;
		ensure!(GranteeGrants::<T>::iter_keys().count() as u64 == before, "grantee listings lost");
		Pallet::<T>::do_try_state()
	}
}

/// Lists grantees' grants by key once (checks and bumps the storage version).
pub type MigrateV1ToV2<T> = VersionedMigration<
	1,
	2,
	InnerMigrateV1ToV2<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

#[cfg(test)]
mod tests {
	use super::*;
	use crate::mock::*;
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};

	#[test]
	fn v1_grantee_lists_become_one_key_per_grant() {
		new_test_ext(|_| {
			StorageVersion::new(1).put::<Pre>();
			v1::GranteeGrants::<Test>::insert(DOCTOR, BoundedVec::try_from(vec![4, 9]).unwrap());
			v1::GranteeGrants::<Test>::insert(EMERGENCY, BoundedVec::try_from(vec![5]).unwrap());
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(Pre::on_chain_storage_version(), 2);
			let mut doctor: Vec<GrantId> = GranteeGrants::<Test>::iter_key_prefix(DOCTOR).collect();
			doctor.sort();
			assert_eq!(doctor, vec![4, 9]);
			assert_eq!(GranteeGrants::<Test>::iter_key_prefix(EMERGENCY).collect::<Vec<_>>(), vec![5]);
			assert_eq!(GranteeGrants::<Test>::iter_keys().count(), 3, "nothing of the old layout left");
			// A second run does nothing (the version is already 2).
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(GranteeGrants::<Test>::iter_keys().count(), 3);
			// The grants themselves are not in this test's storage: clear the
			// listings so the invariants checked after every test hold.
			let _ = GranteeGrants::<Test>::clear(u32::MAX, None);
		});
	}
}
