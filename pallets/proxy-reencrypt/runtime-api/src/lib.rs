//! Runtime API of patient-controlled access (proxy re-encryption).

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::Codec;
use medchain_primitives::{AccessPurpose, ProxyAssignment};

sp_api::decl_runtime_apis! {
	/// Queries over grants and access requests. `Grant` is
	/// `pallet_proxy_reencrypt::Grant<Runtime>`, `Request` is
	/// `pallet_proxy_reencrypt::AccessRequest<Runtime>`.
	///
	/// Version 2 adds what a proxy serving the instant path reads.
	#[api_version(2)]
	pub trait ProxyReencryptApi<AccountId, Grant, Request>
	where
		AccountId: Codec,
		Grant: Codec,
		Request: Codec,
	{
		/// A patient's grants that are not revoked (live or expired).
		fn patient_grants(patient: AccountId) -> Vec<(u64, Grant)>;
		/// Records a grantee may request now, with the grant to use.
		fn accessible_records(grantee: AccountId) -> Vec<(u64, u64)>;
		/// Every access request for a record, oldest first: its access log.
		fn access_log(record: u64) -> Vec<(u64, Request)>;
		/// The live grant under which `who` may read `record` now, if any
		/// (what record gateways check).
		fn readable_under(who: AccountId, record: u64) -> Option<u64>;
		/// The purpose for which `who` may read `record` under `grant` now,
		/// if it may: the chain's read rule, the one `log_access` applies
		/// (a gateway asks it before it fetches or logs anything).
		fn purpose_of_read(who: AccountId, record: u64, grant: u64) -> Option<AccessPurpose>;
		/// The accepted capsule fragments of a request, by proxy.
		fn fragments(request: u64) -> Vec<(AccountId, Vec<u8>)>;
		/// What `proxy` needs to serve `grant` off chain: its sealed key
		/// fragment and the grant's delegation keys (none once revoked).
		#[api_version(2)]
		fn key_fragment_of(proxy: AccountId, grant: u64) -> Option<ProxyAssignment>;
		/// The capsule of `record` (wire bytes) and its sealed data key that
		/// `grant`'s key fragments open.
		#[api_version(2)]
		fn capsule_for(grant: u64, record: u64) -> Option<(Vec<u8>, Vec<u8>)>;
	}
}
