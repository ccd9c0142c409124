//! v0 → v1 (issue 14): a grant records which proxies acknowledged it, which
//! one disputed it and the block of its last request.
//!
//! Grants stored before carry no acknowledgement: every proxy of a grant that
//! is not revoked is listed in [`PendingAcknowledgements`], so its node opens
//! its key fragment and acknowledges (or disputes) the grant by itself. Until
//! `threshold` proxies did, no request is accepted under the grant, and no
//! proxy answers for one.

use crate::{Config, Grant, Grants, Pallet, PendingAcknowledgements};
use codec::{Decode, Encode};
use frame_support::{
	migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade, BoundedVec,
};
use frame_system::pallet_prelude::BlockNumberFor;
use medchain_primitives::AccessPurpose;

/// The v0 layout.
pub mod v0 {
	use super::*;
	use crate::GrantScope;

	/// A grant as stored in v0.
	#[derive(Encode, Decode)]
	pub struct Grant<T: Config> {
		/// The patient who granted.
		pub patient: T::AccountId,
		/// Who may read.
		pub grantee: T::AccountId,
		/// Which records.
		pub scope: GrantScope,
		/// What for.
		pub purpose: AccessPurpose,
		/// Fragments needed to decrypt.
		pub threshold: u8,
		/// The proxies holding a sealed key fragment each.
		pub proxies: BoundedVec<T::AccountId, T::MaxProxies>,
		/// Block the grant was made in.
		pub created_at: BlockNumberFor<T>,
		/// First block at which the grant no longer holds.
		pub expires_at: Option<BlockNumberFor<T>>,
		/// Block the patient revoked it in.
		pub revoked_at: Option<BlockNumberFor<T>>,
		/// Usable only by break-glass emergency access.
		pub emergency: bool,
	}

	/// `Grants` in v0.
	#[cfg(any(feature = "try-runtime", test))]
	#[frame_support::storage_alias]
	pub type Grants<T: Config> = StorageMap<Pallet<T>, Twox64Concat, crate::GrantId, Grant<T>, OptionQuery>;
}

/// The unversioned step; use [`MigrateV0ToV1`].
pub struct InnerMigrateV0ToV1<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV0ToV1<T> {
	fn on_runtime_upgrade() -> Weight {
		let (mut grants, mut pending) = (0u64, 0u64);
		Grants::<T>::translate::<v0::Grant<T>, _>(|id, old| {
			grants = grants.saturating_add(1);
			if old.revoked_at.is_none() {
				for proxy in old.proxies.iter() {
					PendingAcknowledgements::<T>::insert(proxy, id, ());
					pending = pending.saturating_add(1);
				}
			}
			Some(Grant {
				patient: old.patient,
				grantee: old.grantee,
				scope: old.scope,
				purpose: old.purpose,
				threshold: old.threshold,
				proxies: old.proxies,
				acknowledged: BoundedVec::new(),
				disputed_by: None,
				last_request_at: None,
				created_at: old.created_at,
				expires_at: old.expires_at,
				revoked_at: old.revoked_at,
				emergency: old.emergency,
			})
		});
		log::info!(target: crate::LOG_TARGET, "v1: {grants} grants migrated, {pending} acknowledgements pending");
		T::DbWeight::get().reads_writes(grants, grants.saturating_add(pending))
	}

	#[cfg(feature = "try-runtime")]
	fn pre_upgrade() -> Result<alloc::vec::Vec<u8>, sp_runtime::TryRuntimeError> {
		Ok((v0::Grants::<T>::iter_keys().count() as u64).encode())
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		let before = u64::decode(&mut &state[..]).map_err(|_| "bad pre-upgrade state")?;
		ensure!(Grants::<T>::iter().count() as u64 == before, "grants lost in the migration");
		Pallet::<T>::do_try_state()
	}
}

/// Migrates `Grants` from v0 to v1 once (checks and bumps the storage version).
pub type MigrateV0ToV1<T> = VersionedMigration<
	0,
	1,
	InnerMigrateV0ToV1<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{mock::*, GrantScope};
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};

	#[test]
	fn v0_grants_await_acknowledgement_after_migration() {
		new_test_ext(|_| {
			StorageVersion::new(0).put::<Pre>();
			let old = |revoked_at| v0::Grant::<Test> {
				patient: PATIENT,
				grantee: DOCTOR,
				scope: GrantScope::All,
				purpose: AccessPurpose::Treatment,
				threshold: 2,
				proxies: PROXIES.to_vec().try_into().unwrap(),
				created_at: 1,
				expires_at: None,
				revoked_at,
				emergency: false,
			};
			v0::Grants::<Test>::insert(0, old(None));
			v0::Grants::<Test>::insert(1, old(Some(1)));
			crate::NextGrantId::<Test>::put(2);
			crate::PatientGrants::<Test>::insert(PATIENT, BoundedVec::try_from(vec![0]).unwrap());
			crate::GranteeGrants::<Test>::insert(DOCTOR, 0, ());
			MigrateV0ToV1::<Test>::on_runtime_upgrade();
			assert_eq!(Pre::on_chain_storage_version(), 1);
			let g = Grants::<Test>::get(0).unwrap();
			assert!(g.acknowledged.is_empty() && g.disputed_by.is_none() && g.last_request_at.is_none());
			assert_eq!((g.proxies.to_vec(), g.threshold), (PROXIES.to_vec(), 2));
			assert!(PROXIES.iter().all(|p| PendingAcknowledgements::<Test>::contains_key(p, 0)));
			assert!(Grants::<Test>::get(1).unwrap().revoked_at.is_some());
			assert!(!PendingAcknowledgements::<Test>::contains_key(PROXIES[0], 1));
			// Once only.
			PendingAcknowledgements::<Test>::remove(PROXIES[0], 0);
			MigrateV0ToV1::<Test>::on_runtime_upgrade();
			assert!(!PendingAcknowledgements::<Test>::contains_key(PROXIES[0], 0));
			PendingAcknowledgements::<Test>::insert(PROXIES[0], 0, ());
		});
	}
}
