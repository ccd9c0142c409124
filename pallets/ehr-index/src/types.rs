//! Types stored and emitted by the record index.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{traits::Get, BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use frame_system::pallet_prelude::BlockNumberFor;
use scale_info::TypeInfo;
use sp_core::H256;

use crate::Config;

/// Chain-assigned record identifier.
pub type RecordId = u64;

/// Where the encrypted record lives: a MongoDB document at an institution.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(S))]
#[codec(mel_bound())]
pub struct StorePointer<S: Get<u32>> {
	/// Identifier of the institution's store (its gateway).
	pub store_id: BoundedVec<u8, S>,
	/// MongoDB collection.
	pub collection: BoundedVec<u8, S>,
	/// MongoDB ObjectId (12 bytes).
	pub object_id: [u8; 12],
}

pub use medchain_primitives::{AccessPurpose, ContentDigest, DigestAlgorithm, RecordKind};

/// Where a record stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum RecordStatus {
	/// Published, waiting for validators.
	Pending,
	/// Confirmed by enough validators.
	Confirmed,
	/// Rejected by enough validators.
	Rejected,
	/// Neither confirmed nor rejected in time.
	Expired,
	/// Its content was erased from the store; only the index entry remains.
	Erased,
}

/// A validator's vote on a pending record.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum Vote {
	/// The published digest, pointer and signature match.
	Confirm,
	/// Rejected, with a reason code (see the crate README).
	Reject(u8),
}

/// An entry of the record index. Holds no plaintext and no personal
/// identifiers: the patient is an account, the content a digest and a pointer.
#[derive(CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct Record<T: Config> {
	/// The patient the record is about.
	pub patient: T::AccountId,
	/// The publishing institution.
	pub issuer: T::AccountId,
	/// What the record is; `None` once erased.
	pub kind: Option<RecordKind>,
	/// Digest of the encrypted content.
	pub digest: ContentDigest,
	/// Where the encrypted content is; `None` once erased.
	pub pointer: Option<StorePointer<T::MaxPointerLen>>,
	/// Size of the encrypted content in bytes; 0 once erased.
	pub size: u64,
	/// Hash of the capsule that encrypts the record's data key.
	pub capsule_hash: H256,
	/// Block the record was published in.
	pub published_at: BlockNumberFor<T>,
	/// Unix time in milliseconds at publication.
	pub timestamp: u64,
	/// 1 for a first version, n + 1 for an amendment of version n.
	pub version: u32,
	/// The version this one amends, with its digest.
	pub previous: Option<(RecordId, ContentDigest)>,
	/// `blake2_256(previous.chain_hash ++ encoded digest)`: the version chain.
	pub chain_hash: H256,
	/// Pending, confirmed, rejected, expired or erased.
	pub status: RecordStatus,
	/// Distinct validators that confirmed.
	pub confirmations: u32,
	/// Distinct validators that rejected.
	pub rejections: u32,
	/// Last block at which a vote is accepted.
	pub deadline: BlockNumberFor<T>,
}

/// A patient's consent to have records indexed under its account by one
/// issuer.
#[derive(
	Clone, Copy, Default, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct IndexConsent {
	/// Whether the consent is in force.
	pub given: bool,
	/// How often the patient withdrew consent from this issuer. A signed
	/// consent names the generation it was given for, so a consent the
	/// patient withdrew cannot be replayed.
	pub generation: u32,
	/// The issuer registered the patient ([`crate::Pallet::register_patient`],
	/// paying for it): while in force it makes the patient's own calls
	/// fee-less ([`crate::FreeCalls`]). A consent the patient gave by
	/// itself sponsors nothing.
	pub sponsored: bool,
}

/// A registered patient's fee-less calls ([`crate::FreeCalls`]).
#[derive(
	Clone, Copy, Default, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct FreeCallAllowance<BlockNumber> {
	/// Issuers that registered this patient, consent in force (sponsored
	/// consents); its calls are fee-less while there is one.
	pub sponsors: u32,
	/// The block the current window began at.
	pub window_start: BlockNumber,
	/// Fee-less calls made in the current window.
	pub used: u32,
}

/// What a patient signs to consent to be indexed by an issuer: this
/// domain tag, then the SCALE encoding of (chain's genesis hash, issuer,
/// patient, generation). Wallets that wrap signed bytes in
/// `<Bytes>…</Bytes>` (the polkadot.js extension's `signRaw`) are accepted
/// too.
pub const INDEX_CONSENT_TAG: &[u8] = b"medchain:index-consent";

/// What a server handed out for a read.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum Served {
	/// The record's ciphertext, by its issuer's gateway.
	Record,
	/// A capsule fragment of the record's data key, by one of the grant's
	/// proxies (the instant key path).
	KeyFragment,
}

/// A read a gateway or proxy served, as it logs it afterwards ([`crate::Pallet::log_reads`]).
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct ReadEntry<AccountId, BlockNumber> {
	/// The read's id, unique per gateway or proxy (which derives it from the
	/// reader's signed request: `blake2_256(signature)`, or
	/// `blake2_256(signature ‖ blake2_256(ask))` with its own ask when one
	/// signature asks several servers): a read is logged once however often
	/// it is submitted.
	pub read: H256,
	/// The record read.
	pub record_id: RecordId,
	/// Who read it.
	pub accessor: AccountId,
	/// What for.
	pub purpose: AccessPurpose,
	/// The grant it was read under (none for the patient and the issuer).
	pub grant: Option<u64>,
	/// The block at which the gateway checked that the chain let the
	/// accessor read the record (a finalized block): the runtime checks the
	/// read against the chain as it was then.
	pub checked_at: BlockNumber,
	/// What was served: the record by its issuer, or a key fragment by one
	/// of the grant's proxies.
	pub served: Served,
}

/// What an erased record named before its erasure, and its status: kept only while reads
/// checked before the erasure may still be logged (`MaxLogDelay` blocks),
/// so that [`crate::Pallet::log_reads`] judges them against the record as it
/// stood when they were checked, then forgotten.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct ErasedLink<AccountId> {
	/// The record's patient.
	pub patient: AccountId,
	/// What the record was.
	pub kind: Option<RecordKind>,
	/// Its status before the erasure (confirmed, rejected or expired).
	pub status: RecordStatus,
}
