//! Storage migrations of the reputation pallet.

pub mod v2;
