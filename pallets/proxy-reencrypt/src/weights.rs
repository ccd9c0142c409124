//! Weights of `pallet_proxy_reencrypt`. Provisional until
//! `scripts/benchmark-pallets.sh pallet_proxy_reencrypt` writes this file from
//! the pallet's frame benchmarks.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions of `pallet_proxy_reencrypt`.
pub trait WeightInfo {
	fn register_key() -> Weight;
	fn register_proxy() -> Weight;
	fn attach_capsule() -> Weight;
	fn grant_access(n: u32, ) -> Weight;
	fn revoke_grant(n: u32, ) -> Weight;
	fn request_access() -> Weight;
	fn break_glass() -> Weight;
	fn submit_fragment() -> Weight;
	fn review_emergency() -> Weight;
	fn on_initialize(e: u32, l: u32, ) -> Weight;
}

/// Weights of `pallet_proxy_reencrypt` with the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn register_key() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn register_proxy() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn attach_capsule() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn grant_access(n: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn revoke_grant(n: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn request_access() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn break_glass() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn submit_fragment() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn review_emergency() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn on_initialize(e: u32, l: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(e.into()))
			.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(l.into()))
			.saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
}

// For tests.
impl WeightInfo for () {
	fn register_key() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn register_proxy() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn attach_capsule() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn grant_access(n: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn revoke_grant(n: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn request_access() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn break_glass() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn submit_fragment() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn review_emergency() -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn on_initialize(e: u32, l: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 10_000)
			.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(e.into()))
			.saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(l.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
}
