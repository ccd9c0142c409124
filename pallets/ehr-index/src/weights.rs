//! Weights of `pallet-ehr-index`.
//!
//! PROVISIONAL: upper-bound estimates (storage accesses counted from the
//! code, compute rounded up) until `scripts/benchmark-pallets.sh` generates
//! this file from the pallet's frame benchmarks.

#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions of `pallet-ehr-index`.
pub trait WeightInfo {
	fn publish_record() -> Weight;
	fn amend_record() -> Weight;
	fn vote_record() -> Weight;
	fn log_access() -> Weight;
	fn erase_record() -> Weight;
	fn expire_records(n: u32) -> Weight;
}

/// Weights with the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);

macro_rules! weights {
	($db:expr) => {
		fn publish_record() -> Weight {
			Weight::from_parts(60_000_000, 6_000).saturating_add($db.reads_writes(4, 4))
		}
		fn amend_record() -> Weight {
			Weight::from_parts(75_000_000, 7_000).saturating_add($db.reads_writes(6, 5))
		}
		fn vote_record() -> Weight {
			Weight::from_parts(55_000_000, 6_000).saturating_add($db.reads_writes(4, 3))
		}
		fn log_access() -> Weight {
			Weight::from_parts(30_000_000, 3_600).saturating_add($db.reads_writes(3, 1))
		}
		fn erase_record() -> Weight {
			Weight::from_parts(30_000_000, 3_600).saturating_add($db.reads_writes(1, 1))
		}
		fn expire_records(n: u32) -> Weight {
			Weight::from_parts(5_000_000, 1_600)
				.saturating_add(Weight::from_parts(15_000_000, 3_600).saturating_mul(n.into()))
				.saturating_add($db.reads_writes(1, 1))
				.saturating_add($db.reads_writes(n.into(), n.into()))
		}
	};
}

impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	weights!(T::DbWeight::get());
}

impl WeightInfo for () {
	weights!(RocksDbWeight::get());
}
