//! Storage migrations of the federated-learning pallet.

pub mod v1;
