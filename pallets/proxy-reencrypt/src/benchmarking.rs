//! Benchmarks of proxy re-encryption (frame-benchmarking v2), with real
//! Umbral material: capsule parsing and capsule-fragment verification are
//! part of what is measured. They also run as tests against the mock runtime.

use super::*;
use crate::Pallet as Pre;
use frame_benchmarking::v2::*;
use frame_support::traits::{Get, Hooks};
use frame_system::RawOrigin;
use medchain_primitives::{AccessPurpose, RecordKind};
use medchain_umbral::Fixture;

/// Accounts and Umbral material of a grant with `n` proxies.
struct Setup<T: Config> {
	fixture: Fixture,
	patient: T::AccountId,
	grantee: T::AccountId,
	proxies: Vec<T::AccountId>,
	record: RecordId,
	capsule: KeyCapsule,
}

/// A patient with a record (capsule attached), a grantee (an institution, so
/// it may also hold emergency grants) and `n` registered proxies.
fn setup<T: Config>(n: u32) -> Setup<T> {
	let mut fixture = Fixture::new(n as u8, n as usize);
	let patient: T::AccountId = account("patient", 0, 0);
	let grantee = T::BenchmarkHelper::institution(100, Role::Validator);
	let issuer = T::BenchmarkHelper::institution(101, Role::Producer);
	Pre::<T>::register_key(RawOrigin::Signed(patient.clone()).into(), Fixture::public(&fixture.patient), fixture.verifying())
		.expect("fresh patient");
	// Grants of one proxy (n = 1) are allowed.
	Pre::<T>::allow_single_proxy_grants(RawOrigin::Signed(patient.clone()).into(), true).expect("any account");
	Pre::<T>::register_key(
		RawOrigin::Signed(grantee.clone()).into(),
		Fixture::public(&fixture.grantee),
		Fixture::public(&fixture.grantee),
	)
	.expect("fresh grantee");
	let proxies: Vec<T::AccountId> = (0..n)
		.map(|i| {
			// The first signs what it serves (a fraud proof carries it).
			let proxy = match i {
				0 => T::BenchmarkHelper::signing_institution(),
				_ => T::BenchmarkHelper::institution(i, Role::Producer),
			};
			Pre::<T>::register_proxy(RawOrigin::Signed(proxy.clone()).into(), Fixture::public(&fixture.proxies[i as usize]))
				.expect("proxies are institutions");
			proxy
		})
		.collect();
	let (capsule, ciphertext) = fixture.capsule();
	let capsule = KeyCapsule {
		capsule: BoundedVec::truncate_from(capsule),
		ciphertext: BoundedVec::truncate_from(ciphertext),
	};
	let record = T::BenchmarkHelper::record(&issuer, &patient, capsule.hash());
	Pre::<T>::attach_capsule(RawOrigin::Signed(issuer).into(), record, capsule.clone(), ScopedCapsules::default()).expect("issuer attaches");
	Setup { fixture, patient, grantee, proxies, record, capsule }
}

type FragmentsOf<T> =
	BoundedVec<(<T as frame_system::Config>::AccountId, SealedFragment<<T as Config>::MaxSealedFragmentLen>, KfragId), <T as Config>::MaxProxies>;

/// Sealed fragments, threshold `m`, for the setup's proxies.
fn sealed<T: Config>(s: &mut Setup<T>, m: u32) -> FragmentsOf<T> {
	let sealed = s.fixture.sealed_kfrags(m as usize);
	BoundedVec::truncate_from(
		s.proxies
			.iter()
			.cloned()
			.zip(sealed)
			.map(|(p, k)| {
				(
					p,
					SealedFragment {
						capsule: BoundedVec::truncate_from(k.capsule),
						ciphertext: BoundedVec::truncate_from(k.ciphertext),
					},
					k.kfrag_id,
				)
			})
			.collect(),
	)
}

/// A grant of all records, threshold `m`, acknowledged by every proxy.
fn grant<T: Config>(s: &mut Setup<T>, m: u32, emergency: bool) -> GrantId {
	let id = unacknowledged_grant(s, m, emergency);
	for proxy in s.proxies.iter() {
		Pre::<T>::acknowledge_grant(RawOrigin::Signed(proxy.clone()).into(), id).expect("a proxy of the grant");
	}
	id
}

/// A grant of all records, threshold `m`, that no proxy answered yet.
fn unacknowledged_grant<T: Config>(s: &mut Setup<T>, m: u32, emergency: bool) -> GrantId {
	let id = NextGrantId::<T>::get();
	let fragments = sealed(s, m);
	Pre::<T>::grant_access(
		RawOrigin::Signed(s.patient.clone()).into(),
		s.grantee.clone(),
		GrantScope::All,
		AccessPurpose::Treatment,
		None,
		m as u8,
		fragments,
		emergency,
	)
	.expect("valid grant");
	id
}

/// `n` distinct valid public keys (derived from the fixture's patient).
fn scope_keys(f: &Fixture, n: u32) -> Vec<UmbralPublicKey> {
	(0..n)
		.map(|i| {
			medchain_umbral::scope_secret_key(&f.patient, &medchain_umbral::record_label(i))
				.map(|sk| Fixture::public(&sk))
				.unwrap_or([2; 33])
		})
		.collect()
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn register_key() {
		let f = Fixture::new(1, 0);
		let who: T::AccountId = account("patient", 1, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), Fixture::public(&f.patient), f.verifying());
		assert!(Keys::<T>::contains_key(who));
	}

	#[benchmark]
	fn register_proxy() {
		let f = Fixture::new(1, 1);
		let proxy = T::BenchmarkHelper::institution(0, Role::Producer);
		#[extrinsic_call]
		_(RawOrigin::Signed(proxy.clone()), Fixture::public(&f.proxies[0]));
		assert!(Proxies::<T>::contains_key(proxy));
	}

	/// `n` kinds.
	#[benchmark]
	fn register_kind_keys(n: Linear<1, { RecordKind::COUNT }>) {
		let f = Fixture::new(1, 0);
		let who: T::AccountId = account("patient", 1, 0);
		Keys::<T>::insert(&who, UmbralKeys { public_key: Fixture::public(&f.patient), verifying_key: f.verifying() });
		let keys = scope_keys(&f, n);
		let kinds: Vec<_> = RecordKind::ALL.iter().copied().zip(keys).collect();
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), BoundedVec::truncate_from(kinds));
		assert_eq!(KindKeys::<T>::iter_prefix(&who).count(), n as usize);
	}

	/// `n` keys.
	#[benchmark]
	fn add_record_keys(n: Linear<1, { T::MaxRecordKeys::get() }>) {
		let f = Fixture::new(1, 0);
		let who: T::AccountId = account("patient", 1, 0);
		Keys::<T>::insert(&who, UmbralKeys { public_key: Fixture::public(&f.patient), verifying_key: f.verifying() });
		let keys = scope_keys(&f, n);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), 0, BoundedVec::truncate_from(keys));
		assert_eq!(RecordKeyPool::<T>::get(&who).len(), n as usize);
	}

	/// The worst case: the patient has a key for every kind and a full pool
	/// of one-time keys; the issuer takes the last one.
	#[benchmark]
	fn attach_capsule() {
		let mut f = Fixture::new(1, 0);
		let patient: T::AccountId = account("patient", 1, 0);
		let issuer = T::BenchmarkHelper::institution(101, Role::Producer);
		let keys = scope_keys(&f, T::MaxRecordKeys::get());
		for kind in RecordKind::ALL {
			KindKeys::<T>::insert(&patient, kind, keys[0]);
		}
		let pool: Vec<_> = (0..).zip(keys.iter().copied()).collect();
		let last = pool.len() as u32 - 1;
		RecordKeyPool::<T>::insert(&patient, BoundedVec::truncate_from(pool));
		let mut capsule = || {
			let (capsule, ciphertext) = f.capsule();
			KeyCapsule { capsule: BoundedVec::truncate_from(capsule), ciphertext: BoundedVec::truncate_from(ciphertext) }
		};
		let root = capsule();
		let scoped = ScopedCapsules { kind: Some(capsule()), record: Some((last, capsule())) };
		let record = T::BenchmarkHelper::record(&issuer, &patient, root.hash());
		#[extrinsic_call]
		_(RawOrigin::Signed(issuer), record, root, scoped);
		assert!(Capsules::<T>::contains_key(record));
		assert!(OneTimeCapsules::<T>::contains_key(record));
		assert!(KindCapsules::<T>::contains_key(record));
	}

	/// `n` proxies: each sealed fragment's capsule is parsed and checked.
	#[benchmark]
	fn grant_access(n: Linear<1, { T::MaxProxies::get() }>) {
		let mut s = setup::<T>(n);
		let fragments = sealed(&mut s, n);
		#[extrinsic_call]
		_(
			RawOrigin::Signed(s.patient.clone()),
			s.grantee.clone(),
			GrantScope::All,
			AccessPurpose::Treatment,
			None,
			n as u8,
			fragments,
			false,
		);
		assert_eq!(SealedFragments::<T>::iter_prefix(0).count() as u32, n);
	}

	#[benchmark]
	fn allow_single_proxy_grants() {
		let patient: T::AccountId = account("patient", 2, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(patient.clone()), true);
		assert!(SingleProxyGrants::<T>::contains_key(&patient));
	}

	#[benchmark]
	fn require_audit_first() {
		let mut s = setup::<T>(T::MaxProxies::get());
		let g = grant(&mut s, T::MaxProxies::get(), false);
		#[extrinsic_call]
		_(RawOrigin::Signed(s.patient.clone()), g);
		assert!(AuditFirst::<T>::contains_key(g));
	}

	#[benchmark]
	fn revoke_grant(n: Linear<1, { T::MaxProxies::get() }>) {
		let mut s = setup::<T>(n);
		let g = grant(&mut s, n, false);
		#[extrinsic_call]
		_(RawOrigin::Signed(s.patient.clone()), g);
		assert!(Grants::<T>::get(g).is_some_and(|g| g.revoked_at.is_some()));
	}

	#[benchmark]
	fn request_access() {
		let mut s = setup::<T>(1);
		let g = grant(&mut s, 1, false);
		#[extrinsic_call]
		_(RawOrigin::Signed(s.grantee.clone()), g, s.record);
		assert_eq!(OpenRequests::<T>::get().len(), 1);
	}

	#[benchmark]
	fn break_glass() {
		let mut s = setup::<T>(1);
		let g = grant(&mut s, 1, true);
		#[extrinsic_call]
		_(RawOrigin::Signed(s.grantee.clone()), g, s.record, EmergencyReason::LifeThreatening, H256::repeat_byte(1));
		assert_eq!(OpenRequests::<T>::get().len(), 1);
	}

	/// The fragment that completes the request: parsed and verified
	/// (Umbral's proof), stored, the request closed.
	#[benchmark]
	fn submit_fragment() {
		let mut s = setup::<T>(1);
		let g = grant(&mut s, 1, false);
		Pre::<T>::request_access(RawOrigin::Signed(s.grantee.clone()).into(), g, s.record).expect("live grant");
		let k = SealedFragments::<T>::get(g, &s.proxies[0]).expect("sealed above");
		let sealed = medchain_umbral::SealedKeyFrag {
			capsule: k.capsule.into_inner(),
			ciphertext: k.ciphertext.into_inner(),
			kfrag_id: KeyFragmentIds::<T>::get(g, &s.proxies[0]).expect("bound above"),
		};
		let cfrag = s.fixture.cfrag(0, &s.capsule.capsule, &sealed).expect("fixture is valid");
		let fragment = BoundedVec::truncate_from(cfrag);
		#[extrinsic_call]
		_(RawOrigin::Signed(s.proxies[0].clone()), 0, fragment);
		assert_eq!(Requests::<T>::get(0).map(|r| r.status), Some(RequestStatus::Ready));
	}

	/// Worst case: the fragment carries the id bound to its proxy, so it is
	/// verified in full (Umbral's proof), and fails: it was made from
	/// another capsule.
	#[benchmark]
	fn report_bad_fragment() {
		let mut s = setup::<T>(1);
		let g = grant(&mut s, 1, false);
		let k = SealedFragments::<T>::get(g, &s.proxies[0]).expect("sealed above");
		let sealed = medchain_umbral::SealedKeyFrag {
			capsule: k.capsule.into_inner(),
			ciphertext: k.ciphertext.into_inner(),
			kfrag_id: KeyFragmentIds::<T>::get(g, &s.proxies[0]).expect("bound above"),
		};
		let (other, _) = s.fixture.capsule();
		let cfrag = s.fixture.cfrag(0, &other, &sealed).expect("fixture is valid");
		let genesis = frame_system::Pallet::<T>::block_hash(frame_system::pallet_prelude::BlockNumberFor::<T>::default());
		let statement = fragment_statement(genesis, g, s.record, &s.grantee, &cfrag);
		let signature = T::BenchmarkHelper::sign(&s.proxies[0], &statement);
		let fragment = BoundedVec::truncate_from(cfrag);
		#[extrinsic_call]
		_(RawOrigin::Signed(s.grantee.clone()), g, s.record, s.proxies[0].clone(), fragment, signature);
		assert_eq!(ReportedFragments::<T>::iter().count(), 1);
	}

	#[benchmark]
	fn review_emergency() {
		let mut s = setup::<T>(1);
		let g = grant(&mut s, 1, true);
		Pre::<T>::break_glass(
			RawOrigin::Signed(s.grantee.clone()).into(),
			g,
			s.record,
			EmergencyReason::LifeThreatening,
			H256::repeat_byte(1),
		)
		.expect("emergency grant");
		let auditor = T::BenchmarkHelper::institution(102, Role::Auditor);
		#[extrinsic_call]
		_(RawOrigin::Signed(auditor), 0, false);
		assert!(Requests::<T>::get(0).and_then(|r| r.emergency).is_some_and(|e| e.review != Review::Pending));
	}

	/// `e` requests expire (each proxy of their grants penalised) and `l`
	/// break-glass reviews lapse in the same block.
	#[benchmark]
	fn on_initialize(e: Linear<0, { T::MaxOpenRequests::get() / 2 }>, l: Linear<0, { T::MaxOpenRequests::get() / 2 }>) {
		let mut s = setup::<T>(T::MaxProxies::get());
		// A grant holds at most `MaxOpenRequestsPerGrant` requests in flight:
		// each that many requests go under a new grant.
		let per_grant = T::MaxOpenRequestsPerGrant::get().max(1);
		let mut normal = grant(&mut s, 1, false);
		let timeout = T::RequestTimeout::get();
		let window = T::ReviewWindow::get();
		let due = timeout.saturating_add(window).saturating_add(1u32.into());
		frame_system::Pallet::<T>::set_block_number(due.saturating_sub(timeout));
		for i in 0..e {
			if i > 0 && i % per_grant == 0 {
				normal = grant(&mut s, 1, false);
			}
			// Set-up only: lift the rate limit so all `e` share one deadline,
			// and the per-requester cap so one grantee opens them all.
			Grants::<T>::mutate(normal, |g| {
				if let Some(g) = g {
					g.last_request_at = None;
				}
			});
			OpenRequestsOf::<T>::remove(&s.grantee);
			Pre::<T>::request_access(RawOrigin::Signed(s.grantee.clone()).into(), normal, s.record)
				.expect("live grant");
		}
		// Break-glass after the ordinary requests: it may use the quarter of
		// the queue kept for it.
		frame_system::Pallet::<T>::set_block_number(due.saturating_sub(window));
		let mut emergency = grant(&mut s, 1, true);
		for i in 0..l {
			if i > 0 && i % per_grant == 0 {
				emergency = grant(&mut s, 1, true);
			}
			Pre::<T>::break_glass(
				RawOrigin::Signed(s.grantee.clone()).into(),
				emergency,
				s.record,
				EmergencyReason::Other,
				H256::zero(),
			)
			.expect("emergency grant");
		}
		frame_system::Pallet::<T>::set_block_number(due);
		#[block]
		{
			Pre::<T>::on_initialize(due);
		}
		assert_eq!(RequestDeadlines::<T>::get(due).len(), 0);
		assert_eq!(ReviewDeadlines::<T>::get(due).len(), 0);
	}

	/// The last of `n` proxies acknowledges (the others already did): the
	/// longest membership checks.
	#[benchmark]
	fn acknowledge_grant(n: Linear<1, { T::MaxProxies::get() }>) {
		let mut s = setup::<T>(n);
		let g = unacknowledged_grant(&mut s, n, false);
		let (last, others) = s.proxies.split_last().expect("n >= 1");
		for proxy in others {
			Pre::<T>::acknowledge_grant(RawOrigin::Signed(proxy.clone()).into(), g).expect("a proxy of the grant");
		}
		#[extrinsic_call]
		_(RawOrigin::Signed(last.clone()), g);
		assert!(Grants::<T>::get(g).is_some_and(|g| g.acknowledged.len() as u32 == n));
	}

	/// The last of `n` proxies disputes after the others acknowledged: every
	/// proxy's pending entry is cleared.
	#[benchmark]
	fn dispute_grant(n: Linear<1, { T::MaxProxies::get() }>) {
		let mut s = setup::<T>(n);
		let g = unacknowledged_grant(&mut s, n, false);
		let (last, others) = s.proxies.split_last().expect("n >= 1");
		for proxy in others {
			Pre::<T>::acknowledge_grant(RawOrigin::Signed(proxy.clone()).into(), g).expect("a proxy of the grant");
		}
		#[extrinsic_call]
		_(RawOrigin::Signed(last.clone()), g);
		assert!(Grants::<T>::get(g).is_some_and(|g| g.disputed_by.is_some()));
	}

	impl_benchmark_test_suite!(Pre, crate::mock::new_bench_ext(), crate::mock::Test);
}
