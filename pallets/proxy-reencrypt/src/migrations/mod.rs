//! Storage migrations of the proxy re-encryption pallet.

pub mod v1;
