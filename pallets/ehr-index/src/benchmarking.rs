//! Benchmarks of the record index (frame-benchmarking v2). They also run as
//! tests against the mock runtime.

use super::*;
use crate::Pallet as EhrIndex;
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{Get, Hooks},
	BoundedVec,
};
use frame_system::RawOrigin;

fn digest(b: u8) -> ContentDigest {
	ContentDigest { algorithm: DigestAlgorithm::Sm3, digest: [b; 32] }
}

fn pointer<T: Config>() -> StorePointer<T::MaxPointerLen> {
	let len = T::MaxPointerLen::get() as usize;
	StorePointer {
		store_id: BoundedVec::truncate_from(alloc::vec![b's'; len]),
		collection: BoundedVec::truncate_from(alloc::vec![b'c'; len]),
		object_id: [7; 12],
	}
}

/// `patient` lets `issuer` index records under its account.
fn consent<T: Config>(patient: &T::AccountId, issuer: &T::AccountId) {
	IndexConsents::<T>::insert(patient, issuer, IndexConsent { given: true, generation: 0, sponsored: false });
}

fn publish<T: Config>(issuer: &T::AccountId, b: u8) -> RecordId {
	let id = NextRecordId::<T>::get();
	let patient: T::AccountId = account("patient", 0, 0);
	consent::<T>(&patient, issuer);
	EhrIndex::<T>::publish_record(
		RawOrigin::Signed(issuer.clone()).into(),
		patient,
		RecordKind::LabResult,
		digest(b),
		pointer::<T>(),
		1024,
		H256::zero(),
	)
	.expect("benchmark issuer is a producer");
	id
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn publish_record() {
		let issuer = T::BenchmarkHelper::producer();
		let patient: T::AccountId = account("patient", 0, 0);
		consent::<T>(&patient, &issuer);
		#[extrinsic_call]
		_(
			RawOrigin::Signed(issuer),
			patient,
			RecordKind::Imaging,
			digest(1),
			pointer::<T>(),
			1024,
			H256::zero(),
		);
		assert!(Records::<T>::contains_key(0));
	}

	#[benchmark]
	fn amend_record() {
		let issuer = T::BenchmarkHelper::producer();
		let v1 = publish::<T>(&issuer, 1);
		#[extrinsic_call]
		_(RawOrigin::Signed(issuer), v1, digest(2), pointer::<T>(), 2048, H256::zero());
		assert!(Successor::<T>::contains_key(v1));
	}

	#[benchmark]
	fn vote_record() {
		let issuer = T::BenchmarkHelper::producer();
		let id = publish::<T>(&issuer, 1);
		// Every vote but the deciding one, so the call pays for the decision.
		for n in 1..T::ConfirmationsRequired::get() {
			let v = T::BenchmarkHelper::validator(n);
			EhrIndex::<T>::vote_record(RawOrigin::Signed(v).into(), id, Vote::Confirm)
				.expect("benchmark validator may vote");
		}
		let last = T::BenchmarkHelper::validator(T::ConfirmationsRequired::get());
		#[extrinsic_call]
		_(RawOrigin::Signed(last), id, Vote::Confirm);
		assert_eq!(Records::<T>::get(id).map(|r| r.status), Some(RecordStatus::Confirmed));
	}

	#[benchmark]
	fn log_access() {
		let issuer = T::BenchmarkHelper::producer();
		let id = publish::<T>(&issuer, 1);
		// The patient reads: the read a grant allows costs the index the
		// same, plus `GrantedReads::purpose_of_read_weight`, added to the
		// call's weight.
		let reader: T::AccountId = account("patient", 0, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(issuer), id, reader, AccessPurpose::PatientView, None);
		assert_eq!(AccessCount::<T>::get(id), 1);
	}

	#[benchmark]
	fn erase_record() {
		let issuer = T::BenchmarkHelper::producer();
		let id = publish::<T>(&issuer, 1);
		// Voting has ended: only decided records may be erased.
		Records::<T>::mutate(id, |r| {
			if let Some(r) = r {
				r.status = RecordStatus::Confirmed;
			}
		});
		#[extrinsic_call]
		_(RawOrigin::Signed(issuer), id);
		assert_eq!(Records::<T>::get(id).map(|r| r.status), Some(RecordStatus::Erased));
	}

	#[benchmark]
	fn expire_records(n: Linear<0, { T::MaxExpiringPerBlock::get() }>) {
		let issuer = T::BenchmarkHelper::producer();
		let at = frame_system::Pallet::<T>::block_number()
			.saturating_add(T::ConfirmationPeriod::get())
			.saturating_add(1u32.into());
		for i in 0..n {
			publish::<T>(&issuer, (i % 250) as u8);
		}
		#[block]
		{
			EhrIndex::<T>::on_initialize(at);
		}
		assert!(ExpiringAt::<T>::get(at).is_empty());
	}

	#[benchmark]
	fn consent_to_index() {
		let issuer = T::BenchmarkHelper::producer();
		let patient: T::AccountId = account("patient", 0, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(patient.clone()), issuer.clone());
		assert!(IndexConsents::<T>::get(&patient, &issuer).given);
	}

	#[benchmark]
	fn register_patient() {
		let issuer = T::BenchmarkHelper::producer();
		// The worst case: the wallet wrapped the message, so the plain one is
		// checked first in vain.
		let (patient, _) = T::BenchmarkHelper::sign_consent(b"");
		let message = EhrIndex::<T>::consent_message(&issuer, &patient, 0);
		let mut wrapped = b"<Bytes>".to_vec();
		wrapped.extend_from_slice(&message);
		wrapped.extend_from_slice(b"</Bytes>");
		let (signer, signature) = T::BenchmarkHelper::sign_consent(&wrapped);
		assert!(signer == patient, "the helper signs with one patient key");
		#[extrinsic_call]
		_(RawOrigin::Signed(issuer.clone()), patient.clone(), signature);
		assert!(IndexConsents::<T>::get(&patient, &issuer).given);
	}

	#[benchmark]
	fn withdraw_index_consent() {
		// The worst case: a consent the issuer registered, whose withdrawal
		// also lowers the patient's fee-less sponsors.
		let issuer = T::BenchmarkHelper::producer();
		let patient: T::AccountId = account("patient", 0, 0);
		IndexConsents::<T>::insert(&patient, &issuer, IndexConsent { given: true, generation: 0, sponsored: true });
		frame_system::Pallet::<T>::inc_providers(&patient);
		FreeCalls::<T>::insert(&patient, FreeCallAllowance { sponsors: 1, ..Default::default() });
		#[extrinsic_call]
		_(RawOrigin::Signed(patient.clone()), issuer.clone());
		assert_eq!(IndexConsents::<T>::get(&patient, &issuer), IndexConsent { given: false, generation: 1, sponsored: false });
		assert_eq!(FreeCalls::<T>::get(&patient).map(|a| a.sponsors), Some(0));
	}

	impl_benchmark_test_suite!(EhrIndex, crate::mock::new_bench_ext(), crate::mock::Test);
}
