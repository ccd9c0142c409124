//! Fee-less calls for registered patients.
//!
//! A patient appears on chain under a pseudonym per hospital, and funding
//! each pseudonym would link them (one payer, one transfer each). So a
//! pseudonym that an institution registered (an index consent in force,
//! [`crate::Pallet::register_patient`]) makes its own patient calls (the
//! runtime's [`crate::Config::PatientCalls`]: keys, grants, revocations,
//! withdrawals, erasure) without fees, up to
//! [`crate::Config::FreeCallsPerWindow`] per
//! [`crate::Config::FreeCallWindow`] blocks. Registration gives the account
//! a provider reference, so it exists (and keeps its nonce) without a
//! balance.
//!
//! [`FreePatientCalls`] wraps the runtime's fee extension
//! (`ChargeTransactionPayment`): for such a call it skips the fee and counts
//! the call in `prepare`, before dispatch and outside the call's storage
//! layer, so a call that fails still counts. In the transaction pool a free
//! call provides a tag naming its account and its place in the allowance,
//! so an account has one free call waiting at a time (the pool cannot be
//! filled with calls beyond the allowance that would be dropped unpaid at
//! inclusion). A tip on a free call is neither charged nor used. Any other
//! transaction pays as before. It encodes, and shows in metadata, exactly as
//! the extension it wraps, so wallets and clients build transactions as
//! they did.

use crate::{Config, Pallet};
use codec::{Decode, DecodeWithMemTracking, Encode};
use core::marker::PhantomData;
use frame_support::{
	dispatch::{DispatchInfo, DispatchResult, PostDispatchInfo},
	pallet_prelude::{TransactionSource, TransactionValidityError, ValidTransaction, Weight},
	traits::{Contains, Get},
};
use scale_info::TypeInfo;
use sp_runtime::traits::{
	DispatchInfoOf, Dispatchable, Implication, PostDispatchInfoOf, TransactionExtension, ValidateResult,
};

/// The fee extension `S`, skipped for a registered patient's own calls
/// within its allowance (see the module docs).
#[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq, TypeInfo)]
#[scale_info(skip_type_params(T))]
pub struct FreePatientCalls<T, S>(pub S, PhantomData<T>);

impl<T, S> From<S> for FreePatientCalls<T, S> {
	fn from(inner: S) -> Self {
		Self(inner, PhantomData)
	}
}

impl<T, S: core::fmt::Debug> core::fmt::Debug for FreePatientCalls<T, S> {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		write!(f, "FreePatientCalls({:?})", self.0)
	}
}

/// What `validate` found: pay through the wrapped extension, or a free call
/// of this patient.
pub enum Decision<V, A> {
	/// The wrapped extension charges as usual.
	Pay(V),
	/// A free patient call: the account whose allowance it uses (after
	/// `validate`), then the wrapped extension's weight, unused (after
	/// `prepare`).
	Free(A),
}

/// The pool tag of a free call: prefix, account, window and place in it.
const FREE_CALL_TAG: &[u8] = b"medchain/free-call";

impl<T, S> TransactionExtension<T::RuntimeCall> for FreePatientCalls<T, S>
where
	T: Config + Send + Sync,
	T::RuntimeCall: Dispatchable<Info = DispatchInfo, PostInfo = PostDispatchInfo>,
	S: TransactionExtension<T::RuntimeCall>,
{
	const IDENTIFIER: &'static str = S::IDENTIFIER;
	type Implicit = S::Implicit;
	type Val = Decision<S::Val, T::AccountId>;
	type Pre = Decision<S::Pre, Weight>;

	fn metadata() -> alloc::vec::Vec<sp_runtime::traits::TransactionExtensionMetadata> {
		S::metadata()
	}

	fn implicit(&self) -> Result<Self::Implicit, TransactionValidityError> {
		self.0.implicit()
	}

	fn weight(&self, call: &T::RuntimeCall) -> Weight {
		// For a patient call: reading the allowance, and counting the call
		// when it is free (then the wrapped extension's weight is returned).
		let own = if T::PatientCalls::contains(call) { T::DbWeight::get().reads_writes(1, 1) } else { Weight::zero() };
		self.0.weight(call).saturating_add(own)
	}

	fn validate(
		&self,
		origin: <T::RuntimeCall as Dispatchable>::RuntimeOrigin,
		call: &T::RuntimeCall,
		info: &DispatchInfoOf<T::RuntimeCall>,
		len: usize,
		self_implicit: S::Implicit,
		inherited_implication: &impl Implication,
		source: TransactionSource,
	) -> ValidateResult<Self::Val, T::RuntimeCall> {
		if let Ok(who) = frame_system::ensure_signed(origin.clone()) {
			if T::PatientCalls::contains(call) {
				if let Some(slot) = Pallet::<T>::free_call_slot(&who) {
					let valid = ValidTransaction {
						provides: alloc::vec![(FREE_CALL_TAG, &who, slot).encode()],
						..Default::default()
					};
					return Ok((valid, Decision::Free(who), origin));
				}
			}
		}
		let (valid, val, origin) =
			self.0.validate(origin, call, info, len, self_implicit, inherited_implication, source)?;
		Ok((valid, Decision::Pay(val), origin))
	}

	fn prepare(
		self,
		val: Self::Val,
		origin: &<T::RuntimeCall as Dispatchable>::RuntimeOrigin,
		call: &T::RuntimeCall,
		info: &DispatchInfoOf<T::RuntimeCall>,
		len: usize,
	) -> Result<Self::Pre, TransactionValidityError> {
		match val {
			Decision::Pay(val) => self.0.prepare(val, origin, call, info, len).map(Decision::Pay),
			Decision::Free(who) => {
				Pallet::<T>::use_free_call(&who);
				Ok(Decision::Free(self.0.weight(call)))
			},
		}
	}

	fn post_dispatch_details(
		pre: Self::Pre,
		info: &DispatchInfoOf<T::RuntimeCall>,
		post_info: &PostDispatchInfoOf<T::RuntimeCall>,
		len: usize,
		result: &DispatchResult,
	) -> Result<Weight, TransactionValidityError> {
		match pre {
			Decision::Pay(pre) => S::post_dispatch_details(pre, info, post_info, len, result),
			Decision::Free(unused) => Ok(unused),
		}
	}
}
