//! Weights of `pallet-fl-task`.
//!
//! PROVISIONAL: upper-bound estimates (storage accesses counted from the
//! code, compute rounded up, linear in the parameter count) until
//! `scripts/benchmark-pallets.sh` generates this file from the pallet's frame
//! benchmarks.

#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions of `pallet-fl-task`.
pub trait WeightInfo {
	fn publish_task(p: u32) -> Weight;
	fn join_task() -> Weight;
	fn submit_update(p: u32) -> Weight;
	fn submit_aggregate(p: u32, n: u32) -> Weight;
	fn cancel_task() -> Weight;
	fn on_initialize(t: u32) -> Weight;
}

/// Weights with the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);

macro_rules! weights {
	($db:expr) => {
		fn publish_task(p: u32) -> Weight {
			Weight::from_parts(80_000_000, 8_000)
				.saturating_add(Weight::from_parts(60_000, 8).saturating_mul(p.into()))
				.saturating_add($db.reads_writes(3, 6))
		}
		fn join_task() -> Weight {
			Weight::from_parts(40_000_000, 4_000).saturating_add($db.reads_writes(3, 2))
		}
		fn submit_update(p: u32) -> Weight {
			Weight::from_parts(70_000_000, 6_000)
				.saturating_add(Weight::from_parts(40_000, 8).saturating_mul(p.into()))
				.saturating_add($db.reads_writes(5, 2))
		}
		fn submit_aggregate(p: u32, n: u32) -> Weight {
			Weight::from_parts(120_000_000, 10_000)
				.saturating_add(Weight::from_parts(120_000, 16).saturating_mul(p.into()))
				.saturating_add(Weight::from_parts(15_000_000, 3_000).saturating_mul(n.into()))
				.saturating_add($db.reads_writes(8, 9))
				.saturating_add($db.reads_writes(2, 2).saturating_mul(n.into()))
		}
		fn cancel_task() -> Weight {
			Weight::from_parts(60_000_000, 6_000).saturating_add($db.reads_writes(3, 6))
		}
		fn on_initialize(t: u32) -> Weight {
			Weight::from_parts(5_000_000, 1_000)
				.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(t.into()))
				.saturating_add($db.reads(1))
				.saturating_add($db.reads_writes(2, 1).saturating_mul(t.into()))
		}
	};
}

impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	weights!(T::DbWeight::get());
}

impl WeightInfo for () {
	weights!(RocksDbWeight::get());
}
