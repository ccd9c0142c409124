//! Test runtime for proxy re-encryption: mocked registry, credit and record
//! index; real Umbral keys, fragments and capsules.

use crate::{self as pallet_proxy_reencrypt, *};
use frame_support::{derive_impl, ord_parameter_types, parameter_types, traits::ConstU32};
use frame_system::offchain::{CreateSignedTransaction, CreateTransactionBase, SigningTypes};
use medchain_primitives::{AuditorVerdicts, Behaviour, CreditReporter, InstitutionRegistry, RecordKind, RecordRef, Role};
use medchain_umbral::{PublicKey, SecretKey, Signer};
use sp_core::offchain::{testing, OffchainDbExt, OffchainWorkerExt, TransactionPoolExt};
use sp_runtime::{
	testing::{TestSignature, UintAuthorityId},
	BuildStorage,
};
use std::{collections::BTreeMap, sync::Arc};

type Block = frame_system::mocking::MockBlock<Test>;
/// Extrinsics of the test runtime.
pub type Extrinsic = sp_runtime::testing::TestXt<RuntimeCall, ()>;
/// Account ids in tests are small integers.
pub type AccountId = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Pre: pallet_proxy_reencrypt,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

/// The patient.
pub const PATIENT: AccountId = 10;
/// Another patient.
pub const OTHER_PATIENT: AccountId = 11;
/// A grantee (a doctor; not an institution).
pub const DOCTOR: AccountId = 20;
/// Proxy institutions.
pub const PROXIES: [AccountId; 3] = [1, 2, 3];
/// The hospital that issues records (also a proxy-capable institution).
pub const HOSPITAL: AccountId = 4;
/// An emergency-department institution.
pub const EMERGENCY: AccountId = 5;
/// An auditor institution.
pub const AUDITOR: AccountId = 6;
/// An account that is not an institution and has no keys.
pub const OUTSIDER: AccountId = 100;

ord_parameter_types! {
	/// Signing as this account stands for a motion the regulators carried.
	pub const RegulatorMotion: AccountId = 901;
}

parameter_types! {
	pub static CreditLog: Vec<(AccountId, Behaviour)> = vec![];
	pub static RecordsMock: BTreeMap<u64, RecordRef<AccountId>> = BTreeMap::new();
	/// Erased records: the block of the erasure and the record before it.
	pub static ErasedMock: BTreeMap<u64, (u64, RecordRef<AccountId>)> = BTreeMap::new();
	pub static Suspended: Vec<AccountId> = vec![];
	/// Unjustified verdicts each auditor may still give.
	pub static VerdictAllowance: BTreeMap<AccountId, u32> = BTreeMap::new();
}

/// Registry mock: 1..=6 are institutions, active unless in [`Suspended`]; 6
/// is an auditor.
pub struct MockRegistry;
impl InstitutionRegistry<AccountId> for MockRegistry {
	fn is_active(who: &AccountId) -> bool {
		(1..=6).contains(who) && !Suspended::get().contains(who)
	}
	fn has_role(who: &AccountId, role: Role) -> bool {
		Self::is_active(who) && (role != Role::Auditor || *who == AUDITOR)
	}
}

/// Credit mock: records every report.
pub struct MockCredit;
impl CreditReporter<AccountId> for MockCredit {
	fn report(who: &AccountId, behaviour: Behaviour) {
		CreditLog::mutate(|l| l.push((*who, behaviour)));
	}
}

/// Each auditor may give `VerdictAllowance` unjustified verdicts (unlimited if
/// not set).
impl AuditorVerdicts<AccountId> for MockCredit {
	fn report_verdict(auditor: &AccountId, who: &AccountId, behaviour: Behaviour) -> bool {
		let mut allowance = VerdictAllowance::get();
		if let Some(left) = allowance.get_mut(auditor) {
			if *left == 0 {
				return false;
			}
			*left -= 1;
			VerdictAllowance::set(allowance);
		}
		<MockCredit as CreditReporter<AccountId>>::report(who, behaviour);
		true
	}
}

/// Record index mock.
pub struct MockRecords;
impl RecordIndex<AccountId> for MockRecords {
	fn record(id: u64) -> Option<RecordRef<AccountId>> {
		RecordsMock::get().get(&id).cloned()
	}
	fn record_as_of(id: u64, at: u64) -> Option<RecordRef<AccountId>> {
		match ErasedMock::get().get(&id) {
			Some((erased_at, before)) if at < *erased_at => Some(before.clone()),
			_ => <Self as RecordIndex<AccountId>>::record(id),
		}
	}
	fn records_of(patient: &AccountId) -> Vec<u64> {
		RecordsMock::get().iter().filter(|(_, r)| r.patient == *patient).map(|(id, _)| *id).collect()
	}
}

/// Test proxy keys: `UintAuthorityId`s.
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

/// Request timeout in tests.
pub const TIMEOUT: u64 = 5;
/// Review window in tests.
pub const WINDOW: u64 = 8;
/// Fewest blocks between two requests under one grant in tests.
pub const INTERVAL: u64 = 2;

impl pallet_proxy_reencrypt::Config for Test {
	type RuntimeEvent = RuntimeEvent;
	type Registry = MockRegistry;
	type RegulatorOrigin = frame_system::EnsureSignedBy<RegulatorMotion, AccountId>;
	type Credit = MockCredit;
	type Records = MockRecords;
	type AuthorityId = TestAuthorityId;
	type MaxProxies = ConstU32<3>;
	type MaxGrantsPerAccount = ConstU32<3>;
	type MaxOpenRequests = ConstU32<4>;
	type MaxOpenRequestsPerRequester = ConstU32<2>;
	type MaxOpenRequestsPerGrant = ConstU32<3>;
	type MaxRecordKeys = ConstU32<3>;
	type MaxSealedFragmentLen = ConstU32<512>;
	type MaxCapsuleFragmentLen = ConstU32<512>;
	type RequestTimeout = frame_support::traits::ConstU64<TIMEOUT>;
	type ReviewWindow = frame_support::traits::ConstU64<WINDOW>;
	type MinRequestInterval = frame_support::traits::ConstU64<INTERVAL>;
	type WeightInfo = ();
	type ProxySignature = sp_runtime::testing::TestSignature;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = MockRecords;
}

#[cfg(feature = "runtime-benchmarks")]
impl BenchmarkHelper<AccountId, sp_runtime::testing::TestSignature> for MockRecords {
	fn signing_institution() -> AccountId {
		PROXIES[0]
	}
	fn sign(who: &AccountId, message: &[u8]) -> sp_runtime::testing::TestSignature {
		sp_runtime::testing::TestSignature(*who, message.to_vec())
	}
	fn institution(n: u32, role: Role) -> AccountId {
		// Distinct for the benchmarks' distinct `n`: proxies 0..3, the grantee
		// (100) and the issuer (101).
		match (role, n) {
			(Role::Auditor, _) => AUDITOR,
			(_, 100) => EMERGENCY,
			(_, 101) => HOSPITAL,
			_ => PROXIES[n as usize % PROXIES.len()],
		}
	}
	fn record(issuer: &AccountId, patient: &AccountId, capsule_hash: H256) -> RecordId {
		let id = RecordsMock::get().len() as u64 + 1_000;
		add_record(id, *patient, *issuer, RecordKind::LabResult, capsule_hash.0);
		id
	}
}

/// Adds a confirmed record to the mocked index.
pub fn add_record(id: u64, patient: AccountId, issuer: AccountId, kind: RecordKind, capsule_hash: [u8; 32]) {
	RecordsMock::mutate(|m| {
		m.insert(id, RecordRef { patient, issuer, kind: Some(kind), capsule_hash, available: true, confirmed: true });
	});
}

/// Erases a mocked record as the index does: unavailable, unconfirmed, no
/// patient (the all-zero account), no kind; what it was is kept, as of the
/// current block.
pub fn erase_record(id: u64) {
	RecordsMock::mutate(|m| {
		if let Some(r) = m.get_mut(&id) {
			ErasedMock::mutate(|e| e.insert(id, (System::block_number(), r.clone())));
			r.available = false;
			r.confirmed = false;
			r.patient = 0;
			r.kind = None;
		}
	});
}

/// Marks a mocked record pending review (published, not yet confirmed).
pub fn set_pending(id: u64) {
	RecordsMock::mutate(|m| {
		if let Some(r) = m.get_mut(&id) {
			r.confirmed = false;
		}
	});
}

/// An account's Umbral key pair and signer.
pub struct Party {
	/// Seed the secret key is derived from (as proxies keep it).
	pub seed: [u8; 32],
	/// Secret key.
	pub sk: SecretKey,
	/// Public key.
	pub pk: PublicKey,
	/// Signer of key fragments.
	pub signer: Signer,
}

impl Party {
	/// A fresh party.
	pub fn new() -> Self {
		let mut seed = [0u8; 32];
		rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
		let sk = medchain_umbral::proxy_secret_key(&seed).expect("32-byte seed");
		Party { seed, pk: sk.public_key(), sk, signer: Signer::new(SecretKey::random()) }
	}
	/// Its public key bytes.
	pub fn public(&self) -> UmbralPublicKey {
		medchain_umbral::public_key_bytes(&self.pk)
	}
	/// Its verifying key bytes.
	pub fn verifying(&self) -> UmbralPublicKey {
		medchain_umbral::public_key_bytes(&self.signer.verifying_key())
	}
}

/// The offchain storage and transaction pool of a test.
pub struct OffchainHandles {
	/// The node's offchain (persistent) storage.
	pub offchain: Arc<parking_lot::RwLock<testing::OffchainState>>,
	/// Transactions the offchain worker submitted.
	pub pool: Arc<parking_lot::RwLock<testing::PoolState>>,
}

/// Runs `f` at block 1 in fresh externalities with offchain and pool
/// extensions, then checks the invariants.
pub fn new_test_ext(f: impl FnOnce(&OffchainHandles)) {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	let (offchain, offchain_state) = testing::TestOffchainExt::new();
	let (pool, pool_state) = testing::TestTransactionPoolExt::new();
	ext.register_extension(OffchainDbExt::new(offchain.clone()));
	ext.register_extension(OffchainWorkerExt::new(offchain));
	ext.register_extension(TransactionPoolExt::new(pool));
	ext.execute_with(|| {
		System::set_block_number(1);
		CreditLog::take();
		VerdictAllowance::take();
		RecordsMock::take();
		ErasedMock::take();
		Suspended::take();
		UintAuthorityId::set_all_keys(Vec::<u64>::new());
		f(&OffchainHandles { offchain: offchain_state, pool: pool_state });
		Pre::do_try_state().expect("invariants hold");
	});
}

/// Externalities for the benchmark test suite.
#[cfg(feature = "runtime-benchmarks")]
pub fn new_bench_ext() -> sp_io::TestExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::set_block_number(1);
		RecordsMock::take();
	});
	ext
}
