//! # Medchain runtime
//!
//! The parachain runtime of Medchain: a consortium chain on which hospitals,
//! nursing homes, insurers, research institutes, regulators and patients share
//! medical data without handing it over. The chain keeps hashes, pointers,
//! access rights and an audit trail; full records stay encrypted off chain.
//!
//! ## Layout
//! - [`configs`]: the configuration of every pallet.
//! - [`apis`]: the runtime APIs the node and clients call.
//! - [`genesis_config_presets`]: `development` and `local_testnet` genesis.
//!
//! Block timing follows the asynchronous-backing parachain template: 6 s
//! blocks with 2 s of compute each.

#![cfg_attr(not(feature = "std"), no_std)]
// `#[frame_support::runtime]` expands into deeply nested types.
#![recursion_limit = "256"]

// The Wasm blob built by `build.rs`.
#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

pub mod apis;
pub mod configs;
pub mod genesis_config_presets;

use alloc::vec::Vec;
use smallvec::smallvec;
use sp_runtime::{
	generic, impl_opaque_keys,
	traits::{BlakeTwo256, IdentifyAccount, Verify},
	MultiSignature,
};
use sp_version::RuntimeVersion;

use frame_support::weights::{
	constants::{ExtrinsicBaseWeight, WEIGHT_REF_TIME_PER_SECOND},
	Weight, WeightToFeeCoefficient, WeightToFeeCoefficients, WeightToFeePolynomial,
};
pub use sp_consensus_aura::sr25519::AuthorityId as AuraId;
pub use sp_runtime::{MultiAddress, Perbill, Permill};

/// Signature of a transaction: sr25519, ed25519 or ecdsa.
pub type Signature = MultiSignature;

/// An account on the chain: the public key of its signing scheme.
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;

/// Balance of an account, in the smallest unit.
pub type Balance = u128;

/// Index of a transaction sent by an account.
pub type Nonce = u32;

/// The hash type of blocks and tries.
pub type Hash = sp_core::H256;

/// A block number.
pub type BlockNumber = u32;

/// The address format of transaction senders.
pub type Address = MultiAddress<AccountId, ()>;

/// Block header type.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;

/// Block type.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;

/// A block with its justifications.
pub type SignedBlock = generic::SignedBlock<Block>;

/// Checks every signed transaction goes through, in order. `CheckMetadataHash`
/// lets a wallet prove that what it showed the signer matches this runtime's
/// metadata, so a patient sees a decoded grant rather than raw bytes.
pub type TxExtension = cumulus_pallet_weight_reclaim::StorageWeightReclaim<
	Runtime,
	(
		frame_system::CheckNonZeroSender<Runtime>,
		frame_system::CheckSpecVersion<Runtime>,
		frame_system::CheckTxVersion<Runtime>,
		frame_system::CheckGenesis<Runtime>,
		frame_system::CheckEra<Runtime>,
		frame_system::CheckNonce<Runtime>,
		frame_system::CheckWeight<Runtime>,
		pallet_ehr_index::extension::FreePatientCalls<
			Runtime,
			pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
		>,
		frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
	),
>;

/// The extensions of a transaction signed with `nonce` in `era`, without a
/// tip and without a metadata hash: what the node's offchain workers, the
/// tools' chain client and the runtime tests sign.
pub fn tx_extension(era: generic::Era, nonce: Nonce) -> TxExtension {
	cumulus_pallet_weight_reclaim::StorageWeightReclaim::new((
		frame_system::CheckNonZeroSender::<Runtime>::new(),
		frame_system::CheckSpecVersion::<Runtime>::new(),
		frame_system::CheckTxVersion::<Runtime>::new(),
		frame_system::CheckGenesis::<Runtime>::new(),
		frame_system::CheckEra::<Runtime>::from(era),
		frame_system::CheckNonce::<Runtime>::from(nonce),
		frame_system::CheckWeight::<Runtime>::new(),
		pallet_transaction_payment::ChargeTransactionPayment::<Runtime>::from(0).into(),
		frame_metadata_hash_extension::CheckMetadataHash::<Runtime>::new(false),
	))
}

/// An extrinsic as it arrives from outside.
pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;

/// Storage migrations run on the next runtime upgrade.
pub type Migrations = (
	pallet_reputation::migrations::v2::MigrateV1ToV2<Runtime>,
	pallet_reputation::migrations::v3::MigrateV2ToV3<Runtime>,
	pallet_proxy_reencrypt::migrations::v1::MigrateV0ToV1<Runtime>,
	pallet_proxy_reencrypt::migrations::v2::MigrateV1ToV2<Runtime>,
	pallet_fl_task::migrations::v1::MigrateV0ToV1<Runtime>,
	pallet_fl_task::migrations::v2::MigrateV1ToV2<Runtime>,
	pallet_ehr_index::migrations::v1::MigrateV0ToV1<Runtime>,
	pallet_ehr_index::migrations::v2::MigrateV1ToV2<Runtime>,
);

/// Dispatches calls to the pallets.
pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
	Migrations,
>;

/// Maps weight to fee: the base weight of an extrinsic costs a tenth of a
/// milli-unit.
pub struct WeightToFee;
impl WeightToFeePolynomial for WeightToFee {
	type Balance = Balance;
	fn polynomial() -> WeightToFeeCoefficients<Self::Balance> {
		let p = MILLIUNIT / 10;
		let q = 100 * Balance::from(ExtrinsicBaseWeight::get().ref_time());
		smallvec![WeightToFeeCoefficient {
			degree: 1,
			negative: false,
			coeff_frac: Perbill::from_rational(p % q, q),
			coeff_integer: p / q,
		}]
	}
}

/// Types the node needs without knowing the runtime's call set.
pub mod opaque {
	use super::*;
	pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;
	use sp_runtime::{generic, traits::Hash as HashT};

	/// Opaque block header type.
	pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
	/// Opaque block type.
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;
	/// Opaque block hash type.
	pub type Hash = <BlakeTwo256 as HashT>::Output;
}

impl_opaque_keys! {
	/// The session keys of a collator.
	pub struct SessionKeys {
		/// Key used to author blocks with Aura.
		pub aura: Aura,
	}
}

/// The runtime's version (`upgrade-test` below repeats it: bump both).
#[cfg(not(feature = "upgrade-test"))]
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("medchain"),
	impl_name: alloc::borrow::Cow::Borrowed("medchain"),
	authoring_version: 1,
	// 2: fl-task storage v2 (held-out counts, differential privacy), new
	// call encodings of `publish_task` and `submit_update`.
	// 3: `log_access` names the grant a read is made under (and is checked
	// against it); break-glass accesses are kept per grant and record.
	// 4: `grant_access` binds each proxy to its key fragment's id.
	// 5, 6: fee-less patient calls (ehr-index storage v1), events without
	// patients.
	// 7: ehr-index storage v2 (an erased record has no kind or size);
	// `AccessRequested` without the purpose.
	// 8: keys per scope (proxy-reencrypt: `attach_capsule` takes the
	// scoped capsules; `register_kind_keys`, `add_record_keys`; new storage
	// starts empty); transaction_version 5.
	// 9: the instant key path (`log_reads` entries say what was served, and
	// a grant's proxies log the fragments they served; ProxyReencryptApi
	// 2); transaction_version 6.
	spec_version: 9,
	impl_version: 0,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 6,
	system_version: 1,
};

/// The same runtime one `spec_version` later: the blob the runtime-upgrade
/// test (`tests/e2e/runtime-upgrade.test.mjs`) enacts on a running chain.
/// Only `scripts/build-upgrade-runtime.sh` builds it; it is never shipped.
/// Keep it equal to the `VERSION` above but for `spec_version` (one more):
/// bump both together.
#[cfg(feature = "upgrade-test")]
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("medchain"),
	impl_name: alloc::borrow::Cow::Borrowed("medchain"),
	authoring_version: 1,
	spec_version: 10,
	impl_version: 0,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 6,
	system_version: 1,
};

/// Target block time.
pub const MILLISECS_PER_BLOCK: u64 = 6000;

/// Aura slot duration. Cannot change once the chain runs.
pub const SLOT_DURATION: u64 = MILLISECS_PER_BLOCK;

/// Blocks per minute.
pub const MINUTES: BlockNumber = 60_000 / (MILLISECS_PER_BLOCK as BlockNumber);
/// Blocks per hour.
pub const HOURS: BlockNumber = MINUTES * 60;
/// Blocks per day.
pub const DAYS: BlockNumber = HOURS * 24;

/// One MED, the chain's token (12 decimals).
pub const UNIT: Balance = 1_000_000_000_000;
/// A thousandth of a MED.
pub const MILLIUNIT: Balance = 1_000_000_000;
/// A millionth of a MED.
pub const MICROUNIT: Balance = 1_000_000;

/// The smallest balance an account may hold.
pub const EXISTENTIAL_DEPOSIT: Balance = MILLIUNIT;

/// Deposit for `items` storage items taking `bytes` bytes.
pub const fn deposit(items: u32, bytes: u32) -> Balance {
	(items as Balance * 20 * UNIT + (bytes as Balance) * 100 * MICROUNIT) / 100
}

/// Share of block weight assumed to go to `on_initialize`.
const AVERAGE_ON_INITIALIZE_RATIO: Perbill = Perbill::from_percent(5);

/// Share of block weight normal extrinsics may fill; the rest is operational.
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

/// Two seconds of compute per 6 s block, and the relay chain's PoV limit.
const MAXIMUM_BLOCK_WEIGHT: Weight = Weight::from_parts(
	WEIGHT_REF_TIME_PER_SECOND.saturating_mul(2),
	cumulus_primitives_core::relay_chain::MAX_POV_SIZE as u64,
);

/// Blocks that may be built and not yet included in the relay chain.
pub const UNINCLUDED_SEGMENT_CAPACITY: u32 = 3;
/// Parachain blocks per relay-chain parent.
pub const BLOCK_PROCESSING_VELOCITY: u32 = 1;
/// Relay-chain slot duration in milliseconds.
pub const RELAY_CHAIN_SLOT_DURATION_MILLIS: u32 = 6000;

/// The consensus hook: fixed velocity under asynchronous backing.
pub type ConsensusHook = cumulus_pallet_aura_ext::FixedVelocityConsensusHook<
	Runtime,
	RELAY_CHAIN_SLOT_DURATION_MILLIS,
	BLOCK_PROCESSING_VELOCITY,
	UNINCLUDED_SEGMENT_CAPACITY,
>;

/// The runtime: every pallet and its index. Indices are part of the
/// transaction format and must not change.
#[frame_support::runtime]
mod runtime {
	/// The Medchain runtime.
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	// System support.
	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type ParachainSystem = cumulus_pallet_parachain_system;
	#[runtime::pallet_index(2)]
	pub type Timestamp = pallet_timestamp;
	#[runtime::pallet_index(3)]
	pub type ParachainInfo = parachain_info;
	#[runtime::pallet_index(4)]
	pub type WeightReclaim = cumulus_pallet_weight_reclaim;
	#[runtime::pallet_index(5)]
	pub type Utility = pallet_utility;

	// Money.
	#[runtime::pallet_index(10)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(11)]
	pub type TransactionPayment = pallet_transaction_payment;

	// Governance. Sudo exists for dev and local chains; a production chain
	// spec sets no key.
	#[runtime::pallet_index(15)]
	pub type Sudo = pallet_sudo;
	#[runtime::pallet_index(16)]
	pub type Council = pallet_collective<Instance1>;
	#[runtime::pallet_index(17)]
	pub type Regulators = pallet_collective<Instance2>;
	#[runtime::pallet_index(18)]
	pub type Preimage = pallet_preimage;
	#[runtime::pallet_index(19)]
	pub type Whitelist = pallet_whitelist;
	#[runtime::pallet_index(25)]
	pub type Parameters = pallet_parameters;

	// Collators. The order of these five matters and shall not change:
	// the reputation pallet's genesis and session manager run before session.
	#[runtime::pallet_index(20)]
	pub type Authorship = pallet_authorship;
	#[runtime::pallet_index(21)]
	pub type Reputation = pallet_reputation;
	#[runtime::pallet_index(22)]
	pub type Session = pallet_session;
	#[runtime::pallet_index(23)]
	pub type Aura = pallet_aura;
	#[runtime::pallet_index(24)]
	pub type AuraExt = cumulus_pallet_aura_ext;

	// Medical data.
	#[runtime::pallet_index(30)]
	pub type EhrIndex = pallet_ehr_index;
	#[runtime::pallet_index(31)]
	pub type FlTask = pallet_fl_task;
	#[runtime::pallet_index(32)]
	pub type ProxyReencrypt = pallet_proxy_reencrypt;

	// Smart contracts.
	#[runtime::pallet_index(40)]
	pub type RandomnessCollectiveFlip = pallet_insecure_randomness_collective_flip;
	#[runtime::pallet_index(41)]
	pub type Contracts = pallet_contracts;
}

#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;

cumulus_pallet_parachain_system::register_validate_block! {
	Runtime = Runtime,
	BlockExecutor = cumulus_pallet_aura_ext::BlockExecutor::<Runtime, Executive>,
}
