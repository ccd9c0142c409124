//! Tests of the proxy re-encryption pallet, with real Umbral material.

use crate::{mock::*, Error, Event, *};
use codec::Decode;
use frame_support::{assert_noop, assert_ok, traits::Hooks, BoundedVec};
use medchain_primitives::{AccessPurpose, Behaviour, RecordKind};
use medchain_umbral::{PublicKey, SecretKey};
use sp_core::offchain::OffchainStorage;
use sp_runtime::{generic::Preamble, testing::UintAuthorityId};

fn origin(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

fn events() -> Vec<Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| if let RuntimeEvent::Pre(e) = r.event { Some(e) } else { None })
		.collect()
}

fn run_to(n: u64) {
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Pre::on_initialize(next);
	}
}

type SealedList =
	BoundedVec<(AccountId, SealedFragment<frame_support::traits::ConstU32<512>>, KfragId), frame_support::traits::ConstU32<3>>;

/// The record every test reads.
const RECORD: RecordId = 7;

/// Keys and material of a test: a patient with record 7 (a lab result issued
/// by the hospital, its data key sealed in a capsule), a doctor, 3 proxies.
struct World {
	patient: Party,
	doctor: Party,
	emergency: Party,
	proxies: Vec<Party>,
	data_key: [u8; 32],
}

impl World {
	fn new() -> Self {
		let w = World {
			patient: Party::new(),
			doctor: Party::new(),
			emergency: Party::new(),
			proxies: (0..3).map(|_| Party::new()).collect(),
			data_key: [0x5a; 32],
		};
		assert_ok!(Pre::register_key(origin(PATIENT), w.patient.public(), w.patient.verifying()));
		assert_ok!(Pre::register_key(origin(DOCTOR), w.doctor.public(), w.doctor.verifying()));
		assert_ok!(Pre::register_key(origin(EMERGENCY), w.emergency.public(), w.emergency.verifying()));
		for (who, p) in PROXIES.iter().zip(w.proxies.iter()) {
			assert_ok!(Pre::register_proxy(origin(*who), p.public()));
		}
		let capsule = w.capsule();
		add_record(RECORD, PATIENT, HOSPITAL, RecordKind::LabResult, capsule.hash().0);
		assert_ok!(Pre::attach_capsule(origin(HOSPITAL), RECORD, capsule, Default::default()));
		w
	}

	/// The data key encrypted to the patient.
	fn capsule(&self) -> KeyCapsule {
		let (capsule, ct) = medchain_umbral::encrypt(&mut rand_core::OsRng, &self.patient.pk, &self.data_key).unwrap();
		KeyCapsule { capsule: capsule.try_into().unwrap(), ciphertext: ct.try_into().unwrap() }
	}

	/// `n` key fragments for `grantee`, threshold `m`, sealed to the first `n` proxies.
	fn fragments(&self, grantee: &Party, m: usize, n: usize) -> SealedList {
		self.fragments_from(&self.patient.sk, grantee, m, n)
	}

	/// As [`World::fragments`], delegating from `delegating` (a scope key).
	fn fragments_from(&self, delegating: &SecretKey, grantee: &Party, m: usize, n: usize) -> SealedList {
		let kfrags = umbral_pre::generate_kfrags_with_rng(
			&mut rand_core::OsRng,
			delegating,
			&grantee.pk,
			&self.patient.signer,
			m,
			n,
			true,
			true,
		);
		let v: Vec<_> = kfrags
			.iter()
			.zip(PROXIES.iter().zip(self.proxies.iter()))
			.map(|(k, (who, p))| {
				let s = medchain_umbral::seal_kfrag(&mut rand_core::OsRng, &p.pk, k).unwrap();
				(
					*who,
					SealedFragment { capsule: s.capsule.try_into().unwrap(), ciphertext: s.ciphertext.try_into().unwrap() },
					s.kfrag_id,
				)
			})
			.collect();
		v.try_into().unwrap()
	}

	/// Grants the doctor `scope`, 2 of 3 proxies, all three acknowledging
	/// (as their nodes do by themselves).
	fn grant(&self, scope: GrantScope, expires_at: Option<u64>) -> GrantId {
		let id = self.unacknowledged_grant(scope, expires_at);
		acknowledge(id, &PROXIES);
		id
	}

	/// Grants the doctor `scope`, 2 of 3 proxies, none acknowledged yet.
	fn unacknowledged_grant(&self, scope: GrantScope, expires_at: Option<u64>) -> GrantId {
		self.unacknowledged_grant_from(&self.patient.sk, scope, expires_at)
	}

	/// As [`World::unacknowledged_grant`], with key fragments of `delegating`.
	fn unacknowledged_grant_from(&self, delegating: &SecretKey, scope: GrantScope, expires_at: Option<u64>) -> GrantId {
		let id = NextGrantId::<Test>::get();
		assert_ok!(Pre::grant_access(
			origin(PATIENT),
			DOCTOR,
			scope,
			AccessPurpose::Treatment,
			expires_at,
			2,
			self.fragments_from(delegating, &self.doctor, 2, 3),
			false,
		));
		id
	}

	/// Grants the doctor everything, 2 of 3, with fragments changed by
	/// `edit` (none acknowledged).
	fn edited_grant(&self, edit: impl FnOnce(&mut Vec<(AccountId, SealedFragment<frame_support::traits::ConstU32<512>>, KfragId)>)) -> GrantId {
		let mut fragments = self.fragments(&self.doctor, 2, 3).into_inner();
		edit(&mut fragments);
		let id = NextGrantId::<Test>::get();
		assert_ok!(Pre::grant_access(
			origin(PATIENT),
			DOCTOR,
			GrantScope::All,
			AccessPurpose::Treatment,
			None,
			2,
			fragments.try_into().unwrap(),
			false,
		));
		id
	}

	/// Runs proxy 0's offchain worker alone and checks that it disputes `grant`.
	fn proxy_0_disputes(&self, h: &OffchainHandles, grant: GrantId) {
		UintAuthorityId::set_all_keys(vec![PROXIES[0]]);
		store_secret(h, &self.proxies[0]);
		Pre::offchain_worker(1);
		let sent = drain_pool(h);
		assert_eq!(sent, vec![(PROXIES[0], RuntimeCall::Pre(Call::dispute_grant { grant }))]);
		dispatch_all(sent);
		assert_eq!(Disputes::<Test>::get(grant).into_inner(), vec![PROXIES[0]]);
	}

	/// An emergency grant to the emergency institution, 2 of 3, acknowledged.
	fn emergency_grant(&self) -> GrantId {
		self.emergency_grant_to(EMERGENCY, &self.emergency)
	}

	/// An emergency grant to `institution`, 2 of 3, acknowledged.
	fn emergency_grant_to(&self, institution: AccountId, keys: &Party) -> GrantId {
		let id = NextGrantId::<Test>::get();
		assert_ok!(Pre::grant_access(
			origin(PATIENT),
			institution,
			GrantScope::All,
			AccessPurpose::Emergency,
			None,
			2,
			self.fragments(keys, 2, 3),
			true,
		));
		acknowledge(id, &PROXIES);
		id
	}

	/// What proxy `i` computes for `request`, as its offchain worker does:
	/// opens its key fragment against the grant's keys and re-encrypts the
	/// record's capsule the grant's key opens.
	fn fragment(&self, i: usize, request: RequestId) -> BoundedVec<u8, frame_support::traits::ConstU32<512>> {
		let req = Requests::<Test>::get(request).unwrap();
		let capsule = Pre::capsule_for(req.grant, req.record).unwrap();
		self.colluding_fragment(i, req.grant, &capsule).try_into().unwrap()
	}

	/// What proxy `i` makes of any `capsule` with its key fragment of `grant`
	/// (whether or not the chain would ask it to).
	fn colluding_fragment(&self, i: usize, grant: GrantId, capsule: &KeyCapsule) -> Vec<u8> {
		let g = Grants::<Test>::get(grant).unwrap();
		let sealed = SealedFragments::<Test>::get(grant, PROXIES[i]).unwrap();
		let keys = Pre::delegation_keys(grant, &g).unwrap();
		let kfrag =
			medchain_umbral::open_kfrag(&self.proxies[i].sk, &sealed.capsule, &sealed.ciphertext, &keys.delegation())
				.unwrap();
		let capsule = medchain_umbral::capsule(&capsule.capsule).unwrap();
		medchain_umbral::reencrypt([i as u8; 32], &capsule, kfrag).unwrap()
	}

	/// What the grantee of `grant` opens of `capsule` with `cfrags`.
	fn open(&self, grant: GrantId, grantee: &Party, capsule: &KeyCapsule, cfrags: &[Vec<u8>]) -> Result<Vec<u8>, medchain_umbral::Error> {
		let g = Grants::<Test>::get(grant).unwrap();
		let keys = Pre::delegation_keys(grant, &g).unwrap();
		medchain_umbral::decrypt_reencrypted(&grantee.sk, &keys.delegation(), &capsule.capsule, cfrags, &capsule.ciphertext)
	}

	/// The grantee's decryption of the data key from the request's fragments.
	fn decrypt(&self, request: RequestId, grantee: &Party) -> Result<Vec<u8>, medchain_umbral::Error> {
		let req = Requests::<Test>::get(request).unwrap();
		let capsule = Pre::capsule_for(req.grant, req.record).unwrap();
		let cfrags: Vec<Vec<u8>> = Pre::fragments_of(request).into_iter().map(|(_, f)| f).collect();
		self.open(req.grant, grantee, &capsule, &cfrags)
	}

	/// The data key encrypted to `to`.
	fn capsule_to(&self, to: &PublicKey) -> KeyCapsule {
		let (capsule, ct) = medchain_umbral::encrypt(&mut rand_core::OsRng, to, &self.data_key).unwrap();
		KeyCapsule { capsule: capsule.try_into().unwrap(), ciphertext: ct.try_into().unwrap() }
	}

	/// The patient's key for lab results and `n` one-time keys (numbers
	/// `0..n`), derived as its wallet derives them and registered.
	fn register_scope_keys(&self, n: u32) -> (SecretKey, Vec<SecretKey>) {
		let derive = |label: Vec<u8>| medchain_umbral::scope_secret_key(&self.patient.sk, &label).unwrap();
		let lab = derive(medchain_umbral::kind_label("LabResult"));
		let kinds = vec![(RecordKind::LabResult, public(&lab))];
		assert_ok!(Pre::register_kind_keys(origin(PATIENT), kinds.try_into().unwrap()));
		let one_time: Vec<SecretKey> = (0..n).map(|i| derive(medchain_umbral::record_label(i))).collect();
		let keys: Vec<UmbralPublicKey> = one_time.iter().map(public).collect();
		assert_ok!(Pre::add_record_keys(origin(PATIENT), 0, keys.try_into().unwrap()));
		(lab, one_time)
	}

	/// Record `id` of `kind`, its data key encrypted to the patient, to
	/// `kind_key` and to one-time key `(number, key)`, as the issuer publishes
	/// it (the index commits to the first); returns what it attaches.
	fn scoped_record(
		&self,
		id: RecordId,
		kind: RecordKind,
		kind_key: Option<&SecretKey>,
		one_time: Option<(RecordKeyIndex, &SecretKey)>,
	) -> (KeyCapsule, ScopedCapsules) {
		let root = self.capsule();
		let scoped = ScopedCapsules {
			kind: kind_key.map(|k| self.capsule_to(&k.public_key())),
			record: one_time.map(|(i, k)| (i, self.capsule_to(&k.public_key()))),
		};
		add_record(id, PATIENT, HOSPITAL, kind, root.hash().0);
		(root, scoped)
	}

	/// The doctor requests `record` under `grant`; proxies 0 and 1 serve it
	/// (their fragments must be accepted). Returns the request.
	fn serve(&self, grant: GrantId, record: RecordId) -> RequestId {
		let r = NextRequestId::<Test>::get();
		assert_ok!(Pre::request_access(origin(DOCTOR), grant, record));
		for i in 0..2 {
			assert_ok!(Pre::submit_fragment(origin(PROXIES[i]), r, self.fragment(i, r)));
			assert!(events().contains(&Event::FragmentAccepted { request: r, proxy: PROXIES[i] }));
		}
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Ready);
		r
	}

	/// Grants the doctor `scope` with key fragments of `delegating`, 2 of 3,
	/// acknowledged.
	fn grant_from(&self, delegating: &SecretKey, scope: GrantScope) -> GrantId {
		let id = self.unacknowledged_grant_from(delegating, scope, None);
		acknowledge(id, &PROXIES);
		id
	}
}

/// `proxies` acknowledge `grant`.
fn acknowledge(grant: GrantId, proxies: &[AccountId]) {
	for p in proxies {
		assert_ok!(Pre::acknowledge_grant(origin(*p), grant));
	}
}

/// The compressed public key of `sk`.
fn public(sk: &SecretKey) -> UmbralPublicKey {
	medchain_umbral::public_key_bytes(&sk.public_key())
}

fn request(grant: GrantId) -> RequestId {
	let id = NextRequestId::<Test>::get();
	assert_ok!(Pre::request_access(origin(DOCTOR), grant, RECORD));
	id
}

#[test]
fn keys_are_registered_once_and_checked() {
	new_test_ext(|_| {
		let p = Party::new();
		assert_noop!(Pre::register_key(origin(PATIENT), [0u8; 33], p.verifying()), Error::<Test>::BadPublicKey);
		assert_noop!(Pre::register_key(origin(PATIENT), p.public(), [9u8; 33]), Error::<Test>::BadPublicKey);
		assert_ok!(Pre::register_key(origin(PATIENT), p.public(), p.verifying()));
		assert_eq!(Keys::<Test>::get(PATIENT).unwrap().public_key, p.public());
		assert_noop!(
			Pre::register_key(origin(PATIENT), Party::new().public(), p.verifying()),
			Error::<Test>::KeyAlreadyRegistered
		);
		assert!(events().contains(&Event::KeyRegistered { who: PATIENT, public_key: p.public() }));
	});
}

#[test]
fn only_institutions_register_proxy_keys_and_may_rotate_them() {
	new_test_ext(|_| {
		let p = Party::new();
		assert_noop!(Pre::register_proxy(origin(OUTSIDER), p.public()), Error::<Test>::NotInstitution);
		assert_noop!(Pre::register_proxy(origin(1), [0u8; 33]), Error::<Test>::BadPublicKey);
		assert_ok!(Pre::register_proxy(origin(1), p.public()));
		let q = Party::new();
		assert_ok!(Pre::register_proxy(origin(1), q.public()));
		assert_eq!(Proxies::<Test>::get(1), Some(q.public()));
	});
}

#[test]
fn the_issuer_attaches_the_capsule_the_index_commits_to() {
	new_test_ext(|_| {
		let w = World::new();
		let capsule = w.capsule();
		add_record(8, PATIENT, HOSPITAL, RecordKind::Imaging, capsule.hash().0);
		assert_noop!(Pre::attach_capsule(origin(HOSPITAL), 99, capsule.clone(), Default::default()), Error::<Test>::RecordNotFound);
		assert_noop!(Pre::attach_capsule(origin(1), 8, capsule.clone(), Default::default()), Error::<Test>::NotIssuer);
		assert_noop!(Pre::attach_capsule(origin(HOSPITAL), 8, w.capsule(), Default::default()), Error::<Test>::CapsuleMismatch);
		// Bytes that hash right but are no capsule.
		let junk = KeyCapsule { capsule: vec![0x93, 1, 2].try_into().unwrap(), ciphertext: capsule.ciphertext.clone() };
		add_record(9, PATIENT, HOSPITAL, RecordKind::Imaging, junk.hash().0);
		assert_noop!(Pre::attach_capsule(origin(HOSPITAL), 9, junk, Default::default()), Error::<Test>::MalformedCapsule);
		assert_ok!(Pre::attach_capsule(origin(HOSPITAL), 8, capsule.clone(), Default::default()));
		assert_noop!(Pre::attach_capsule(origin(HOSPITAL), 8, capsule.clone(), Default::default()), Error::<Test>::CapsuleAlreadyAttached);
		erase_record(8);
		let other = w.capsule();
		add_record(10, PATIENT, HOSPITAL, RecordKind::Imaging, other.hash().0);
		erase_record(10);
		assert_noop!(Pre::attach_capsule(origin(HOSPITAL), 10, other, Default::default()), Error::<Test>::RecordUnavailable);
		assert!(events().contains(&Event::CapsuleAttached { record: 8 }));
	});
}

#[test]
fn grant_request_reencrypt_and_decrypt_with_two_of_three_proxies() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::Record(RECORD), None);
		assert_eq!(Grants::<Test>::get(g).unwrap().proxies.to_vec(), PROXIES.to_vec());
		let r = request(g);
		assert!(events().contains(&Event::AccessRequested { request: r, grant: g, record: RECORD, requester: DOCTOR }));
		assert_eq!(OpenRequests::<Test>::get().to_vec(), vec![r]);

		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)));
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Open);
		// One fragment is below the threshold: the doctor cannot decrypt yet.
		assert_eq!(w.decrypt(r, &w.doctor), Err(medchain_umbral::Error::DecryptionFailed));
		assert_ok!(Pre::submit_fragment(origin(PROXIES[2]), r, w.fragment(2, r)));

		let req = Requests::<Test>::get(r).unwrap();
		assert_eq!((req.status, req.fragments), (RequestStatus::Ready, 2));
		assert!(OpenRequests::<Test>::get().is_empty());
		assert!(events().contains(&Event::AccessReady { request: r }));
		assert_eq!(w.decrypt(r, &w.doctor).unwrap(), w.data_key.to_vec());
		assert_eq!(
			CreditLog::get(),
			vec![(PROXIES[0], Behaviour::ReencryptionServed), (PROXIES[2], Behaviour::ReencryptionServed)]
		);
		// The third proxy is too late.
		assert_noop!(
			Pre::submit_fragment(origin(PROXIES[1]), r, w.fragment(1, r)),
			Error::<Test>::RequestClosed
		);
		// The access log and what the gateway checks.
		assert_eq!(Pre::access_log(RECORD).into_iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![r]);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), Some(g));
		assert_eq!(Pre::readable_under(&OUTSIDER, RECORD), None);
	});
}

#[test]
fn a_bad_fragment_is_rejected_and_costs_the_proxy_credit() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		// Proxy 1 sends proxy 0's fragment for a different grantee's keys:
		// a fragment computed for the emergency institution does not verify.
		let eg = w.emergency_grant();
		let er = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, H256::repeat_byte(1)));
		let wrong = w.fragment(1, er);
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), r, wrong));
		assert_eq!(Fragments::<Test>::get(r, PROXIES[1]), Some(Submission::Rejected));
		assert_eq!(CreditLog::get(), vec![(PROXIES[1], Behaviour::ReencryptionFailed)]);
		assert!(events().contains(&Event::FragmentRejected { request: r, proxy: PROXIES[1] }));
		assert_eq!(Requests::<Test>::get(r).unwrap().fragments, 0);
		// Garbage bytes are rejected the same way.
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, vec![1, 2, 3].try_into().unwrap()));
		assert_eq!(Fragments::<Test>::get(r, PROXIES[0]), Some(Submission::Rejected));
		// One submission per proxy, good or bad.
		assert_noop!(
			Pre::submit_fragment(origin(PROXIES[1]), r, w.fragment(1, r)),
			Error::<Test>::AlreadySubmitted
		);
	});
}

#[test]
fn a_proxy_cannot_pass_off_another_proxys_fragment_as_its_own() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		// Proxy 1 copies proxy 0's fragment (public once sent): it verifies
		// against the capsule and the patient's keys, but it was made from
		// proxy 0's key fragment. Sent first (front-running proxy 0) or
		// after, it is refused and costs proxy 1 credit.
		let of_proxy_0 = w.fragment(0, r);
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), r, of_proxy_0.clone()));
		assert_eq!(Fragments::<Test>::get(r, PROXIES[1]), Some(Submission::Rejected));
		assert_eq!(CreditLog::get(), vec![(PROXIES[1], Behaviour::ReencryptionFailed)]);
		assert!(events().contains(&Event::FragmentRejected { request: r, proxy: PROXIES[1] }));
		assert_eq!(Requests::<Test>::get(r).unwrap().fragments, 0);
		// Proxy 0's own fragment still counts, for proxy 0.
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, of_proxy_0));
		assert_eq!(Requests::<Test>::get(r).unwrap().fragments, 1);
		// The request is served by two distinct fragments: the doctor decrypts.
		assert_ok!(Pre::submit_fragment(origin(PROXIES[2]), r, w.fragment(2, r)));
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Ready);
		assert_eq!(w.decrypt(r, &w.doctor).unwrap(), w.data_key.to_vec());
		// Each proxy is bound to the id of the fragment sealed to it.
		for i in 0..3 {
			assert!(KeyFragmentIds::<Test>::contains_key(g, PROXIES[i]));
		}
		assert_ok!(Pre::revoke_grant(origin(PATIENT), g));
		assert_eq!(KeyFragmentIds::<Test>::iter_prefix(g).count(), 0, "cleared with the sealed fragments");
	});
}

#[test]
fn one_proxy_and_the_grantee_cannot_read_a_patients_records_unless_the_patient_chose_so() {
	new_test_ext(|_| {
		let w = World::new();
		let grant = |m: u8, n: usize| {
			Pre::grant_access(
				origin(PATIENT),
				DOCTOR,
				GrantScope::All,
				AccessPurpose::Treatment,
				None,
				m,
				w.fragments(&w.doctor, m as usize, n),
				false,
			)
		};
		// Threshold 1: one proxy's fragment and the grantee's key open every
		// record in scope. Not without the patient's consent.
		assert_noop!(grant(1, 2), Error::<Test>::SingleProxyNotAllowed);
		assert_ok!(grant(2, 2));
		assert_ok!(Pre::allow_single_proxy_grants(origin(PATIENT), true));
		assert!(events().contains(&Event::SingleProxyGrantsAllowed { allowed: true }));
		assert_ok!(grant(1, 2));
		assert_eq!(Grants::<Test>::get(NextGrantId::<Test>::get() - 1).unwrap().threshold, 1);
		assert_ok!(Pre::allow_single_proxy_grants(origin(PATIENT), false));
		assert!(!SingleProxyGrants::<Test>::contains_key(PATIENT));
		assert_noop!(grant(1, 2), Error::<Test>::SingleProxyNotAllowed);
	});
}

#[test]
fn submissions_are_checked() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		let f = w.fragment(0, r);
		assert_noop!(Pre::submit_fragment(origin(PROXIES[0]), 99, f.clone()), Error::<Test>::RequestNotFound);
		assert_noop!(Pre::submit_fragment(origin(HOSPITAL), r, f.clone()), Error::<Test>::NotProxyOfGrant);
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, f.clone()));
		assert_noop!(Pre::submit_fragment(origin(PROXIES[0]), r, f), Error::<Test>::AlreadySubmitted);
	});
}

#[test]
fn after_revocation_nothing_is_served() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::Kind(RecordKind::LabResult), None);
		let r = request(g);
		let f = w.fragment(0, r);
		assert_noop!(Pre::revoke_grant(origin(99), 42), Error::<Test>::GrantNotFound);
		assert_noop!(Pre::revoke_grant(origin(DOCTOR), g), Error::<Test>::NotPatient);
		assert_ok!(Pre::revoke_grant(origin(PATIENT), g));
		assert!(events().contains(&Event::GrantRevoked { grant: g }));
		assert_noop!(Pre::revoke_grant(origin(PATIENT), g), Error::<Test>::AlreadyRevoked);
		// Fragments are deleted, lists cleared, zero fragments accepted.
		assert_eq!(SealedFragments::<Test>::iter_prefix(g).count(), 0);
		assert!(PatientGrants::<Test>::get(PATIENT).is_empty());
		assert!(GranteeGrants::<Test>::iter_key_prefix(DOCTOR).next().is_none());
		// The request in flight is closed at once: nothing more is accepted
		// for it, its requester has its slot back, no proxy owes it.
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Expired);
		assert!(events().contains(&Event::RequestExpired { request: r }));
		assert!(!OpenRequests::<Test>::get().contains(&r));
		assert_eq!(OpenRequestsOf::<Test>::get(DOCTOR), 0);
		assert_noop!(Pre::submit_fragment(origin(PROXIES[0]), r, f), Error::<Test>::RequestClosed);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::GrantNotLive);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), None);
		assert!(Pre::accessible_records(&DOCTOR).is_empty());
		// Its deadline passes without penalising the proxies.
		run_to(1 + TIMEOUT);
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Expired);
		assert!(CreditLog::get().is_empty());
	});
}

#[test]
fn a_doctor_declines_a_grant_it_never_asked_for() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		// Only the grantee declines; the patient revokes instead.
		assert_noop!(Pre::decline_grant(origin(PATIENT), g), Error::<Test>::NotGrantee);
		assert_noop!(Pre::decline_grant(origin(DOCTOR), 42), Error::<Test>::GrantNotFound);
		assert_ok!(Pre::decline_grant(origin(DOCTOR), g));
		assert!(events().contains(&Event::GrantDeclined { grant: g }));
		assert_noop!(Pre::decline_grant(origin(DOCTOR), g), Error::<Test>::AlreadyRevoked);
		assert_noop!(Pre::revoke_grant(origin(PATIENT), g), Error::<Test>::AlreadyRevoked);
		// The grant is gone from both lists and from what proxies hold.
		assert!(GranteeGrants::<Test>::iter_key_prefix(DOCTOR).next().is_none());
		assert!(PatientGrants::<Test>::get(PATIENT).is_empty());
		assert_eq!(SealedFragments::<Test>::iter_prefix(g).count(), 0);
		assert_eq!(KeyFragmentIds::<Test>::iter_prefix(g).count(), 0);
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Expired, "closed with the grant");
		assert_eq!(OpenRequestsOf::<Test>::get(DOCTOR), 0);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::GrantNotLive);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), None);
		assert!(CreditLog::get().is_empty());
	});
}

#[test]
fn after_expiry_nothing_is_served() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, Some(4));
		let r = request(g);
		let f = w.fragment(0, r);
		assert_eq!(Pre::accessible_records(&DOCTOR), vec![(RECORD, g)]);
		run_to(4);
		assert_noop!(Pre::submit_fragment(origin(PROXIES[0]), r, f), Error::<Test>::GrantNotLive);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::GrantNotLive);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), None);
		assert!(Pre::accessible_records(&DOCTOR).is_empty());
		// An expired grant can still be cleared by revoking it.
		assert_ok!(Pre::revoke_grant(origin(PATIENT), g));
	});
}

#[test]
fn grants_are_checked() {
	new_test_ext(|_| {
		let w = World::new();
		let frags = w.fragments(&w.doctor, 2, 3);
		let grant = |who: AccountId, grantee: AccountId, scope: GrantScope, expires: Option<u64>, m: u8, f: SealedList, emergency: bool| {
			Pre::grant_access(origin(who), grantee, scope, AccessPurpose::Treatment, expires, m, f, emergency)
		};
		assert_noop!(grant(OTHER_PATIENT, DOCTOR, GrantScope::All, None, 2, frags.clone(), false), Error::<Test>::NoPatientKey);
		assert_noop!(grant(PATIENT, OUTSIDER, GrantScope::All, None, 2, frags.clone(), false), Error::<Test>::NoGranteeKey);
		assert_noop!(grant(PATIENT, PATIENT, GrantScope::All, None, 2, frags.clone(), false), Error::<Test>::SelfGrant);
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 0, frags.clone(), false), Error::<Test>::BadThreshold);
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 4, frags.clone(), false), Error::<Test>::BadThreshold);
		let edited = |f: &dyn Fn(&mut Vec<(AccountId, SealedFragment<frame_support::traits::ConstU32<512>>, KfragId)>)| -> SealedList {
			let mut v = frags.clone().into_inner();
			f(&mut v);
			v.try_into().unwrap()
		};
		let unknown = edited(&|v| v[1].0 = HOSPITAL);
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 2, unknown, false), Error::<Test>::UnknownProxy);
		let twice = edited(&|v| v[1].0 = PROXIES[0]);
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 2, twice, false), Error::<Test>::DuplicateProxy);
		let one_id = edited(&|v| v[2].2 = v[0].2);
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 2, one_id, false), Error::<Test>::DuplicateKeyFragment);
		let malformed = edited(&|v| v[2].1.capsule = vec![0xc2].try_into().unwrap());
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 2, malformed, false), Error::<Test>::MalformedCapsule);
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, Some(1), 2, frags.clone(), false), Error::<Test>::ExpiryInPast);
		assert_noop!(
			grant(PATIENT, DOCTOR, GrantScope::Record(99), None, 2, frags.clone(), false),
			Error::<Test>::RecordNotFound
		);
		add_record(50, OTHER_PATIENT, HOSPITAL, RecordKind::Imaging, [0; 32]);
		assert_noop!(
			grant(PATIENT, DOCTOR, GrantScope::Record(50), None, 2, frags.clone(), false),
			Error::<Test>::NotPatientsRecord
		);
		// Emergency grants go to institutions only.
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 2, frags.clone(), true), Error::<Test>::NotInstitution);
		for _ in 0..3 {
			assert_ok!(grant(PATIENT, DOCTOR, GrantScope::All, None, 2, frags.clone(), false));
		}
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 2, frags.clone(), false), Error::<Test>::TooManyGrants);
		assert_eq!(Pre::grants_of_patient(&PATIENT).len(), 3);
		NextGrantId::<Test>::put(GrantId::MAX);
		assert_ok!(Pre::revoke_grant(origin(PATIENT), 0));
		assert_noop!(grant(PATIENT, DOCTOR, GrantScope::All, None, 2, frags, false), Error::<Test>::Overflow);
		NextGrantId::<Test>::put(3);
	});
}

#[test]
fn requests_are_checked() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::Kind(RecordKind::LabResult), None);
		assert_noop!(Pre::request_access(origin(DOCTOR), 99, RECORD), Error::<Test>::GrantNotFound);
		assert_noop!(Pre::request_access(origin(OUTSIDER), g, RECORD), Error::<Test>::NotGrantee);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, 99), Error::<Test>::RecordNotFound);
		add_record(20, PATIENT, HOSPITAL, RecordKind::Imaging, [0; 32]);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, 20), Error::<Test>::OutOfScope);
		add_record(21, OTHER_PATIENT, HOSPITAL, RecordKind::LabResult, [0; 32]);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, 21), Error::<Test>::OutOfScope);
		add_record(22, PATIENT, HOSPITAL, RecordKind::LabResult, [0; 32]);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, 22), Error::<Test>::NoCapsule);
		erase_record(22);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, 22), Error::<Test>::RecordUnavailable);
		// Two open requests (two grants): the doctor's share of the queue.
		let g2 = w.grant(GrantScope::All, None);
		request(g);
		request(g2);
		run_to(1 + INTERVAL);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::TooManyOwnRequests);
		let eg = w.emergency_grant();
		assert_noop!(Pre::request_access(origin(EMERGENCY), eg, RECORD), Error::<Test>::EmergencyOnly);
		run_to(1 + TIMEOUT);
		NextRequestId::<Test>::put(RequestId::MAX);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::Overflow);
		NextRequestId::<Test>::put(2);
	});
}

#[test]
fn unserved_requests_expire_and_silent_proxies_lose_credit() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), r, w.fragment(1, r)));
		run_to(TIMEOUT);
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Open);
		run_to(1 + TIMEOUT);
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Expired);
		assert!(OpenRequests::<Test>::get().is_empty());
		assert!(events().contains(&Event::RequestExpired { request: r }));
		assert_eq!(
			CreditLog::get(),
			vec![
				(PROXIES[1], Behaviour::ReencryptionServed),
				(PROXIES[0], Behaviour::ReencryptionFailed),
				(PROXIES[2], Behaviour::ReencryptionFailed)
			]
		);
		assert_noop!(
			Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)),
			Error::<Test>::RequestClosed
		);
	});
}

#[test]
fn break_glass_is_logged_notified_and_reviewed() {
	new_test_ext(|_| {
		let w = World::new();
		let normal = w.grant(GrantScope::All, None);
		let eg = w.emergency_grant();
		let statement = H256::repeat_byte(7);
		assert_noop!(
			Pre::break_glass(origin(DOCTOR), normal, RECORD, EmergencyReason::Other, statement),
			Error::<Test>::NotEmergencyGrant
		);
		assert_noop!(
			Pre::break_glass(origin(DOCTOR), eg, RECORD, EmergencyReason::Other, statement),
			Error::<Test>::NotGrantee
		);
		// Until the glass is broken, the emergency grant opens nothing.
		assert_eq!(Pre::readable_under(&EMERGENCY, RECORD), None);
		let r = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::PatientIncapacitated, statement));
		assert!(events().contains(&Event::EmergencyAccess {
			request: r,
			institution: EMERGENCY,
			record: RECORD,
			reason: EmergencyReason::PatientIncapacitated,
			review_by: 1 + WINDOW,
		}));
		assert_eq!(Pre::readable_under(&EMERGENCY, RECORD), Some(eg));
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)));
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), r, w.fragment(1, r)));
		assert_eq!(w.decrypt(r, &w.emergency).unwrap(), w.data_key.to_vec());
		CreditLog::take();

		let doctor_request = request(normal);
		assert_noop!(Pre::review_emergency(origin(HOSPITAL), r, true), Error::<Test>::NotAuditor);
		assert_noop!(Pre::review_emergency(origin(AUDITOR), 99, true), Error::<Test>::RequestNotFound);
		assert_noop!(Pre::review_emergency(origin(AUDITOR), doctor_request, true), Error::<Test>::NotEmergency);
		assert_ok!(Pre::review_emergency(origin(AUDITOR), r, true));
		assert!(events().contains(&Event::EmergencyReviewed { request: r, auditor: AUDITOR, justified: true }));
		assert_noop!(Pre::review_emergency(origin(AUDITOR), r, false), Error::<Test>::AlreadyReviewed);
		run_to(1 + WINDOW);
		// Reviewed in time and justified: no penalty for the institution.
		assert!(!CreditLog::get().iter().any(|(who, _)| *who == EMERGENCY));
	});
}

#[test]
fn unreviewed_or_unjustified_break_glass_costs_the_institution_credit() {
	new_test_ext(|_| {
		let w = World::new();
		let eg = w.emergency_grant();
		let statement = H256::repeat_byte(3);
		let lapsed = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, statement));
		run_to(2);
		let judged = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::CareContinuity, statement));
		assert_ok!(Pre::review_emergency(origin(AUDITOR), judged, false));
		assert_eq!(CreditLog::get(), vec![(EMERGENCY, Behaviour::BreakGlassUnreviewed)]);
		CreditLog::take();
		run_to(1 + WINDOW);
		assert!(events().contains(&Event::EmergencyUnreviewed { request: lapsed, institution: EMERGENCY }));
		assert!(CreditLog::get().contains(&(EMERGENCY, Behaviour::BreakGlassUnreviewed)));
		let e = Requests::<Test>::get(lapsed).unwrap().emergency.unwrap();
		assert_eq!(e.review, Review::Lapsed);
		assert_noop!(Pre::review_emergency(origin(AUDITOR), lapsed, true), Error::<Test>::AlreadyReviewed);
	});
}

#[test]
fn one_auditor_cannot_condemn_every_emergency_access() {
	new_test_ext(|_| {
		let w = World::new();
		let eg = w.emergency_grant();
		let statement = H256::repeat_byte(5);
		// The auditor's allowance covers one unjustified verdict this session.
		VerdictAllowance::set([(AUDITOR, 1)].into_iter().collect());
		let first = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, statement));
		let second = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, statement));
		assert_ok!(Pre::review_emergency(origin(AUDITOR), first, false));
		assert_noop!(Pre::review_emergency(origin(AUDITOR), second, false), Error::<Test>::VerdictCapExceeded);
		assert_eq!(CreditLog::get(), vec![(EMERGENCY, Behaviour::BreakGlassUnreviewed)]);
		// Clearing an access costs nobody anything and is never capped.
		assert_ok!(Pre::review_emergency(origin(AUDITOR), second, true));
		assert_eq!(
			Requests::<Test>::get(second).unwrap().emergency.unwrap().review,
			Review::Reviewed { auditor: AUDITOR, justified: true }
		);
	});
}

#[test]
fn regulators_overturn_an_auditors_clearance_within_the_window() {
	new_test_ext(|_| {
		let w = World::new();
		let eg = w.emergency_grant();
		let statement = H256::repeat_byte(6);
		let regulators = || RuntimeOrigin::signed(RegulatorMotion::get());
		let cleared = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, statement));
		let pending = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, statement));
		// A friendly auditor clears the first; the regulators overturn it.
		assert_ok!(Pre::review_emergency(origin(AUDITOR), cleared, true));
		CreditLog::take();
		assert_ok!(Pre::review_emergency(regulators(), cleared, false));
		assert_eq!(CreditLog::get(), vec![(EMERGENCY, Behaviour::BreakGlassUnreviewed)]);
		assert!(events().contains(&Event::EmergencyReviewedByRegulators {
			request: cleared,
			justified: false,
			overturned: true
		}));
		// Their verdict is final.
		assert_noop!(Pre::review_emergency(regulators(), cleared, true), Error::<Test>::AlreadyReviewed);
		assert_noop!(Pre::review_emergency(origin(AUDITOR), cleared, true), Error::<Test>::AlreadyReviewed);
		// A pending access: reviewed by the body, with no auditor allowance
		// charged, and out of the lapse queue.
		VerdictAllowance::set(Default::default());
		assert_ok!(Pre::review_emergency(regulators(), pending, false));
		assert_eq!(
			Requests::<Test>::get(pending).unwrap().emergency.unwrap().review,
			Review::ReviewedByRegulators { justified: false, overturned: false }
		);
		CreditLog::take();
		run_to(1 + WINDOW);
		assert!(!CreditLog::get().contains(&(EMERGENCY, Behaviour::BreakGlassUnreviewed)));
		assert_noop!(Pre::review_emergency(regulators(), 99, false), Error::<Test>::RequestNotFound);
	});
}

#[test]
fn a_clearance_stands_once_the_window_closed() {
	new_test_ext(|_| {
		let w = World::new();
		let eg = w.emergency_grant();
		let request = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, H256::zero()));
		assert_ok!(Pre::review_emergency(origin(AUDITOR), request, true));
		run_to(2 + WINDOW);
		assert_noop!(
			Pre::review_emergency(RuntimeOrigin::signed(RegulatorMotion::get()), request, false),
			Error::<Test>::AlreadyReviewed
		);
	});
}

/// Transactions the offchain worker put in the pool, as (signer, call).
fn drain_pool(h: &OffchainHandles) -> Vec<(AccountId, RuntimeCall)> {
	std::mem::take(&mut h.pool.write().transactions)
		.into_iter()
		.map(|tx| {
			let xt = Extrinsic::decode(&mut &tx[..]).unwrap();
			match xt.preamble {
				Preamble::Signed(who, _, _) => (who, xt.function),
				_ => panic!("offchain worker submits signed transactions"),
			}
		})
		.collect()
}

fn store_secret(h: &OffchainHandles, p: &Party) {
	let key = [PROXY_SECRET_PREFIX, &p.public()[..]].concat();
	h.offchain.write().persistent_storage.set(b"", &key, &p.seed);
}

/// Dispatches what the offchain worker sent, as its signers.
fn dispatch_all(sent: Vec<(AccountId, RuntimeCall)>) {
	for (who, call) in sent {
		assert_ok!(frame_support::traits::UnfilteredDispatchable::dispatch_bypass_filter(call, origin(who)));
	}
}

#[test]
fn the_offchain_proxy_serves_requests_once_and_only_live_ones() {
	new_test_ext(|h| {
		let w = World::new();
		let g = w.unacknowledged_grant(GrantScope::All, None);
		// Without keys or secrets the worker does nothing.
		Pre::offchain_worker(1);
		assert!(drain_pool(h).is_empty());
		UintAuthorityId::set_all_keys(vec![PROXIES[0], PROXIES[1], HOSPITAL]);
		store_secret(h, &w.proxies[0]);
		// A secret that does not match the registered key is not used.
		let stale = Party::new();
		let key = [PROXY_SECRET_PREFIX, &w.proxies[1].public()[..]].concat();
		h.offchain.write().persistent_storage.set(b"", &key, &stale.seed);
		// First the proxy opens its key fragment and acknowledges the grant.
		Pre::offchain_worker(1);
		let sent = drain_pool(h);
		assert_eq!(sent, vec![(PROXIES[0], RuntimeCall::Pre(Call::acknowledge_grant { grant: g }))]);
		// Not again in the next blocks (the persistent marker), ...
		Pre::offchain_worker(2);
		assert!(drain_pool(h).is_empty());
		// ... and what it sent is accepted on chain.
		dispatch_all(sent);
		assert_eq!(Grants::<Test>::get(g).unwrap().acknowledged.to_vec(), vec![PROXIES[0]]);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::GrantNotAcknowledged);
		store_secret(h, &w.proxies[1]);
		Pre::offchain_worker(3);
		let sent = drain_pool(h);
		assert_eq!(sent, vec![(PROXIES[1], RuntimeCall::Pre(Call::acknowledge_grant { grant: g }))]);
		dispatch_all(sent);
		// Then both serve the request, once, ...
		let r = request(g);
		Pre::offchain_worker(4);
		let sent = drain_pool(h);
		assert_eq!(sent.iter().map(|(who, _)| *who).collect::<Vec<_>>(), vec![PROXIES[0], PROXIES[1]]);
		Pre::offchain_worker(5);
		assert!(drain_pool(h).is_empty());
		// ... and what they sent verifies on chain.
		dispatch_all(sent);
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Ready);
		assert_eq!(w.decrypt(r, &w.doctor).unwrap(), w.data_key.to_vec());
		// The opened key fragment is kept in the node: a second request of the
		// same grant is served without opening the sealed fragment again.
		run_to(1 + INTERVAL);
		let r3 = request(g);
		let sealed = SealedFragments::<Test>::take(g, PROXIES[0]).unwrap();
		Pre::offchain_worker(6);
		let sent = drain_pool(h);
		assert_eq!(sent.iter().map(|(who, _)| *who).collect::<Vec<_>>(), vec![PROXIES[0], PROXIES[1]]);
		dispatch_all(sent);
		assert_eq!(Requests::<Test>::get(r3).unwrap().status, RequestStatus::Ready);
		SealedFragments::<Test>::insert(g, PROXIES[0], sealed);
		// After revocation the worker serves nothing, and the node keeps no
		// opened key fragment of the grant.
		let kept = |p: AccountId| {
			OffchainStorage::get(&h.offchain.read().persistent_storage, b"", &crate::offchain::kfrag_key::<Test>(g, &p))
		};
		assert!(kept(PROXIES[0]).is_some() && kept(PROXIES[1]).is_some());
		run_to(1 + 2 * INTERVAL);
		let r2 = request(g);
		assert_ok!(Pre::revoke_grant(origin(PATIENT), g));
		Pre::offchain_worker(7);
		assert!(drain_pool(h).is_empty());
		assert_eq!(Requests::<Test>::get(r2).unwrap().fragments, 0);
		assert_eq!((kept(PROXIES[0]), kept(PROXIES[1])), (None, None), "revoked: the opened fragments are deleted");
	});
}

#[test]
fn the_offchain_proxy_disputes_a_fragment_it_cannot_open() {
	new_test_ext(|h| {
		let w = World::new();
		// Proxy 0's fragment is sealed to proxy 1's key: proxy 0 cannot open it.
		let g = w.edited_grant(|f| f[0].1 = f[1].1.clone());
		w.proxy_0_disputes(h, g);
		// Two proxies of 2-of-3 can still serve: the grant stays usable.
		assert_eq!(Grants::<Test>::get(g).unwrap().disputed_by, None);
		assert!(CreditLog::get().is_empty());
		// Nothing is left for proxy 0's worker to answer.
		assert!(!PendingAcknowledgements::<Test>::contains_key(PROXIES[0], g));
		Pre::offchain_worker(20);
		assert!(drain_pool(h).is_empty());
	});
}

#[test]
fn a_patient_cannot_bind_a_proxy_to_a_key_fragment_it_was_not_given() {
	new_test_ext(|h| {
		let w = World::new();
		// The patient names another id for proxy 0 than its fragment's: every
		// fragment proxy 0 made would be refused and cost it credit.
		let g = w.edited_grant(|f| f[0].2 = [9; 32]);
		// Proxy 0's node refuses the grant instead of serving it.
		w.proxy_0_disputes(h, g);
		assert!(CreditLog::get().is_empty());
	});
}

#[test]
fn stranger_cannot_drain_proxy_credit() {
	new_test_ext(|_| {
		let w = World::new();
		// A patient names three institutions as proxies; none agreed yet.
		let g = w.unacknowledged_grant(GrantScope::All, None);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::GrantNotAcknowledged);
		// One acknowledgement is below the threshold (2): still refused.
		acknowledge(g, &[PROXIES[0]]);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::GrantNotAcknowledged);
		// With two, requests are accepted; the third proxy never agreed.
		acknowledge(g, &[PROXIES[1]]);
		let mut requests = vec![];
		for _ in 0..3 {
			requests.push(request(g));
			// Each expires before the next (a requester has at most
			// `MaxOpenRequestsPerRequester` open at once).
			run_to(System::block_number() + TIMEOUT);
		}
		run_to(System::block_number() + TIMEOUT);
		for r in requests {
			assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Expired);
		}
		// Only the proxies that agreed to serve answer for the timeouts; the
		// one that never acknowledged is untouched.
		let log = CreditLog::get();
		assert!(!log.iter().any(|(who, _)| *who == PROXIES[2]));
		assert_eq!(log.iter().filter(|(who, _)| *who == PROXIES[0]).count(), 3);
		assert_eq!(log.iter().filter(|(who, _)| *who == PROXIES[1]).count(), 3);
	});
}

#[test]
fn unacknowledged_proxy_earns_nothing() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.unacknowledged_grant(GrantScope::All, None);
		acknowledge(g, &[PROXIES[0], PROXIES[1]]);
		let r = request(g);
		// A valid fragment from the proxy that never acknowledged is refused.
		assert_noop!(
			Pre::submit_fragment(origin(PROXIES[2]), r, w.fragment(2, r)),
			Error::<Test>::NotAcknowledged
		);
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)));
		assert_eq!(CreditLog::get(), vec![(PROXIES[0], Behaviour::ReencryptionServed)]);
		// Its node is not asked to serve either.
		assert!(!Pre::grants_of_patient(&PATIENT)[0].1.acknowledged.contains(&PROXIES[2]));
	});
}

#[test]
fn patient_or_grantee_cannot_proxy_their_own_grant() {
	new_test_ext(|_| {
		let w = World::new();
		// The emergency institution registers a proxy key and names itself.
		assert_ok!(Pre::register_proxy(origin(EMERGENCY), Party::new().public()));
		let mut fragments = w.fragments(&w.emergency, 2, 3).into_inner();
		fragments[2].0 = EMERGENCY;
		assert_noop!(
			Pre::grant_access(
				origin(PATIENT),
				EMERGENCY,
				GrantScope::All,
				AccessPurpose::Emergency,
				None,
				2,
				fragments.try_into().unwrap(),
				true,
			),
			Error::<Test>::ProxyIsParty
		);
		// A grant stored before this rule (same layout, party as proxy) can
		// neither be acknowledged by the party nor earn it credit.
		let g = w.emergency_grant();
		let honest = Grants::<Test>::get(g).unwrap();
		Grants::<Test>::mutate(g, |x| x.as_mut().unwrap().proxies[2] = EMERGENCY);
		PendingAcknowledgements::<Test>::insert(EMERGENCY, g, ());
		assert_noop!(Pre::acknowledge_grant(origin(EMERGENCY), g), Error::<Test>::ProxyIsParty);
		let r = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), g, RECORD, EmergencyReason::Other, H256::zero()));
		let f = w.fragment(0, r);
		Grants::<Test>::mutate(g, |x| {
			let x = x.as_mut().unwrap();
			x.proxies[0] = EMERGENCY;
			x.acknowledged[0] = EMERGENCY;
		});
		assert_ok!(Pre::submit_fragment(origin(EMERGENCY), r, f));
		assert_eq!(Requests::<Test>::get(r).unwrap().fragments, 1);
		assert!(CreditLog::get().is_empty(), "serving one's own grant earns nothing");
		// Back to the grant as stored, for the invariants.
		Fragments::<Test>::remove(r, EMERGENCY);
		Requests::<Test>::mutate(r, |x| x.as_mut().unwrap().fragments = 0);
		PendingAcknowledgements::<Test>::remove(EMERGENCY, g);
		Grants::<Test>::mutate(g, |x| {
			let x = x.as_mut().unwrap();
			x.proxies = honest.proxies;
			x.acknowledged = honest.acknowledged;
		});
	});
}

#[test]
fn requests_on_one_grant_are_rate_limited() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let other = w.grant(GrantScope::All, None);
		request(g);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::RequestTooSoon);
		// Another grant has its own limit.
		let served = request(other);
		run_to(INTERVAL);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::RequestTooSoon);
		// (Served, that request gives the doctor's slot back: at most
		// `MaxOpenRequestsPerRequester` are open at once.)
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), served, w.fragment(0, served)));
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), served, w.fragment(1, served)));
		run_to(1 + INTERVAL);
		request(g);
		assert_eq!(Grants::<Test>::get(g).unwrap().last_request_at, Some(1 + INTERVAL));
		// Break-glass is not limited: every access is reviewed instead.
		run_to(1 + TIMEOUT);
		let eg = w.emergency_grant();
		for _ in 0..2 {
			assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::Other, H256::zero()));
		}
	});
}

#[test]
fn suspended_proxy_cannot_submit_fragment() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		Suspended::set(vec![PROXIES[0]]);
		assert_noop!(
			Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)),
			Error::<Test>::NotInstitution
		);
		assert!(CreditLog::get().is_empty());
		// Reinstated, it serves again.
		Suspended::take();
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)));
	});
}

#[test]
fn suspended_institutions_cannot_act() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.unacknowledged_grant(GrantScope::All, None);
		let eg = w.emergency_grant();
		let capsule = w.capsule();
		add_record(8, PATIENT, HOSPITAL, RecordKind::Imaging, capsule.hash().0);
		Suspended::set(vec![PROXIES[0], PROXIES[1], EMERGENCY, HOSPITAL, AUDITOR]);
		assert_noop!(Pre::acknowledge_grant(origin(PROXIES[0]), g), Error::<Test>::NotInstitution);
		assert_noop!(Pre::dispute_grant(origin(PROXIES[1]), g), Error::<Test>::NotInstitution);
		assert_noop!(
			Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::Other, H256::zero()),
			Error::<Test>::NotInstitution
		);
		assert_noop!(Pre::attach_capsule(origin(HOSPITAL), 8, capsule, Default::default()), Error::<Test>::NotInstitution);
		assert_noop!(Pre::register_proxy(origin(PROXIES[0]), Party::new().public()), Error::<Test>::NotInstitution);
		// Reinstated, the emergency department breaks the glass; a suspended
		// auditor cannot review it.
		Suspended::take();
		let r = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::Other, H256::zero()));
		Suspended::set(vec![AUDITOR]);
		assert_noop!(Pre::review_emergency(origin(AUDITOR), r, true), Error::<Test>::NotAuditor);
	});
}

#[test]
fn institution_cannot_review_its_own_break_glass() {
	new_test_ext(|_| {
		let w = World::new();
		// The auditor institution also runs an emergency department.
		let auditor = Party::new();
		assert_ok!(Pre::register_key(origin(AUDITOR), auditor.public(), auditor.verifying()));
		let eg = w.emergency_grant_to(AUDITOR, &auditor);
		let r = NextRequestId::<Test>::get();
		assert_ok!(Pre::break_glass(origin(AUDITOR), eg, RECORD, EmergencyReason::Other, H256::zero()));
		assert_noop!(Pre::review_emergency(origin(AUDITOR), r, true), Error::<Test>::CannotReviewOwnAccess);
		// Unreviewed by anyone else, it lapses and costs the institution.
		run_to(1 + WINDOW);
		assert_eq!(Requests::<Test>::get(r).unwrap().emergency.unwrap().review, Review::Lapsed);
		assert!(CreditLog::get().contains(&(AUDITOR, Behaviour::BreakGlassUnreviewed)));
	});
}

#[test]
fn disputed_grant_cannot_be_used() {
	new_test_ext(|_| {
		let w = World::new();
		// 2 of 3 proxies.
		let g = w.unacknowledged_grant(GrantScope::All, None);
		assert_noop!(Pre::acknowledge_grant(origin(PROXIES[0]), 99), Error::<Test>::GrantNotFound);
		assert_noop!(Pre::acknowledge_grant(origin(HOSPITAL), g), Error::<Test>::NotProxyOfGrant);
		assert_noop!(Pre::dispute_grant(origin(HOSPITAL), g), Error::<Test>::NotProxyOfGrant);
		acknowledge(g, &[PROXIES[0]]);
		assert!(events().contains(&Event::GrantAcknowledged { grant: g, proxy: PROXIES[0] }));
		assert!(!PendingAcknowledgements::<Test>::contains_key(PROXIES[0], g));
		assert_noop!(Pre::acknowledge_grant(origin(PROXIES[0]), g), Error::<Test>::AlreadyAcknowledged);
		// A proxy that vouched for its fragment cannot dispute it later.
		assert_noop!(Pre::dispute_grant(origin(PROXIES[0]), g), Error::<Test>::AlreadyAcknowledged);
		// One dispute: proxies 0 and 2 can still serve 2 of 3.
		assert_ok!(Pre::dispute_grant(origin(PROXIES[1]), g));
		assert!(events().contains(&Event::GrantDisputed { grant: g, proxy: PROXIES[1], unusable: false }));
		assert_eq!(Grants::<Test>::get(g).unwrap().disputed_by, None);
		assert!(!PendingAcknowledgements::<Test>::contains_key(PROXIES[1], g));
		assert!(PendingAcknowledgements::<Test>::contains_key(PROXIES[2], g));
		assert_noop!(Pre::dispute_grant(origin(PROXIES[1]), g), Error::<Test>::AlreadyDisputed);
		assert_noop!(Pre::acknowledge_grant(origin(PROXIES[1]), g), Error::<Test>::AlreadyDisputed);
		// A second dispute leaves one: the grant cannot be used.
		assert_ok!(Pre::dispute_grant(origin(PROXIES[2]), g));
		assert!(events().contains(&Event::GrantDisputed { grant: g, proxy: PROXIES[2], unusable: true }));
		assert_eq!(Grants::<Test>::get(g).unwrap().disputed_by, Some(PROXIES[2]));
		assert_eq!(PendingAcknowledgements::<Test>::iter().count(), 0);
		assert_noop!(Pre::acknowledge_grant(origin(PROXIES[2]), g), Error::<Test>::GrantDisputed);
		assert_noop!(Pre::dispute_grant(origin(PROXIES[2]), g), Error::<Test>::GrantDisputed);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::GrantDisputed);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), None);
		assert!(Pre::accessible_records(&DOCTOR).is_empty());
		assert!(CreditLog::get().is_empty(), "a dispute changes nobody's credit");

		// Answers come only while the grant is live; revocation clears disputes.
		assert_ok!(Pre::revoke_grant(origin(PATIENT), g));
		assert!(Disputes::<Test>::get(g).is_empty());
		let g3 = w.unacknowledged_grant(GrantScope::All, None);
		assert_ok!(Pre::revoke_grant(origin(PATIENT), g3));
		assert_noop!(Pre::acknowledge_grant(origin(PROXIES[0]), g3), Error::<Test>::GrantNotLive);
		assert_noop!(Pre::dispute_grant(origin(PROXIES[0]), g3), Error::<Test>::GrantNotLive);
	});
}

#[test]
fn one_proxy_cannot_veto_a_grant_the_others_serve() {
	new_test_ext(|_| {
		let w = World::new();
		// 2 of 3; proxies 0 and 1 acknowledge, a request is open.
		let g = w.unacknowledged_grant(GrantScope::All, None);
		acknowledge(g, &[PROXIES[0], PROXIES[1]]);
		let r = request(g);
		// Proxy 2, a rival that never agreed to serve, disputes: the grant and
		// its open request stand.
		assert_ok!(Pre::dispute_grant(origin(PROXIES[2]), g));
		assert!(events().contains(&Event::GrantDisputed { grant: g, proxy: PROXIES[2], unusable: false }));
		assert_eq!(Grants::<Test>::get(g).unwrap().disputed_by, None);
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)));
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), r, w.fragment(1, r)));
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Ready);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), Some(g));
	});
}

#[test]
fn suspended_proxy_is_not_blamed_for_requests_it_may_not_serve() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		// Proxy 0 is suspended by governance: it may not submit, so the
		// expiry does not cost it credit; proxy 1 stayed silent and pays.
		Suspended::set(vec![PROXIES[0]]);
		run_to(1 + TIMEOUT);
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Expired);
		assert!(!CreditLog::get().contains(&(PROXIES[0], Behaviour::ReencryptionFailed)));
		assert!(CreditLog::get().contains(&(PROXIES[1], Behaviour::ReencryptionFailed)));
	});
}

#[test]
fn issuer_earns_nothing_for_serving_its_own_records() {
	new_test_ext(|_| {
		let w = World::new();
		// The record's issuer is proxy 0 (a hospital serving records it wrote).
		RecordsMock::mutate(|m| m.get_mut(&RECORD).unwrap().issuer = PROXIES[0]);
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)));
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), r, w.fragment(1, r)));
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Ready);
		assert_eq!(CreditLog::get(), vec![(PROXIES[1], Behaviour::ReencryptionServed)]);
	});
}

/// What the record index asks before it takes an access log entry now.
fn logged_purpose(who: AccountId, record: RecordId, grant: GrantId) -> Option<AccessPurpose> {
	logged_purpose_at(who, record, grant, System::block_number())
}

/// What the record index asks before it takes an entry of a read checked at
/// block `at`.
fn logged_purpose_at(who: AccountId, record: RecordId, grant: GrantId, at: u64) -> Option<AccessPurpose> {
	<Pre as medchain_primitives::GrantedReads<AccountId, u64>>::purpose_of_read(&who, record, grant, at)
}

#[test]
fn an_access_entry_is_allowed_only_for_the_grantee_the_record_and_the_life_of_the_grant() {
	new_test_ext(|_| {
		let w = World::new();
		add_record(8, PATIENT, HOSPITAL, RecordKind::Imaging, [8; 32]);
		add_record(9, OTHER_PATIENT, HOSPITAL, RecordKind::LabResult, [9; 32]);
		let pending = w.unacknowledged_grant(GrantScope::Record(RECORD), None);
		// Not usable before its proxies acknowledged it.
		assert_eq!(logged_purpose(DOCTOR, RECORD, pending), None);
		let g = w.grant(GrantScope::Record(RECORD), Some(20));
		assert_eq!(logged_purpose(DOCTOR, RECORD, g), Some(AccessPurpose::Treatment));
		// Someone else naming the doctor's grant, another record of the same
		// patient, another patient's record, a grant that does not exist.
		assert_eq!(logged_purpose(OUTSIDER, RECORD, g), None);
		assert_eq!(logged_purpose(DOCTOR, 8, g), None);
		assert_eq!(logged_purpose(DOCTOR, 9, g), None);
		assert_eq!(logged_purpose(DOCTOR, RECORD, 99), None);
		// Expired, and revoked.
		run_to(20);
		assert_eq!(logged_purpose(DOCTOR, RECORD, g), None);
		let all = w.grant(GrantScope::All, None);
		assert_eq!(logged_purpose(DOCTOR, 8, all), Some(AccessPurpose::Treatment));
		assert_eq!(logged_purpose(DOCTOR, 9, all), None, "a grant covers only its own patient's records");
		assert_ok!(Pre::revoke_grant(origin(PATIENT), all));
		assert_eq!(logged_purpose(DOCTOR, 8, all), None);
	});
}

#[test]
fn a_read_checked_before_the_record_was_erased_is_still_judged_as_it_was_then() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::Record(RECORD), None);
		run_to(5);
		// The patient erases the record at block 5; a read the gateway checked
		// at block 4 is logged after: the record then still named the patient
		// and was confirmed, so the entry is the grant's. Later, nothing.
		erase_record(RECORD);
		run_to(6);
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, g, 4), Some(AccessPurpose::Treatment));
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, g, 5), None);
		assert_eq!(logged_purpose(DOCTOR, RECORD, g), None);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), None);
	});
}

#[test]
fn an_emergency_grant_allows_an_access_entry_only_for_the_record_whose_glass_was_broken() {
	new_test_ext(|_| {
		let w = World::new();
		add_record(8, PATIENT, HOSPITAL, RecordKind::Imaging, [8; 32]);
		let eg = w.emergency_grant();
		assert_eq!(logged_purpose(EMERGENCY, RECORD, eg), None);
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, H256::repeat_byte(1)));
		assert_eq!(logged_purpose(EMERGENCY, RECORD, eg), Some(AccessPurpose::Emergency));
		assert_eq!(Pre::readable_under(&EMERGENCY, RECORD), Some(eg));
		// The grant covers every record, but the glass was broken for one.
		assert_eq!(logged_purpose(EMERGENCY, 8, eg), None);
		assert_eq!(Pre::readable_under(&EMERGENCY, 8), None);
		// Left unserved until its deadline, the access opens nothing any more.
		run_to(1 + TIMEOUT);
		assert_eq!(logged_purpose(EMERGENCY, RECORD, eg), None);
		assert_eq!(Pre::readable_under(&EMERGENCY, RECORD), None);
	});
}

#[test]
fn a_later_unserved_break_glass_does_not_take_away_a_served_one() {
	new_test_ext(|_| {
		let w = World::new();
		let eg = w.emergency_grant();
		// A served break-glass access: the institution may read the record.
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, H256::repeat_byte(1)));
		let served = Requests::<Test>::iter_keys().max().unwrap();
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), served, w.fragment(0, served)));
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), served, w.fragment(1, served)));
		assert_eq!(Requests::<Test>::get(served).unwrap().status, RequestStatus::Ready);
		assert_eq!(BrokenGlass::<Test>::get(eg, RECORD), Some(served));
		// A second access to the same record, left unserved until it expires.
		run_to(1 + INTERVAL);
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, H256::repeat_byte(2)));
		let later = Requests::<Test>::iter_keys().max().unwrap();
		assert!(later != served);
		assert_eq!(BrokenGlass::<Test>::get(eg, RECORD), Some(served), "the served access is kept");
		run_to(2 + INTERVAL + TIMEOUT);
		assert_eq!(Requests::<Test>::get(later).unwrap().status, RequestStatus::Expired);
		assert_eq!(logged_purpose(EMERGENCY, RECORD, eg), Some(AccessPurpose::Emergency));
		assert_eq!(Pre::readable_under(&EMERGENCY, RECORD), Some(eg));
	});
}

#[test]
fn one_grant_cannot_hold_more_requests_than_ending_it_can_close() {
	new_test_ext(|_| {
		let w = World::new();
		let eg = w.emergency_grant();
		// Break-glass accesses wait no interval: three fill the grant's list.
		let glass = |n: u8| {
			Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, H256::repeat_byte(n))
		};
		for n in 0..3 {
			assert_ok!(glass(n));
		}
		assert_noop!(glass(3), Error::<Test>::TooManyGrantRequests);
		let listed = GrantOpenRequests::<Test>::get(eg).into_inner();
		assert_eq!(listed.len(), 3);
		// The patient revokes: all three end at once.
		assert_ok!(Pre::revoke_grant(origin(PATIENT), eg));
		for r in listed {
			assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Expired);
			assert!(!OpenRequests::<Test>::get().contains(&r));
		}
		assert!(!GrantOpenRequests::<Test>::contains_key(eg));
		assert!(CreditLog::get().is_empty());
	});
}

#[test]
fn one_grantee_cannot_fill_the_request_queue_nor_keep_break_glass_out() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		// The emergency institution also holds an ordinary grant.
		let h = NextGrantId::<Test>::get();
		assert_ok!(Pre::grant_access(
			origin(PATIENT),
			EMERGENCY,
			GrantScope::All,
			AccessPurpose::Treatment,
			None,
			2,
			w.fragments(&w.emergency, 2, 3),
			false,
		));
		acknowledge(h, &PROXIES);
		let eg = w.emergency_grant();
		request(g);
		run_to(1 + INTERVAL);
		request(g);
		run_to(1 + 2 * INTERVAL);
		// The doctor holds its share: a third request is refused although
		// the queue has room.
		assert_eq!(OpenRequests::<Test>::get().len(), 2);
		assert_eq!(OpenRequestsOf::<Test>::get(DOCTOR), 2);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::TooManyOwnRequests);
		// Another grantee takes the last ordinary slot: three quarters full.
		assert_ok!(Pre::request_access(origin(EMERGENCY), h, RECORD));
		assert_eq!(OpenRequests::<Test>::get().len() as u32, Pre::ordinary_capacity());
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::TooManyOpenRequests);
		// The quarter kept for break-glass lets the emergency doctor in.
		assert_ok!(Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::LifeThreatening, H256::zero()));
		assert_eq!(OpenRequests::<Test>::get().len(), 4);
		assert_eq!(OpenRequestsOf::<Test>::get(EMERGENCY), 1, "break-glass accesses are not counted");
		// Requests that expire give their slots back.
		run_to(1 + INTERVAL + TIMEOUT);
		assert_eq!(OpenRequestsOf::<Test>::get(DOCTOR), 0);
		assert!(!OpenRequestsOf::<Test>::contains_key(DOCTOR));
		assert_ok!(Pre::request_access(origin(DOCTOR), g, RECORD));
	});
}

#[test]
fn a_served_request_gives_its_slot_back() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let r = request(g);
		assert_eq!(OpenRequestsOf::<Test>::get(DOCTOR), 1);
		assert_ok!(Pre::submit_fragment(origin(PROXIES[0]), r, w.fragment(0, r)));
		assert_eq!(OpenRequestsOf::<Test>::get(DOCTOR), 1, "still open below the threshold");
		assert_ok!(Pre::submit_fragment(origin(PROXIES[1]), r, w.fragment(1, r)));
		assert_eq!(Requests::<Test>::get(r).unwrap().status, RequestStatus::Ready);
		assert!(!OpenRequestsOf::<Test>::contains_key(DOCTOR));
	});
}

#[test]
fn a_proxy_node_deletes_its_key_fragment_when_the_grant_expires() {
	new_test_ext(|h| {
		let w = World::new();
		let g = w.unacknowledged_grant(GrantScope::All, Some(10));
		let other = w.unacknowledged_grant(GrantScope::All, None);
		UintAuthorityId::set_all_keys(vec![PROXIES[0]]);
		store_secret(h, &w.proxies[0]);
		Pre::offchain_worker(1);
		assert_eq!(drain_pool(h).len(), 2, "both grants acknowledged");
		let kept = |grant| {
			OffchainStorage::get(
				&h.offchain.read().persistent_storage,
				b"",
				&crate::offchain::kfrag_key::<Test>(grant, &PROXIES[0]),
			)
		};
		assert!(kept(g).is_some() && kept(other).is_some());
		run_to(9);
		Pre::offchain_worker(9);
		assert!(kept(g).is_some(), "live until block 10");
		run_to(10);
		Pre::offchain_worker(10);
		assert_eq!(kept(g), None, "expired: deleted");
		assert!(kept(other).is_some(), "a live grant's fragment stays");
	});
}

#[test]
fn junk_grants_cannot_lock_a_doctor_out() {
	new_test_ext(|_| {
		let w = World::new();
		// Another account fills its own quota of grants to the doctor with
		// junk (fragments it made for nobody).
		let junk = Party::new();
		assert_ok!(Pre::register_key(origin(OTHER_PATIENT), junk.public(), junk.verifying()));
		for _ in 0..3 {
			assert_ok!(Pre::grant_access(
				origin(OTHER_PATIENT),
				DOCTOR,
				GrantScope::All,
				AccessPurpose::Research,
				None,
				2,
				w.fragments(&w.doctor, 2, 3),
				false,
			));
		}
		// The doctor's real patient still grants, and the grant works.
		let g = w.grant(GrantScope::Record(RECORD), None);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), Some(g));
		assert_eq!(GranteeGrants::<Test>::iter_key_prefix(DOCTOR).count(), 4);
		let r = request(g);
		assert_eq!(Requests::<Test>::get(r).unwrap().grant, g);
	});
}

#[test]
fn a_record_under_review_cannot_be_granted_requested_or_read_by_a_grantee() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::Kind(RecordKind::LabResult), None);
		let eg = w.emergency_grant();
		// A dishonest hospital publishes an entry validators have not checked
		// (its content may be missing or altered).
		set_pending(RECORD);
		assert_noop!(
			Pre::grant_access(
				origin(PATIENT),
				DOCTOR,
				GrantScope::Record(RECORD),
				AccessPurpose::Treatment,
				None,
				2,
				w.fragments(&w.doctor, 2, 3),
				false
			),
			Error::<Test>::RecordNotConfirmed
		);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::RecordNotConfirmed);
		assert_noop!(
			Pre::break_glass(origin(EMERGENCY), eg, RECORD, EmergencyReason::PatientIncapacitated, H256::zero()),
			Error::<Test>::RecordNotConfirmed
		);
		// Nor may a gateway log (and serve) a grantee's read of it.
		assert_eq!(Pre::read_allowed(&DOCTOR, RECORD, g), None);
		assert_eq!(Pre::readable_under(&DOCTOR, RECORD), None);
		assert!(Pre::accessible_records(&DOCTOR).iter().all(|(r, _)| *r != RECORD));
		// Once validators confirm it, all of that works.
		add_record(RECORD, PATIENT, HOSPITAL, RecordKind::LabResult, Capsules::<Test>::get(RECORD).unwrap().hash().0);
		assert_eq!(Pre::read_allowed(&DOCTOR, RECORD, g), Some(AccessPurpose::Treatment));
		request(g);
	});
}

#[test]
fn a_kind_scope_never_covers_an_erased_record() {
	// Erasure forgets a record's kind: no kind scope may match "no kind",
	// whatever the record was.
	let labs = GrantScope::Kind(RecordKind::LabResult);
	assert!(labs.covers(1, Some(RecordKind::LabResult)));
	assert!(!labs.covers(1, Some(RecordKind::Imaging)));
	assert!(!labs.covers(1, None));
	assert!(GrantScope::Record(1).covers(1, None) && GrantScope::All.covers(1, None), "other scopes go by id or owner");
}

#[test]
fn scope_keys_are_registered_once_and_numbered_in_order() {
	new_test_ext(|_| {
		let p = Party::new();
		let key = p.public();
		let kinds = |v: Vec<(RecordKind, UmbralPublicKey)>| BoundedVec::try_from(v).unwrap();
		let keys = |v: Vec<UmbralPublicKey>| BoundedVec::try_from(v).unwrap();
		// The account's own key first.
		assert_noop!(Pre::register_kind_keys(origin(PATIENT), kinds(vec![(RecordKind::Imaging, key)])), Error::<Test>::NoPatientKey);
		assert_noop!(Pre::add_record_keys(origin(PATIENT), 0, keys(vec![key])), Error::<Test>::NoPatientKey);
		assert_ok!(Pre::register_key(origin(PATIENT), p.public(), p.verifying()));
		assert_noop!(Pre::register_kind_keys(origin(PATIENT), kinds(vec![(RecordKind::Imaging, [0; 33])])), Error::<Test>::BadPublicKey);
		// A kind twice in one call, or again later.
		assert_noop!(
			Pre::register_kind_keys(origin(PATIENT), kinds(vec![(RecordKind::Imaging, key), (RecordKind::Imaging, key)])),
			Error::<Test>::KeyAlreadyRegistered
		);
		assert_ok!(Pre::register_kind_keys(origin(PATIENT), kinds(vec![(RecordKind::Imaging, key)])));
		assert_noop!(
			Pre::register_kind_keys(origin(PATIENT), kinds(vec![(RecordKind::Imaging, Party::new().public())])),
			Error::<Test>::KeyAlreadyRegistered
		);
		assert_eq!(KindKeys::<Test>::get(PATIENT, RecordKind::Imaging), Some(key));
		assert!(events().contains(&Event::KindKeysRegistered { who: PATIENT, kinds: 1 }));

		// One-time keys are numbered from 0, each number used once.
		assert_noop!(Pre::add_record_keys(origin(PATIENT), 1, keys(vec![key])), Error::<Test>::WrongRecordKeyIndex);
		assert_noop!(Pre::add_record_keys(origin(PATIENT), 0, keys(vec![key, [3; 33]])), Error::<Test>::BadPublicKey);
		assert_ok!(Pre::add_record_keys(origin(PATIENT), 0, keys(vec![key, key])));
		assert_noop!(Pre::add_record_keys(origin(PATIENT), 0, keys(vec![key])), Error::<Test>::WrongRecordKeyIndex);
		// The pool holds three (the mock's `MaxRecordKeys`).
		assert_noop!(Pre::add_record_keys(origin(PATIENT), 2, keys(vec![key, key])), Error::<Test>::TooManyRecordKeys);
		assert_ok!(Pre::add_record_keys(origin(PATIENT), 2, keys(vec![key])));
		assert_eq!(RecordKeyPool::<Test>::get(PATIENT).into_inner(), vec![(0, key), (1, key), (2, key)]);
		assert_eq!(NextRecordKeyIndex::<Test>::get(PATIENT), 3);
		assert!(events().contains(&Event::RecordKeysAdded { who: PATIENT, added: 1, next: 3 }));
		// Numbers never wrap around.
		NextRecordKeyIndex::<Test>::insert(DOCTOR, u32::MAX);
		assert_ok!(Pre::register_key(origin(DOCTOR), p.public(), p.verifying()));
		assert_noop!(Pre::add_record_keys(origin(DOCTOR), u32::MAX, keys(vec![key])), Error::<Test>::Overflow);
	});
}

#[test]
fn an_issuer_must_encrypt_to_the_patients_scope_keys() {
	new_test_ext(|_| {
		let w = World::new();
		let (lab, one_time) = w.register_scope_keys(1);
		let attach = |id, (root, scoped): (KeyCapsule, ScopedCapsules)| Pre::attach_capsule(origin(HOSPITAL), id, root, scoped);
		// Only to the patient's key, or without a one-time key while the
		// pool has one: refused.
		assert_noop!(attach(20, w.scoped_record(20, RecordKind::LabResult, None, None)), Error::<Test>::ScopedCapsuleMissing);
		assert_noop!(
			attach(21, w.scoped_record(21, RecordKind::LabResult, Some(&lab), None)),
			Error::<Test>::ScopedCapsuleMissing
		);
		assert_noop!(
			attach(22, w.scoped_record(22, RecordKind::LabResult, None, Some((0, &one_time[0])))),
			Error::<Test>::ScopedCapsuleMissing
		);
		// To a one-time key the pool does not hold, or to a kind key the
		// patient never registered.
		assert_noop!(
			attach(23, w.scoped_record(23, RecordKind::LabResult, Some(&lab), Some((5, &one_time[0])))),
			Error::<Test>::NoScopeKey
		);
		assert_noop!(
			attach(24, w.scoped_record(24, RecordKind::Imaging, Some(&lab), Some((0, &one_time[0])))),
			Error::<Test>::NoScopeKey
		);
		// As required: the one-time key leaves the pool with the record.
		assert_ok!(attach(26, w.scoped_record(26, RecordKind::LabResult, Some(&lab), Some((0, &one_time[0])))));
		assert!(RecordKeyPool::<Test>::get(PATIENT).is_empty());
		assert_eq!(OneTimeCapsules::<Test>::get(26).map(|c| (c.index, c.public_key)), Some((0, public(&one_time[0]))));
		assert!(KindCapsules::<Test>::contains_key(26));
		// Taken: no other record gets it (two hospitals racing for one key).
		assert_noop!(
			attach(27, w.scoped_record(27, RecordKind::LabResult, Some(&lab), Some((0, &one_time[0])))),
			Error::<Test>::NoScopeKey
		);
		// With the pool empty, the kind capsule suffices; a grant of that
		// one record then delegates from the kind key, the narrowest there is.
		assert_ok!(attach(28, w.scoped_record(28, RecordKind::LabResult, Some(&lab), None)));
		let g = w.grant_from(&lab, GrantScope::Record(28));
		assert_eq!(GrantKeys::<Test>::get(g), Some(GrantKey { slot: ScopeKeySlot::Kind, public_key: public(&lab) }));
		assert_eq!(w.decrypt(w.serve(g, 28), &w.doctor).unwrap(), w.data_key);
	});
}

#[test]
fn a_record_grant_opens_that_record_only_even_with_every_proxy_colluding() {
	new_test_ext(|_| {
		let w = World::new();
		let (lab, one_time) = w.register_scope_keys(2);
		for (id, i) in [(20, 0), (21, 1)] {
			let (root, scoped) = w.scoped_record(id, RecordKind::LabResult, Some(&lab), Some((i, &one_time[i as usize])));
			assert_ok!(Pre::attach_capsule(origin(HOSPITAL), id, root, scoped));
		}
		let g = w.grant_from(&one_time[0], GrantScope::Record(20));
		assert_eq!(
			GrantKeys::<Test>::get(g),
			Some(GrantKey { slot: ScopeKeySlot::Record, public_key: public(&one_time[0]) })
		);
		// Served on chain: proxies re-encrypt record 20's one-time capsule,
		// their fragments verify against its key, the doctor opens it.
		let request = w.serve(g, 20);
		assert_eq!(w.decrypt(request, &w.doctor).unwrap(), w.data_key);
		// All three proxies and the doctor together, off chain, on every
		// capsule of record 21 (its patient's key, its kind key, its own
		// one-time key): nothing opens.
		let capsules = [
			Capsules::<Test>::get(21).unwrap(),
			KindCapsules::<Test>::get(21).unwrap(),
			OneTimeCapsules::<Test>::get(21).unwrap().capsule,
		];
		for capsule in &capsules {
			let cfrags: Vec<Vec<u8>> = (0..3).map(|i| w.colluding_fragment(i, g, capsule)).collect();
			assert!(w.open(g, &w.doctor, capsule, &cfrags).is_err());
		}
		// The chain does not ask either: the grant covers record 20 only.
		run_to(System::block_number() + INTERVAL);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, 21), Error::<Test>::OutOfScope);
	});
}

#[test]
fn a_kind_grant_opens_that_kind_only() {
	new_test_ext(|_| {
		let w = World::new();
		let (lab, _) = w.register_scope_keys(0);
		let (root, scoped) = w.scoped_record(20, RecordKind::LabResult, Some(&lab), None);
		assert_ok!(Pre::attach_capsule(origin(HOSPITAL), 20, root, scoped));
		// No key for images: only the capsule to the patient's key.
		let (root, scoped) = w.scoped_record(22, RecordKind::Imaging, None, None);
		assert_ok!(Pre::attach_capsule(origin(HOSPITAL), 22, root, scoped));
		let g = w.grant_from(&lab, GrantScope::Kind(RecordKind::LabResult));
		assert_eq!(GrantKeys::<Test>::get(g).map(|k| k.slot), Some(ScopeKeySlot::Kind));
		assert_eq!(w.decrypt(w.serve(g, 20), &w.doctor).unwrap(), w.data_key);
		// Colluding on the image's capsule opens nothing.
		let image = Capsules::<Test>::get(22).unwrap();
		let cfrags: Vec<Vec<u8>> = (0..3).map(|i| w.colluding_fragment(i, g, &image)).collect();
		assert!(w.open(g, &w.doctor, &image, &cfrags).is_err());
		// Record 7, a lab result published before the patient had a lab key,
		// has no capsule the grant opens: not served.
		run_to(System::block_number() + INTERVAL);
		assert_noop!(Pre::request_access(origin(DOCTOR), g, RECORD), Error::<Test>::NoCapsule);
	});
}

#[test]
fn a_grant_whose_fragments_ignore_the_scope_key_is_disputed_by_its_proxies() {
	new_test_ext(|h| {
		let w = World::new();
		let (lab, _) = w.register_scope_keys(0);
		// The wallet (or a tampered one) makes the kind grant's fragments
		// from the patient's own key, which opens every record: proxies
		// check them against the kind key and refuse to serve.
		let g = NextGrantId::<Test>::get();
		assert_ok!(Pre::grant_access(
			origin(PATIENT),
			DOCTOR,
			GrantScope::Kind(RecordKind::LabResult),
			AccessPurpose::Treatment,
			None,
			2,
			w.fragments(&w.doctor, 2, 3),
			false,
		));
		assert_eq!(GrantKeys::<Test>::get(g).map(|k| k.public_key), Some(public(&lab)));
		w.proxy_0_disputes(h, g);
	});
}

#[test]
fn a_read_checked_before_the_revocation_is_logged_one_checked_after_is_not() {
	new_test_ext(|_| {
		let w = World::new();
		run_to(10);
		let g = w.grant(GrantScope::All, Some(40));
		assert_eq!(Grants::<Test>::get(g).unwrap().created_at, 10);
		// Before the grant was made: nothing to read under.
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, g, 9), None);
		run_to(20);
		assert_ok!(Pre::revoke_grant(origin(PATIENT), g));
		run_to(25);
		// A gateway that checked at 19 served a read the grant allowed then;
		// at 20 (the revocation's block) and after, it allowed nothing.
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, g, 10), Some(AccessPurpose::Treatment));
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, g, 19), Some(AccessPurpose::Treatment));
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, g, 20), None);
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, g, 24), None);
		// Nor can a read be checked at a block still to come.
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, g, 26), None);
		// Expiry ends it the same way.
		let h = w.grant(GrantScope::All, Some(30));
		run_to(35);
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, h, 29), Some(AccessPurpose::Treatment));
		assert_eq!(logged_purpose_at(DOCTOR, RECORD, h, 30), None);
		// Someone else than the grantee never could.
		assert_eq!(logged_purpose_at(PATIENT, RECORD, h, 29), None);
	});
}

#[test]
fn a_grant_of_one_record_never_silently_opens_every_record() {
	new_test_ext(|_| {
		let w = World::new();
		// Record 7 was attached before the patient kept scope keys: its only
		// capsule is to the patient's key.
		let (lab, _) = w.register_scope_keys(0);
		let grant = |scope| {
			Pre::grant_access(origin(PATIENT), DOCTOR, scope, AccessPurpose::Treatment, None, 2, w.fragments(&w.doctor, 2, 3), false)
		};
		assert_noop!(grant(GrantScope::Record(RECORD)), Error::<Test>::WiderKeyOnly);
		// Nor a kind without a key.
		assert_noop!(grant(GrantScope::Kind(RecordKind::Imaging)), Error::<Test>::WiderKeyOnly);
		// Everything, when meant, is granted as such.
		assert_ok!(grant(GrantScope::All));
		// A kind with its key delegates from it.
		let g = w.grant_from(&lab, GrantScope::Kind(RecordKind::LabResult));
		assert!(GrantKeys::<Test>::contains_key(g));
	});
}

#[test]
fn what_a_proxy_serves_off_chain_is_its_own_fragment_and_only_until_revocation() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.unacknowledged_grant(GrantScope::All, None);
		acknowledge(g, &PROXIES[..2]);
		// Only proxies that acknowledged serve the grant (and log what they
		// served): not the third, not a stranger, not for another grant.
		let serves = |p: AccountId, g: GrantId| <Pre as medchain_primitives::GrantedReads<AccountId, u64>>::serves_grant(&p, g);
		assert!(serves(PROXIES[0], g) && serves(PROXIES[1], g));
		assert!(!serves(PROXIES[2], g) && !serves(OUTSIDER, g) && !serves(PROXIES[0], g + 1));
		// What the chain hands proxy 0: its own fragment, which opens with
		// its key only, verifies against the delegation and carries the id
		// the chain binds it to; re-encrypted, the grantee opens the record.
		let a = Pre::assignment_of(&PROXIES[0], g).unwrap();
		let keys = medchain_umbral::DelegationKeys::parse(&a.verifying_key, &a.delegating_key, &a.receiving_key).unwrap();
		assert!(
			medchain_umbral::open_kfrag(&w.proxies[1].sk, &a.sealed_capsule, &a.sealed_ciphertext, &keys.delegation())
				.is_err(),
			"another proxy's key does not open it"
		);
		let kfrag =
			medchain_umbral::open_kfrag(&w.proxies[0].sk, &a.sealed_capsule, &a.sealed_ciphertext, &keys.delegation())
				.unwrap();
		assert_eq!(a.kfrag_id, Some(medchain_umbral::kfrag_id(&kfrag).unwrap()));
		assert_eq!(a.kfrag_id, KeyFragmentIds::<Test>::get(g, PROXIES[0]));
		let capsule = Pre::capsule_of(g, RECORD).unwrap();
		let parsed = medchain_umbral::capsule(&capsule.capsule).unwrap();
		let mine = medchain_umbral::reencrypt([1; 32], &parsed, kfrag).unwrap();
		let theirs = w.colluding_fragment(1, g, &capsule);
		assert_eq!(w.open(g, &w.doctor, &capsule, &[mine, theirs]).unwrap(), w.data_key.to_vec());
		assert!(Pre::assignment_of(&OUTSIDER, g).is_none());
		assert!(Pre::capsule_of(g, RECORD + 100).is_none());
		// Revoked: nothing more to open.
		assert_ok!(Pre::revoke_grant(origin(PATIENT), g));
		assert!(Pre::assignment_of(&PROXIES[0], g).is_none());
	});
}

#[test]
fn only_the_patient_requires_audit_first_for_good_and_reads_served_before_stay_loggable() {
	new_test_ext(|_| {
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let audit_first = |at: u64| <Pre as medchain_primitives::GrantedReads<AccountId, u64>>::audit_first_at(g, at);
		// The grantee (who would rather be served at once), a proxy, a stranger.
		for who in [DOCTOR, PROXIES[0], OUTSIDER] {
			assert_noop!(Pre::require_audit_first(origin(who), g), Error::<Test>::NotPatient);
		}
		assert_noop!(Pre::require_audit_first(origin(PATIENT), g + 1), Error::<Test>::GrantNotFound);
		System::set_block_number(5);
		assert_ok!(Pre::require_audit_first(origin(PATIENT), g));
		assert_eq!(events().last(), Some(&Event::AuditFirstRequired { grant: g }));
		assert!(audit_first(5) && audit_first(6));
		assert!(!audit_first(4), "a read checked before it was required stays loggable");
		// Asked again later: it already holds, from block 5.
		System::set_block_number(8);
		assert_noop!(Pre::require_audit_first(origin(PATIENT), g), Error::<Test>::AlreadyAuditFirst);
		assert!(audit_first(5));
		// A revoked grant: nothing to require.
		let other = w.grant(GrantScope::All, None);
		assert_ok!(Pre::revoke_grant(origin(PATIENT), other));
		assert_noop!(Pre::require_audit_first(origin(PATIENT), other), Error::<Test>::AlreadyRevoked);
		// A break-glass grant is never served off chain, not even by its
		// acknowledged proxies.
		let e = w.emergency_grant();
		assert!(!<Pre as medchain_primitives::GrantedReads<AccountId, u64>>::serves_grant(&PROXIES[0], e));
	});
}

#[test]
fn a_grantee_proves_a_bad_fragment_once_and_the_proxy_pays() {
	new_test_ext(|_| {
		use sp_runtime::testing::TestSignature;
		let w = World::new();
		let g = w.grant(GrantScope::All, None);
		let capsule = Pre::capsule_for(g, RECORD).unwrap();
		let good = w.colluding_fragment(0, g, &capsule);
		// Proxy 0 re-encrypts another capsule (bad for this record) and signs
		// it, as it signs every answer on the instant path.
		let bad = w.colluding_fragment(0, g, &w.capsule());
		let genesis = System::block_hash(0);
		let signed = |who: AccountId, record: RecordId, f: &[u8]| {
			TestSignature(who, crate::fragment_statement(genesis, g, record, &DOCTOR, f))
		};
		let report = |who: AccountId, grant: GrantId, proxy: AccountId, f: &[u8], sig: TestSignature| {
			Pre::report_bad_fragment(origin(who), grant, RECORD, proxy, f.to_vec().try_into().unwrap(), sig)
		};
		// Not the grantee, no such grant, not a proxy of the grant.
		assert_noop!(report(OUTSIDER, g, PROXIES[0], &bad, signed(PROXIES[0], RECORD, &bad)), Error::<Test>::NotGrantee);
		assert_noop!(report(DOCTOR, g + 9, PROXIES[0], &bad, signed(PROXIES[0], RECORD, &bad)), Error::<Test>::GrantNotFound);
		assert_noop!(report(DOCTOR, g, OUTSIDER, &bad, signed(OUTSIDER, RECORD, &bad)), Error::<Test>::NotProxyOfGrant);
		// Signed by another proxy, over another fragment, for another record:
		// not this proxy's statement.
		assert_noop!(report(DOCTOR, g, PROXIES[0], &bad, signed(PROXIES[1], RECORD, &bad)), Error::<Test>::BadProxySignature);
		assert_noop!(report(DOCTOR, g, PROXIES[0], &bad, signed(PROXIES[0], RECORD, &good)), Error::<Test>::BadProxySignature);
		assert_noop!(report(DOCTOR, g, PROXIES[0], &bad, signed(PROXIES[0], 8, &bad)), Error::<Test>::BadProxySignature);
		// A record with no capsule for the grant: nothing to check against.
		assert_noop!(
			Pre::report_bad_fragment(origin(DOCTOR), g, 99, PROXIES[0], bad.clone().try_into().unwrap(), signed(PROXIES[0], 99, &bad)),
			Error::<Test>::NoCapsule
		);
		// A good fragment is no fraud: an honest proxy cannot be framed.
		assert_noop!(report(DOCTOR, g, PROXIES[0], &good, signed(PROXIES[0], RECORD, &good)), Error::<Test>::FragmentIsValid);
		assert!(CreditLog::get().is_empty());
		// The bad one costs the proxy, once.
		assert_ok!(report(DOCTOR, g, PROXIES[0], &bad, signed(PROXIES[0], RECORD, &bad)));
		assert_eq!(CreditLog::get(), vec![(PROXIES[0], Behaviour::ReencryptionFailed)]);
		assert_eq!(events().last(), Some(&Event::BadFragmentReported { grant: g, proxy: PROXIES[0] }));
		assert_noop!(report(DOCTOR, g, PROXIES[0], &bad, signed(PROXIES[0], RECORD, &bad)), Error::<Test>::AlreadyReported);
		// Re-encryption is randomised: another bad fragment of the same fault
		// is no second charge.
		let again = w.colluding_fragment(0, g, &w.capsule());
		assert_ne!(again, bad);
		assert_noop!(report(DOCTOR, g, PROXIES[0], &again, signed(PROXIES[0], RECORD, &again)), Error::<Test>::AlreadyReported);
		// Proxy 1 passing off proxy 0's good fragment as its own: copied.
		assert_ok!(report(DOCTOR, g, PROXIES[1], &good, signed(PROXIES[1], RECORD, &good)));
		assert_eq!(CreditLog::get().last(), Some(&(PROXIES[1], Behaviour::ReencryptionFailed)));
	});
}
