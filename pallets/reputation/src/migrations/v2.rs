//! Storage version 1 → 2: pending applications are counted apart.
//!
//! In version 1 [`InstitutionCount`] counted every entry of [`Institutions`],
//! pending applications included. From version 2 it counts approved
//! (active or suspended) institutions and [`PendingCount`] counts pending
//! applications, so that applications cannot fill the registry.
//!
//! Version 1 also reset a candidate's `delegated` and `delegators` when it
//! left while [`Delegations`] to it stayed, so its totals could disagree with
//! the delegations (a later `undelegate` then subtracted from others). From
//! version 2 the totals are rebuilt from [`Delegations`]: a candidate's own
//! entry, or a [`FormerCandidates`] entry for delegations to an account that
//! is no longer a candidate.

use crate::{
	BalanceOf, CandidateInfo, Candidates, Config, Delegations, FormerCandidates, InstitutionCount,
	InstitutionStatus, Institutions, Pallet, PendingCount,
};
use alloc::collections::btree_map::BTreeMap;
use sp_runtime::Saturating;
use frame_support::{
	migrations::VersionedMigration,
	traits::{Get, UncheckedOnRuntimeUpgrade},
	weights::Weight,
};

/// Recounts members and pending applications; rebuilds delegation totals.
pub struct InnerMigrateV1ToV2<T>(core::marker::PhantomData<T>);

impl<T: Config> InnerMigrateV1ToV2<T> {
	/// Rebuilds every candidate's (and former candidate's) delegation totals
	/// from [`Delegations`]; returns the reads and writes done.
	fn rebuild_delegation_totals() -> (u64, u64) {
		let (mut reads, mut writes) = (0u64, 0u64);
		let mut totals: BTreeMap<T::AccountId, (BalanceOf<T>, u32)> = BTreeMap::new();
		for (_, candidate, amount) in Delegations::<T>::iter() {
			reads = reads.saturating_add(1);
			let entry = totals.entry(candidate).or_default();
			entry.0 = entry.0.saturating_add(amount);
			entry.1 = entry.1.saturating_add(1);
		}
		let candidates: alloc::vec::Vec<_> = Candidates::<T>::iter_keys().collect();
		for who in candidates {
			let (delegated, delegators) = totals.remove(&who).unwrap_or_default();
			Candidates::<T>::mutate(&who, |maybe| {
				if let Some(info) = maybe {
					info.delegated = delegated;
					info.delegators = delegators;
				}
			});
			reads = reads.saturating_add(1);
			writes = writes.saturating_add(1);
		}
		let stale = FormerCandidates::<T>::clear(u32::MAX, None);
		reads = reads.saturating_add(u64::from(stale.loops));
		writes = writes.saturating_add(u64::from(stale.unique));
		for (who, (delegated, delegators)) in totals {
			let bond = Default::default();
			FormerCandidates::<T>::insert(who, CandidateInfo { bond, delegated, delegators });
			writes = writes.saturating_add(1);
		}
		(reads, writes)
	}
}

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
		let (r, w) = Self::rebuild_delegation_totals();
		T::DbWeight::get().reads_writes(reads.saturating_add(r), w.saturating_add(2))
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(_: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		Pallet::<T>::do_try_state()
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

	#[test]
	fn v1_delegation_totals_are_rebuilt_from_delegations() {
		new_test_ext(|| {
			let signed = RuntimeOrigin::signed;
			for who in [1, 2] {
				frame_support::assert_ok!(Pallet::<Test>::apply_for_membership(
					signed(who),
					b"h".to_vec().try_into().unwrap(),
					hospital(),
					producer(),
				));
				frame_support::assert_ok!(Pallet::<Test>::approve_institution(RuntimeOrigin::root(), who));
				KeysRegistered::mutate(|k| k.push(who));
				frame_support::assert_ok!(Pallet::<Test>::register_as_candidate(signed(who), 500));
			}
			frame_support::assert_ok!(Pallet::<Test>::delegate(signed(10), 1, 100));
			frame_support::assert_ok!(Pallet::<Test>::delegate(signed(11), 1, 50));
			frame_support::assert_ok!(Pallet::<Test>::delegate(signed(12), 2, 70));
			frame_support::assert_ok!(Pallet::<Test>::leave_candidates(signed(2)));
			// Version 1 state: candidate 1 left and re-registered with its
			// totals reset while 10 and 11 still delegated to it; 2 left
			// without a former-candidate entry; 3 has a stale one.
			Candidates::<Test>::insert(1, CandidateInfo { bond: 500, delegated: 0, delegators: 0 });
			FormerCandidates::<Test>::remove(2);
			FormerCandidates::<Test>::insert(3, CandidateInfo { bond: 0, delegated: 9, delegators: 1 });
			StorageVersion::new(1).put::<Pallet<Test>>();
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(
				Candidates::<Test>::get(1),
				Some(CandidateInfo { bond: 500, delegated: 150, delegators: 2 })
			);
			assert_eq!(
				FormerCandidates::<Test>::get(2),
				Some(CandidateInfo { bond: 0, delegated: 70, delegators: 1 })
			);
			// A former-candidate entry with no delegation left is dropped.
			assert_eq!(FormerCandidates::<Test>::get(3), None);
		});
	}
}
