//! Storage migrations of the proxy re-encryption pallet.

pub mod v1;
pub mod v2;
