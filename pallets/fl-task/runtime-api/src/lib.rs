//! Runtime API of federated learning.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::Codec;

sp_api::decl_runtime_apis! {
	/// Queries over learning tasks. `Task` is `pallet_fl_task::Task<AccountId>`,
	/// `Round` is `pallet_fl_task::Round<BlockNumber>`, parameters are
	/// `pallet_fl_task::Fixed`.
	pub trait FlTaskApi<AccountId, Task, Round>
	where
		AccountId: Codec,
		Task: Codec,
		Round: Codec,
	{
		/// The task, if it exists.
		fn task(task: u32) -> Option<Task>;
		/// The task's current (or final) global model, if kept on chain
		/// (inline).
		fn global_model(task: u32) -> Option<Vec<i64>>;
		/// Where the task's current (or final) global model is, if kept in a
		/// model store: its digest, parameter count and store URL.
		fn stored_model(task: u32) -> Option<([u8; 32], u32, Vec<u8>)>;
		/// Every round of the task so far, oldest first.
		fn rounds(task: u32) -> Vec<(u32, Round)>;
		/// What an honest aggregator computes for the task's current round:
		/// the new model and the accounts flagged as outliers; `None` if the
		/// round cannot be aggregated or its models are stored (aggregating
		/// those needs an offchain worker's HTTP access).
		fn compute_aggregate(task: u32) -> Option<(Vec<i64>, Vec<AccountId>)>;
	}
}
