//! Runtime API of the record index.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::Codec;

sp_api::decl_runtime_apis! {
	/// Queries over the record index. `Record` is the runtime's record type
	/// (`pallet_ehr_index::Record<Runtime>`).
	pub trait EhrIndexApi<AccountId, Record>
	where
		AccountId: Codec,
		Record: Codec,
	{
		/// Records of `patient` with id above `start_after`, at most `limit`,
		/// oldest first.
		fn records_of_patient(patient: AccountId, start_after: Option<u64>, limit: u32) -> Vec<(u64, Record)>;
		/// `record_id` and its earlier versions, newest first; empty if unknown.
		fn version_chain(record_id: u64) -> Vec<(u64, Record)>;
		/// Pending records `validator` may still vote on, at most `limit`.
		fn pending_for(validator: AccountId, limit: u32) -> Vec<(u64, Record)>;
	}
}
