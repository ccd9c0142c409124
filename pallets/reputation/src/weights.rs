//! Weights of `pallet-reputation`.
//!
//! PROVISIONAL: these figures are upper-bound estimates (storage accesses
//! counted from the code, compute rounded up), not yet generated from the
//! pallet's frame benchmarks in `benchmarking.rs`. Replace this file with the
//! benchmark CLI's output. `()` uses the same figures with RocksDB weights.

#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions of `pallet-reputation`.
pub trait WeightInfo {
	fn apply_for_membership() -> Weight;
	fn approve_institution() -> Weight;
	fn suspend_institution() -> Weight;
	fn remove_institution() -> Weight;
	fn set_roles() -> Weight;
	fn penalise() -> Weight;
	fn register_as_candidate() -> Weight;
	fn leave_candidates() -> Weight;
	fn delegate() -> Weight;
	fn undelegate() -> Weight;
	fn withdraw_unbonded(c: u32) -> Weight;
	fn set_invulnerables(i: u32) -> Weight;
	fn new_session(c: u32, i: u32) -> Weight;
}

/// Weights for `pallet-reputation` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);

macro_rules! weights {
	($db:expr) => {
		fn apply_for_membership() -> Weight {
			Weight::from_parts(60_000_000, 3_700).saturating_add($db.reads_writes(4, 4))
		}
		fn approve_institution() -> Weight {
			Weight::from_parts(25_000_000, 3_600).saturating_add($db.reads_writes(2, 2))
		}
		fn suspend_institution() -> Weight {
			Weight::from_parts(20_000_000, 3_600).saturating_add($db.reads_writes(1, 1))
		}
		fn remove_institution() -> Weight {
			Weight::from_parts(90_000_000, 3_700).saturating_add($db.reads_writes(7, 7))
		}
		fn set_roles() -> Weight {
			Weight::from_parts(20_000_000, 3_600).saturating_add($db.reads_writes(1, 1))
		}
		fn penalise() -> Weight {
			Weight::from_parts(30_000_000, 3_600).saturating_add($db.reads_writes(2, 1))
		}
		fn register_as_candidate() -> Weight {
			Weight::from_parts(70_000_000, 3_700).saturating_add($db.reads_writes(7, 4))
		}
		fn leave_candidates() -> Weight {
			Weight::from_parts(80_000_000, 3_700).saturating_add($db.reads_writes(5, 5))
		}
		fn delegate() -> Weight {
			Weight::from_parts(70_000_000, 3_700).saturating_add($db.reads_writes(6, 6))
		}
		fn undelegate() -> Weight {
			Weight::from_parts(85_000_000, 3_700).saturating_add($db.reads_writes(6, 7))
		}
		fn withdraw_unbonded(c: u32) -> Weight {
			Weight::from_parts(50_000_000, 3_700)
				.saturating_add(Weight::from_parts(500_000, 0).saturating_mul(c.into()))
				.saturating_add($db.reads_writes(3, 3))
		}
		fn set_invulnerables(i: u32) -> Weight {
			Weight::from_parts(15_000_000, 1_500)
				.saturating_add(Weight::from_parts(400_000, 32).saturating_mul(i.into()))
				.saturating_add($db.writes(1))
		}
		fn new_session(c: u32, i: u32) -> Weight {
			Weight::from_parts(30_000_000, 2_000)
				.saturating_add(Weight::from_parts(20_000_000, 2_600).saturating_mul(c.into()))
				.saturating_add(Weight::from_parts(8_000_000, 2_600).saturating_mul(i.into()))
				.saturating_add($db.reads((2 * c + i).into()))
				.saturating_add($db.writes((c + i).into()))
		}
	};
}

impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	weights!(T::DbWeight::get());
}

impl WeightInfo for () {
	weights!(RocksDbWeight::get());
}
