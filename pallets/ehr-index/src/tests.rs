//! Tests of the record index: every call, every error, expiry, versions.

use crate::{mock::*, *};
use frame_support::{assert_noop, assert_ok, traits::Hooks};
use medchain_primitives::Behaviour;

fn publish(issuer: AccountId, b: u8) -> RecordId {
	let id = NextRecordId::<Test>::get();
	assert_ok!(EhrIndex::publish_record(
		RuntimeOrigin::signed(issuer),
		PATIENT,
		RecordKind::LabResult,
		digest(b),
		pointer(b),
		1024,
		H256::repeat_byte(b)
	));
	id
}

fn vote(validator: AccountId, id: RecordId, v: Vote) -> DispatchResultLike {
	EhrIndex::vote_record(RuntimeOrigin::signed(validator), id, v)
}

type DispatchResultLike = sp_runtime::DispatchResult;

fn run_to(n: u64) {
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		EhrIndex::on_initialize(next);
	}
}

#[test]
fn publish_record_works() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 7);
		let r = Records::<Test>::get(id).unwrap();
		assert_eq!((r.patient, r.issuer, r.status), (PATIENT, HOSPITAL, RecordStatus::Pending));
		assert_eq!((r.version, r.previous, r.size), (1, None, 1024));
		assert_eq!(r.deadline, 1 + PERIOD);
		assert_eq!(r.timestamp, NowMillis::get());
		assert_eq!(r.chain_hash, EhrIndex::chain_hash(&H256::zero(), &digest(7)));
		assert!(PatientRecords::<Test>::contains_key(PATIENT, id));
		System::assert_last_event(
			Event::RecordPublished { record_id: id, issuer: HOSPITAL, digest: digest(7) }.into(),
		);
	});
}

#[test]
fn publish_record_fails_if_not_an_active_producer() {
	new_test_ext(|| {
		let call = |who| {
			EhrIndex::publish_record(
				RuntimeOrigin::signed(who),
				PATIENT,
				RecordKind::Imaging,
				digest(1),
				pointer(1),
				10,
				H256::zero(),
			)
		};
		assert_noop!(call(VALIDATORS[0]), Error::<Test>::NotProducer);
		assert_noop!(call(PATIENT), Error::<Test>::NotProducer);
		Suspended::set(vec![HOSPITAL]);
		assert_noop!(call(HOSPITAL), Error::<Test>::NotProducer);
	});
}

#[test]
fn publish_record_fails_for_empty_content() {
	new_test_ext(|| {
		assert_noop!(
			EhrIndex::publish_record(
				RuntimeOrigin::signed(HOSPITAL),
				PATIENT,
				RecordKind::Imaging,
				digest(1),
				pointer(1),
				0,
				H256::zero()
			),
			Error::<Test>::EmptyRecord
		);
	});
}

#[test]
fn publish_record_fails_when_too_many_records_expire_together() {
	new_test_ext(|| {
		for b in 0..3 {
			publish(HOSPITAL, b);
		}
		assert_noop!(
			EhrIndex::publish_record(
				RuntimeOrigin::signed(HOSPITAL),
				PATIENT,
				RecordKind::Imaging,
				digest(9),
				pointer(9),
				10,
				H256::zero()
			),
			Error::<Test>::TooManyExpiring
		);
		// Next block has room again.
		run_to(2);
		publish(HOSPITAL, 9);
	});
}

#[test]
fn publish_record_fails_when_ids_are_exhausted() {
	new_test_ext(|| {
		NextRecordId::<Test>::put(u64::MAX);
		assert_noop!(
			EhrIndex::publish_record(
				RuntimeOrigin::signed(HOSPITAL),
				PATIENT,
				RecordKind::Imaging,
				digest(1),
				pointer(1),
				10,
				H256::zero()
			),
			Error::<Test>::Overflow
		);
	});
}

#[test]
fn two_confirmations_confirm_and_credit_the_issuer() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		assert_ok!(vote(VALIDATORS[0], id, Vote::Confirm));
		assert_eq!(Records::<Test>::get(id).unwrap().status, RecordStatus::Pending);
		assert!(CreditLog::get().is_empty());
		assert_ok!(vote(VALIDATORS[1], id, Vote::Confirm));
		let r = Records::<Test>::get(id).unwrap();
		assert_eq!((r.status, r.confirmations), (RecordStatus::Confirmed, 2));
		assert_eq!(CreditLog::get(), vec![(HOSPITAL, Behaviour::RecordConfirmed)]);
		System::assert_last_event(Event::RecordConfirmed { record_id: id }.into());
		assert_noop!(vote(VALIDATORS[2], id, Vote::Confirm), Error::<Test>::NotPending);
	});
}

#[test]
fn two_rejections_reject_and_debit_the_issuer() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		assert_ok!(vote(VALIDATORS[0], id, Vote::Reject(3)));
		assert_ok!(vote(VALIDATORS[1], id, Vote::Confirm));
		assert_ok!(vote(VALIDATORS[2], id, Vote::Reject(1)));
		let r = Records::<Test>::get(id).unwrap();
		assert_eq!((r.status, r.rejections, r.confirmations), (RecordStatus::Rejected, 2, 1));
		assert_eq!(CreditLog::get(), vec![(HOSPITAL, Behaviour::RecordRejected)]);
		assert_eq!(Votes::<Test>::get(id, VALIDATORS[0]), Some(Vote::Reject(3)));
		System::assert_last_event(Event::RecordRejected { record_id: id }.into());
	});
}

#[test]
fn vote_checks_every_condition() {
	new_test_ext(|| {
		assert_noop!(vote(VALIDATORS[0], 0, Vote::Confirm), Error::<Test>::RecordNotFound);
		let id = publish(OTHER_HOSPITAL, 1);
		assert_noop!(vote(HOSPITAL, id, Vote::Confirm), Error::<Test>::NotValidator);
		assert_noop!(vote(INSURER, id, Vote::Confirm), Error::<Test>::NotValidator);
		assert_noop!(vote(OTHER_HOSPITAL, id, Vote::Confirm), Error::<Test>::OwnRecord);
		assert_ok!(vote(VALIDATORS[0], id, Vote::Confirm));
		assert_noop!(vote(VALIDATORS[0], id, Vote::Reject(0)), Error::<Test>::AlreadyVoted);
		System::set_block_number(1 + PERIOD + 1);
		assert_noop!(vote(VALIDATORS[1], id, Vote::Confirm), Error::<Test>::VotingClosed);
	});
}

#[test]
fn undecided_records_expire_after_the_period() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		let decided = publish(HOSPITAL, 2);
		assert_ok!(vote(VALIDATORS[0], id, Vote::Confirm));
		assert_ok!(vote(VALIDATORS[0], decided, Vote::Confirm));
		assert_ok!(vote(VALIDATORS[1], decided, Vote::Confirm));
		run_to(1 + PERIOD);
		assert_eq!(Records::<Test>::get(id).unwrap().status, RecordStatus::Pending);
		run_to(2 + PERIOD);
		assert_eq!(Records::<Test>::get(id).unwrap().status, RecordStatus::Expired);
		assert_eq!(Records::<Test>::get(decided).unwrap().status, RecordStatus::Confirmed);
		System::assert_has_event(Event::RecordExpired { record_id: id }.into());
		assert!(ExpiringAt::<Test>::get(2 + PERIOD).is_empty());
		assert_noop!(vote(VALIDATORS[1], id, Vote::Confirm), Error::<Test>::NotPending);
	});
}

#[test]
fn amend_record_builds_a_hash_chain() {
	new_test_ext(|| {
		let v1 = publish(HOSPITAL, 1);
		assert_ok!(EhrIndex::amend_record(RuntimeOrigin::signed(HOSPITAL), v1, digest(2), pointer(2), 2048, H256::zero()));
		let v2 = v1 + 1;
		System::assert_last_event(Event::RecordAmended { record_id: v2, previous: v1, version: 2 }.into());
		assert_ok!(EhrIndex::amend_record(RuntimeOrigin::signed(HOSPITAL), v2, digest(3), pointer(3), 4096, H256::zero()));
		let v3 = v2 + 1;
		let r3 = Records::<Test>::get(v3).unwrap();
		assert_eq!((r3.version, r3.previous), (3, Some((v2, digest(2)))));
		let c1 = EhrIndex::chain_hash(&H256::zero(), &digest(1));
		let c2 = EhrIndex::chain_hash(&c1, &digest(2));
		assert_eq!(r3.chain_hash, EhrIndex::chain_hash(&c2, &digest(3)));
		// Old versions stay readable, newest first.
		let chain: Vec<_> = EhrIndex::version_chain(v3).into_iter().map(|(id, _)| id).collect();
		assert_eq!(chain, vec![v3, v2, v1]);
		assert_eq!(Successor::<Test>::get(v1), Some(v2));
	});
}

#[test]
fn amend_record_checks_every_condition() {
	new_test_ext(|| {
		let amend = |who, prev| {
			EhrIndex::amend_record(RuntimeOrigin::signed(who), prev, digest(9), pointer(9), 1, H256::zero())
		};
		assert_noop!(amend(HOSPITAL, 42), Error::<Test>::RecordNotFound);
		let v1 = publish(HOSPITAL, 1);
		assert_noop!(amend(VALIDATORS[0], v1), Error::<Test>::NotProducer);
		assert_noop!(amend(OTHER_HOSPITAL, v1), Error::<Test>::NotIssuer);
		assert_ok!(amend(HOSPITAL, v1));
		assert_noop!(amend(HOSPITAL, v1), Error::<Test>::NotLatestVersion);
		let rejected = publish(HOSPITAL, 2);
		assert_ok!(vote(VALIDATORS[0], rejected, Vote::Reject(1)));
		assert_ok!(vote(VALIDATORS[1], rejected, Vote::Reject(1)));
		assert_noop!(amend(HOSPITAL, rejected), Error::<Test>::CannotAmend);
	});
}

#[test]
fn log_access_emits_an_audit_event() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		assert_ok!(EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), id, INSURER, AccessPurpose::Insurance, Some(7)));
		System::assert_last_event(
			Event::RecordAccessed { record_id: id, accessor: INSURER, gateway: HOSPITAL, purpose: AccessPurpose::Insurance }
				.into(),
		);
		// The patient and the issuer read without a grant.
		assert_ok!(EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), id, PATIENT, AccessPurpose::PatientView, None));
		assert_ok!(EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), id, HOSPITAL, AccessPurpose::Treatment, None));
		assert_eq!(AccessCount::<Test>::get(id), 3);
		assert_noop!(
			EhrIndex::log_access(RuntimeOrigin::signed(PATIENT), id, PATIENT, AccessPurpose::PatientView, None),
			Error::<Test>::NotInstitution
		);
		assert_noop!(
			EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), 99, INSURER, AccessPurpose::Audit, Some(7)),
			Error::<Test>::RecordNotFound
		);
	});
}

#[test]
fn an_institution_cannot_write_access_entries_for_records_it_does_not_hold() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		// Another hospital (or the grantee itself) logs a read of hospital 1's
		// record: a forged audit entry, refused.
		for forger in [OTHER_HOSPITAL, INSURER] {
			assert_noop!(
				EhrIndex::log_access(RuntimeOrigin::signed(forger), id, INSURER, AccessPurpose::Insurance, Some(7)),
				Error::<Test>::NotIssuer
			);
		}
		assert_eq!(AccessCount::<Test>::get(id), 0);
	});
}

#[test]
fn a_gateway_cannot_log_a_read_by_someone_the_patient_never_granted() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		let other = publish(HOSPITAL, 2);
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		// No grant named, a grant of someone else, a grant for another record,
		// a grant that does not exist (revoked or expired reads the same).
		for (accessor, record, grant) in
			[(INSURER, id, None), (VALIDATORS[0], id, Some(7)), (INSURER, other, Some(7)), (INSURER, id, Some(8))]
		{
			assert_noop!(
				EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), record, accessor, AccessPurpose::Insurance, grant),
				Error::<Test>::NotReadable
			);
		}
		// A read stated for another purpose than the grant's.
		assert_noop!(
			EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), id, INSURER, AccessPurpose::Research, Some(7)),
			Error::<Test>::PurposeNotGranted
		);
		// Once the grant is gone (revoked), the same read is refused.
		assert_ok!(EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), id, INSURER, AccessPurpose::Insurance, Some(7)));
		LiveGrants::set(vec![]);
		assert_noop!(
			EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), id, INSURER, AccessPurpose::Insurance, Some(7)),
			Error::<Test>::NotReadable
		);
		assert_eq!(AccessCount::<Test>::get(id), 1);
	});
}

#[test]
fn erase_record_drops_the_pointer_and_keeps_the_digest() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		assert_ok!(vote(VALIDATORS[0], id, Vote::Confirm));
		assert_ok!(vote(VALIDATORS[1], id, Vote::Confirm));
		assert_noop!(EhrIndex::erase_record(RuntimeOrigin::signed(INSURER), id), Error::<Test>::NotAllowedToErase);
		assert_noop!(EhrIndex::erase_record(RuntimeOrigin::signed(PATIENT), 99), Error::<Test>::RecordNotFound);
		assert_ok!(EhrIndex::erase_record(RuntimeOrigin::signed(PATIENT), id));
		let r = Records::<Test>::get(id).unwrap();
		assert_eq!((r.status, r.pointer.is_none(), r.digest), (RecordStatus::Erased, true, digest(1)));
		System::assert_last_event(Event::RecordErased { record_id: id }.into());
		assert_noop!(EhrIndex::erase_record(RuntimeOrigin::signed(HOSPITAL), id), Error::<Test>::AlreadyErased);
		assert_noop!(EhrIndex::erase_record(RuntimeOrigin::signed(PATIENT), id), Error::<Test>::AlreadyErased);
	});
}

#[test]
fn an_erased_record_no_longer_links_to_its_patient() {
	new_test_ext(|| {
		// Else the index would keep "this account had a record at this
		// hospital" for ever after the record is gone.
		let kept = publish(HOSPITAL, 2);
		let id = publish(HOSPITAL, 1);
		for v in [VALIDATORS[0], VALIDATORS[1]] {
			assert_ok!(vote(v, id, Vote::Confirm));
		}
		assert_ok!(EhrIndex::erase_record(RuntimeOrigin::signed(HOSPITAL), id));
		let r = Records::<Test>::get(id).unwrap();
		assert_eq!(r.patient, EhrIndex::nobody(&HOSPITAL));
		assert_eq!(r.patient, 0, "all zero bytes");
		assert!(!PatientRecords::<Test>::contains_key(PATIENT, id));
		assert_eq!(EhrIndex::records_of_patient(&PATIENT, None, 10).iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![kept]);
		// What the record was and how large goes too: "an imaging study of
		// 80 MB at the oncology centre" says much even without a patient.
		assert_eq!((r.kind, r.size), (None, 0));
		assert!(r.pointer.is_none());
		// The digest, issuer and audit trail stay.
		assert_eq!((r.digest, r.issuer, r.confirmations), (digest(1), HOSPITAL, 2));
		assert!(<EhrIndex as RecordIndex<AccountId>>::record(id).is_some_and(|r| !r.available && r.kind.is_none()));
		let k = Records::<Test>::get(kept).unwrap();
		assert!(k.kind.is_some() && k.size > 0, "the other record keeps its kind and size");
	});
}

#[test]
fn issuer_cannot_escape_rejection_by_erasing_a_pending_record() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		assert_ok!(vote(VALIDATORS[0], id, Vote::Reject(1)));
		// The issuer sees the rejection coming and tries to erase first; nor
		// can the patient account (which the issuer may control) do it.
		assert_noop!(EhrIndex::erase_record(RuntimeOrigin::signed(HOSPITAL), id), Error::<Test>::UnderReview);
		assert_noop!(EhrIndex::erase_record(RuntimeOrigin::signed(PATIENT), id), Error::<Test>::UnderReview);
		assert_ok!(vote(VALIDATORS[1], id, Vote::Reject(1)));
		assert_eq!(Records::<Test>::get(id).unwrap().status, RecordStatus::Rejected);
		assert_eq!(CreditLog::get(), vec![(HOSPITAL, Behaviour::RecordRejected)]);
		// Once decided, the record may be erased.
		assert_ok!(EhrIndex::erase_record(RuntimeOrigin::signed(PATIENT), id));
	});
}

#[test]
fn expired_record_can_be_erased() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		assert_noop!(EhrIndex::erase_record(RuntimeOrigin::signed(HOSPITAL), id), Error::<Test>::UnderReview);
		run_to(System::block_number() + PERIOD + 1);
		assert_eq!(Records::<Test>::get(id).unwrap().status, RecordStatus::Expired);
		assert_ok!(EhrIndex::erase_record(RuntimeOrigin::signed(HOSPITAL), id));
	});
}

#[test]
fn queries_page_patients_and_list_pending_work() {
	new_test_ext(|| {
		let ids: Vec<_> = (1..=3).map(|b| publish(HOSPITAL, b)).collect();
		let page1: Vec<_> = EhrIndex::records_of_patient(&PATIENT, None, 2).into_iter().map(|(i, _)| i).collect();
		assert_eq!(page1, vec![ids[0], ids[1]]);
		let page2: Vec<_> =
			EhrIndex::records_of_patient(&PATIENT, Some(ids[1]), 2).into_iter().map(|(i, _)| i).collect();
		assert_eq!(page2, vec![ids[2]]);
		assert!(EhrIndex::records_of_patient(&7, None, 10).is_empty());
		assert_ok!(vote(VALIDATORS[0], ids[0], Vote::Confirm));
		let pending: Vec<_> = EhrIndex::pending_for(&VALIDATORS[0], 10).into_iter().map(|(i, _)| i).collect();
		assert_eq!(pending, vec![ids[1], ids[2]]);
		assert_eq!(EhrIndex::pending_for(&VALIDATORS[1], 10).len(), 3);
	});
}

#[test]
fn try_state_detects_a_broken_chain() {
	new_test_ext(|| {
		let v1 = publish(HOSPITAL, 1);
		assert_ok!(EhrIndex::amend_record(RuntimeOrigin::signed(HOSPITAL), v1, digest(2), pointer(2), 1, H256::zero()));
		Records::<Test>::mutate(v1, |r| r.as_mut().unwrap().digest = digest(5));
		assert!(EhrIndex::do_try_state().is_err());
		Records::<Test>::mutate(v1, |r| r.as_mut().unwrap().digest = digest(1));
	});
}

#[test]
fn integrity_test_passes() {
	new_test_ext(|| EhrIndex::integrity_test());
}

/// A patient with no consent in force anywhere.
const STRANGER: AccountId = 200;

fn publish_for(issuer: AccountId, patient: AccountId) -> sp_runtime::DispatchResult {
	EhrIndex::publish_record(
		RuntimeOrigin::signed(issuer),
		patient,
		RecordKind::Imaging,
		digest(9),
		pointer(9),
		10,
		H256::zero(),
	)
}

fn consent_signature(issuer: AccountId, patient: AccountId, generation: u32) -> sp_runtime::testing::TestSignature {
	signed_by(patient, &EhrIndex::consent_message(&issuer, &patient, generation))
}

#[test]
fn a_hospital_cannot_index_a_record_under_a_patient_who_never_consented() {
	new_test_ext(|| {
		let next = NextRecordId::<Test>::get();
		assert_noop!(publish_for(HOSPITAL, STRANGER), Error::<Test>::NoIndexConsent);
		assert_eq!(NextRecordId::<Test>::get(), next);
		assert!(!PatientRecords::<Test>::iter_prefix(STRANGER).any(|_| true));
		// Consent to one hospital does not let another index the patient.
		assert_ok!(EhrIndex::consent_to_index(RuntimeOrigin::signed(STRANGER), HOSPITAL));
		System::assert_last_event(Event::IndexConsentGiven { issuer: HOSPITAL }.into());
		assert_noop!(publish_for(OTHER_HOSPITAL, STRANGER), Error::<Test>::NoIndexConsent);
		assert_ok!(publish_for(HOSPITAL, STRANGER));
		assert!(PatientRecords::<Test>::contains_key(STRANGER, next));
	});
}

#[test]
fn a_hospital_registers_a_patient_with_the_patients_signed_consent() {
	new_test_ext(|| {
		assert_ok!(EhrIndex::register_patient(
			RuntimeOrigin::signed(HOSPITAL),
			STRANGER,
			consent_signature(HOSPITAL, STRANGER, 0)
		));
		System::assert_last_event(Event::IndexConsentGiven { issuer: HOSPITAL }.into());
		assert_eq!(IndexConsents::<Test>::get(STRANGER, HOSPITAL), IndexConsent { given: true, generation: 0, sponsored: true });
		assert_ok!(publish_for(HOSPITAL, STRANGER));
		// A wallet that wraps what it signs in <Bytes>…</Bytes> (the
		// polkadot.js extension's signRaw) signs a valid consent too.
		let mut wrapped = b"<Bytes>".to_vec();
		wrapped.extend(EhrIndex::consent_message(&OTHER_HOSPITAL, &STRANGER, 0));
		wrapped.extend(b"</Bytes>");
		assert_ok!(EhrIndex::register_patient(
			RuntimeOrigin::signed(OTHER_HOSPITAL),
			STRANGER,
			signed_by(STRANGER, &wrapped)
		));
		assert_ok!(publish_for(OTHER_HOSPITAL, STRANGER));
	});
}

#[test]
fn a_hospital_cannot_forge_or_borrow_a_consent() {
	new_test_ext(|| {
		let register = |issuer, signature| EhrIndex::register_patient(RuntimeOrigin::signed(issuer), STRANGER, signature);
		// Signed by someone else (the hospital itself).
		let forged = signed_by(HOSPITAL, &EhrIndex::consent_message(&HOSPITAL, &STRANGER, 0));
		assert_noop!(register(HOSPITAL, forged), Error::<Test>::BadConsentSignature);
		// The patient's consent to another hospital.
		assert_noop!(register(HOSPITAL, consent_signature(OTHER_HOSPITAL, STRANGER, 0)), Error::<Test>::BadConsentSignature);
		// A consent for another patient, or a message without the domain tag.
		assert_noop!(register(HOSPITAL, consent_signature(HOSPITAL, PATIENT, 0)), Error::<Test>::BadConsentSignature);
		let untagged = (frame_system::Pallet::<Test>::block_hash(0), HOSPITAL, STRANGER, 0u32).encode();
		assert_noop!(register(HOSPITAL, signed_by(STRANGER, &untagged)), Error::<Test>::BadConsentSignature);
		// Only producers register patients.
		assert_noop!(register(INSURER, consent_signature(INSURER, STRANGER, 0)), Error::<Test>::NotProducer);
		assert_eq!(IndexConsents::<Test>::get(STRANGER, HOSPITAL), IndexConsent::default());
	});
}

#[test]
fn a_withdrawn_consent_cannot_be_replayed() {
	new_test_ext(|| {
		let signed = consent_signature(HOSPITAL, STRANGER, 0);
		assert_ok!(EhrIndex::register_patient(RuntimeOrigin::signed(HOSPITAL), STRANGER, signed.clone()));
		let id = NextRecordId::<Test>::get();
		assert_ok!(publish_for(HOSPITAL, STRANGER));
		assert_ok!(EhrIndex::withdraw_index_consent(RuntimeOrigin::signed(STRANGER), HOSPITAL));
		System::assert_last_event(Event::IndexConsentWithdrawn { issuer: HOSPITAL }.into());
		assert_noop!(publish_for(HOSPITAL, STRANGER), Error::<Test>::NoIndexConsent);
		// The hospital kept the signed consent and submits it again.
		assert_noop!(
			EhrIndex::register_patient(RuntimeOrigin::signed(HOSPITAL), STRANGER, signed),
			Error::<Test>::BadConsentSignature
		);
		// The record published with consent stays, and may be corrected.
		assert!(Records::<Test>::contains_key(id));
		assert_ok!(EhrIndex::amend_record(RuntimeOrigin::signed(HOSPITAL), id, digest(10), pointer(10), 20, H256::zero()));
		// A new consent names the new generation.
		assert_ok!(EhrIndex::register_patient(
			RuntimeOrigin::signed(HOSPITAL),
			STRANGER,
			consent_signature(HOSPITAL, STRANGER, 1)
		));
		assert_ok!(publish_for(HOSPITAL, STRANGER));
	});
}

#[test]
fn consent_calls_refuse_what_does_not_apply() {
	new_test_ext(|| {
		// Consent to an account that is not a producer (a typo, an insurer).
		assert_noop!(EhrIndex::consent_to_index(RuntimeOrigin::signed(STRANGER), INSURER), Error::<Test>::NotProducer);
		assert_noop!(EhrIndex::consent_to_index(RuntimeOrigin::signed(STRANGER), 77), Error::<Test>::NotProducer);
		// Nor does withdrawing from one write an entry.
		assert_noop!(
			EhrIndex::withdraw_index_consent(RuntimeOrigin::signed(STRANGER), 77),
			Error::<Test>::NotProducer
		);
		// Giving twice, either way.
		assert_ok!(EhrIndex::consent_to_index(RuntimeOrigin::signed(STRANGER), HOSPITAL));
		assert_noop!(
			EhrIndex::consent_to_index(RuntimeOrigin::signed(STRANGER), HOSPITAL),
			Error::<Test>::AlreadyConsented
		);
		assert_noop!(
			EhrIndex::register_patient(RuntimeOrigin::signed(HOSPITAL), STRANGER, consent_signature(HOSPITAL, STRANGER, 0)),
			Error::<Test>::AlreadyConsented
		);
		// The generation counter does not wrap around to an old consent.
		IndexConsents::<Test>::insert(STRANGER, OTHER_HOSPITAL, IndexConsent { given: true, generation: u32::MAX, sponsored: false });
		assert_noop!(
			EhrIndex::withdraw_index_consent(RuntimeOrigin::signed(STRANGER), OTHER_HOSPITAL),
			Error::<Test>::Overflow
		);
	});
}

#[test]
fn a_patient_voids_a_consent_code_the_hospital_has_not_used_yet() {
	new_test_ext(|| {
		// The patient signed a code, then thinks better of it (or it leaked)
		// before the hospital submitted it.
		let code = consent_signature(HOSPITAL, STRANGER, 0);
		assert_ok!(EhrIndex::withdraw_index_consent(RuntimeOrigin::signed(STRANGER), HOSPITAL));
		System::assert_last_event(Event::IndexConsentWithdrawn { issuer: HOSPITAL }.into());
		assert_noop!(
			EhrIndex::register_patient(RuntimeOrigin::signed(HOSPITAL), STRANGER, code),
			Error::<Test>::BadConsentSignature
		);
		assert_noop!(publish_for(HOSPITAL, STRANGER), Error::<Test>::NoIndexConsent);
	});
}

#[test]
fn a_consent_signed_for_another_chain_registers_no_one_here() {
	new_test_ext(|| {
		// Signed on a chain whose genesis is this one's…
		let here = consent_signature(HOSPITAL, STRANGER, 0);
		// …is worthless on a chain with another genesis (a test network, a
		// fork of the consortium), and the reverse.
		frame_system::BlockHash::<Test>::insert(0, H256::repeat_byte(0xee));
		assert_noop!(
			EhrIndex::register_patient(RuntimeOrigin::signed(HOSPITAL), STRANGER, here),
			Error::<Test>::BadConsentSignature
		);
		assert_ok!(EhrIndex::register_patient(
			RuntimeOrigin::signed(HOSPITAL),
			STRANGER,
			consent_signature(HOSPITAL, STRANGER, 0)
		));
	});
}

/// A fee extension for an account without funds: every transaction it
/// judges cannot pay.
#[derive(codec::Encode, codec::Decode, codec::DecodeWithMemTracking, Clone, Eq, PartialEq, Debug, scale_info::TypeInfo)]
struct NoFunds;

impl sp_runtime::traits::TransactionExtension<RuntimeCall> for NoFunds {
	const IDENTIFIER: &'static str = "NoFunds";
	type Implicit = ();
	type Val = ();
	type Pre = ();
	fn weight(&self, _: &RuntimeCall) -> frame_support::weights::Weight {
		frame_support::weights::Weight::zero()
	}
	fn validate(
		&self,
		_: RuntimeOrigin,
		_: &RuntimeCall,
		_: &sp_runtime::traits::DispatchInfoOf<RuntimeCall>,
		_: usize,
		_: (),
		_: &impl sp_runtime::traits::Implication,
		_: frame_support::pallet_prelude::TransactionSource,
	) -> sp_runtime::traits::ValidateResult<(), RuntimeCall> {
		Err(sp_runtime::transaction_validity::InvalidTransaction::Payment.into())
	}
	sp_runtime::impl_tx_ext_default!(RuntimeCall; prepare);
}

/// Submits `call` signed by `who` through [`extension::FreePatientCalls`]
/// around a fee extension `who` cannot pay: `Err` when the transaction
/// would be refused, else the dispatch's own outcome.
fn submit_unfunded(who: AccountId, call: RuntimeCall) -> Result<sp_runtime::DispatchResult, ()> {
	use sp_runtime::traits::DispatchTransaction;
	let info = frame_support::dispatch::GetDispatchInfo::get_dispatch_info(&call);
	extension::FreePatientCalls::<Test, NoFunds>::from(NoFunds)
		.dispatch_transaction(RuntimeOrigin::signed(who), call, &info, 0, 0)
		.map(|r| r.map(|_| ()).map_err(|e| e.error))
		.map_err(|_| ())
}

fn erase(id: RecordId) -> RuntimeCall {
	RuntimeCall::EhrIndex(Call::erase_record { record_id: id })
}

#[test]
fn registration_makes_an_unfunded_patient_account_exist_and_fee_less() {
	new_test_ext(|| {
		assert!(!System::account_exists(&STRANGER));
		assert!(!EhrIndex::free_call_available(&STRANGER));
		assert_ok!(EhrIndex::register_patient(
			RuntimeOrigin::signed(HOSPITAL),
			STRANGER,
			consent_signature(HOSPITAL, STRANGER, 0)
		));
		// The account exists without a balance, so its nonce is kept.
		assert!(System::account_exists(&STRANGER));
		assert!(EhrIndex::free_call_available(&STRANGER));
		assert_eq!(FreeCalls::<Test>::get(STRANGER), Some(FreeCallAllowance { sponsors: 1, window_start: 0, used: 0 }));
		// A second hospital is a second sponsor; the reference is not taken twice.
		assert_ok!(EhrIndex::register_patient(
			RuntimeOrigin::signed(OTHER_HOSPITAL),
			STRANGER,
			consent_signature(OTHER_HOSPITAL, STRANGER, 0)
		));
		assert_eq!(FreeCalls::<Test>::get(STRANGER).unwrap().sponsors, 2);
		assert_eq!(System::providers(&STRANGER), 1);
	});
}

#[test]
fn an_account_nobody_registered_cannot_call_for_free() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		// A stranger's patient call goes to the fee extension, which refuses it.
		assert_eq!(submit_unfunded(STRANGER, erase(id)), Err(()));
		assert_eq!(
			submit_unfunded(STRANGER, RuntimeCall::EhrIndex(Call::withdraw_index_consent { issuer: HOSPITAL })),
			Err(())
		);
		assert_eq!(FreeCalls::<Test>::get(STRANGER), None);
	});
}

#[test]
fn a_registered_patient_pays_for_calls_that_are_not_patient_calls() {
	new_test_ext(|| {
		// A hospital's call made from a patient's account is not free.
		let publish = RuntimeCall::EhrIndex(Call::publish_record {
			patient: PATIENT,
			kind: RecordKind::LabResult,
			digest: digest(1),
			pointer: pointer(1),
			size: 1,
			capsule_hash: H256::zero(),
		});
		assert_eq!(submit_unfunded(PATIENT, publish), Err(()));
		assert_eq!(FreeCalls::<Test>::get(PATIENT).unwrap().used, 0);
	});
}

#[test]
fn a_patient_cannot_spam_free_calls_beyond_its_allowance() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		// Calls that fail in dispatch still use the allowance: failing for
		// free would be free block space.
		for _ in 0..3 {
			assert_eq!(submit_unfunded(PATIENT, erase(id)), Ok(Err(Error::<Test>::UnderReview.into())));
		}
		assert_eq!(FreeCalls::<Test>::get(PATIENT).unwrap().used, 3);
		assert!(!EhrIndex::free_call_available(&PATIENT));
		assert_eq!(submit_unfunded(PATIENT, erase(id)), Err(()));
		// The next window gives the allowance back.
		System::set_block_number(1 + FREE_CALL_WINDOW);
		assert!(EhrIndex::free_call_available(&PATIENT));
		assert_eq!(submit_unfunded(PATIENT, erase(99)), Ok(Err(Error::<Test>::RecordNotFound.into())));
		assert_eq!(
			FreeCalls::<Test>::get(PATIENT),
			Some(FreeCallAllowance { sponsors: 2, window_start: 1 + FREE_CALL_WINDOW, used: 1 })
		);
	});
}

#[test]
fn withdrawing_from_every_issuer_ends_free_calls() {
	new_test_ext(|| {
		let withdraw = |issuer| RuntimeCall::EhrIndex(Call::withdraw_index_consent { issuer });
		assert_eq!(submit_unfunded(PATIENT, withdraw(HOSPITAL)), Ok(Ok(())));
		assert_eq!(FreeCalls::<Test>::get(PATIENT).unwrap().sponsors, 1);
		// Withdrawing twice is no second sponsor less.
		assert_eq!(submit_unfunded(PATIENT, withdraw(HOSPITAL)), Ok(Ok(())));
		assert_eq!(FreeCalls::<Test>::get(PATIENT).unwrap().sponsors, 1);
		assert_eq!(submit_unfunded(PATIENT, withdraw(OTHER_HOSPITAL)), Ok(Ok(())));
		assert_eq!(FreeCalls::<Test>::get(PATIENT).unwrap().sponsors, 0);
		assert!(!EhrIndex::free_call_available(&PATIENT));
		assert_eq!(submit_unfunded(PATIENT, withdraw(OTHER_HOSPITAL)), Err(()));
		// The account stays (its nonce too).
		assert!(System::account_exists(&PATIENT));
	});
}

#[test]
fn a_patient_consenting_by_itself_gets_no_free_calls() {
	new_test_ext(|| {
		// Otherwise any account would be fee-less for the price of one call
		// (and could move its funds out after).
		assert_ok!(EhrIndex::consent_to_index(RuntimeOrigin::signed(STRANGER), HOSPITAL));
		assert_eq!(IndexConsents::<Test>::get(STRANGER, HOSPITAL), IndexConsent { given: true, generation: 0, sponsored: false });
		assert_eq!(FreeCalls::<Test>::get(STRANGER), None);
		assert_eq!(submit_unfunded(STRANGER, RuntimeCall::EhrIndex(Call::withdraw_index_consent { issuer: HOSPITAL })), Err(()));
		// A hospital's registration after a withdrawal sponsors it.
		assert_ok!(EhrIndex::withdraw_index_consent(RuntimeOrigin::signed(STRANGER), HOSPITAL));
		assert_ok!(EhrIndex::register_patient(
			RuntimeOrigin::signed(HOSPITAL),
			STRANGER,
			consent_signature(HOSPITAL, STRANGER, 1)
		));
		assert!(EhrIndex::free_call_available(&STRANGER));
	});
}

#[test]
fn free_calls_wait_in_the_pool_one_at_a_time() {
	new_test_ext(|| {
		use sp_runtime::traits::DispatchTransaction;
		// Else an account could queue any number of free calls, all valid
		// against the same state, and those beyond its allowance would be
		// dropped unpaid at inclusion: free gossip and pool space.
		let call = erase(99);
		let info = frame_support::dispatch::GetDispatchInfo::get_dispatch_info(&call);
		let provides = || {
			extension::FreePatientCalls::<Test, NoFunds>::from(NoFunds)
				.validate_only(
					RuntimeOrigin::signed(PATIENT),
					&call,
					&info,
					0,
					frame_support::pallet_prelude::TransactionSource::External,
					0,
				)
				.map(|(valid, ..)| valid.provides)
				.expect("a registered patient's call is valid")
		};
		let first = provides();
		assert_eq!(first.len(), 1);
		assert_eq!(provides(), first, "a second call waiting at once provides the same tag: the pool keeps one");
		assert!(submit_unfunded(PATIENT, call.clone()).is_ok());
		assert_ne!(provides(), first, "once the first is in a block, the next may wait");
	});
}

/// A read of `record_id` by `accessor` under `grant`, checked at `checked_at`,
/// with id `read`.
fn read(read: u8, record_id: RecordId, accessor: AccountId, grant: Option<u64>, checked_at: u64) -> ReadEntry<AccountId, u64> {
	ReadEntry {
		read: H256([read; 32]),
		record_id,
		accessor,
		purpose: AccessPurpose::Insurance,
		grant,
		checked_at,
		served: Served::Record,
	}
}

/// As [`read`], a key fragment a proxy served.
fn fragment_read(
	read: u8,
	record_id: RecordId,
	accessor: AccountId,
	grant: Option<u64>,
	checked_at: u64,
) -> ReadEntry<AccountId, u64> {
	ReadEntry { served: Served::KeyFragment, ..self::read(read, record_id, accessor, grant, checked_at) }
}

fn log_reads(gateway: AccountId, entries: Vec<ReadEntry<AccountId, u64>>) -> DispatchResultLike {
	EhrIndex::log_reads(RuntimeOrigin::signed(gateway), entries.try_into().unwrap())
}

#[test]
fn a_read_served_before_the_revocation_is_logged_after_it_one_checked_after_it_is_not() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		run_to(5);
		// The patient revokes at block 5; the gateway served a read it checked
		// at block 4 and logs it at block 6: allowed, it was read under the
		// grant.
		EndedGrants::set(vec![(7, 5)]);
		run_to(6);
		assert_ok!(log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 4)]));
		System::assert_last_event(
			Event::RecordRead {
				record_id: id,
				accessor: INSURER,
				gateway: HOSPITAL,
				purpose: AccessPurpose::Insurance,
				checked_at: 4,
			}
			.into(),
		);
		// A read "checked" at block 5 or later was served after the
		// revocation: refused, whatever the gateway claims.
		assert_noop!(log_reads(HOSPITAL, vec![read(2, id, INSURER, Some(7), 5)]), Error::<Test>::NotReadable);
		assert_noop!(log_reads(HOSPITAL, vec![read(3, id, INSURER, Some(7), 6)]), Error::<Test>::NotReadable);
		assert_eq!(AccessCount::<Test>::get(id), 1);
	});
}

#[test]
fn erasing_a_record_does_not_wipe_the_reads_served_before_it_from_the_trail() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		for v in [VALIDATORS[0], VALIDATORS[1]] {
			assert_ok!(vote(v, id, Vote::Confirm));
		}
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		run_to(5);
		// The gateway served the patient and the insurer, checked at block 4;
		// the patient erases the record at block 5, before they are logged.
		assert_ok!(EhrIndex::erase_record(RuntimeOrigin::signed(PATIENT), id));
		assert_eq!(ErasedAt::<Test>::get(id), Some(5));
		let as_of = |at| <EhrIndex as RecordIndex<AccountId>>::record_as_of(id, at).unwrap();
		assert_eq!((as_of(4).patient, as_of(4).confirmed, as_of(4).kind.is_some()), (PATIENT, true, true));
		assert_eq!((as_of(5).patient, as_of(5).confirmed, as_of(5).kind), (EhrIndex::nobody(&HOSPITAL), false, None));
		assert_eq!(as_of(u64::MAX).patient, EhrIndex::nobody(&HOSPITAL));
		run_to(6);
		// Both land: judged against the record as it stood at block 4.
		assert_ok!(log_reads(HOSPITAL, vec![read(1, id, PATIENT, None, 4), read(2, id, INSURER, Some(7), 4)]));
		assert_eq!(AccessCount::<Test>::get(id), 2);
		// A read "checked" at the erasure's block or later names no patient.
		assert_noop!(log_reads(HOSPITAL, vec![read(3, id, PATIENT, None, 5)]), Error::<Test>::NotReadable);
		// What the record named is kept only while such reads may be logged.
		assert!(ErasedLinks::<Test>::contains_key(5, id));
		// The last block at which a read checked at block 4 is logged.
		run_to(4 + LOG_DELAY);
		assert_ok!(log_reads(HOSPITAL, vec![read(4, id, INSURER, Some(7), 4)]));
		assert_eq!(AccessCount::<Test>::get(id), 3);
		run_to(5 + LOG_DELAY);
		assert!(ErasedLinks::<Test>::contains_key(5, id));
		run_to(5 + LOG_DELAY + 1);
		assert!(!ErasedLinks::<Test>::contains_key(5, id), "forgotten with the reads checked at block 5");
		assert_eq!(ErasedAt::<Test>::get(id), None);
		assert_eq!(as_of(4).patient, EhrIndex::nobody(&HOSPITAL));
		assert_ok!(EhrIndex::do_try_state());
	});
}

#[test]
fn a_gateway_cannot_log_reads_of_records_it_does_not_hold_nor_date_them_at_will() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		run_to(20);
		// Another institution, or anyone not an institution.
		assert_noop!(log_reads(OTHER_HOSPITAL, vec![read(1, id, INSURER, Some(7), 19)]), Error::<Test>::NotIssuer);
		assert_noop!(log_reads(PATIENT, vec![read(1, id, INSURER, Some(7), 19)]), Error::<Test>::NotInstitution);
		// Checked at a block to come, or longer ago than `MaxLogDelay`.
		assert_noop!(log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 21)]), Error::<Test>::CheckedInFuture);
		assert_noop!(
			log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 20 - LOG_DELAY - 1)]),
			Error::<Test>::LoggedTooLate
		);
		assert_ok!(log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 20 - LOG_DELAY)]));
		// Nobody's grant, another purpose, a record that does not exist.
		assert_noop!(log_reads(HOSPITAL, vec![read(2, id, VALIDATORS[0], Some(7), 19)]), Error::<Test>::NotReadable);
		let mut research = read(2, id, INSURER, Some(7), 19);
		research.purpose = AccessPurpose::Research;
		assert_noop!(log_reads(HOSPITAL, vec![research]), Error::<Test>::PurposeNotGranted);
		assert_noop!(log_reads(HOSPITAL, vec![read(2, 99, INSURER, Some(7), 19)]), Error::<Test>::RecordNotFound);
		// All or nothing: a good entry beside a bad one is not logged either.
		assert_noop!(
			log_reads(HOSPITAL, vec![read(3, id, INSURER, Some(7), 19), read(4, id, VALIDATORS[0], Some(7), 19)]),
			Error::<Test>::NotReadable
		);
		// The patient and the issuer read without a grant.
		assert_ok!(log_reads(HOSPITAL, vec![read(3, id, PATIENT, None, 19), read(4, id, HOSPITAL, None, 19)]));
		assert_eq!(AccessCount::<Test>::get(id), 3);
	});
}

#[test]
fn only_a_proxy_of_the_grant_logs_key_fragments_and_only_for_its_grantee() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		let proxy = VALIDATORS[0];
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		GrantProxies::set(vec![(7, proxy)]);
		EndedGrants::set(vec![(7, 16)]);
		run_to(20);
		// An institution that is not one of the grant's proxies, the record's
		// issuer among them, cannot write that a fragment was served.
		for stranger in [OTHER_HOSPITAL, HOSPITAL, VALIDATORS[1]] {
			assert_noop!(
				log_reads(stranger, vec![fragment_read(1, id, INSURER, Some(7), 15)]),
				Error::<Test>::NotGrantProxy
			);
		}
		// Nor can the proxy name no grant, or claim it served the record.
		assert_noop!(log_reads(proxy, vec![fragment_read(1, id, INSURER, None, 15)]), Error::<Test>::NotGrantProxy);
		assert_noop!(log_reads(proxy, vec![read(1, id, INSURER, Some(7), 15)]), Error::<Test>::NotIssuer);
		// Fragments are for the grantee only: not even the patient, who needs
		// none, is logged as having received one.
		assert_noop!(log_reads(proxy, vec![fragment_read(1, id, PATIENT, Some(7), 15)]), Error::<Test>::NotReadable);
		// Served at or after the grant's end: refused.
		assert_noop!(log_reads(proxy, vec![fragment_read(1, id, INSURER, Some(7), 16)]), Error::<Test>::NotReadable);
		System::reset_events();
		assert_ok!(log_reads(proxy, vec![fragment_read(1, id, INSURER, Some(7), 15)]));
		assert_eq!(
			System::events().into_iter().map(|r| r.event).collect::<Vec<_>>(),
			vec![RuntimeEvent::EhrIndex(Event::KeyFragmentServed {
				record_id: id,
				accessor: INSURER,
				proxy,
				grant: 7,
				checked_at: 15
			})]
		);
		// A fragment is not a read of the record's content.
		assert_eq!(AccessCount::<Test>::get(id), 0);
		// The issuer's gateway logs the content read with the same id: its own.
		assert_ok!(log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 15)]));
		assert_eq!(AccessCount::<Test>::get(id), 1);
	});
}

#[test]
fn no_read_is_served_first_under_a_grant_whose_patient_requires_audit_first() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		let proxy = VALIDATORS[0];
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		GrantProxies::set(vec![(7, proxy)]);
		AuditFirstGrants::set(vec![(7, 15)]);
		run_to(20);
		// Served first at or after the block the patient required audit
		// first: neither the gateway nor a proxy can log it.
		assert_noop!(log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 15)]), Error::<Test>::AuditFirst);
		assert_noop!(log_reads(proxy, vec![fragment_read(1, id, INSURER, Some(7), 16)]), Error::<Test>::AuditFirst);
		// Served before it: still logged, nothing lost.
		assert_ok!(log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 14)]));
		assert_ok!(log_reads(proxy, vec![fragment_read(1, id, INSURER, Some(7), 14)]));
		// The audit-first path itself is open: logged before serving.
		assert_ok!(EhrIndex::log_access(RuntimeOrigin::signed(HOSPITAL), id, INSURER, AccessPurpose::Insurance, Some(7)));
		assert_eq!(AccessCount::<Test>::get(id), 2);
	});
}

#[test]
fn a_read_submitted_again_after_a_crash_is_logged_once() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		LiveGrants::set(vec![(7, INSURER, id, AccessPurpose::Insurance)]);
		run_to(5);
		assert_ok!(log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 4)]));
		// The gateway did not learn the outcome and submits it again, with a
		// new read beside it: only the new one is logged.
		System::reset_events();
		assert_ok!(log_reads(HOSPITAL, vec![read(1, id, INSURER, Some(7), 4), read(2, id, INSURER, Some(7), 4)]));
		assert_eq!(System::events().len(), 1, "one new entry");
		assert_eq!(AccessCount::<Test>::get(id), 2);
		// Another gateway's read with the same id is its own (it cannot
		// suppress this gateway's entries by front-running their ids).
		let theirs = publish(OTHER_HOSPITAL, 2);
		assert_ok!(log_reads(OTHER_HOSPITAL, vec![read(3, theirs, PATIENT, None, 3)]));
		assert_ok!(log_reads(HOSPITAL, vec![read(3, id, PATIENT, None, 3)]));
		assert_eq!(AccessCount::<Test>::get(id), 3);
	});
}

#[test]
fn reads_checked_at_one_block_are_bounded_per_gateway_and_forgotten_once_too_late() {
	new_test_ext(|| {
		let id = publish(HOSPITAL, 1);
		let theirs = publish(OTHER_HOSPITAL, 2);
		run_to(5);
		assert_ok!(log_reads(HOSPITAL, (1..=3).map(|i| read(i, id, PATIENT, None, 4)).collect()));
		// The mock allows a gateway 3 reads checked at one block.
		assert_noop!(log_reads(HOSPITAL, vec![read(9, id, PATIENT, None, 4)]), Error::<Test>::TooManyReads);
		assert_ok!(log_reads(HOSPITAL, vec![read(9, id, PATIENT, None, 5)]));
		// Another gateway's allowance is its own: one institution filling
		// its allowance with reads of its own records leaves the others'.
		assert_ok!(log_reads(OTHER_HOSPITAL, (1..=3).map(|i| read(i, theirs, PATIENT, None, 4)).collect()));
		assert_eq!(ReadsCheckedAt::<Test>::get(4, HOSPITAL), 3);
		// Once no read checked at block 4 can be logged any more, the chain
		// forgets them, a bounded number per block (a resubmission would be
		// refused as too late anyway).
		run_to(4 + LOG_DELAY);
		assert_eq!(LoggedReads::<Test>::iter_prefix(4).count(), 6);
		run_to(4 + LOG_DELAY + 1);
		// (At most three per block from a database; the test's in-memory
		// state gives all up at once.)
		assert!(LoggedReads::<Test>::iter_prefix(4).count() <= 3);
		assert_eq!(LoggedReads::<Test>::iter_prefix(5).count(), 1, "block 5's reads may still be logged");
		run_to(4 + LOG_DELAY + 3);
		assert_eq!(LoggedReads::<Test>::iter_prefix(4).count(), 0);
		assert_eq!(ReadsCheckedAt::<Test>::iter_prefix(4).count(), 0);
		assert_noop!(log_reads(HOSPITAL, vec![read(1, id, PATIENT, None, 4)]), Error::<Test>::LoggedTooLate);
	});
}
