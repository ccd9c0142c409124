//! Test runtime for the record index, with a mocked registry and credit.

use crate::{self as pallet_ehr_index, ContentDigest, DigestAlgorithm, StorePointer};
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use medchain_primitives::{AccessPurpose, Behaviour, CreditReporter, GrantedReads, InstitutionRegistry, Role};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

/// Account ids in tests are small integers.
pub type AccountId = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		EhrIndex: pallet_ehr_index,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

/// Hospitals 1 and 2 produce; 2, 3, 4, 5 validate; 6 is an insurer (no role).
pub const HOSPITAL: AccountId = 1;
/// A second producer.
pub const OTHER_HOSPITAL: AccountId = 2;
/// Validators.
pub const VALIDATORS: [AccountId; 3] = [3, 4, 5];
/// An active institution without producer or validator role.
pub const INSURER: AccountId = 6;
/// A patient (a plain account).
pub const PATIENT: AccountId = 100;
/// Blocks within which a read must be logged (`MaxLogDelay`).
pub const LOG_DELAY: u64 = 10;

parameter_types! {
	pub static Suspended: Vec<AccountId> = vec![];
	pub static CreditLog: Vec<(AccountId, Behaviour)> = vec![];
	pub static NowMillis: u64 = 1_700_000_000_000;
	/// Usable grants: (grant, grantee, record, purpose).
	pub static LiveGrants: Vec<(u64, AccountId, u64, AccessPurpose)> = vec![];
	/// Grants of `LiveGrants` that ended (revoked or expired), with the
	/// block they ended in: usable only at blocks before it.
	pub static EndedGrants: Vec<(u64, u64)> = vec![];
	/// Proxies that acknowledged a grant: (grant, proxy).
	pub static GrantProxies: Vec<(u64, AccountId)> = vec![];
	/// Grants whose patient requires audit first, from a block on.
	pub static AuditFirstGrants: Vec<(u64, u64)> = vec![];
}

/// Grants mock: the grants in `LiveGrants`, from genesis until their block
/// in `EndedGrants`.
pub struct MockGrants;
impl GrantedReads<AccountId, u64> for MockGrants {
	fn purpose_of_read(who: &AccountId, record: u64, grant: u64, at: u64) -> Option<AccessPurpose> {
		let ended = EndedGrants::get().into_iter().any(|(g, end)| g == grant && at >= end);
		LiveGrants::get()
			.into_iter()
			.find(|(g, w, r, _)| *g == grant && w == who && *r == record && !ended && at <= System::block_number())
			.map(|(.., p)| p)
	}
	fn purpose_of_read_weight() -> frame_support::weights::Weight {
		frame_support::weights::Weight::zero()
	}
	fn serves_grant(proxy: &AccountId, grant: u64) -> bool {
		GrantProxies::get().contains(&(grant, *proxy))
	}
	fn audit_first_at(grant: u64, at: u64) -> bool {
		AuditFirstGrants::get().into_iter().any(|(g, since)| g == grant && since <= at)
	}
}

/// Registry mock: roles by account number.
pub struct MockRegistry;
impl InstitutionRegistry<AccountId> for MockRegistry {
	fn is_active(who: &AccountId) -> bool {
		(1..=6).contains(who) && !Suspended::get().contains(who)
	}
	fn has_role(who: &AccountId, role: Role) -> bool {
		Self::is_active(who) &&
			match role {
				Role::Producer => *who == HOSPITAL || *who == OTHER_HOSPITAL,
				Role::Validator => VALIDATORS.contains(who) || *who == OTHER_HOSPITAL,
				Role::Auditor => false,
			}
	}
}

/// Credit mock: records every report.
pub struct MockCredit;
impl CreditReporter<AccountId> for MockCredit {
	fn report(who: &AccountId, behaviour: Behaviour) {
		CreditLog::mutate(|l| l.push((*who, behaviour)));
	}
}

/// Clock mock.
pub struct MockTime;
impl frame_support::traits::UnixTime for MockTime {
	fn now() -> core::time::Duration {
		core::time::Duration::from_millis(NowMillis::get())
	}
}

/// Voting period in tests.
pub const PERIOD: u64 = 10;
/// Blocks of a fee-less call window.
pub const FREE_CALL_WINDOW: u64 = 20;

/// The patient calls of this pallet: withdrawing consent and erasing.
pub struct IndexPatientCalls;
impl frame_support::traits::Contains<RuntimeCall> for IndexPatientCalls {
	fn contains(call: &RuntimeCall) -> bool {
		matches!(
			call,
			RuntimeCall::EhrIndex(crate::Call::withdraw_index_consent { .. } | crate::Call::erase_record { .. })
		)
	}
}

impl pallet_ehr_index::Config for Test {
	type RuntimeEvent = RuntimeEvent;
	type Registry = MockRegistry;
	type Credit = MockCredit;
	type Grants = MockGrants;
	type UnixTime = MockTime;
	type ConfirmationsRequired = ConstU32<2>;
	type RejectionsRequired = ConstU32<2>;
	type ConfirmationPeriod = frame_support::traits::ConstU64<PERIOD>;
	type MaxExpiringPerBlock = ConstU32<3>;
	type MaxLogDelay = frame_support::traits::ConstU64<LOG_DELAY>;
	type MaxReadsPerLog = ConstU32<4>;
	type MaxReadsPerCheckedBlock = ConstU32<3>;
	type MaxPointerLen = ConstU32<32>;
	type PatientCalls = IndexPatientCalls;
	type FreeCallsPerWindow = ConstU32<3>;
	type FreeCallWindow = frame_support::traits::ConstU64<FREE_CALL_WINDOW>;
	type ConsentSignature = sp_runtime::testing::TestSignature;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = MockRegistry;
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<AccountId, sp_runtime::testing::TestSignature> for MockRegistry {
	fn producer() -> AccountId {
		HOSPITAL
	}
	fn validator(n: u32) -> AccountId {
		VALIDATORS[(n as usize - 1) % VALIDATORS.len()]
	}
	fn sign_consent(message: &[u8]) -> (AccountId, sp_runtime::testing::TestSignature) {
		(PATIENT, sp_runtime::testing::TestSignature(PATIENT, message.to_vec()))
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

/// A SM3 digest filled with `b`.
pub fn digest(b: u8) -> ContentDigest {
	ContentDigest { algorithm: DigestAlgorithm::Sm3, digest: [b; 32] }
}

/// A pointer into hospital 1's store.
pub fn pointer(b: u8) -> StorePointer<ConstU32<32>> {
	StorePointer {
		store_id: b"hospital-1".to_vec().try_into().unwrap(),
		collection: b"records".to_vec().try_into().unwrap(),
		object_id: [b; 12],
	}
}

/// `patient`'s signature of `message` (test signatures verify when signer
/// and message match).
pub fn signed_by(patient: AccountId, message: &[u8]) -> sp_runtime::testing::TestSignature {
	sp_runtime::testing::TestSignature(patient, message.to_vec())
}

/// Runs `f` at block 1 in fresh externalities, then checks the invariants.
/// The test patient has consented to both hospitals.
pub fn new_test_ext(f: impl FnOnce()) {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::set_block_number(1);
		Suspended::set(vec![]);
		CreditLog::set(vec![]);
		LiveGrants::set(vec![]);
		GrantProxies::set(vec![]);
		AuditFirstGrants::set(vec![]);
		EndedGrants::set(vec![]);
		for issuer in [HOSPITAL, OTHER_HOSPITAL] {
			crate::IndexConsents::<Test>::insert(PATIENT, issuer, crate::IndexConsent { given: true, generation: 0, sponsored: true });
		}
		// As two registrations leave it: two sponsors, the account alive.
		crate::FreeCalls::<Test>::insert(PATIENT, crate::FreeCallAllowance { sponsors: 2, ..Default::default() });
		System::inc_providers(&PATIENT);
		f();
		EhrIndex::do_try_state().expect("invariants hold");
	});
}
