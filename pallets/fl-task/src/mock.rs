//! Test runtime for federated learning, with a mocked registry and credit and
//! test aggregator keys.

use crate::{self as pallet_fl_task, *};
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use frame_system::offchain::{CreateSignedTransaction, CreateTransactionBase, SigningTypes};
use medchain_primitives::{Behaviour, CreditReporter, CreditScore, InstitutionRegistry, Role};
use sp_core::offchain::{testing, OffchainDbExt, OffchainWorkerExt, TransactionPoolExt};
use sp_runtime::{
	testing::{TestSignature, UintAuthorityId},
	BuildStorage, Permill,
};
use std::sync::Arc;

type Block = frame_system::mocking::MockBlock<Test>;
/// Extrinsics of the test runtime.
pub type Extrinsic = sp_runtime::testing::TestXt<RuntimeCall, ()>;
/// Account ids in tests are small integers.
pub type AccountId = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		FlTask: pallet_fl_task,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

/// Aggregators (producer institutions).
pub const AGGREGATORS: [AccountId; 3] = [1, 2, 3];
/// Hospitals taking part in learning (active institutions without producer role).
pub const HOSPITALS: [AccountId; 5] = [4, 5, 6, 7, 8];
/// An account that is not an institution.
pub const OUTSIDER: AccountId = 100;

parameter_types! {
	pub const MaxParamAbs: Fixed = PARAM_ABS_CEILING;
	pub static Suspended: Vec<AccountId> = vec![];
	pub static CreditLog: Vec<(AccountId, Behaviour)> = vec![];
	/// Credit scores that differ from the default of 500.
	pub static CreditScores: Vec<(AccountId, u32)> = vec![];
	/// The collators of the current session: the three producers.
	pub static Collators: Vec<AccountId> = vec![1, 2, 3];
	/// Further active producer institutions (beyond 1..=3), for tests of
	/// larger committees.
	pub static ExtraProducers: Vec<AccountId> = vec![];
}

/// Registry mock: 1..=8 are active institutions, 1..=3 producers.
pub struct MockRegistry;
impl InstitutionRegistry<AccountId> for MockRegistry {
	fn is_active(who: &AccountId) -> bool {
		((1..=8).contains(who) || ExtraProducers::get().contains(who)) && !Suspended::get().contains(who)
	}
	fn has_role(who: &AccountId, role: Role) -> bool {
		Self::is_active(who) &&
			role == Role::Producer &&
			(AGGREGATORS.contains(who) || ExtraProducers::get().contains(who))
	}
}

/// Credit mock: records every report; scores are 500 unless set in
/// `CreditScores`.
pub struct MockCredit;
impl CreditReporter<AccountId> for MockCredit {
	fn report(who: &AccountId, behaviour: Behaviour) {
		CreditLog::mutate(|l| l.push((*who, behaviour)));
	}
}
impl CreditScore<AccountId> for MockCredit {
	fn credit(who: &AccountId) -> u32 {
		CreditScores::get().iter().find(|(a, _)| a == who).map_or(500, |(_, c)| *c)
	}
}

/// Test aggregator keys: `UintAuthorityId`s set with `set_all_keys`.
pub struct TestAuthorityId;
impl frame_system::offchain::AppCrypto<UintAuthorityId, TestSignature> for TestAuthorityId {
	type RuntimeAppPublic = UintAuthorityId;
	type GenericPublic = UintAuthorityId;
	type GenericSignature = TestSignature;
}

impl SigningTypes for Test {
	type Public = UintAuthorityId;
	type Signature = TestSignature;
}

impl<LocalCall> CreateTransactionBase<LocalCall> for Test
where
	RuntimeCall: From<LocalCall>,
{
	type RuntimeCall = RuntimeCall;
	type Extrinsic = Extrinsic;
}

impl<LocalCall> CreateSignedTransaction<LocalCall> for Test
where
	RuntimeCall: From<LocalCall>,
{
	fn create_signed_transaction<C: frame_system::offchain::AppCrypto<Self::Public, Self::Signature>>(
		call: RuntimeCall,
		_public: UintAuthorityId,
		account: AccountId,
		_nonce: u32,
	) -> Option<Extrinsic> {
		Some(Extrinsic::new_signed(call, account, (), ()))
	}
}

/// Round length in tests.
pub const ROUND: u32 = 5;
/// Aggregation timeout in tests.
pub const AGG_TIMEOUT: u64 = 4;

impl pallet_fl_task::Config for Test {
	type RuntimeEvent = RuntimeEvent;
	type Registry = MockRegistry;
	type Collators = Collators;
	type ForceOrigin = frame_system::EnsureRoot<u64>;
	type Credit = MockCredit;
	type Aggregator = FixedPointAggregator;
	type AuthorityId = TestAuthorityId;
	type MaxParams = ConstU32<64>;
	type MaxStoredParams = ConstU32<{ 3 * STORE_CHUNK + 10 }>;
	type MaxParticipants = ConstU32<5>;
	type MaxActiveTasks = ConstU32<2>;
	type MaxRounds = ConstU32<50>;
	type MaxAggregators = ConstU32<5>;
	// The runtime's floors: no test runs a round below them.
	type MinParticipantsFloor = ConstU32<2>;
	type MinAggregatorsFloor = ConstU32<2>;
	type MaxParamAbs = MaxParamAbs;
	type MinSamplesFloor = ConstU32<1>;
	type MinRoundBlocks = ConstU32<2>;
	type MaxExtensions = frame_support::traits::ConstU8<1>;
	type AggregationTimeout = frame_support::traits::ConstU64<AGG_TIMEOUT>;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = MockRegistry;
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<AccountId> for MockRegistry {
	fn institution(n: u32) -> AccountId {
		// 1..=3 are producers, 4..=8 further institutions.
		(n as u64 % 8) + 1
	}

	fn set_collators(collators: Vec<AccountId>) {
		Collators::set(collators);
	}
}

/// Externalities for the benchmark test suite.
#[cfg(feature = "runtime-benchmarks")]
pub fn new_bench_ext() -> sp_io::TestExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

/// A logistic-regression spec over 2 features (3 parameters).
pub fn spec() -> TaskSpec<ConstU32<64>> {
	TaskSpec {
		model: ModelKind::LogisticRegression { features: 2 },
		initial_model: ModelParams::Inline(vec![0, 0, 0].try_into().unwrap()),
		hints: TrainingHints { epochs: 5, learning_rate: FIXED_ONE / 10, batch_size: 0 },
		target_accuracy: Permill::from_percent(90),
		max_rounds: 3,
		min_participants: 2,
		round_blocks: ROUND,
		rule: AggregationRule::FedAvg,
		aggregators_required: 2,
		limits: UpdateLimits { max_abs: 1_000 * FIXED_ONE, min_samples: 1, max_samples: 1_000_000, min_held_out: 1 },
		privacy: None,
	}
}

/// An update with parameters `p`.
pub fn update(p: [Fixed; 3], samples: u32, accuracy: u32) -> ModelUpdate<ConstU32<64>> {
	ModelUpdate {
		params: ModelParams::Inline(p.to_vec().try_into().unwrap()),
		samples,
		accuracy: Permill::from_percent(accuracy),
		loss: FIXED_ONE / 2,
		held_out: 10,
	}
}

/// Runs `f` at block 1 in fresh externalities with offchain and pool
/// extensions, then checks the invariants.
pub fn new_test_ext(f: impl FnOnce(&Arc<parking_lot::RwLock<testing::PoolState>>)) {
	new_offchain_test_ext(|pool, _| f(pool))
}

/// As [`new_test_ext`], also handing `f` the offchain state (HTTP
/// expectations, local storage).
pub fn new_offchain_test_ext(
	f: impl FnOnce(&Arc<parking_lot::RwLock<testing::PoolState>>, &Arc<parking_lot::RwLock<testing::OffchainState>>),
) {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	let (offchain, offchain_state) = testing::TestOffchainExt::new();
	let (pool, pool_state) = testing::TestTransactionPoolExt::new();
	ext.register_extension(OffchainDbExt::new(offchain.clone()));
	ext.register_extension(OffchainWorkerExt::new(offchain));
	ext.register_extension(TransactionPoolExt::new(pool));
	ext.execute_with(|| {
		System::set_block_number(1);
		Suspended::set(vec![]);
		CreditLog::set(vec![]);
		CreditScores::set(vec![]);
		Collators::set(vec![1, 2, 3]);
		ExtraProducers::set(vec![]);
		UintAuthorityId::set_all_keys(Vec::<u64>::new());
		f(&pool_state, &offchain_state);
		FlTask::do_try_state().expect("invariants hold");
	});
}
