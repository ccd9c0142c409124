//! Runtime API of the reputation pallet: what clients ask about institutions.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::Codec;
pub use medchain_primitives::{InstitutionSummary, RankingEntry};

sp_api::decl_runtime_apis! {
	/// Credit scores, roles and the credit ranking.
	pub trait ReputationApi<AccountId, Balance>
	where
		AccountId: Codec,
		Balance: Codec,
	{
		/// The credit score of `who`, if it is an approved institution.
		fn credit(who: AccountId) -> Option<u32>;
		/// Kind, roles, status and credit of `who`, if it is registered.
		fn institution(who: AccountId) -> Option<InstitutionSummary>;
		/// Every approved institution by credit, best first, with the stake
		/// and credit-weighted stake of collator candidates.
		fn ranking() -> Vec<RankingEntry<AccountId, Balance>>;
		/// The collators selected for the current session.
		fn selected_collators() -> Vec<AccountId>;
	}
}
