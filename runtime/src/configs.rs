//! Configuration of every pallet in the runtime.

use cumulus_pallet_parachain_system::RelayNumberMonotonicallyIncreases;
use cumulus_primitives_core::AggregateMessageOrigin;
use frame_support::{
	derive_impl,
	dispatch::DispatchClass,
	parameter_types,
	dynamic_params::{dynamic_pallet_params, dynamic_params},
	traits::{
		fungible::HoldConsideration, AsEnsureOriginWithArg, ConstBool, Contains, ConstU32, ConstU64, ConstU8,
		EitherOfDiverse, EnsureOrigin, Get, LinearStoragePrice, Nothing,
	},
	weights::{
		constants::{BlockExecutionWeight, ExtrinsicBaseWeight, RocksDbWeight},
		ConstantMultiplier, Weight,
	},
};
use frame_system::{
	limits::{BlockLength, BlockWeights},
	EnsureNever, EnsureRoot, EnsureSigned,
};
use pallet_transaction_payment::{Multiplier, TargetedFeeAdjustment};
use sp_runtime::{
	traits::{Bounded, Hash as _},
	FixedPointNumber, Perbill, Perquintill,
};
use sp_version::RuntimeVersion;

use super::{
	deposit, AccountId, Aura, Balance, Balances, Block, BlockNumber, ConsensusHook, EhrIndex, Hash, Nonce, PalletInfo, ProxyReencrypt,
	Council, Preimage, RandomnessCollectiveFlip, Regulators, Reputation, Runtime, RuntimeCall, RuntimeEvent, RuntimeFreezeReason,
	RuntimeHoldReason, RuntimeOrigin, RuntimeTask, Session, SessionKeys, System, Timestamp,
	WeightToFee,
	AVERAGE_ON_INITIALIZE_RATIO, DAYS, EXISTENTIAL_DEPOSIT, HOURS, MAXIMUM_BLOCK_WEIGHT, MINUTES,
	MICROUNIT, NORMAL_DISPATCH_RATIO, SLOT_DURATION, UNIT, VERSION,
};

parameter_types! {
	pub const Version: RuntimeVersion = VERSION;
	/// Blocks up to 5 MiB; normal extrinsics may use 75 % of that.
	pub RuntimeBlockLength: BlockLength =
		BlockLength::builder()
			.max_length(5 * 1024 * 1024)
			.modify_max_length_for_class(DispatchClass::Normal, |max| {
				*max = NORMAL_DISPATCH_RATIO * *max
			})
			.build();
	/// Weight limits per dispatch class.
	pub RuntimeBlockWeights: BlockWeights = BlockWeights::builder()
		.base_block(BlockExecutionWeight::get())
		.for_class(DispatchClass::all(), |weights| {
			weights.base_extrinsic = ExtrinsicBaseWeight::get();
		})
		.for_class(DispatchClass::Normal, |weights| {
			weights.max_total = Some(NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT);
		})
		.for_class(DispatchClass::Operational, |weights| {
			weights.max_total = Some(MAXIMUM_BLOCK_WEIGHT);
			weights.reserved = Some(
				MAXIMUM_BLOCK_WEIGHT - NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT,
			);
		})
		.avg_block_initialization(AVERAGE_ON_INITIALIZE_RATIO)
		.build_or_panic();
	/// Generic Substrate address format.
	pub const SS58Prefix: u16 = 42;
	/// Block hashes kept for mortal transactions.
	pub const BlockHashCount: u32 = 4096;
}

/// Refuses a motion whose proposal still has the deposit record of an
/// earlier, finished motion of the same call. `pallet-collective` keys that
/// record (`CostOf`) by the proposal's hash and would overwrite it, leaving
/// the earlier proposer's deposit on hold for ever (anyone could do that to
/// any member). Whoever proposes the same call again first releases the
/// finished motion's deposit with `release_proposal_cost`, which any signed
/// account may call.
pub struct NoStaleProposalCost;

impl NoStaleProposalCost {
	/// True if `proposal` has a deposit record in collective `I` but no open
	/// motion there.
	fn is_stale<I: 'static>(proposal: &RuntimeCall) -> bool
	where
		Runtime: pallet_collective::Config<I, Proposal = RuntimeCall, Hash = Hash>,
	{
		let hash = <Runtime as frame_system::Config>::Hashing::hash_of(proposal);
		pallet_collective::CostOf::<Runtime, I>::contains_key(hash) &&
			!pallet_collective::ProposalOf::<Runtime, I>::contains_key(hash)
	}
}

impl Contains<RuntimeCall> for NoStaleProposalCost {
	fn contains(call: &RuntimeCall) -> bool {
		match call {
			RuntimeCall::Council(pallet_collective::Call::propose { proposal, .. }) =>
				!Self::is_stale::<CouncilCollective>(proposal),
			RuntimeCall::Regulators(pallet_collective::Call::propose { proposal, .. }) =>
				!Self::is_stale::<RegulatorCollective>(proposal),
			_ => true,
		}
	}
}

#[derive_impl(frame_system::config_preludes::ParaChainDefaultConfig)]
impl frame_system::Config for Runtime {
	type BaseCallFilter = NoStaleProposalCost;
	type AccountId = AccountId;
	type Nonce = Nonce;
	type Hash = Hash;
	type Block = Block;
	type BlockHashCount = BlockHashCount;
	type Version = Version;
	type AccountData = pallet_balances::AccountData<Balance>;
	type DbWeight = RocksDbWeight;
	type BlockWeights = RuntimeBlockWeights;
	type BlockLength = RuntimeBlockLength;
	type SS58Prefix = SS58Prefix;
	type OnSetCode = cumulus_pallet_parachain_system::ParachainSetCode<Self>;
	type MaxConsumers = ConstU32<16>;
}

impl cumulus_pallet_weight_reclaim::Config for Runtime {
	type WeightInfo = ();
}

impl pallet_timestamp::Config for Runtime {
	type Moment = u64;
	type OnTimestampSet = Aura;
	type MinimumPeriod = ConstU64<0>;
	type WeightInfo = ();
}

impl pallet_utility::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type PalletsOrigin = crate::OriginCaller;
	type WeightInfo = pallet_utility::weights::SubstrateWeight<Runtime>;
}

impl pallet_authorship::Config for Runtime {
	type FindAuthor = pallet_session::FindAccountFromAuthorIndex<Self, Aura>;
	// Blocks authored feed credit.
	type EventHandler = (Reputation,);
}

parameter_types! {
	pub const ExistentialDeposit: Balance = EXISTENTIAL_DEPOSIT;
}

impl pallet_balances::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RuntimeFreezeReason = RuntimeFreezeReason;
	type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
	type Balance = Balance;
	type DustRemoval = ();
	type ExistentialDeposit = ExistentialDeposit;
	type AccountStore = System;
	type ReserveIdentifier = [u8; 8];
	type FreezeIdentifier = RuntimeFreezeReason;
	type MaxLocks = ConstU32<50>;
	type MaxReserves = ConstU32<50>;
	type MaxFreezes = ConstU32<8>;
	type DoneSlashHandler = ();
}

parameter_types! {
	/// Fee per byte of a transaction.
	pub const TransactionByteFee: Balance = 10 * MICROUNIT;
	/// Fees rise when blocks are fuller than this, and fall below it.
	pub const TargetBlockFullness: Perquintill = Perquintill::from_percent(25);
	/// How fast the fee multiplier reacts to block fullness.
	pub AdjustmentVariable: Multiplier = Multiplier::saturating_from_rational(75, 1_000_000);
	/// The fee multiplier never drops under a tenth.
	pub MinimumMultiplier: Multiplier = Multiplier::saturating_from_rational(1, 10u128);
	/// No upper bound on the fee multiplier.
	pub MaximumMultiplier: Multiplier = Bounded::max_value();
}

impl pallet_transaction_payment::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type OnChargeTransaction = pallet_transaction_payment::FungibleAdapter<Balances, ()>;
	type WeightToFee = WeightToFee;
	type LengthToFee = ConstantMultiplier<Balance, TransactionByteFee>;
	type FeeMultiplierUpdate = TargetedFeeAdjustment<
		Self,
		TargetBlockFullness,
		AdjustmentVariable,
		MinimumMultiplier,
		MaximumMultiplier,
	>;
	type OperationalFeeMultiplier = ConstU8<5>;
	type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	pub const ReservedXcmpWeight: Weight = MAXIMUM_BLOCK_WEIGHT.saturating_div(4);
	pub const ReservedDmpWeight: Weight = MAXIMUM_BLOCK_WEIGHT.saturating_div(4);
	pub const RelayOrigin: AggregateMessageOrigin = AggregateMessageOrigin::Parent;
}

impl cumulus_pallet_parachain_system::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type OnSystemEvent = ();
	type SelfParaId = parachain_info::Pallet<Runtime>;
	// Medchain exchanges no cross-chain messages yet.
	type OutboundXcmpMessageSource = ();
	type DmpQueue = frame_support::traits::EnqueueWithOrigin<(), RelayOrigin>;
	type ReservedDmpWeight = ReservedDmpWeight;
	type XcmpMessageHandler = ();
	type ReservedXcmpWeight = ReservedXcmpWeight;
	type CheckAssociatedRelayNumber = RelayNumberMonotonicallyIncreases;
	type WeightInfo = ();
	type ConsensusHook = ConsensusHook;
	type RelayParentOffset = ConstU32<0>;
	type SchedulingSignatureVerifier = ();
}

impl parachain_info::Config for Runtime {}

impl cumulus_pallet_aura_ext::Config for Runtime {}

parameter_types! {
	/// Session length in blocks. A storage parameter (key
	/// `twox_128(b":SessionPeriod:")`, a SCALE `u32`) so that governance, or a
	/// dev chain's sudo through `system.set_storage`, can shorten sessions.
	pub storage SessionPeriod: u32 = 6 * HOURS;
	/// Offset of the first session.
	pub const Offset: u32 = 0;
}

/// The session length pallet-session uses: [`SessionPeriod`], at least one
/// block (a zero written to storage would otherwise divide by zero in every
/// block's `should_end_session`).
pub struct SessionLength;
impl Get<u32> for SessionLength {
	fn get() -> u32 {
		SessionPeriod::get().max(1)
	}
}

/// The collators active in the current session: pallet-session's validators
/// (the validator id is the account id).
pub struct ActiveCollators;
impl Get<alloc::vec::Vec<AccountId>> for ActiveCollators {
	fn get() -> alloc::vec::Vec<AccountId> {
		pallet_session::Validators::<Runtime>::get()
	}
}

impl pallet_session::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type ValidatorId = <Self as frame_system::Config>::AccountId;
	// No stash/controller split: the collator's account is its validator id.
	type ValidatorIdOf = sp_runtime::traits::ConvertInto;
	type ShouldEndSession = pallet_session::PeriodicSessions<SessionLength, Offset>;
	type NextSessionRotation = pallet_session::PeriodicSessions<SessionLength, Offset>;
	// Credit-weighted DPoS picks each session's collators.
	type SessionManager = Reputation;
	type SessionHandler = <SessionKeys as sp_runtime::traits::OpaqueKeys>::KeyTypeIdProviders;
	type Keys = SessionKeys;
	type DisablingStrategy = ();
	type WeightInfo = ();
	type Currency = Balances;
	type KeyDeposit = ();
}

impl pallet_aura::Config for Runtime {
	type AuthorityId = crate::AuraId;
	type DisabledValidators = ();
	type MaxAuthorities = ConstU32<100>;
	type AllowMultipleBlocksPerSlot = ConstBool<true>;
	type SlotDuration = ConstU64<SLOT_DURATION>;
}

parameter_types! {
	/// Bond an institution holds while registered.
	pub const InstitutionBond: Balance = 100 * UNIT;
	/// Smallest self bond of a collator candidate.
	pub const MinCandidateBond: Balance = 1_000 * UNIT;
	/// Smallest delegation.
	pub const MinDelegation: Balance = 10 * UNIT;
	/// Each session closes a tenth of the gap between a score and the baseline.
	pub const CreditDrift: Perbill = Perbill::from_percent(10);
}

impl pallet_reputation::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type CouncilOrigin = CouncilTwoThirds;
	type RegulatorOrigin = RegulatorMajority;
	type ForceOrigin = EnsureRoot<AccountId>;
	type CouncilMembers = Council;
	type RegulatorMembers = Regulators;
	type MaxBodyMembers = MaxBodyMembers;
	type MinBodyMembers = ConstU32<MIN_MOTION_AYES>;
	type DecisionPeriod = ConstU32<{ 7 * DAYS }>;
	type ValidatorRegistration = Session;
	type CreditPolicy = GovernedCreditPolicy;
	type SessionCollators = ActiveCollators;
	// No treasury yet: slashed bonds are burned.
	type SlashBeneficiary = ();
	type InstitutionBond = InstitutionBond;
	type MinCandidateBond = MinCandidateBond;
	type MinDelegation = MinDelegation;
	type MaxCredit = ConstU32<1000>;
	type InitialCredit = ConstU32<600>;
	type MinCollatorCredit = ConstU32<400>;
	type CreditDrift = CreditDrift;
	type DesiredCollators = ConstU32<16>;
	type UnbondingDelay = ConstU32<DAYS>;
	type MaxInstitutions = ConstU32<1_000>;
	type MaxPendingApplications = ConstU32<64>;
	type MaxCreditGainPerSession = Clamped<dynamic_params::reputation::MaxCreditGainPerSession, 1, 100>;
	type MaxPenaltyPerAuditorPerSession =
		Clamped<dynamic_params::reputation::MaxPenaltyPerAuditorPerSession, 50, 200>;
	type MaxCandidates = ConstU32<100>;
	type MaxInvulnerables = ConstU32<8>;
	type MaxDelegationsPerDelegator = ConstU32<8>;
	type MaxDelegatorsPerCandidate = ConstU32<300>;
	type MaxUnbondingChunks = ConstU32<16>;
	type MaxNameLen = ConstU32<64>;
	type MaxReasonLen = ConstU32<256>;
	type WeightInfo = pallet_reputation::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = SessionKeysForBenchmarks;
}

/// Registers throw-away session keys for benchmark accounts.
#[cfg(feature = "runtime-benchmarks")]
pub struct SessionKeysForBenchmarks;

#[cfg(feature = "runtime-benchmarks")]
impl pallet_reputation::BenchmarkHelper<AccountId> for SessionKeysForBenchmarks {
	fn register_session_keys(who: &AccountId) {
		use codec::Encode;
		let raw: [u8; 32] = sp_io::hashing::blake2_256(&who.encode());
		let keys = SessionKeys { aura: sp_core::sr25519::Public::from_raw(raw).into() };
		pallet_session::NextKeys::<Runtime>::insert(who, keys);
	}
}

impl pallet_ehr_index::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type Registry = Reputation;
	type Credit = Reputation;
	type Grants = ProxyReencrypt;
	type UnixTime = Timestamp;
	type ConfirmationsRequired = Clamped<dynamic_params::ehr_index::ConfirmationsRequired, 2, 16>;
	type RejectionsRequired = Clamped<dynamic_params::ehr_index::RejectionsRequired, 2, 16>;
	type ConfirmationPeriod = Clamped<dynamic_params::ehr_index::ConfirmationPeriod, MINUTES, { 30 * DAYS }>;
	type MaxExpiringPerBlock = ConstU32<256>;
	// A read served on the instant path is on chain within an hour, or
	// refused; 32 reads per call, 256 reads checked at any one block.
	type MaxLogDelay = ConstU32<HOURS>;
	type MaxReadsPerLog = ConstU32<32>;
	type MaxReadsPerCheckedBlock = ConstU32<256>;
	type MaxPointerLen = ConstU32<64>;
	type PatientCalls = PatientCalls;
	type FreeCallsPerWindow = ConstU32<20>;
	type FreeCallWindow = ConstU32<HOURS>;
	type ConsentSignature = super::Signature;
	type WeightInfo = pallet_ehr_index::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = InstitutionsForBenchmarks;
}

/// The calls a registered patient makes without fees (up to 20 an hour):
/// its Umbral keys (its own, its kind keys, its one-time record keys), its grants (give, revoke, allow single-proxy grants,
/// require audit first, decline one given to it), withdrawing an index consent and erasing its
/// record. A pseudonym per hospital then needs no funds, which would link
/// the pseudonyms through their payer.
pub struct PatientCalls;
impl frame_support::traits::Contains<RuntimeCall> for PatientCalls {
	fn contains(call: &RuntimeCall) -> bool {
		use pallet_ehr_index::Call as Index;
		use pallet_proxy_reencrypt::Call as Pre;
		matches!(
			call,
			RuntimeCall::ProxyReencrypt(
				Pre::register_key { .. } |
					Pre::register_kind_keys { .. } |
					Pre::add_record_keys { .. } |
					Pre::grant_access { .. } |
					Pre::revoke_grant { .. } |
					Pre::decline_grant { .. } |
					Pre::allow_single_proxy_grants { .. } |
					Pre::require_audit_first { .. }
			) | RuntimeCall::EhrIndex(Index::withdraw_index_consent { .. } | Index::erase_record { .. })
		)
	}
}

/// Registers and approves institutions for the record-index benchmarks.
#[cfg(feature = "runtime-benchmarks")]
pub struct InstitutionsForBenchmarks;

/// The benchmark keystore's key type for the proxy that signs fragments.
#[cfg(feature = "runtime-benchmarks")]
const PROXY_KEY_TYPE: sp_core::crypto::KeyTypeId = sp_core::crypto::KeyTypeId(*b"mcpx");

#[cfg(feature = "runtime-benchmarks")]
impl InstitutionsForBenchmarks {
	fn institution(n: u32, roles: medchain_primitives::Roles) -> AccountId {
		Self::make_institution(frame_benchmarking::account("institution", n, 0), roles)
	}

	/// Makes `who` an active institution holding `roles` (if it is not one).
	fn make_institution(who: AccountId, roles: medchain_primitives::Roles) -> AccountId {
		use frame_support::traits::fungible::Mutate;
		use medchain_primitives::{HospitalGrade, InstitutionKind};
		if pallet_reputation::Institutions::<Runtime>::contains_key(&who) {
			return who;
		}
		Balances::set_balance(&who, 1_000_000 * UNIT);
		let kind = InstitutionKind::Hospital { level: 3, grade: HospitalGrade::A };
		let name = frame_support::BoundedVec::truncate_from(b"benchmark".to_vec());
		let _ = Reputation::apply_for_membership(RuntimeOrigin::signed(who.clone()), name, kind, roles);
		let _ = Reputation::approve_institution(RuntimeOrigin::root(), who.clone());
		who
	}
}

#[cfg(feature = "runtime-benchmarks")]
impl pallet_ehr_index::BenchmarkHelper<AccountId, super::Signature> for InstitutionsForBenchmarks {
	fn producer() -> AccountId {
		Self::institution(0, medchain_primitives::Roles { producer: true, validator: false, auditor: false })
	}

	fn validator(n: u32) -> AccountId {
		Self::institution(n.saturating_add(1), medchain_primitives::Roles::only(medchain_primitives::Role::Validator))
	}

	fn sign_consent(message: &[u8]) -> (AccountId, super::Signature) {
		// One key, from a fixed seed, in the benchmark's keystore.
		const KEY_TYPE: sp_core::crypto::KeyTypeId = sp_core::crypto::KeyTypeId(*b"mcpt");
		let public = sp_io::crypto::sr25519_generate(KEY_TYPE, Some(b"//MedchainBenchmarkPatient".to_vec()));
		// The key was just generated; were it missing, an empty signature
		// makes the benchmark fail `BadConsentSignature` rather than panic.
		let signature = sp_io::crypto::sr25519_sign(KEY_TYPE, &public, message)
			.unwrap_or_else(|| sp_core::sr25519::Signature::from_raw([0; 64]));
		(public.into(), signature.into())
	}
}

parameter_types! {
	/// No round closes with fewer than two updates: a task is never one
	/// institution training alone.
	pub const FlMinParticipantsFloor: u32 = 2;
	/// No task asks for fewer than two agreeing aggregators. A round's
	/// committee (the producers collating when it closes) then raises this
	/// to two thirds of its members, and caps it at their number: only a
	/// chain with a single collating producer (a development chain) adopts
	/// on one vote.
	pub const FlMinAggregatorsFloor: u32 = 2;
	/// Tasks may bound parameters at up to 65 536.0: the ceiling under
	/// which aggregation cannot overflow.
	pub const FlMaxParamAbs: pallet_fl_task::Fixed = pallet_fl_task::PARAM_ABS_CEILING;
	/// No update stands for fewer than ten patients' records.
	pub const FlMinSamplesFloor: u32 = 10;
}

impl pallet_fl_task::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type Registry = Reputation;
	// The session's collators aggregate: ⌈⅔⌉ of them (at least two where
	// more than one collates) must agree on a model.
	type Collators = ActiveCollators;
	type ForceOrigin = EnsureRoot<AccountId>;
	type Credit = Reputation;
	type Aggregator = pallet_fl_task::FixedPointAggregator;
	type AuthorityId = pallet_fl_task::crypto::AggregatorId;
	// 64 Ki parameters (512 KiB) inline; an MLP over 30 features with 256
	// hidden units has 8 193.
	type MaxParams = ConstU32<{ 64 * 1024 }>;
	// Larger models live in model stores, by digest and URL: up to 16 Mi
	// parameters (128 MiB), aggregated by offchain workers chunk by chunk.
	type MaxStoredParams = ConstU32<{ 16 * 1024 * 1024 }>;
	type MaxParticipants = ConstU32<64>;
	type MaxActiveTasks = ConstU32<16>;
	type MaxRounds = ConstU32<1_000>;
	// As many as `DesiredCollators`: a task may require every collator.
	type MaxAggregators = ConstU32<16>;
	type MinParticipantsFloor = FlMinParticipantsFloor;
	type MinAggregatorsFloor = FlMinAggregatorsFloor;
	type MaxParamAbs = FlMaxParamAbs;
	type MinSamplesFloor = FlMinSamplesFloor;
	type MinRoundBlocks = ConstU32<2>;
	type MaxExtensions = ConstU8<3>;
	type AggregationTimeout =
		Clamped<dynamic_params::fl_task::AggregationTimeout, { 10 * MINUTES }, { 7 * DAYS }>;
	type WeightInfo = pallet_fl_task::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = InstitutionsForBenchmarks;
}

#[cfg(feature = "runtime-benchmarks")]
impl pallet_fl_task::BenchmarkHelper<AccountId> for InstitutionsForBenchmarks {
	fn institution(n: u32) -> AccountId {
		Self::institution(
			n.saturating_add(1_000),
			medchain_primitives::Roles { producer: true, validator: false, auditor: false },
		)
	}

	fn set_collators(collators: alloc::vec::Vec<AccountId>) {
		pallet_session::Validators::<Runtime>::put(collators);
	}
}

impl pallet_proxy_reencrypt::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type Registry = Reputation;
	type Credit = Reputation;
	type Records = EhrIndex;
	type RegulatorOrigin = RegulatorMajority;
	type AuthorityId = pallet_proxy_reencrypt::crypto::ProxyId;
	type MaxProxies = ConstU32<8>;
	type MaxGrantsPerAccount = ConstU32<64>;
	type MaxOpenRequests = ConstU32<256>;
	type MaxOpenRequestsPerRequester = ConstU32<16>;
	type MaxOpenRequestsPerGrant = ConstU32<8>;
	// A patient's wallet keeps up to 32 one-time record keys registered.
	type MaxRecordKeys = ConstU32<32>;
	type MaxSealedFragmentLen = ConstU32<512>;
	type MaxCapsuleFragmentLen = ConstU32<512>;
	type RequestTimeout = Clamped<dynamic_params::proxy_reencrypt::RequestTimeout, 10, { HOURS / 2 }>;
	type ReviewWindow = Clamped<dynamic_params::proxy_reencrypt::ReviewWindow, HOURS, { 90 * DAYS }>;
	type MinRequestInterval = Clamped<dynamic_params::proxy_reencrypt::MinRequestInterval, 10, { DAYS }>;
	type ProxySignature = super::Signature;
	type WeightInfo = pallet_proxy_reencrypt::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = InstitutionsForBenchmarks;
}

#[cfg(feature = "runtime-benchmarks")]
impl pallet_proxy_reencrypt::BenchmarkHelper<AccountId, super::Signature> for InstitutionsForBenchmarks {
	fn signing_institution() -> AccountId {
		let public = sp_io::crypto::sr25519_generate(PROXY_KEY_TYPE, Some(b"//MedchainBenchmarkProxy".to_vec()));
		Self::make_institution(public.into(), medchain_primitives::Roles { producer: true, validator: false, auditor: false })
	}

	fn sign(who: &AccountId, message: &[u8]) -> super::Signature {
		let public = sp_core::sr25519::Public::from_raw(*who.as_ref());
		// Were the key missing, an empty signature makes the benchmark fail
		// `BadProxySignature` rather than panic.
		sp_io::crypto::sr25519_sign(PROXY_KEY_TYPE, &public, message)
			.unwrap_or_else(|| sp_core::sr25519::Signature::from_raw([0; 64]))
			.into()
	}

	fn institution(n: u32, role: medchain_primitives::Role) -> AccountId {
		// Producers publish, so every benchmark institution produces; auditors
		// hold the auditor role as well.
		let roles = medchain_primitives::Roles {
			producer: true,
			validator: false,
			auditor: role == medchain_primitives::Role::Auditor,
		};
		Self::institution(n.saturating_add(2_000), roles)
	}

	fn record(issuer: &AccountId, patient: &AccountId, capsule_hash: sp_core::H256) -> u64 {
		use pallet_ehr_index::{ContentDigest, DigestAlgorithm, RecordKind, StorePointer};
		let id = pallet_ehr_index::NextRecordId::<Runtime>::get();
		let pointer = StorePointer {
			store_id: frame_support::BoundedVec::truncate_from(b"benchmark".to_vec()),
			collection: frame_support::BoundedVec::truncate_from(b"records".to_vec()),
			object_id: [1; 12],
		};
		pallet_ehr_index::IndexConsents::<Runtime>::insert(
			patient,
			issuer,
			pallet_ehr_index::IndexConsent { given: true, generation: 0, sponsored: false },
		);
		let _ = EhrIndex::publish_record(
			RuntimeOrigin::signed(issuer.clone()),
			patient.clone(),
			RecordKind::LabResult,
			ContentDigest { algorithm: DigestAlgorithm::Sm3, digest: [2; 32] },
			pointer,
			1_024,
			capsule_hash,
		);
		// Validators confirmed it: only confirmed records are shared.
		pallet_ehr_index::Records::<Runtime>::mutate(id, |r| {
			if let Some(r) = r {
				r.status = pallet_ehr_index::RecordStatus::Confirmed;
			}
		});
		id
	}
}

impl frame_system::offchain::SigningTypes for Runtime {
	type Public = <super::Signature as sp_runtime::traits::Verify>::Signer;
	type Signature = super::Signature;
}

impl<C> frame_system::offchain::CreateTransactionBase<C> for Runtime
where
	RuntimeCall: From<C>,
{
	type Extrinsic = super::UncheckedExtrinsic;
	type RuntimeCall = RuntimeCall;
}

/// Offchain workers (federated-learning aggregators) sign their transactions
/// with the same extensions as any wallet, mortal for `BlockHashCount / 2`.
impl<C> frame_system::offchain::CreateSignedTransaction<C> for Runtime
where
	RuntimeCall: From<C>,
{
	fn create_signed_transaction<
		A: frame_system::offchain::AppCrypto<Self::Public, Self::Signature>,
	>(
		call: RuntimeCall,
		public: Self::Public,
		account: AccountId,
		nonce: Nonce,
	) -> Option<super::UncheckedExtrinsic> {
		use codec::Encode;
		use sp_runtime::{generic::Era, traits::StaticLookup, SaturatedConversion};
		let period = (BlockHashCount::get() / 2).next_power_of_two() as u64;
		let current = System::block_number().saturated_into::<u64>().saturating_sub(1);
		let tx_ext = super::tx_extension(Era::mortal(period, current), nonce);
		let payload = sp_runtime::generic::SignedPayload::new(call, tx_ext)
			.inspect_err(|e| log::warn!(target: "runtime::fl-task", "cannot sign: {e:?}"))
			.ok()?;
		let signature = payload.using_encoded(|bytes| A::sign(bytes, public))?;
		let (call, tx_ext, _) = payload.deconstruct();
		let address = <Runtime as frame_system::Config>::Lookup::unlookup(account);
		Some(super::UncheckedExtrinsic::new_signed(call, address, signature, tx_ext))
	}
}

impl pallet_insecure_randomness_collective_flip::Config for Runtime {}

parameter_types! {
	pub const DepositPerItem: Balance = deposit(1, 0);
	pub const DepositPerByte: Balance = deposit(0, 1);
	pub const DefaultDepositLimit: Balance = deposit(1024, 1024 * 1024);
	pub Schedule: pallet_contracts::Schedule<Runtime> = Default::default();
	pub const CodeHashLockupDepositPercent: Perbill = Perbill::from_percent(30);
}

/// Largest contract code accepted by `upload_code`, in bytes.
pub const MAX_CONTRACT_CODE_LEN: u32 = 123 * 1024;

impl pallet_contracts::Config for Runtime {
	type Time = Timestamp;
	type Randomness = RandomnessCollectiveFlip;
	type Currency = Balances;
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type RuntimeHoldReason = RuntimeHoldReason;
	// Contracts may not dispatch runtime calls: medical-data pallets are
	// reached through their own extrinsics, with their own origin checks.
	type CallFilter = Nothing;
	type WeightPrice = pallet_transaction_payment::Pallet<Self>;
	type WeightInfo = pallet_contracts::weights::SubstrateWeight<Self>;
	type ChainExtension = ();
	type Schedule = Schedule;
	type CallStack = [pallet_contracts::Frame<Self>; 5];
	type DepositPerByte = DepositPerByte;
	type DefaultDepositLimit = DefaultDepositLimit;
	type DepositPerItem = DepositPerItem;
	type CodeHashLockupDepositPercent = CodeHashLockupDepositPercent;
	type AddressGenerator = pallet_contracts::DefaultAddressGenerator;
	type MaxCodeLen = ConstU32<MAX_CONTRACT_CODE_LEN>;
	type MaxStorageKeyLen = ConstU32<128>;
	type MaxTransientStorageSize = ConstU32<{ 1024 * 1024 }>;
	type MaxDelegateDependencies = ConstU32<32>;
	type UnsafeUnstableInterface = ConstBool<false>;
	type MaxDebugBufferLen = ConstU32<{ 2 * 1024 * 1024 }>;
	type UploadOrigin = EnsureSigned<AccountId>;
	type InstantiateOrigin = EnsureSigned<AccountId>;
	type Migrations = ();
	type Debug = ();
	type Environment = ();
	type ApiVersion = ();
	type Xcm = ();
}

// ---- Governance -------------------------------------------------------------

/// The council: every active institution with the producer role, kept in
/// sync by the reputation pallet.
pub type CouncilCollective = pallet_collective::Instance1;
/// The regulators: every active institution with the auditor role.
pub type RegulatorCollective = pallet_collective::Instance2;

/// Passes when both `A` and `B` pass; succeeds with `A`'s success.
pub struct Both<A, B>(core::marker::PhantomData<(A, B)>);
impl<O: Clone, A: EnsureOrigin<O>, B: EnsureOrigin<O>> EnsureOrigin<O> for Both<A, B> {
	type Success = A::Success;
	fn try_origin(o: O) -> Result<A::Success, O> {
		let success = A::try_origin(o.clone())?;
		B::try_origin(o).map(|_| success)
	}

	/// `B`'s successful origin; for the bodies below, `B` is
	/// [`pallet_collective::EnsureMembers`] whose `Members(2, 2)` also carries
	/// any proportion.
	#[cfg(feature = "runtime-benchmarks")]
	fn try_successful_origin() -> Result<O, ()> {
		B::try_successful_origin()
	}
}

/// Fewest ayes of any motion, whatever the body's size: a body that shrank to
/// one member cannot act as one account.
pub const MIN_MOTION_AYES: u32 = 2;

/// A council motion carried by at least two thirds of the council, and by
/// at least [`MIN_MOTION_AYES`] members.
pub type CouncilTwoThirds = Both<
	pallet_collective::EnsureProportionAtLeast<AccountId, CouncilCollective, 2, 3>,
	pallet_collective::EnsureMembers<AccountId, CouncilCollective, MIN_MOTION_AYES>,
>;
/// A regulators' motion carried by more than half of the regulators, and by
/// at least [`MIN_MOTION_AYES`] members.
pub type RegulatorMajority = Both<
	pallet_collective::EnsureProportionMoreThan<AccountId, RegulatorCollective, 1, 2>,
	pallet_collective::EnsureMembers<AccountId, RegulatorCollective, MIN_MOTION_AYES>,
>;
/// Root (sudo on dev and local chains) or `O`.
pub type RootOr<O> = EitherOfDiverse<EnsureRoot<AccountId>, O>;

parameter_types! {
	/// Seats in each body.
	pub const MaxBodyMembers: u32 = 100;
	/// A member's first open proposal holds 10 UNIT; each further open
	/// proposal of the body doubles it (up to 100 000 UNIT): spamming a
	/// body's 100 proposal slots is not affordable. Released with
	/// `release_proposal_cost` once the motion is closed.
	pub const ProposalBaseDeposit: Balance = 10 * UNIT;
	/// The doubling.
	pub ProposalDepositRatio: sp_runtime::FixedU128 = sp_runtime::FixedU128::from_u32(2);
	/// The ceiling.
	pub const ProposalDepositCeil: Balance = 100_000 * UNIT;
	/// Hold reason of council proposal deposits.
	pub const CouncilProposalHold: RuntimeHoldReason =
		RuntimeHoldReason::Council(pallet_collective::HoldReason::ProposalSubmission);
	/// Hold reason of regulators' proposal deposits.
	pub const RegulatorProposalHold: RuntimeHoldReason =
		RuntimeHoldReason::Regulators(pallet_collective::HoldReason::ProposalSubmission);
	/// A motion may dispatch a call of up to half a block.
	pub MaxProposalWeight: Weight = Perbill::from_percent(50) * RuntimeBlockWeights::get().max_block;
}

/// The deposit for a body's next proposal, by the number already open.
pub type ProposalDeposit = pallet_collective::deposit::WithCeil<
		ProposalDepositCeil,
		pallet_collective::deposit::Geometric<ProposalDepositRatio, ProposalBaseDeposit>,
	>;

impl pallet_collective::Config<CouncilCollective> for Runtime {
	type RuntimeOrigin = RuntimeOrigin;
	type Proposal = RuntimeCall;
	type RuntimeEvent = RuntimeEvent;
	type MotionDuration = ConstU32<{ 3 * DAYS }>;
	type MaxProposals = ConstU32<100>;
	type MaxMembers = MaxBodyMembers;
	// Without a prime, members who do not vote count as nays at close.
	type DefaultVote = pallet_collective::PrimeDefaultVote;
	type WeightInfo = pallet_collective::weights::SubstrateWeight<Runtime>;
	// Members come from the registry only (pallet-reputation).
	type SetMembersOrigin = EnsureNever<()>;
	type MaxProposalWeight = MaxProposalWeight;
	// The regulators can veto a council motion.
	type DisapproveOrigin = RootOr<RegulatorMajority>;
	type KillOrigin = RootOr<RegulatorMajority>;
	type Consideration =
		HoldConsideration<AccountId, Balances, CouncilProposalHold, ProposalDeposit, u32>;
}

impl pallet_collective::Config<RegulatorCollective> for Runtime {
	type RuntimeOrigin = RuntimeOrigin;
	type Proposal = RuntimeCall;
	type RuntimeEvent = RuntimeEvent;
	type MotionDuration = ConstU32<{ 3 * DAYS }>;
	type MaxProposals = ConstU32<100>;
	type MaxMembers = MaxBodyMembers;
	type DefaultVote = pallet_collective::PrimeDefaultVote;
	type WeightInfo = pallet_collective::weights::SubstrateWeight<Runtime>;
	type SetMembersOrigin = EnsureNever<()>;
	type MaxProposalWeight = MaxProposalWeight;
	// The council cannot silence the regulators.
	type DisapproveOrigin = EnsureRoot<AccountId>;
	type KillOrigin = EnsureRoot<AccountId>;
	type Consideration =
		HoldConsideration<AccountId, Balances, RegulatorProposalHold, ProposalDeposit, u32>;
}

parameter_types! {
	/// Noting a preimage holds a deposit for its storage.
	pub const PreimageBaseDeposit: Balance = deposit(2, 64);
	/// And per byte.
	pub const PreimageByteDeposit: Balance = deposit(0, 1);
	/// The hold reason of preimage deposits.
	pub const PreimageHoldReason: RuntimeHoldReason =
		RuntimeHoldReason::Preimage(pallet_preimage::HoldReason::Preimage);
}

impl pallet_preimage::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = pallet_preimage::weights::SubstrateWeight<Runtime>;
	type Currency = Balances;
	type ManagerOrigin = EnsureRoot<AccountId>;
	type Consideration = HoldConsideration<
		AccountId,
		Balances,
		PreimageHoldReason,
		LinearStoragePrice<PreimageBaseDeposit, PreimageByteDeposit, Balance>,
	>;
}

/// Root without sudo: the council whitelists a call (two thirds), the
/// regulators dispatch it (a majority), in either order (a dispatch that
/// comes first waits, as a deferred dispatch, for the whitelisting). Runtime
/// upgrades go this way: `system.authorize_upgrade`, then anyone submits
/// `system.apply_authorized_upgrade` with the code.
impl pallet_whitelist::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type WhitelistOrigin = RootOr<CouncilTwoThirds>;
	type DispatchWhitelistedOrigin = RootOr<RegulatorMajority>;
	type Preimages = Preimage;
	type DeferredDispatchExpiration = ConstU32<{ 7 * DAYS }>;
	type BlockNumberProvider = System;
	type WeightInfo = pallet_whitelist::weights::SubstrateWeight<Runtime>;
}

/// The runtime's tunable parameters, changed by a council motion
/// (`parameters.set_parameter`, event `Parameters.Updated`). Each is read
/// through [`Clamped`], so no value a motion sets can switch a rule off.
#[dynamic_params(RuntimeParameters, pallet_parameters::Parameters::<Runtime>)]
pub mod dynamic_params {
	use super::*;

	/// The record index.
	#[dynamic_pallet_params]
	#[codec(index = 0)]
	pub mod ehr_index {
		/// Validator confirmations that confirm a record (2 to 16).
		#[codec(index = 0)]
		pub static ConfirmationsRequired: u32 = 2;
		/// Validator rejections that reject a record (2 to 16: one validator
		/// alone never rejects).
		#[codec(index = 1)]
		pub static RejectionsRequired: u32 = 2;
		/// Blocks validators have to confirm a record (a minute to 30 days).
		#[codec(index = 2)]
		pub static ConfirmationPeriod: BlockNumber = DAYS;
	}

	/// Proxy re-encryption.
	#[dynamic_pallet_params]
	#[codec(index = 1)]
	pub mod proxy_reencrypt {
		/// Blocks proxies have to serve an access request (10 to half an
		/// hour: with the interval below, one grant holds at most 30 open
		/// requests of the 256 all share).
		#[codec(index = 0)]
		pub static RequestTimeout: BlockNumber = 10 * MINUTES;
		/// Blocks auditors have to review a break-glass access (an hour to
		/// 90 days).
		#[codec(index = 1)]
		pub static ReviewWindow: BlockNumber = 7 * DAYS;
		/// Fewest blocks between two requests under one grant (10 to a day):
		/// bounds the credit a colluding patient, grantee and proxy can farm
		/// and how fast one grant fills the open-request list.
		#[codec(index = 2)]
		pub static MinRequestInterval: BlockNumber = MINUTES;
	}

	/// Federated learning.
	#[dynamic_pallet_params]
	#[codec(index = 2)]
	pub mod fl_task {
		/// Blocks aggregators have to agree on a closed round (10 minutes to
		/// 7 days; lowering it fails rounds aggregating longer than the new
		/// value at their next check).
		#[codec(index = 0)]
		pub static AggregationTimeout: BlockNumber = HOURS;
	}

	/// Credit.
	#[dynamic_pallet_params]
	#[codec(index = 3)]
	pub mod reputation {
		/// Most credit an institution gains in a session (1 to 100).
		#[codec(index = 0)]
		pub static MaxCreditGainPerSession: u32 = 20;
		/// Most penalty points one auditor deducts in a session (50, one
		/// unjustified break-glass verdict, to 200: one auditor cannot take
		/// an institution from the initial 600 under the collator minimum).
		#[codec(index = 1)]
		pub static MaxPenaltyPerAuditorPerSession: u32 = 200;
	}

	/// The credit table: the change each reported behaviour makes (rewards
	/// 0 to 50, penalties -500 to 0; see [`GovernedCreditPolicy`]).
	#[dynamic_pallet_params]
	#[codec(index = 4)]
	pub mod credit {
		/// A record the validators confirmed (its issuer).
		#[codec(index = 0)]
		pub static RecordConfirmed: i32 = 2;
		/// A record the validators rejected (its issuer).
		#[codec(index = 1)]
		pub static RecordRejected: i32 = -10;
		/// An FL update accepted into a round.
		#[codec(index = 2)]
		pub static UpdateAccepted: i32 = 3;
		/// An FL update flagged as an outlier or left out.
		#[codec(index = 3)]
		pub static UpdateOutlier: i32 = -30;
		/// An aggregate that matched the adopted one.
		#[codec(index = 4)]
		pub static AggregationAgreed: i32 = 2;
		/// An aggregate that did not.
		#[codec(index = 5)]
		pub static AggregationMismatched: i32 = -40;
		/// A capsule fragment that verified.
		#[codec(index = 6)]
		pub static ReencryptionServed: i32 = 1;
		/// A request an acknowledged proxy left unserved.
		#[codec(index = 7)]
		pub static ReencryptionFailed: i32 = -25;
		/// A block authored in the collator's session.
		#[codec(index = 8)]
		pub static BlockAuthored: i32 = 5;
		/// Per tenth of its expected share of a session's blocks missed.
		#[codec(index = 9)]
		pub static BlockMissed: i32 = -25;
		/// A break-glass access an auditor found unjustified.
		#[codec(index = 10)]
		pub static BreakGlassUnreviewed: i32 = -50;
	}
}

/// The credit table (`pallets/reputation/README.md`), each line a parameter
/// the council may change: rewards stay within 0..=50 and penalties within
/// -500..=0, so no motion can turn a penalty into a reward. The bond shares
/// slashed for the gravest behaviours are the default policy's.
pub struct GovernedCreditPolicy;
impl pallet_reputation::CreditPolicy for GovernedCreditPolicy {
	fn delta(behaviour: medchain_primitives::Behaviour) -> i32 {
		use dynamic_params::credit as c;
		use medchain_primitives::Behaviour as B;
		let (value, reward) = match behaviour {
			B::RecordConfirmed => (c::RecordConfirmed::get(), true),
			B::RecordRejected => (c::RecordRejected::get(), false),
			B::UpdateAccepted => (c::UpdateAccepted::get(), true),
			B::UpdateOutlier => (c::UpdateOutlier::get(), false),
			B::AggregationAgreed => (c::AggregationAgreed::get(), true),
			B::AggregationMismatched => (c::AggregationMismatched::get(), false),
			B::ReencryptionServed => (c::ReencryptionServed::get(), true),
			B::ReencryptionFailed => (c::ReencryptionFailed::get(), false),
			B::BlockAuthored => (c::BlockAuthored::get(), true),
			B::BlockMissed => (c::BlockMissed::get(), false),
			B::BreakGlassUnreviewed => (c::BreakGlassUnreviewed::get(), false),
		};
		if reward {
			value.clamp(0, 50)
		} else {
			value.clamp(-500, 0)
		}
	}

	fn slash(behaviour: medchain_primitives::Behaviour) -> Perbill {
		<pallet_reputation::DefaultCreditPolicy as pallet_reputation::CreditPolicy>::slash(behaviour)
	}
}

#[cfg(feature = "runtime-benchmarks")]
impl Default for RuntimeParameters {
	fn default() -> Self {
		RuntimeParameters::FlTask(dynamic_params::fl_task::Parameters::AggregationTimeout(
			dynamic_params::fl_task::AggregationTimeout,
			Some(HOURS),
		))
	}
}

impl pallet_parameters::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeParameters = RuntimeParameters;
	type AdminOrigin = AsEnsureOriginWithArg<RootOr<CouncilTwoThirds>>;
	// The crate exports only its reference-hardware weights, as `()`.
	type WeightInfo = ();
}

/// `P`, kept within `MIN..=MAX`.
pub struct Clamped<P, const MIN: u32, const MAX: u32>(core::marker::PhantomData<P>);
impl<P: Get<u32>, const MIN: u32, const MAX: u32> Get<u32> for Clamped<P, MIN, MAX> {
	fn get() -> u32 {
		const { assert!(MIN <= MAX, "Clamped: MIN > MAX") };
		P::get().clamp(MIN, MAX)
	}
}
