//! v1 → v2:
//! - a grantee's grants are listed one key per grant
//!   (`GranteeGrants[grantee][grant]`) instead of in one list capped at
//!   `MaxGrantsPerAccount`, so that junk grants cannot fill a grantee's
//!   list and lock real patients out;
//! - each requester's open ordinary requests are counted
//!   (`OpenRequestsOf`), from the open list (at most `MaxOpenRequests`);
//! - each break-glass access that still lets its institution read the
//!   record (open or served) is noted in `BrokenGlass` (the gateway's check
//!   no longer scans a record's requests), a served one before an open one.
//!
//! One read and one write per listed grant, one read per open request, and
//! one read per request ever made (the break-glass scan).

use crate::{
	BrokenGlass, Config, GrantId, GranteeGrants, OpenRequests, OpenRequestsOf, Pallet, RequestStatus, Requests,
};
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
		let mut writes = grantees.saturating_add(listed);
		let open = OpenRequests::<T>::get();
		for id in open.iter() {
			if let Some(req) = Requests::<T>::get(id).filter(|r| r.status == RequestStatus::Open && r.emergency.is_none()) {
				OpenRequestsOf::<T>::mutate(&req.requester, |n| *n = n.saturating_add(1));
				writes = writes.saturating_add(1);
			}
		}
		let mut requests = 0u64;
		for (id, req) in Requests::<T>::iter() {
			requests = requests.saturating_add(1);
			if req.emergency.is_none() || req.status == RequestStatus::Expired {
				continue;
			}
			// As the calls do: a served access is kept, an open one noted
			// unless a served one is.
			if req.status == RequestStatus::Ready {
				BrokenGlass::<T>::insert(req.grant, req.record, id);
			} else {
				Pallet::<T>::note_broken_glass(req.grant, req.record, id);
			}
			writes = writes.saturating_add(1);
		}
		log::info!(
			target: crate::LOG_TARGET,
			"v2: {listed} grants of {grantees} grantees listed by key; {requests} requests scanned"
		);
		T::DbWeight::get().reads_writes(
			grantees.saturating_add(open.len() as u64).saturating_add(requests.saturating_mul(2)),
			writes,
		)
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
			assert!(!v1::GranteeGrants::<Test>::contains_key(DOCTOR), "nothing of the old layout left");
			assert!(!v1::GranteeGrants::<Test>::contains_key(EMERGENCY));
			assert_eq!(GranteeGrants::<Test>::iter_keys().count(), 3);
			// A second run does nothing (the version is already 2).
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(GranteeGrants::<Test>::iter_keys().count(), 3);
			// The grants themselves are not in this test's storage: clear the
			// listings so the invariants checked after every test hold.
			let _ = GranteeGrants::<Test>::clear(u32::MAX, None);
		});
	}

	#[test]
	fn open_requests_are_counted_and_break_glass_accesses_noted() {
		use crate::{AccessRequest, Emergency, EmergencyReason, Review};
		new_test_ext(|_| {
			StorageVersion::new(1).put::<Pre>();
			let request = |requester, grant, status, emergency: bool| AccessRequest::<Test> {
				grant,
				record: 7,
				requester,
				requested_at: 1,
				deadline: 6,
				fragments: 0,
				status,
				emergency: emergency.then(|| Emergency {
					reason: EmergencyReason::Other,
					statement_hash: sp_core::H256::zero(),
					review_by: 9,
					review: Review::Pending,
				}),
			};
			Requests::<Test>::insert(0, request(DOCTOR, 1, RequestStatus::Open, false));
			Requests::<Test>::insert(1, request(DOCTOR, 2, RequestStatus::Open, false));
			// A served access and a later open one under one grant; an expired one.
			Requests::<Test>::insert(2, request(EMERGENCY, 5, RequestStatus::Ready, true));
			Requests::<Test>::insert(3, request(EMERGENCY, 5, RequestStatus::Open, true));
			Requests::<Test>::insert(4, request(EMERGENCY, 6, RequestStatus::Expired, true));
			OpenRequests::<Test>::put(BoundedVec::try_from(vec![0, 1, 3]).unwrap());
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(OpenRequestsOf::<Test>::get(DOCTOR), 2);
			assert!(!OpenRequestsOf::<Test>::contains_key(EMERGENCY), "break-glass is not counted");
			assert_eq!(BrokenGlass::<Test>::get(5, 7), Some(2), "the served access is kept");
			assert_eq!(BrokenGlass::<Test>::get(6, 7), None, "an expired access allows nothing");
			// The grants are not in this test's storage: clear what refers to them.
			let _ = Requests::<Test>::clear(u32::MAX, None);
			OpenRequests::<Test>::kill();
			let _ = OpenRequestsOf::<Test>::clear(u32::MAX, None);
			let _ = BrokenGlass::<Test>::clear(u32::MAX, None);
		});
	}
}
