//! Storage version 1 → 2: pending applications are counted apart.
//!
//! In version 1 [`InstitutionCount`] counted every entry of [`Institutions`],
//! pending applications included. From version 2 it counts approved
//! (active or suspended) institutions and [`PendingCount`] counts pending
//! applications, so that applications cannot fill the registry.

use crate::{Config, InstitutionCount, InstitutionStatus, Institutions, Pallet, PendingCount};
use frame_support::{
	migrations::VersionedMigration,
	traits::{Get, UncheckedOnRuntimeUpgrade},
	weights::Weight,
};

/// Recounts members and pending applications.
pub struct InnerMigrateV1ToV2<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV1ToV2<T> {
	fn on_runtime_upgrade() -> Weight {
		let (mut members, mut pending, mut reads) = (0u32, 0u32, 0u64);
		for (_, inst) in Institutions::<T>::iter() {
			reads = reads.saturating_add(1);
			if inst.status == InstitutionStatus::Pending {
				pending = pending.saturating_add(1);
			} else {
				members = members.saturating_add(1);
			}
		}
		InstitutionCount::<T>::put(members);
		PendingCount::<T>::put(pending);
		T::DbWeight::get().reads_writes(reads, 2)
	}
}

/// [`InnerMigrateV1ToV2`], run only when the on-chain storage version is 1,
/// which it then sets to 2.
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
	fn v1_counts_are_split_into_members_and_pending() {
		new_test_ext(|| {
			let apply = |who| {
				crate::Pallet::<Test>::apply_for_membership(
					RuntimeOrigin::signed(who),
					b"h".to_vec().try_into().unwrap(),
					hospital(),
					producer(),
				)
			};
			for who in 1..=3 {
				frame_support::assert_ok!(apply(who));
			}
			frame_support::assert_ok!(crate::Pallet::<Test>::approve_institution(
				RuntimeOrigin::root(),
				1
			));
			// As version 1 stored it: one count for all three.
			InstitutionCount::<Test>::put(3);
			PendingCount::<Test>::kill();
			StorageVersion::new(1).put::<Pallet<Test>>();
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(InstitutionCount::<Test>::get(), 1);
			assert_eq!(PendingCount::<Test>::get(), 2);
			assert_eq!(Pallet::<Test>::on_chain_storage_version(), 2);
			// Run again: nothing changes.
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(PendingCount::<Test>::get(), 2);
		});
	}
}
