//! Storage migrations of the federated-learning pallet.

pub mod v1;
pub mod v2;
