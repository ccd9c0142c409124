//! Types stored and emitted by the proxy re-encryption pallet.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::ConstU32, traits::Get, BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use frame_system::pallet_prelude::BlockNumberFor;
use medchain_primitives::{AccessPurpose, RecordKind};
use scale_info::TypeInfo;
use sp_core::H256;

use crate::Config;

/// Chain-assigned grant identifier.
pub type GrantId = u64;
/// Chain-assigned access request identifier.
pub type RequestId = u64;
/// Record identifier of the record index.
pub type RecordId = u64;
/// A compressed secp256k1 public key (Umbral).
pub type UmbralPublicKey = [u8; 33];
/// Upper bound of a capsule in wire format (98 bytes of points and scalar
/// plus MessagePack framing).
pub type MaxCapsuleLen = ConstU32<128>;
/// Upper bound of a data key encrypted under a capsule (key, nonce, tag).
pub type MaxSealedKeyLen = ConstU32<128>;

/// An account's Umbral keys.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct UmbralKeys {
	/// Public key: what records' data keys are encrypted to (patients) and
	/// what fragments are re-encrypted for (grantees).
	pub public_key: UmbralPublicKey,
	/// Verifying key of the signer that signs the key fragments a patient
	/// hands to proxies.
	pub verifying_key: UmbralPublicKey,
}

/// A record's data key, encrypted to its patient's public key.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct KeyCapsule {
	/// Umbral capsule (wire format).
	pub capsule: BoundedVec<u8, MaxCapsuleLen>,
	/// The data key, encrypted with the capsule's symmetric key.
	pub ciphertext: BoundedVec<u8, MaxSealedKeyLen>,
}

impl KeyCapsule {
	/// `blake2_256(capsule ++ ciphertext)`: what the record index commits to
	/// as the record's `capsule_hash`.
	pub fn hash(&self) -> H256 {
		let mut data = self.capsule.to_vec();
		data.extend_from_slice(&self.ciphertext);
		H256(sp_io::hashing::blake2_256(&data))
	}
}

/// The number of one of a patient's one-time record keys (see
/// `RecordKeyPool`): the label its secret is derived under
/// (`medchain_umbral::record_label`).
pub type RecordKeyIndex = u32;

/// A record's data key encrypted to the patient's narrower keys, beside the
/// capsule to the patient's key (which every grant of all records opens).
/// Grants of one record or of one kind hand out key fragments of these keys
/// only, so their proxies and grantee together open nothing else.
#[derive(Clone, PartialEq, Eq, Debug, Default, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct ScopedCapsules {
	/// To the patient's key for the record's kind (`KindKeys`).
	pub kind: Option<KeyCapsule>,
	/// To one of the patient's one-time record keys (`RecordKeyPool`), by
	/// its number.
	pub record: Option<(RecordKeyIndex, KeyCapsule)>,
}

/// A record's capsule to one of the patient's one-time keys.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct OneTimeCapsule {
	/// The key's number.
	pub index: RecordKeyIndex,
	/// The key.
	pub public_key: UmbralPublicKey,
	/// The data key encrypted to it.
	pub capsule: KeyCapsule,
}

/// Which of a record's capsules a grant's key fragments open.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum ScopeKeySlot {
	/// The capsule to the patient's key for the record's kind.
	Kind,
	/// The capsule to the record's one-time key.
	Record,
}

/// The narrower key a grant delegates from (see `GrantKeys`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct GrantKey {
	/// Which capsule of a record its fragments open.
	pub slot: ScopeKeySlot,
	/// The delegating public key: the kind key or the record's one-time key.
	pub public_key: UmbralPublicKey,
}

/// A key fragment's id (see `KeyFragmentIds`).
pub type KfragId = medchain_umbral::KfragId;

/// A key fragment sealed to one proxy's public key (see
/// `medchain_umbral::SealedKeyFrag`): readable by that proxy only.
#[derive(CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(S))]
#[codec(mel_bound())]
pub struct SealedFragment<S: Get<u32>> {
	/// Capsule of the seal (wire format).
	pub capsule: BoundedVec<u8, MaxCapsuleLen>,
	/// The key fragment's wire bytes, encrypted.
	pub ciphertext: BoundedVec<u8, S>,
}

/// Which of a patient's records a grant covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum GrantScope {
	/// One record.
	Record(RecordId),
	/// Every record of a kind.
	Kind(RecordKind),
	/// Every record.
	All,
}

impl GrantScope {
	/// Whether a record with `id` and `kind` is in scope (an erased
	/// record has no kind: no kind scope covers it).
	pub fn covers(&self, id: RecordId, kind: Option<RecordKind>) -> bool {
		match self {
			GrantScope::Record(r) => *r == id,
			GrantScope::Kind(k) => Some(*k) == kind,
			GrantScope::All => true,
		}
	}
}

/// A patient's grant of access to a grantee.
#[derive(CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct Grant<T: Config> {
	/// The patient who granted.
	pub patient: T::AccountId,
	/// Who may read.
	pub grantee: T::AccountId,
	/// Which records.
	pub scope: GrantScope,
	/// What for.
	pub purpose: AccessPurpose,
	/// Fragments needed to decrypt (M of the N proxies).
	pub threshold: u8,
	/// The proxies holding a sealed key fragment each.
	pub proxies: BoundedVec<T::AccountId, T::MaxProxies>,
	/// The proxies that opened and verified their key fragment and agreed to
	/// serve the grant, in the order they acknowledged. Only they are asked
	/// to serve, earn credit for serving and lose it for failing.
	pub acknowledged: BoundedVec<T::AccountId, T::MaxProxies>,
	/// The proxy whose key fragment did not open or verify, if one disputed
	/// the grant: a disputed grant cannot be used.
	pub disputed_by: Option<T::AccountId>,
	/// Block of the last request under the grant (the rate limit).
	pub last_request_at: Option<BlockNumberFor<T>>,
	/// Block the grant was made in.
	pub created_at: BlockNumberFor<T>,
	/// First block at which the grant no longer holds.
	pub expires_at: Option<BlockNumberFor<T>>,
	/// Block the patient revoked it in.
	pub revoked_at: Option<BlockNumberFor<T>>,
	/// Usable only by break-glass emergency access.
	pub emergency: bool,
}

impl<T: Config> Grant<T> {
	/// Whether the grant holds at block `now` (neither revoked nor expired).
	pub fn is_live(&self, now: BlockNumberFor<T>) -> bool {
		self.revoked_at.is_none() && self.expires_at.map_or(true, |e| now < e)
	}

	/// Whether `threshold` proxies acknowledged the grant.
	pub fn is_acknowledged(&self) -> bool {
		self.acknowledged.len() >= self.threshold as usize
	}

	/// Whether records may be read under the grant at block `now`: live, not
	/// disputed and acknowledged by `threshold` proxies.
	pub fn is_usable(&self, now: BlockNumberFor<T>) -> bool {
		self.is_live(now) && self.disputed_by.is_none() && self.is_acknowledged()
	}

	/// Whether the grant held at block `at` (now or earlier): made at or
	/// before it, revoked and expired only after it. (For `at` the current
	/// block this is [`Grant::is_live`].)
	pub fn was_live_at(&self, at: BlockNumberFor<T>) -> bool {
		self.created_at <= at && self.revoked_at.is_none_or(|r| at < r) && self.expires_at.is_none_or(|e| at < e)
	}

	/// Whether records could be read under the grant at block `at`: live
	/// then, and (as it stands now) not disputed and acknowledged by
	/// `threshold` proxies: a dispute or acknowledgement is not dated, and
	/// neither is ever undone.
	pub fn was_usable_at(&self, at: BlockNumberFor<T>) -> bool {
		self.was_live_at(at) && self.disputed_by.is_none() && self.is_acknowledged()
	}

	/// Whether `who` is the grant's patient or grantee.
	pub fn is_party(&self, who: &T::AccountId) -> bool {
		self.patient == *who || self.grantee == *who
	}
}

/// Why a doctor broke the glass.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum EmergencyReason {
	/// The patient cannot consent (unconscious, incapacitated).
	PatientIncapacitated,
	/// Immediate danger to life.
	LifeThreatening,
	/// The patient's own doctor cannot be reached in time.
	CareContinuity,
	/// Anything else; the statement says what.
	Other,
}

/// An auditor's verdict on a break-glass access.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum Review<AccountId> {
	/// Not reviewed yet.
	Pending,
	/// Reviewed by the auditor, with its verdict.
	Reviewed {
		/// The auditor institution.
		auditor: AccountId,
		/// Whether the access was justified.
		justified: bool,
	},
	/// The review window passed without a review.
	Lapsed,
	/// Reviewed by a motion of the regulators: a review of a pending access,
	/// or an auditor's clearance they overturned within the window.
	ReviewedByRegulators {
		/// Whether the access was justified.
		justified: bool,
		/// Whether an auditor had cleared it before.
		overturned: bool,
	},
}

/// A break-glass access's justification and review.
#[derive(CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct Emergency<T: Config> {
	/// The stated reason.
	pub reason: EmergencyReason,
	/// BLAKE2-256 of the doctor's written statement, kept by the institution
	/// (the text may be medical and stays off chain).
	pub statement_hash: H256,
	/// Last block an auditor may review in.
	pub review_by: BlockNumberFor<T>,
	/// The review.
	pub review: Review<T::AccountId>,
}

/// Where an access request stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum RequestStatus {
	/// Waiting for proxies.
	Open,
	/// Threshold fragments are on chain: the grantee can decrypt.
	Ready,
	/// The deadline passed below the threshold.
	Expired,
}

/// A grantee's request to read one record: the audit entry.
#[derive(CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct AccessRequest<T: Config> {
	/// The grant it relies on.
	pub grant: GrantId,
	/// The record asked for.
	pub record: RecordId,
	/// Who asked (the grantee).
	pub requester: T::AccountId,
	/// Block of the request.
	pub requested_at: BlockNumberFor<T>,
	/// Last block fragments are accepted in.
	pub deadline: BlockNumberFor<T>,
	/// Verified fragments received.
	pub fragments: u8,
	/// Open, ready or expired.
	pub status: RequestStatus,
	/// Present for break-glass accesses.
	pub emergency: Option<Emergency<T>>,
}

/// What a proxy submitted for a request.
#[derive(CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(S))]
#[codec(mel_bound())]
pub enum Submission<S: Get<u32>> {
	/// A capsule fragment that verified (wire format).
	Accepted(BoundedVec<u8, S>),
	/// A fragment that did not verify.
	Rejected,
}
