//! Test runtime for the reputation pallet.

use crate::{self as pallet_reputation, DefaultCreditPolicy};
use frame_support::{
	derive_impl, ord_parameter_types, parameter_types,
	traits::{ChangeMembers, ConstU32, ConstU64, ValidatorRegistration},
};
use pallet_session::SessionManager;
use frame_system::{EnsureRoot, EnsureSignedBy};
use medchain_primitives::{HospitalGrade, InstitutionKind, Roles};
use sp_runtime::{BuildStorage, Perbill};

type Block = frame_system::mocking::MockBlock<Test>;

/// Account ids in tests are small integers.
pub type AccountId = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Reputation: pallet_reputation,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountData = pallet_balances::AccountData<u64>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
}

parameter_types! {
	/// Accounts whose session keys count as registered.
	pub static KeysRegistered: Vec<AccountId> = vec![];
	/// pallet-session's `Validators`: the set active in the current session.
	pub static ActiveSet: Vec<AccountId> = vec![];
	/// pallet-session's queued set: active from the next session.
	pub static QueuedSet: Vec<AccountId> = vec![];
	/// pallet-session's `CurrentIndex`.
	pub static SessionIndex: u32 = 0;
	/// Where slashed bonds go (`None` burns them).
	pub static SlashTo: Option<AccountId> = None;
	/// What the council's collective was last told its members are.
	pub static CouncilMirror: Vec<AccountId> = vec![];
	/// What the regulators' collective was last told its members are.
	pub static RegulatorMirror: Vec<AccountId> = vec![];
}

ord_parameter_types! {
	/// Signing as this account stands for a motion the council carried.
	pub const CouncilMotion: AccountId = 900;
	/// Signing as this account stands for a motion the regulators carried.
	pub const RegulatorMotion: AccountId = 901;
}

/// Stands in for the council's `pallet-collective`: remembers the members.
pub struct MockCouncil;
impl ChangeMembers<AccountId> for MockCouncil {
	fn change_members_sorted(_in: &[AccountId], _out: &[AccountId], new: &[AccountId]) {
		CouncilMirror::set(new.to_vec());
	}
}

/// Stands in for the regulators' `pallet-collective`.
pub struct MockRegulators;
impl ChangeMembers<AccountId> for MockRegulators {
	fn change_members_sorted(_in: &[AccountId], _out: &[AccountId], new: &[AccountId]) {
		RegulatorMirror::set(new.to_vec());
	}
}

/// Blocks one body's approval waits for the other's in tests.
pub const DECISION_PERIOD: u64 = 10;
/// Most members of a body in tests.
pub const MAX_BODY_MEMBERS: u32 = 5;

/// The mock's pallet-session validators.
pub struct MockSessionCollators;
impl frame_support::traits::Get<Vec<AccountId>> for MockSessionCollators {
	fn get() -> Vec<AccountId> {
		ActiveSet::get()
	}
}

/// Rotates the session in the order pallet-session 50's `rotate_session` uses:
/// `end_session(i)`, the queued set becomes active, `start_session(i + 1)`, then
/// `new_session(i + 2)` plans the set after next (`None` keeps the active
/// set). Collators without session keys are not queued, as in pallet-session.
pub fn rotate_session() {
	let i = SessionIndex::get();
	Reputation::end_session(i);
	ActiveSet::set(QueuedSet::get());
	SessionIndex::set(i + 1);
	Reputation::start_session(i + 1);
	let next = Reputation::new_session(i + 2).unwrap_or_else(ActiveSet::get);
	let keys = KeysRegistered::get();
	QueuedSet::set(next.into_iter().filter(|c| keys.contains(c)).collect());
}

/// Notes `blocks` blocks authored round robin by the active set (Aura), of
/// which collators in `silent` author none (their slots stay empty).
pub fn author_blocks(blocks: u32, silent: &[AccountId]) {
	let set = ActiveSet::get();
	for slot in 0..blocks as usize {
		let author = set[slot % set.len()];
		if !silent.contains(&author) {
			<Reputation as pallet_authorship::EventHandler<_, _>>::note_author(author);
		}
	}
}

/// Session-key registration, driven by [`KeysRegistered`].
pub struct MockRegistration;
impl ValidatorRegistration<AccountId> for MockRegistration {
	fn is_registered(id: &AccountId) -> bool {
		KeysRegistered::get().contains(id)
	}
}

/// Bond of an institution in tests.
pub const INSTITUTION_BOND: u64 = 100;
/// Minimum candidate bond in tests.
pub const MIN_CANDIDATE_BOND: u64 = 500;
/// Minimum delegation in tests.
pub const MIN_DELEGATION: u64 = 10;
/// Unbonding delay in tests.
pub const UNBONDING_DELAY: u64 = 5;
/// Most credit gained per session in tests.
pub const MAX_GAIN: u32 = 20;
/// Most penalty points per auditor per session in tests.
pub const MAX_PENALTY: u32 = 100;

impl pallet_reputation::Config for Test {
	type RuntimeEvent = RuntimeEvent;
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type CouncilOrigin = EnsureSignedBy<CouncilMotion, AccountId>;
	type RegulatorOrigin = EnsureSignedBy<RegulatorMotion, AccountId>;
	type ForceOrigin = EnsureRoot<AccountId>;
	type CouncilMembers = MockCouncil;
	type RegulatorMembers = MockRegulators;
	type MaxBodyMembers = ConstU32<MAX_BODY_MEMBERS>;
	type MinBodyMembers = ConstU32<1>;
	type DecisionPeriod = ConstU64<DECISION_PERIOD>;
	type ValidatorRegistration = MockRegistration;
	type CreditPolicy = DefaultCreditPolicy;
	type SessionCollators = MockSessionCollators;
	type SlashBeneficiary = SlashTo;
	type InstitutionBond = ConstU64<INSTITUTION_BOND>;
	type MinCandidateBond = ConstU64<MIN_CANDIDATE_BOND>;
	type MinDelegation = ConstU64<MIN_DELEGATION>;
	type MaxCredit = ConstU32<1000>;
	type InitialCredit = ConstU32<600>;
	type MinCollatorCredit = ConstU32<400>;
	type CreditDrift = CreditDrift;
	type DesiredCollators = ConstU32<2>;
	type UnbondingDelay = ConstU64<UNBONDING_DELAY>;
	type MaxInstitutions = ConstU32<8>;
	type MaxPendingApplications = ConstU32<4>;
	type MaxCreditGainPerSession = ConstU32<MAX_GAIN>;
	type MaxPenaltyPerAuditorPerSession = ConstU32<MAX_PENALTY>;
	type MaxCandidates = ConstU32<4>;
	type MaxInvulnerables = ConstU32<2>;
	type MaxDelegationsPerDelegator = ConstU32<2>;
	type MaxDelegatorsPerCandidate = ConstU32<2>;
	type MaxUnbondingChunks = ConstU32<2>;
	type MaxNameLen = ConstU32<32>;
	type MaxReasonLen = ConstU32<64>;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = MockRegistration;
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<AccountId> for MockRegistration {
	fn register_session_keys(who: &AccountId) {
		KeysRegistered::mutate(|k| k.push(*who));
	}
}

parameter_types! {
	/// A tenth of the gap to the baseline closes each session.
	pub const CreditDrift: Perbill = Perbill::from_percent(10);
}

/// A tier-3A hospital.
pub fn hospital() -> InstitutionKind {
	InstitutionKind::Hospital { level: 3, grade: HospitalGrade::A }
}

/// Roles `producer` + `validator`.
pub fn producer() -> Roles {
	Roles { producer: true, validator: true, auditor: false }
}

/// Role `auditor`.
pub fn auditor() -> Roles {
	Roles { producer: false, validator: false, auditor: true }
}

/// Builds test externalities.
#[derive(Default)]
pub struct ExtBuilder {
	institutions: Vec<(AccountId, Vec<u8>, InstitutionKind, Roles)>,
	invulnerables: Vec<AccountId>,
}

impl ExtBuilder {
	/// Institutions active at genesis.
	pub fn with_institutions(
		mut self,
		list: Vec<(AccountId, Vec<u8>, InstitutionKind, Roles)>,
	) -> Self {
		self.institutions = list;
		self
	}

	/// Invulnerable collators at genesis.
	pub fn with_invulnerables(mut self, list: Vec<AccountId>) -> Self {
		self.invulnerables = list;
		self
	}

	/// Accounts 1..=20 hold 10 000 each.
	pub fn build(self) -> sp_io::TestExternalities {
		let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
		pallet_balances::GenesisConfig::<Test> {
			balances: (1..=20).map(|a| (a, 10_000)).collect(),
			..Default::default()
		}
		.assimilate_storage(&mut storage)
		.unwrap();
		CouncilMirror::set(vec![]);
		RegulatorMirror::set(vec![]);
		pallet_reputation::GenesisConfig::<Test> {
			institutions: self.institutions,
			invulnerables: self.invulnerables.clone(),
		}
		.assimilate_storage(&mut storage)
		.unwrap();
		KeysRegistered::set(self.invulnerables.clone());
		SessionIndex::set(0);
		SlashTo::set(None);
		let mut ext = sp_io::TestExternalities::new(storage);
		ext.execute_with(|| {
			System::set_block_number(1);
			// pallet-session's genesis: sessions 0 and 1 use the genesis set.
			let genesis = Reputation::new_session_genesis(0).unwrap_or_default();
			ActiveSet::set(genesis.clone());
			QueuedSet::set(genesis);
		});
		ext
	}
}

/// Runs `f` in fresh externalities and checks the invariants afterwards.
pub fn new_test_ext(f: impl FnOnce()) {
	ExtBuilder::default().build().execute_with(|| {
		f();
		Reputation::do_try_state().expect("invariants hold");
	});
}
