//! Storage version 2 → 3: the consortium's governing bodies.
//!
//! From version 3 the council ([`Council`]) is every active institution with
//! the producer role and the regulators ([`Regulators`]) every active
//! institution with the auditor role, kept in sync as institutions are
//! admitted, suspended, removed or change roles, and mirrored into the
//! runtime's collectives. This migration builds both from the registry and
//! tells the collectives.

use crate::{Body, Config, Council, Institutions, Pallet, Regulators};
use alloc::vec::Vec;
use frame_support::{
	migrations::VersionedMigration,
	traits::{ChangeMembers, Get, UncheckedOnRuntimeUpgrade},
	weights::Weight,
	BoundedVec,
};

/// Builds the council and the regulators from the registry.
pub struct InnerMigrateV2ToV3<T>(core::marker::PhantomData<T>);

impl<T: Config> InnerMigrateV2ToV3<T> {
	fn build(body: Body) -> Vec<T::AccountId> {
		let members = Pallet::<T>::seated_in(body);
		if members.len() > T::MaxBodyMembers::get() as usize {
			log::warn!(
				target: crate::LOG_TARGET,
				"{body:?}: {} members, only the first {} take a seat",
				members.len(),
				T::MaxBodyMembers::get()
			);
		}
		members
	}
}

impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV2ToV3<T> {
	fn on_runtime_upgrade() -> Weight {
		let council: BoundedVec<_, T::MaxBodyMembers> =
			BoundedVec::truncate_from(Self::build(Body::Council));
		let regulators: BoundedVec<_, T::MaxBodyMembers> =
			BoundedVec::truncate_from(Self::build(Body::Regulators));
		T::CouncilMembers::set_members_sorted(&council, &Council::<T>::get());
		T::RegulatorMembers::set_members_sorted(&regulators, &Regulators::<T>::get());
		Council::<T>::put(council);
		Regulators::<T>::put(regulators);
		let reads = (Institutions::<T>::iter_keys().count() as u64).saturating_mul(2);
		// The bodies, the collectives' members and prime, and the version.
		T::DbWeight::get().reads_writes(reads.saturating_add(4), 7)
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(_: Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		Pallet::<T>::do_try_state()
	}
}

/// [`InnerMigrateV2ToV3`], run only when the on-chain storage version is 2,
/// which it then sets to 3.
pub type MigrateV2ToV3<T> = VersionedMigration<
	2,
	3,
	InnerMigrateV2ToV3<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

#[cfg(test)]
mod tests {
	use super::*;
	use crate::mock::*;
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};

	#[test]
	fn v2_registry_founds_the_bodies() {
		new_test_ext(|| {
			let join = |who, roles| {
				frame_support::assert_ok!(Pallet::<Test>::apply_for_membership(
					RuntimeOrigin::signed(who),
					b"h".to_vec().try_into().unwrap(),
					hospital(),
					roles,
				));
				frame_support::assert_ok!(Pallet::<Test>::approve_institution(RuntimeOrigin::root(), who));
			};
			join(3, producer());
			join(1, producer());
			join(2, auditor());
			frame_support::assert_ok!(Pallet::<Test>::suspend_institution(RuntimeOrigin::root(), 3));
			// As version 2 stored it: no bodies.
			Council::<Test>::kill();
			Regulators::<Test>::kill();
			CouncilMirror::set(Vec::new());
			RegulatorMirror::set(Vec::new());
			StorageVersion::new(2).put::<Pallet<Test>>();
			MigrateV2ToV3::<Test>::on_runtime_upgrade();
			assert_eq!(Council::<Test>::get().to_vec(), vec![1]);
			assert_eq!(Regulators::<Test>::get().to_vec(), vec![2]);
			assert_eq!(CouncilMirror::get(), vec![1]);
			assert_eq!(RegulatorMirror::get(), vec![2]);
			assert_eq!(Pallet::<Test>::on_chain_storage_version(), 3);
		});
	}
}
