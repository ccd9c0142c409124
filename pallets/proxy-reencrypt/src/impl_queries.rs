//! Queries behind the runtime API (what portals, grantees and record
//! gateways ask) and the pallet's invariants.

use crate::*;
use frame_system::pallet_prelude::BlockNumberFor;
use medchain_primitives::{AccessPurpose, GrantedReads};
use sp_runtime::SaturatedConversion;
#[cfg(any(feature = "try-runtime", feature = "std", test))]
use frame_support::ensure;

impl<T: Config> Pallet<T> {
	/// The usable (live, undisputed, acknowledged) grant of `who` under
	/// which `record` may be read now, if any (what record gateways check).
	/// Emergency grants count only for the records of open or ready
	/// break-glass requests.
	pub fn readable_under(who: &T::AccountId, record: RecordId) -> Option<GrantId> {
		GranteeGrants::<T>::iter_key_prefix(who).find(|id| Self::read_allowed(who, record, *id).is_some())
	}

	/// The purpose of grant `id` if `who` may read `record` under it now:
	/// `who` is its grantee, the grant is usable and covers the record, the
	/// record is confirmed by validators, and
	/// for an emergency grant the glass was broken for the record under it
	/// (the access not expired unserved). Reads up to seven storage items.
	pub fn read_allowed(who: &T::AccountId, record: RecordId, id: GrantId) -> Option<AccessPurpose> {
		Self::read_allowed_at(who, record, id, frame_system::Pallet::<T>::block_number())
	}

	/// As [`Pallet::read_allowed`], at block `at` (now or earlier): the
	/// grant must have held then (made, not yet revoked nor expired).
	pub fn read_allowed_at(
		who: &T::AccountId,
		record: RecordId,
		id: GrantId,
		at: BlockNumberFor<T>,
	) -> Option<AccessPurpose> {
		let g = Grants::<T>::get(id)?;
		// As the record stood at `at`: a read checked before an erasure is
		// judged as it was then.
		let r = T::Records::record_as_of(record, at.saturated_into())?;
		if at > frame_system::Pallet::<T>::block_number() {
			return None;
		}
		if g.grantee != *who ||
			!g.was_usable_at(at) ||
			g.patient != r.patient ||
			!g.scope.covers(record, r.kind) ||
			!r.confirmed
		{
			return None;
		}
		if g.emergency {
			let request = BrokenGlass::<T>::get(id, record)?;
			let req = Requests::<T>::get(request)?;
			if req.status == RequestStatus::Expired {
				return None;
			}
		}
		Some(g.purpose)
	}

	/// What `proxy` needs to serve grant `grant` off chain (runtime API):
	/// its sealed key fragment and the grant's delegation keys, while the
	/// grant is not revoked (revocation deletes the sealed fragments).
	pub fn assignment_of(proxy: &T::AccountId, grant: GrantId) -> Option<medchain_primitives::ProxyAssignment> {
		let g = Grants::<T>::get(grant)?;
		let sealed = SealedFragments::<T>::get(grant, proxy)?;
		let patient = Keys::<T>::get(&g.patient)?;
		let grantee = Keys::<T>::get(&g.grantee)?;
		let delegating = GrantKeys::<T>::get(grant).map_or(patient.public_key, |k| k.public_key);
		Some(medchain_primitives::ProxyAssignment {
			sealed_capsule: sealed.capsule.into_inner(),
			sealed_ciphertext: sealed.ciphertext.into_inner(),
			verifying_key: patient.verifying_key.to_vec(),
			delegating_key: delegating.to_vec(),
			receiving_key: grantee.public_key.to_vec(),
			kfrag_id: KeyFragmentIds::<T>::get(grant, proxy),
		})
	}

	/// The capsule of `record` that grant `grant`'s key fragments open
	/// (runtime API): to the grant's scope key, else to the patient's key.
	pub fn capsule_of(grant: GrantId, record: RecordId) -> Option<KeyCapsule> {
		Self::capsule_for(grant, record)
	}

	/// Grants listed for `patient`, with their state (runtime API).
	pub fn grants_of_patient(patient: &T::AccountId) -> Vec<(GrantId, Grant<T>)> {
		PatientGrants::<T>::get(patient)
			.into_iter()
			.filter_map(|id| Grants::<T>::get(id).map(|g| (id, g)))
			.collect()
	}

	/// Records `grantee` may request now, with the grant to use (runtime API).
	pub fn accessible_records(grantee: &T::AccountId) -> Vec<(RecordId, GrantId)> {
		let now = frame_system::Pallet::<T>::block_number();
		let mut out = Vec::new();
		for id in GranteeGrants::<T>::iter_key_prefix(grantee) {
			let Some(g) = Grants::<T>::get(id) else { continue };
			if !g.is_usable(now) {
				continue;
			}
			for record in T::Records::records_of(&g.patient) {
				let Some(r) = T::Records::record(record) else { continue };
				// Only what the grant's key opens (a kind grant does not open
				// records attached before the patient had the kind's key).
				if r.confirmed &&
					g.scope.covers(record, r.kind) &&
					Self::capsule_for(id, record).is_some() &&
					!out.iter().any(|(x, _)| *x == record)
				{
					out.push((record, id));
				}
			}
		}
		out.sort_unstable();
		out
	}

	/// Every request for `record`, oldest first (runtime API).
	pub fn access_log(record: RecordId) -> Vec<(RequestId, AccessRequest<T>)> {
		let mut ids: Vec<RequestId> = RecordRequests::<T>::iter_key_prefix(record).collect();
		ids.sort_unstable();
		ids.into_iter().filter_map(|id| Requests::<T>::get(id).map(|r| (id, r))).collect()
	}

	/// The accepted capsule fragments of a request (runtime API).
	pub fn fragments_of(request: RequestId) -> Vec<(T::AccountId, Vec<u8>)> {
		Fragments::<T>::iter_prefix(request)
			.filter_map(|(proxy, s)| match s {
				Submission::Accepted(f) => Some((proxy, f.into_inner())),
				Submission::Rejected => None,
			})
			.collect()
	}

	/// Checks the pallet's invariants.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		let next_grant = NextGrantId::<T>::get();
		for grant in KeyFragmentIds::<T>::iter_keys().map(|(grant, _)| grant) {
			ensure!(Grants::<T>::contains_key(grant), "key fragment ids of an unknown grant");
		}
		let now = frame_system::Pallet::<T>::block_number();
		for (grant, since) in AuditFirst::<T>::iter() {
			let g = Grants::<T>::get(grant).ok_or("audit first required of an unknown grant")?;
			ensure!(g.created_at <= since && since <= now, "audit first required outside its grant's life");
			ensure!(g.revoked_at.is_none_or(|r| since <= r), "audit first required after its grant was revoked");
		}
		for (grant, record, request) in BrokenGlass::<T>::iter() {
			let req = Requests::<T>::get(request).ok_or("break-glass entry of an unknown request")?;
			ensure!(
				req.emergency.is_some() && req.grant == grant && req.record == record,
				"break-glass entry of another access"
			);
		}
		for (patient, pool) in RecordKeyPool::<T>::iter() {
			let next = NextRecordKeyIndex::<T>::get(&patient);
			for (i, (index, _)) in pool.iter().enumerate() {
				ensure!(*index < next, "one-time key numbered beyond NextRecordKeyIndex");
				ensure!(pool[..i].iter().all(|(other, _)| other != index), "one-time key number twice in a pool");
			}
		}
		for (record, c) in OneTimeCapsules::<T>::iter() {
			ensure!(Capsules::<T>::contains_key(record), "one-time capsule without the record's capsule");
			if let Some(r) = T::Records::record(record).filter(|r| r.available) {
				let pool = RecordKeyPool::<T>::get(&r.patient);
				ensure!(pool.iter().all(|(i, _)| *i != c.index), "a record's one-time key still in the pool");
			}
		}
		for record in KindCapsules::<T>::iter_keys() {
			ensure!(Capsules::<T>::contains_key(record), "kind capsule without the record's capsule");
		}
		for grant in GrantKeys::<T>::iter_keys() {
			ensure!(Grants::<T>::contains_key(grant), "the key of an unknown grant");
		}
		for (id, g) in Grants::<T>::iter() {
			ensure!(id < next_grant, "grant id beyond NextGrantId");
			ensure!(
				g.threshold >= 1 && g.threshold as usize <= g.proxies.len(),
				"grant threshold out of range"
			);
			let listed = PatientGrants::<T>::get(&g.patient).contains(&id);
			ensure!(listed == g.revoked_at.is_none(), "patient list disagrees with revocation");
			let listed = GranteeGrants::<T>::contains_key(&g.grantee, id);
			ensure!(listed == g.revoked_at.is_none(), "grantee list disagrees with revocation");
			if g.revoked_at.is_some() {
				ensure!(SealedFragments::<T>::iter_prefix(id).next().is_none(), "revoked grant kept fragments");
				ensure!(KeyFragmentIds::<T>::iter_prefix(id).next().is_none(), "revoked grant kept fragment ids");
			}
			let ids: alloc::vec::Vec<(T::AccountId, KfragId)> = KeyFragmentIds::<T>::iter_prefix(id).collect();
			ensure!(ids.iter().all(|(p, _)| g.proxies.contains(p)), "key fragment id of a proxy not of the grant");
			ensure!(
				ids.is_empty() || g.revoked_at.is_some() || ids.len() == g.proxies.len(),
				"some proxies of a grant bound to ids, others not"
			);
			for (i, (_, a)) in ids.iter().enumerate() {
				ensure!(ids[..i].iter().all(|(_, b)| b != a), "two proxies of a grant bound to one id");
			}
			for (i, p) in g.acknowledged.iter().enumerate() {
				ensure!(g.proxies.contains(p), "acknowledged by a proxy not of the grant");
				ensure!(!g.acknowledged[..i].contains(p), "acknowledged twice");
				ensure!(!g.is_party(p), "acknowledged by the patient or grantee");
			}
			let disputes = Disputes::<T>::get(id);
			for (i, p) in disputes.iter().enumerate() {
				ensure!(g.proxies.contains(p) && !g.acknowledged.contains(p), "disputed by a proxy not of the grant");
				ensure!(!disputes[..i].contains(p), "disputed twice");
			}
			ensure!(g.revoked_at.is_none() || disputes.is_empty(), "revoked grant kept disputes");
			if let (None, Some(p)) = (g.revoked_at, &g.disputed_by) {
				ensure!(disputes.contains(p), "disputed_by is not among the disputes");
			}
			let can_serve = g.proxies.len().saturating_sub(disputes.len());
			ensure!(
				g.revoked_at.is_some() || (can_serve < g.threshold as usize) == g.disputed_by.is_some(),
				"grant unusable by disputes disagrees with disputed_by"
			);
			for p in g.proxies.iter() {
				let pending = g.revoked_at.is_none() &&
					g.disputed_by.is_none() &&
					!g.acknowledged.contains(p) &&
					!disputes.contains(p);
				ensure!(
					PendingAcknowledgements::<T>::contains_key(p, id) == pending,
					"pending acknowledgements disagree with the grant"
				);
			}
		}
		for (grantee, id) in GranteeGrants::<T>::iter_keys() {
			ensure!(Grants::<T>::get(id).is_some_and(|g| g.grantee == grantee), "listed for another grantee");
		}
		for (p, id) in PendingAcknowledgements::<T>::iter_keys() {
			ensure!(Grants::<T>::get(id).is_some_and(|g| g.proxies.contains(&p)), "pending for an unknown grant");
		}
		let open = OpenRequests::<T>::get();
		let next_request = NextRequestId::<T>::get();
		for (id, req) in Requests::<T>::iter() {
			ensure!(id < next_request, "request id beyond NextRequestId");
			ensure!(
				open.contains(&id) == (req.status == RequestStatus::Open),
				"open list disagrees with request status"
			);
			let accepted = Fragments::<T>::iter_prefix(id)
				.filter(|(_, s)| matches!(s, Submission::Accepted(_)))
				.count();
			ensure!(accepted == req.fragments as usize, "fragment count disagrees with storage");
		}
		let mut counted: alloc::collections::BTreeMap<T::AccountId, u32> = Default::default();
		for id in open.iter() {
			let Some(req) = Requests::<T>::get(id) else { continue };
			if req.emergency.is_none() {
				*counted.entry(req.requester).or_default() += 1;
			}
		}
		for (who, n) in OpenRequestsOf::<T>::iter() {
			ensure!(counted.remove(&who) == Some(n), "requester's open count disagrees with the open list");
		}
		ensure!(counted.is_empty(), "an open request is not counted for its requester");
		for (grant, listed) in GrantOpenRequests::<T>::iter() {
			ensure!(!listed.is_empty(), "an empty list of a grant's requests is kept");
			for id in listed.iter() {
				ensure!(open.contains(id), "a grant lists a request that is not open");
				ensure!(Requests::<T>::get(id).is_some_and(|r| r.grant == grant), "a grant lists another grant's request");
			}
		}
		Ok(())
	}
}

impl<T: Config> GrantedReads<T::AccountId, BlockNumberFor<T>> for Pallet<T> {
	fn purpose_of_read(who: &T::AccountId, record: u64, grant: u64, at: BlockNumberFor<T>) -> Option<AccessPurpose> {
		Self::read_allowed_at(who, record, grant, at)
	}

	/// [`Pallet::read_allowed`] reads the grant, the record, and for an
	/// emergency grant the break-glass entry and its request.
	fn purpose_of_read_weight() -> sp_runtime::Weight {
		use codec::MaxEncodedLen;
		use frame_support::traits::Get;
		// The record is read through the index, bounded here by a kilobyte,
		// with its erasure block and what it named before (a quarter more).
		// Plus `AuditFirst`, read by `audit_first_at` (a key of 16 bytes, a
		// block number).
		T::DbWeight::get()
			.reads(7)
			.saturating_add(Self::proof_of(16 + Grant::<T>::max_encoded_len() as u64))
			.saturating_add(Self::proof_of(16 + BlockNumberFor::<T>::max_encoded_len() as u64))
			.saturating_add(Self::proof_of(1024))
			.saturating_add(Self::proof_of(256))
			.saturating_add(Self::proof_of(Self::broken_glass_len()))
			.saturating_add(Self::proof_of(Self::request_len()))
	}

	/// Never for a break-glass grant: its fragments go through `break_glass`,
	/// on chain before they are served.
	fn serves_grant(proxy: &T::AccountId, grant: u64) -> bool {
		Grants::<T>::get(grant).is_some_and(|g| !g.emergency && g.acknowledged.contains(proxy))
	}

	fn audit_first_at(grant: u64, at: BlockNumberFor<T>) -> bool {
		AuditFirst::<T>::get(grant).is_some_and(|since| since <= at)
	}
}
