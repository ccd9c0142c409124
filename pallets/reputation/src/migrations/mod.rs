//! Storage migrations of the reputation pallet.

pub mod v2;
pub mod v3;
