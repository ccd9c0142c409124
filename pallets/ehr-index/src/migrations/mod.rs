//! Storage migrations of the record-index pallet.

pub mod v1;
pub mod v2;
