//! # EHR index pallet
//!
//! The on-chain index of Medchain's medical records: what a record is, whose
//! it is, who published it, the digest of its encrypted content and where that
//! content lives. The content itself never touches the chain.
//!
//! ## Overview
//!
//! Thin chain, fat off-chain (seed papers 001 and 003): each institution keeps
//! its encrypted records in its own MongoDB; the chain keeps digests, pointers
//! and an audit trail.
//!
//! - **Consent.** A record is indexed under a patient's account only by an
//!   issuer the patient consented to: the patient calls
//!   [`Pallet::consent_to_index`], or signs [`Pallet::consent_message`] in
//!   its wallet and the issuer submits it with [`Pallet::register_patient`]
//!   (the issuer pays). [`Pallet::withdraw_index_consent`] stops new records;
//!   a signed consent is bound to the chain, the issuer, the patient and the
//!   number of withdrawals before it, so it cannot be replayed.
//! - **Publish.** A producer institution calls [`Pallet::publish_record`] with
//!   the patient's account, the record kind, the content digest (BLAKE2-256,
//!   SHA-256 or SM3), the MongoDB pointer, the size and the hash of the capsule
//!   that encrypts the record's data key.
//! - **Confirm** (seed 001 §4.3.1). Validator institutions check the published
//!   digest and pointer against the store and vote. `ConfirmationsRequired`
//!   distinct confirmations make the record `Confirmed`, `RejectionsRequired`
//!   rejections make it `Rejected`; without either by the deadline it is
//!   `Expired`. Outcomes are reported to the issuer's credit.
//! - **Amend.** [`Pallet::amend_record`] publishes a new version that links to
//!   the previous version's id and digest; each version's `chain_hash` commits
//!   to the whole chain before it. Old versions stay readable.
//! - **Audit.** Every read of a record through a gateway is recorded with
//!   [`Pallet::log_access`], which emits `RecordAccessed`: only by the
//!   record's issuer, and only for a reader the chain lets read it (its
//!   patient, its issuer, or a grantee under a usable grant covering it, for
//!   the grant's purpose).
//! - **Erase.** The issuer or the patient marks a record erased once its
//!   content is deleted from the store; the index keeps the digest and shows
//!   it was erased.
//!
//! ## Terminology
//!
//! - *Issuer*: the institution that published a record.
//! - *Version chain*: the records linked by `previous`, newest to oldest.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod extension;
pub mod migrations;
pub mod types;
pub mod weights;

pub use types::*;
pub use weights::WeightInfo;

use alloc::vec::Vec;
use codec::{Decode, Encode};
use medchain_primitives::{Behaviour, CreditReporter, GrantedReads, InstitutionRegistry, RecordIndex, RecordRef, Role};
use sp_core::H256;
use sp_runtime::{
	traits::{BlakeTwo256, CheckedSub, Hash as HashT, IdentifyAccount, One, UniqueSaturatedFrom, Verify, Zero},
	Saturating,
};

/// Set-up the benchmarks need from the runtime.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId, Signature> {
	/// An active producer institution.
	fn producer() -> AccountId;
	/// The `n`-th active validator institution (distinct for distinct `n`).
	fn validator(n: u32) -> AccountId;
	/// A patient account and its valid signature of `message`.
	fn sign_consent(message: &[u8]) -> (AccountId, Signature);
}

/// Log target of this pallet.
pub const LOG_TARGET: &str = "runtime::ehr-index";

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		traits::{Contains, UnixTime},
	};
	use frame_system::pallet_prelude::*;

	/// Version 1 keeps [`FreeCalls`], each registered patient's fee-less
	/// allowance; version 2 makes a record's kind optional (erasure forgets
	/// it).
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Configuration of the pallet.
	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// The overarching event type.
		#[allow(deprecated)]
		type RuntimeEvent: From<Event<Self>> + IsType<<Self as frame_system::Config>::RuntimeEvent>;

		/// Who is an institution, with which roles.
		type Registry: InstitutionRegistry<Self::AccountId>;

		/// Where confirmations and rejections are reported.
		type Credit: CreditReporter<Self::AccountId>;

		/// The patients' grants: whom a gateway may log (and serve) a read
		/// for, besides the record's patient and issuer.
		type Grants: GrantedReads<Self::AccountId, BlockNumberFor<Self>>;

		/// Wall-clock time for record timestamps.
		type UnixTime: UnixTime;

		/// Distinct confirmations that make a record `Confirmed`.
		#[pallet::constant]
		type ConfirmationsRequired: Get<u32>;

		/// Distinct rejections that make a record `Rejected`.
		#[pallet::constant]
		type RejectionsRequired: Get<u32>;

		/// Blocks validators have to vote on a new record.
		#[pallet::constant]
		type ConfirmationPeriod: Get<BlockNumberFor<Self>>;

		/// Most records whose voting ends in the same block.
		#[pallet::constant]
		type MaxExpiringPerBlock: Get<u32>;

		/// Most blocks between the block at which a gateway checked a read
		/// and the block that logs it ([`Pallet::log_reads`]): every read a
		/// gateway serves is on chain within this bound, or refused.
		#[pallet::constant]
		type MaxLogDelay: Get<BlockNumberFor<Self>>;

		/// Most reads one [`Pallet::log_reads`] call logs.
		#[pallet::constant]
		type MaxReadsPerLog: Get<u32>;

		/// Most reads one gateway logs that were checked at any one block
		/// (its own allowance: no other gateway can use it up). Also how many
		/// logged reads a block forgets at most, once they are too old to be
		/// logged again.
		#[pallet::constant]
		type MaxReadsPerCheckedBlock: Get<u32>;

		/// Longest store id and collection name, in bytes.
		#[pallet::constant]
		type MaxPointerLen: Get<u32>;

		/// The patients' own calls (keys, grants, revocations, withdrawals,
		/// erasure) that a registered patient makes without fees
		/// ([`crate::extension::FreePatientCalls`]).
		type PatientCalls: Contains<<Self as frame_system::Config>::RuntimeCall>;

		/// Fee-less calls a registered patient may make per window.
		#[pallet::constant]
		type FreeCallsPerWindow: Get<u32>;

		/// Blocks of a fee-less call window.
		#[pallet::constant]
		type FreeCallWindow: Get<BlockNumberFor<Self>>;

		/// A patient's signature of its consent to be indexed by an issuer
		/// (the runtime's transaction signature).
		type ConsentSignature: Parameter + Verify<Signer: IdentifyAccount<AccountId = Self::AccountId>>;

		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;

		/// Provides institutions for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId, Self::ConsentSignature>;
	}

	/// The record index.
	#[pallet::storage]
	pub type Records<T: Config> = StorageMap<_, Twox64Concat, RecordId, Record<T>, OptionQuery>;

	/// The id the next record gets.
	#[pallet::storage]
	pub type NextRecordId<T> = StorageValue<_, RecordId, ValueQuery>;

	/// Records of each patient (for paging).
	#[pallet::storage]
	pub type PatientRecords<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Twox64Concat, RecordId, (), OptionQuery>;

	/// The newer version of a record, once it was amended.
	#[pallet::storage]
	pub type Successor<T: Config> = StorageMap<_, Twox64Concat, RecordId, RecordId, OptionQuery>;

	/// Votes cast on pending records.
	#[pallet::storage]
	pub type Votes<T: Config> =
		StorageDoubleMap<_, Twox64Concat, RecordId, Blake2_128Concat, T::AccountId, Vote, OptionQuery>;

	/// Pending records whose voting ends at a block.
	#[pallet::storage]
	pub type ExpiringAt<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<RecordId, T::MaxExpiringPerBlock>,
		ValueQuery,
	>;

	/// Reads logged per record.
	#[pallet::storage]
	pub type AccessCount<T: Config> = StorageMap<_, Twox64Concat, RecordId, u64, ValueQuery>;

	/// Reads logged by [`Pallet::log_reads`], by the block they were checked
	/// at and (gateway, read id): a read submitted again (after a gateway's
	/// crash) is not logged twice. Kept while a read checked at that block
	/// may still be logged (`MaxLogDelay`), then forgotten.
	#[pallet::storage]
	pub type LoggedReads<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		Blake2_128Concat,
		(T::AccountId, H256),
		(),
		OptionQuery,
	>;

	/// How many reads checked at each block each gateway logged (at most
	/// `MaxReadsPerCheckedBlock`), until they are forgotten.
	#[pallet::storage]
	pub type ReadsCheckedAt<T: Config> =
		StorageDoubleMap<_, Twox64Concat, BlockNumberFor<T>, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// The oldest checked block whose logged reads are not all forgotten yet
	/// (none until the first block that forgets: it then starts at the
	/// oldest block whose reads can no longer be logged).
	#[pallet::storage]
	pub type ForgetFrom<T: Config> = StorageValue<_, BlockNumberFor<T>, OptionQuery>;

	/// The block at which each erased record was erased, kept with what it
	/// named ([`ErasedLinks`]).
	#[pallet::storage]
	pub type ErasedAt<T: Config> = StorageMap<_, Blake2_128Concat, RecordId, BlockNumberFor<T>, OptionQuery>;

	/// What each record erased at a block named before (its patient, its
	/// kind, its status), by that block: a read checked before
	/// the erasure and logged after it is judged against the record as it
	/// stood. Forgotten with the reads checked at that block, once no read
	/// checked before the erasure can be logged (`MaxLogDelay`).
	#[pallet::storage]
	pub type ErasedLinks<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		Blake2_128Concat,
		RecordId,
		ErasedLink<T::AccountId>,
		OptionQuery,
	>;

	/// Each patient's consent to have records indexed under its account, per
	/// issuer: without it in force the issuer cannot publish a record about
	/// the patient.
	#[pallet::storage]
	pub type IndexConsents<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Blake2_128Concat,
		T::AccountId,
		IndexConsent,
		ValueQuery,
	>;

	/// Each registered patient's fee-less calls: present once an issuer
	/// registered the account (consent in force), never removed, since it
	/// holds the provider reference that keeps the account and its nonce
	/// alive without a balance.
	#[pallet::storage]
	pub type FreeCalls<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, FreeCallAllowance<BlockNumberFor<T>>, OptionQuery>;

	/// Events of this pallet. Every node, RPC client and relay-chain
	/// validator reads them, and they are kept in block history, so they
	/// carry only ids and what their consumers need: no patient account and
	/// no record kind (who and what stay in storage, where an erasure can
	/// remove them).
	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A record was published and awaits validators.
		RecordPublished { record_id: RecordId, issuer: T::AccountId, digest: ContentDigest },
		/// A new version of a record was published.
		RecordAmended { record_id: RecordId, previous: RecordId, version: u32 },
		/// A validator voted.
		RecordVoted { record_id: RecordId, validator: T::AccountId, vote: Vote },
		/// Enough validators confirmed the record.
		RecordConfirmed { record_id: RecordId },
		/// Enough validators rejected the record.
		RecordRejected { record_id: RecordId },
		/// Voting ended without a decision.
		RecordExpired { record_id: RecordId },
		/// A gateway served the record's content to `accessor`.
		RecordAccessed {
			record_id: RecordId,
			accessor: T::AccountId,
			gateway: T::AccountId,
			purpose: AccessPurpose,
		},
		/// A gateway served the record's content to `accessor`, having checked
		/// at block `checked_at` that the chain let it (logged after the read:
		/// [`Pallet::log_reads`]).
		RecordRead {
			record_id: RecordId,
			accessor: T::AccountId,
			gateway: T::AccountId,
			purpose: AccessPurpose,
			checked_at: BlockNumberFor<T>,
		},
		/// The record's content was erased from its store.
		RecordErased { record_id: RecordId },
		/// A patient lets `issuer` index records under its account.
		IndexConsentGiven { issuer: T::AccountId },
		/// A patient no longer lets `issuer` index new records under its
		/// account.
		IndexConsentWithdrawn { issuer: T::AccountId },
		/// One of grant `grant`'s proxies served `accessor` a capsule fragment
		/// of the record's data key, having checked at block `checked_at`
		/// that the chain let it (the instant key path, logged after:
		/// [`Pallet::log_reads`]). The record's content is read at its
		/// gateway, which logs a `RecordRead`. Like a gateway's entries, it is
		/// the proxy's own account of what it served: the runtime checks that
		/// the grant allowed it then, not that the grantee asked.
		KeyFragmentServed {
			record_id: RecordId,
			accessor: T::AccountId,
			proxy: T::AccountId,
			grant: u64,
			checked_at: BlockNumberFor<T>,
		},
	}

	/// Errors of this pallet.
	#[pallet::error]
	pub enum Error<T> {
		/// Only active producer institutions publish records.
		NotProducer,
		/// Only active validator institutions vote.
		NotValidator,
		/// Only active institutions run gateways that log access.
		NotInstitution,
		/// The accessor may not read the record: neither its patient nor its
		/// issuer, and no usable grant of theirs covers it.
		NotReadable,
		/// The read's purpose is not the one the grant was given for.
		PurposeNotGranted,
		/// No record with this id.
		RecordNotFound,
		/// The record is not waiting for votes.
		NotPending,
		/// Voting on this record has ended.
		VotingClosed,
		/// This validator already voted on this record.
		AlreadyVoted,
		/// An institution may not vote on its own record.
		OwnRecord,
		/// Only the issuer may amend a record or log reads of it.
		NotIssuer,
		/// Only the latest version may be amended.
		NotLatestVersion,
		/// Rejected, expired or erased records may not be amended.
		CannotAmend,
		/// A record must have a non-empty content.
		EmptyRecord,
		/// The record was already erased.
		AlreadyErased,
		/// Only the issuer or the patient may erase a record.
		NotAllowedToErase,
		/// A record may not be erased while validators review it: an issuer
		/// (or an account it controls) would otherwise escape a rejection.
		UnderReview,
		/// Too many records end voting in the same block; retry next block.
		TooManyExpiring,
		/// Record ids or versions are exhausted.
		Overflow,
		/// The patient has not consented to have records indexed under its
		/// account by this issuer, or withdrew its consent.
		NoIndexConsent,
		/// The consent is already in force.
		AlreadyConsented,
		/// The signature is not the patient's over the consent this chain
		/// expects now (wrong chain, issuer, patient or generation: a consent
		/// the patient withdrew is not valid again).
		BadConsentSignature,
		/// A read said to be checked at a block that is not yet on chain.
		CheckedInFuture,
		/// A read checked more than `MaxLogDelay` blocks ago: too late to log.
		LoggedTooLate,
		/// This gateway logged `MaxReadsPerCheckedBlock` reads checked at that
		/// block: check later reads at a later block.
		TooManyReads,
		/// Only a proxy that acknowledged the entry's grant, not a
		/// break-glass one, logs the key fragments it served under it.
		NotGrantProxy,
		/// The grant's patient requires audit before anything is served
		/// under it: no read under it is served first and logged after.
		AuditFirst,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let forgotten = Self::forget_old_reads(now);
			let expiring = ExpiringAt::<T>::take(now);
			let n = expiring.len() as u32;
			for record_id in expiring {
				Records::<T>::mutate(record_id, |maybe| {
					if let Some(r) = maybe {
						if r.status == RecordStatus::Pending {
							r.status = RecordStatus::Expired;
							Self::deposit_event(Event::RecordExpired { record_id });
						}
					}
				});
			}
			T::WeightInfo::expire_records(n).saturating_add(forgotten)
		}

		fn integrity_test() {
			assert!(T::ConfirmationsRequired::get() > 0, "ConfirmationsRequired must be positive");
			assert!(T::RejectionsRequired::get() > 0, "RejectionsRequired must be positive");
			assert!(T::MaxExpiringPerBlock::get() > 0, "MaxExpiringPerBlock must be positive");
			assert!(!T::FreeCallWindow::get().is_zero(), "FreeCallWindow must be positive");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Publishes a record about `patient`: kind, digest of the encrypted
		/// content, MongoDB pointer, size and capsule hash. It waits for
		/// validators until `ConfirmationPeriod` blocks have passed.
		///
		/// Origin: an active producer institution the patient consented to be
		/// indexed by ([`Pallet::consent_to_index`] or
		/// [`Pallet::register_patient`]). Emits `RecordPublished`.
		/// Errors: `NotProducer`, `NoIndexConsent`, `EmptyRecord`,
		/// `TooManyExpiring`, `Overflow`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::publish_record())]
		pub fn publish_record(
			origin: OriginFor<T>,
			patient: T::AccountId,
			kind: RecordKind,
			digest: ContentDigest,
			pointer: StorePointer<T::MaxPointerLen>,
			size: u64,
			capsule_hash: H256,
		) -> DispatchResult {
			let issuer = ensure_signed(origin)?;
			ensure!(T::Registry::has_role(&issuer, Role::Producer), Error::<T>::NotProducer);
			ensure!(IndexConsents::<T>::get(&patient, &issuer).given, Error::<T>::NoIndexConsent);
			let record_id = Self::insert_record(
				issuer.clone(),
				patient.clone(),
				Some(kind),
				digest,
				pointer,
				size,
				capsule_hash,
				None,
			)?;
			Self::deposit_event(Event::RecordPublished { record_id, issuer, digest });
			Ok(())
		}

		/// Publishes a new version of `previous`, linked to it by id and digest.
		/// The new version goes through confirmation like any record.
		///
		/// Origin: the issuer of `previous`, still an active producer.
		/// Emits `RecordAmended`.
		/// Errors: `RecordNotFound`, `NotProducer`, `NotIssuer`,
		/// `NotLatestVersion`, `CannotAmend`, `EmptyRecord`, `TooManyExpiring`,
		/// `Overflow`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::amend_record())]
		pub fn amend_record(
			origin: OriginFor<T>,
			previous: RecordId,
			digest: ContentDigest,
			pointer: StorePointer<T::MaxPointerLen>,
			size: u64,
			capsule_hash: H256,
		) -> DispatchResult {
			let issuer = ensure_signed(origin)?;
			let prev = Records::<T>::get(previous).ok_or(Error::<T>::RecordNotFound)?;
			ensure!(T::Registry::has_role(&issuer, Role::Producer), Error::<T>::NotProducer);
			ensure!(prev.issuer == issuer, Error::<T>::NotIssuer);
			ensure!(!Successor::<T>::contains_key(previous), Error::<T>::NotLatestVersion);
			ensure!(
				matches!(prev.status, RecordStatus::Pending | RecordStatus::Confirmed),
				Error::<T>::CannotAmend
			);
			let record_id = Self::insert_record(
				issuer,
				prev.patient.clone(),
				prev.kind,
				digest,
				pointer,
				size,
				capsule_hash,
				Some((previous, &prev)),
			)?;
			Successor::<T>::insert(previous, record_id);
			let version = prev.version.saturating_add(1);
			Self::deposit_event(Event::RecordAmended { record_id, previous, version });
			Ok(())
		}

		/// Votes on a pending record. The vote that reaches
		/// `ConfirmationsRequired` confirmations (or `RejectionsRequired`
		/// rejections) decides it and reports the outcome to the issuer's credit.
		///
		/// Origin: an active validator institution other than the issuer.
		/// Emits `RecordVoted`, then `RecordConfirmed` or `RecordRejected`.
		/// Errors: `NotValidator`, `RecordNotFound`, `NotPending`,
		/// `VotingClosed`, `OwnRecord`, `AlreadyVoted`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::vote_record())]
		pub fn vote_record(origin: OriginFor<T>, record_id: RecordId, vote: Vote) -> DispatchResult {
			let validator = ensure_signed(origin)?;
			ensure!(T::Registry::has_role(&validator, Role::Validator), Error::<T>::NotValidator);
			let mut record = Records::<T>::get(record_id).ok_or(Error::<T>::RecordNotFound)?;
			ensure!(record.status == RecordStatus::Pending, Error::<T>::NotPending);
			ensure!(
				frame_system::Pallet::<T>::block_number() <= record.deadline,
				Error::<T>::VotingClosed
			);
			ensure!(record.issuer != validator, Error::<T>::OwnRecord);
			ensure!(!Votes::<T>::contains_key(record_id, &validator), Error::<T>::AlreadyVoted);

			let decided = match vote {
				Vote::Confirm => {
					record.confirmations = record.confirmations.saturating_add(1);
					(record.confirmations >= T::ConfirmationsRequired::get())
						.then_some(RecordStatus::Confirmed)
				},
				Vote::Reject(_) => {
					record.rejections = record.rejections.saturating_add(1);
					(record.rejections >= T::RejectionsRequired::get())
						.then_some(RecordStatus::Rejected)
				},
			};
			Votes::<T>::insert(record_id, &validator, vote);
			Self::deposit_event(Event::RecordVoted { record_id, validator, vote });
			if let Some(status) = decided {
				record.status = status;
				if status == RecordStatus::Confirmed {
					T::Credit::report(&record.issuer, Behaviour::RecordConfirmed);
					Self::deposit_event(Event::RecordConfirmed { record_id });
				} else {
					T::Credit::report(&record.issuer, Behaviour::RecordRejected);
					Self::deposit_event(Event::RecordRejected { record_id });
				}
			}
			Records::<T>::insert(record_id, record);
			Ok(())
		}

		/// Records that the calling gateway serves record `record_id` to
		/// `accessor` for `purpose`. Gateways call it before every read they
		/// serve, and serve only once it is final: the entry lands only if the
		/// read is allowed at the block that holds it, so a revocation that
		/// lands first stops the read.
		///
		/// The gateway is the record's issuer (an institution logs reads only
		/// of the records it holds). The accessor is the record's patient, its
		/// issuer, or the grantee of `grant`, a usable grant of the patient
		/// that covers the record and was given for `purpose`.
		///
		/// Origin: an active institution, the record's issuer.
		/// Emits `RecordAccessed`. Errors: `NotInstitution`, `RecordNotFound`,
		/// `NotIssuer`, `NotReadable`, `PurposeNotGranted`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::log_access().saturating_add(T::Grants::purpose_of_read_weight()))]
		pub fn log_access(
			origin: OriginFor<T>,
			record_id: RecordId,
			accessor: T::AccountId,
			purpose: AccessPurpose,
			grant: Option<u64>,
		) -> DispatchResult {
			let gateway = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&gateway), Error::<T>::NotInstitution);
			let record = Records::<T>::get(record_id).ok_or(Error::<T>::RecordNotFound)?;
			ensure!(record.issuer == gateway, Error::<T>::NotIssuer);
			let now = frame_system::Pallet::<T>::block_number();
			Self::ensure_readable(&record, record_id, &accessor, purpose, grant, now)?;
			AccessCount::<T>::mutate(record_id, |n| *n = n.saturating_add(1));
			Self::deposit_event(Event::RecordAccessed { record_id, accessor, gateway, purpose });
			Ok(())
		}

		/// Logs reads the calling gateway served, each after checking, at the
		/// finalized block `checked_at`, that the chain let its accessor read
		/// the record (the instant path: serve first, log within
		/// `MaxLogDelay` blocks). Each entry is checked as `log_access` checks
		/// one, against the chain as it was at `checked_at`: the gateway is
		/// the record's issuer (an entry that served the record) or a proxy
		/// that acknowledged `grant` (one that served a key fragment, on the
		/// instant key path: then the accessor must be the grant's grantee);
		/// the accessor is the record's patient, its
		/// issuer, or the grantee of `grant`, which held at `checked_at` (made
		/// by then, not yet revoked nor expired), covers the record and was
		/// given for `purpose`. A read revoked before it was checked is
		/// refused; one checked before the revocation is logged. A read
		/// already logged (same gateway, id and block) is skipped, so a
		/// gateway may submit again whatever it is unsure about. All or
		/// nothing: one refused entry refuses the call.
		///
		/// Origin: an active institution. Emits `RecordRead` or
		/// `KeyFragmentServed` per new entry.
		/// Errors: `NotInstitution`, `CheckedInFuture`, `LoggedTooLate`,
		/// `RecordNotFound`, `NotIssuer` (a record entry from another than
		/// the record's issuer), `NotGrantProxy` (a key fragment entry from
		/// another than a proxy that acknowledged its grant), `AuditFirst`
		/// (the grant's patient required audit first, by `checked_at`),
		/// `NotReadable`, `PurposeNotGranted`, `TooManyReads`.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::log_access()
			.saturating_add(T::Grants::purpose_of_read_weight())
			.saturating_add(Pallet::<T>::logged_read_weight())
			.saturating_mul(entries.len().max(1) as u64))]
		pub fn log_reads(
			origin: OriginFor<T>,
			entries: BoundedVec<ReadEntry<T::AccountId, BlockNumberFor<T>>, T::MaxReadsPerLog>,
		) -> DispatchResult {
			let gateway = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&gateway), Error::<T>::NotInstitution);
			let now = frame_system::Pallet::<T>::block_number();
			for e in entries {
				ensure!(e.checked_at <= now, Error::<T>::CheckedInFuture);
				ensure!(now.saturating_sub(e.checked_at) <= T::MaxLogDelay::get(), Error::<T>::LoggedTooLate);
				let key = (gateway.clone(), e.read);
				if LoggedReads::<T>::contains_key(e.checked_at, &key) {
					continue;
				}
				let record = Records::<T>::get(e.record_id).ok_or(Error::<T>::RecordNotFound)?;
				ensure!(!e.grant.is_some_and(|g| T::Grants::audit_first_at(g, e.checked_at)), Error::<T>::AuditFirst);
				match e.served {
					Served::Record => {
						ensure!(record.issuer == gateway, Error::<T>::NotIssuer);
						Self::ensure_readable(&record, e.record_id, &e.accessor, e.purpose, e.grant, e.checked_at)?;
					},
					Served::KeyFragment => {
						ensure!(
							e.grant.is_some_and(|g| T::Grants::serves_grant(&gateway, g)),
							Error::<T>::NotGrantProxy
						);
						// Fragments go to the grant's grantee only, whoever it is.
						Self::ensure_granted(e.record_id, &e.accessor, e.purpose, e.grant, e.checked_at)?;
					},
				}
				ReadsCheckedAt::<T>::try_mutate(e.checked_at, &gateway, |n| -> DispatchResult {
					ensure!(*n < T::MaxReadsPerCheckedBlock::get(), Error::<T>::TooManyReads);
					*n = n.saturating_add(1);
					Ok(())
				})?;
				LoggedReads::<T>::insert(e.checked_at, key, ());
				Self::deposit_event(match (e.served, e.grant) {
					(Served::KeyFragment, Some(grant)) => Event::KeyFragmentServed {
						record_id: e.record_id,
						accessor: e.accessor,
						proxy: gateway.clone(),
						grant,
						checked_at: e.checked_at,
					},
					_ => {
						AccessCount::<T>::mutate(e.record_id, |n| *n = n.saturating_add(1));
						Event::RecordRead {
							record_id: e.record_id,
							accessor: e.accessor,
							gateway: gateway.clone(),
							purpose: e.purpose,
							checked_at: e.checked_at,
						}
					},
				});
			}
			Ok(())
		}

		/// Marks a record erased after its content was deleted from the store.
		/// The index keeps the digest, the issuer, the version links, the
		/// votes and the publication time (the audit trail needs them); the
		/// pointer, the kind and the size are dropped, and so is the link
		/// to the patient: the entry names [`Pallet::nobody`] instead, and the
		/// patient's list no longer holds it. Not while the
		/// record is pending: voting ends within `ConfirmationPeriod`, and a
		/// rejection (with its credit loss) cannot be dodged by erasing first.
		///
		/// Origin: the record's issuer or its patient. Emits `RecordErased`.
		/// Errors: `RecordNotFound`, `NotAllowedToErase`, `UnderReview`,
		/// `AlreadyErased`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::erase_record())]
		pub fn erase_record(origin: OriginFor<T>, record_id: RecordId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Records::<T>::try_mutate(record_id, |maybe| -> DispatchResult {
				let r = maybe.as_mut().ok_or(Error::<T>::RecordNotFound)?;
				ensure!(r.status != RecordStatus::Erased, Error::<T>::AlreadyErased);
				ensure!(r.issuer == who || r.patient == who, Error::<T>::NotAllowedToErase);
				ensure!(r.status != RecordStatus::Pending, Error::<T>::UnderReview);
				// Kept until reads checked before now can no longer be logged.
				let now = frame_system::Pallet::<T>::block_number();
				let link = ErasedLink { patient: r.patient.clone(), kind: r.kind, status: r.status };
				ErasedLinks::<T>::insert(now, record_id, link);
				ErasedAt::<T>::insert(record_id, now);
				Self::unlink_erased(record_id, r);
				Ok(())
			})?;
			Self::deposit_event(Event::RecordErased { record_id });
			Ok(())
		}

		/// Lets `issuer` index records under the caller's account, until the
		/// caller withdraws. A patient without funds gives the issuer a signed
		/// consent instead ([`Pallet::register_patient`]).
		/// A consent given this way sponsors no fee-less calls: the caller
		/// pays its own (else anyone could make an account fee-less for the
		/// price of one call).
		///
		/// Origin: the patient. Emits `IndexConsentGiven`.
		/// Errors: `NotProducer` (the issuer is not an active producer),
		/// `AlreadyConsented`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::consent_to_index())]
		pub fn consent_to_index(origin: OriginFor<T>, issuer: T::AccountId) -> DispatchResult {
			let patient = ensure_signed(origin)?;
			ensure!(T::Registry::has_role(&issuer, Role::Producer), Error::<T>::NotProducer);
			Self::give_consent(patient, issuer, false)
		}

		/// Registers `patient` with the calling institution: `signature` is
		/// the patient's over [`Pallet::consent_message`] for this issuer,
		/// given once (in the patient's wallet, e.g. at the hospital's desk).
		/// The institution pays; the patient needs no funds, and while this
		/// consent is in force the patient's own calls are fee-less
		/// ([`crate::extension`]).
		///
		/// Origin: an active producer institution. Emits `IndexConsentGiven`.
		/// Errors: `NotProducer`, `AlreadyConsented`, `BadConsentSignature`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::register_patient())]
		pub fn register_patient(
			origin: OriginFor<T>,
			patient: T::AccountId,
			signature: T::ConsentSignature,
		) -> DispatchResult {
			let issuer = ensure_signed(origin)?;
			ensure!(T::Registry::has_role(&issuer, Role::Producer), Error::<T>::NotProducer);
			let consent = IndexConsents::<T>::get(&patient, &issuer);
			ensure!(!consent.given, Error::<T>::AlreadyConsented);
			let message = Self::consent_message(&issuer, &patient, consent.generation);
			let mut wrapped = Vec::with_capacity(message.len().saturating_add(15));
			wrapped.extend_from_slice(b"<Bytes>");
			wrapped.extend_from_slice(&message);
			wrapped.extend_from_slice(b"</Bytes>");
			ensure!(
				signature.verify(&message[..], &patient) || signature.verify(&wrapped[..], &patient),
				Error::<T>::BadConsentSignature
			);
			Self::give_consent(patient, issuer, true)
		}

		/// Stops `issuer` indexing new records under the caller's account, and
		/// voids every consent the patient signed for it before, used or not
		/// (a code handed over and regretted, or leaked, before the issuer
		/// submitted it). Records already published stay (and their
		/// amendments, which correct them).
		///
		/// Voiding codes writes an entry (patient, issuer) where none may have
		/// been: the chain then shows the patient knew that hospital.
		///
		/// Origin: the patient. Emits `IndexConsentWithdrawn`.
		/// Errors: `NotProducer` (no entry yet and the issuer is no active
		/// producer: nothing to withdraw from, no entry written), `Overflow`.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::withdraw_index_consent())]
		pub fn withdraw_index_consent(origin: OriginFor<T>, issuer: T::AccountId) -> DispatchResult {
			let patient = ensure_signed(origin)?;
			ensure!(
				IndexConsents::<T>::contains_key(&patient, &issuer) || T::Registry::has_role(&issuer, Role::Producer),
				Error::<T>::NotProducer
			);
			let was_sponsored =
				IndexConsents::<T>::try_mutate(&patient, &issuer, |consent| -> Result<bool, DispatchError> {
					consent.generation = consent.generation.checked_add(1).ok_or(Error::<T>::Overflow)?;
					let sponsored = consent.given && consent.sponsored;
					consent.given = false;
					consent.sponsored = false;
					Ok(sponsored)
				})?;
			if was_sponsored {
				FreeCalls::<T>::mutate_extant(&patient, |a| a.sponsors = a.sponsors.saturating_sub(1));
			}
			Self::deposit_event(Event::IndexConsentWithdrawn { issuer });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// That the chain let `accessor` read `record` for `purpose` at block
		/// `at`: its patient or its issuer, or the grantee of `grant`, usable
		/// then, covering the record and given for `purpose`.
		fn ensure_readable(
			record: &Record<T>,
			record_id: RecordId,
			accessor: &T::AccountId,
			purpose: AccessPurpose,
			grant: Option<u64>,
			at: BlockNumberFor<T>,
		) -> DispatchResult {
			// The patient the record named at `at`, before any erasure since.
			let patient =
				Self::erased_link_at(record_id, record, at).map_or_else(|| record.patient.clone(), |l| l.patient);
			if *accessor != patient && *accessor != record.issuer {
				Self::ensure_granted(record_id, accessor, purpose, grant, at)?;
			}
			Ok(())
		}

		/// What record `record_id` (its entry `record`) named before its
		/// erasure, if it was erased after block `at` and that is still kept
		/// ([`ErasedLinks`]). Reads nothing for a record not erased.
		pub(crate) fn erased_link_at(
			record_id: RecordId,
			record: &Record<T>,
			at: BlockNumberFor<T>,
		) -> Option<ErasedLink<T::AccountId>> {
			if record.status != RecordStatus::Erased {
				return None;
			}
			let erased_at = ErasedAt::<T>::get(record_id).filter(|erased_at| at < *erased_at)?;
			ErasedLinks::<T>::get(erased_at, record_id)
		}

		/// `accessor` could read the record under `grant` at block `at`, for
		/// `purpose` (what [`Pallet::ensure_readable`] asks of a grantee).
		fn ensure_granted(
			record_id: RecordId,
			accessor: &T::AccountId,
			purpose: AccessPurpose,
			grant: Option<u64>,
			at: BlockNumberFor<T>,
		) -> DispatchResult {
			let granted = grant
				.and_then(|grant| T::Grants::purpose_of_read(accessor, record_id, grant, at))
				.ok_or(Error::<T>::NotReadable)?;
			ensure!(granted == purpose, Error::<T>::PurposeNotGranted);
			Ok(())
		}

		/// Forgets logged reads checked at blocks whose reads can no longer be
		/// logged (more than `MaxLogDelay` before `now`), oldest first: at most
		/// `MaxReadsPerCheckedBlock` entries and 16 blocks per call, carrying on
		/// in the next block (entries past the delay only take space: a read
		/// checked then is refused as too late anyway). Returns the weight.
		fn forget_old_reads(now: BlockNumberFor<T>) -> Weight {
			let Some(horizon) = now.checked_sub(&T::MaxLogDelay::get().saturating_add(One::one())) else {
				return T::DbWeight::get().reads(1);
			};
			let limit = T::MaxReadsPerCheckedBlock::get();
			let mut block = ForgetFrom::<T>::get().unwrap_or(horizon);
			let (mut removed, mut steps, mut erasures) = (0u32, 0u64, 0u64);
			while block <= horizon && steps < 16 && removed < limit {
				steps += 1;
				// One removal per prefix and block: a second would not see
				// what the first removed.
				let reads = LoggedReads::<T>::clear_prefix(block, limit - removed, None);
				removed = removed.saturating_add(reads.unique);
				if reads.maybe_cursor.is_some() {
					break;
				}
				let counts = ReadsCheckedAt::<T>::clear_prefix(block, limit, None);
				removed = removed.saturating_add(counts.unique);
				if counts.maybe_cursor.is_some() {
					break;
				}
				// What records erased at this block named, with their erasure
				// block: no read checked before them can be logged any more.
				let budget = limit.saturating_sub(removed);
				let mut links = 0u32;
				for (record_id, _) in ErasedLinks::<T>::drain_prefix(block).take(budget as usize) {
					ErasedAt::<T>::remove(record_id);
					links = links.saturating_add(1);
				}
				removed = removed.saturating_add(links);
				erasures = erasures.saturating_add(links as u64);
				if links == budget && ErasedLinks::<T>::iter_key_prefix(block).next().is_some() {
					break;
				}
				block = block.saturating_add(One::one());
			}
			ForgetFrom::<T>::put(block);
			// Three prefixes looked up per step, the third again to see if it
			// is empty; each removed entry: two hashed keys (and an erased
			// link's value), in the proof; an erased link also its record's
			// erasure block.
			T::DbWeight::get()
				.reads_writes(1 + 4 * steps, 1 + removed as u64 + erasures)
				.saturating_add(Weight::from_parts(0, 192 * (1 + removed as u64 + erasures)))
		}

		/// What logging one read adds to `log_access`'s work: the
		/// `LoggedReads` entry (read, written) and the block's count; and
		/// what an erased record named, read as the benchmarks count an item
		/// of bounded size (its keys, value and a trie proof of about 2.5 KB;
		/// the `log_access` benchmark erases nothing).
		pub(crate) fn logged_read_weight() -> Weight {
			use codec::MaxEncodedLen;
			let erased_link = 2_475 + 36 + ErasedLink::<T::AccountId>::max_encoded_len() as u64;
			T::DbWeight::get()
				.reads_writes(3, 2)
				.saturating_add(Weight::from_parts(0, 2 * 128 + erased_link))
		}

		/// The bytes `patient` signs to let `issuer` index records under its
		/// account: [`INDEX_CONSENT_TAG`] then the SCALE encoding of (genesis
		/// hash, issuer, patient, `generation`), the generation being
		/// `IndexConsents[patient][issuer].generation`.
		pub fn consent_message(issuer: &T::AccountId, patient: &T::AccountId, generation: u32) -> Vec<u8> {
			let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
			let mut message = INDEX_CONSENT_TAG.to_vec();
			(genesis, issuer, patient, generation).encode_to(&mut message);
			message
		}

		/// The account an erased record names instead of its patient: all
		/// zero bytes (the issuer, should the account type not decode from
		/// zeros). Not assumed keyless (ed25519's ZIP-215 rules accept a
		/// signature for the all-zero key): nothing lets its signer act on an
		/// erased record, since `erase_record` checks `AlreadyErased` first,
		/// an erased record is unavailable to grants and requests, and
		/// `amend_record` refuses it.
		pub fn nobody(issuer: &T::AccountId) -> T::AccountId {
			T::AccountId::decode(&mut sp_runtime::traits::TrailingZeroInput::zeroes()).unwrap_or_else(|_| issuer.clone())
		}

		/// Erases `r` in place: no pointer, no patient, no kind, no size, out
		/// of the patient's list. What stays is the audit trail: digest,
		/// issuer, version links, capsule hash, votes and when it was published.
		pub(crate) fn unlink_erased(record_id: RecordId, r: &mut Record<T>) {
			let nobody = Self::nobody(&r.issuer);
			let patient = core::mem::replace(&mut r.patient, nobody);
			PatientRecords::<T>::remove(&patient, record_id);
			r.status = RecordStatus::Erased;
			r.pointer = None;
			r.kind = None;
			r.size = 0;
		}

		/// Puts `patient`'s consent to `issuer` in force; `sponsored` when the
		/// issuer registered the patient (its calls become fee-less).
		fn give_consent(patient: T::AccountId, issuer: T::AccountId, sponsored: bool) -> DispatchResult {
			IndexConsents::<T>::try_mutate(&patient, &issuer, |consent| -> DispatchResult {
				ensure!(!consent.given, Error::<T>::AlreadyConsented);
				consent.given = true;
				consent.sponsored = sponsored;
				Ok(())
			})?;
			if sponsored {
				Self::sponsor(&patient);
			}
			Self::deposit_event(Event::IndexConsentGiven { issuer });
			Ok(())
		}

		/// One more issuer registered `patient`: its calls are fee-less while
		/// one is. The first registration gives the account the provider
		/// reference it keeps for good.
		pub(crate) fn sponsor(patient: &T::AccountId) {
			FreeCalls::<T>::mutate(patient, |allowance| match allowance {
				Some(a) => a.sponsors = a.sponsors.saturating_add(1),
				None => {
					frame_system::Pallet::<T>::inc_providers(patient);
					*allowance = Some(FreeCallAllowance { sponsors: 1, ..Default::default() });
				},
			});
		}

		/// Whether `who` may make a fee-less patient call now: registered by
		/// an issuer and within its allowance of the current window.
		pub fn free_call_available(who: &T::AccountId) -> bool {
			Self::free_call_slot(who).is_some()
		}

		/// The place a fee-less call of `who` would take now: the window it
		/// falls in and how many calls came before it in that window; `None`
		/// when `who` may not make one.
		pub fn free_call_slot(who: &T::AccountId) -> Option<(BlockNumberFor<T>, u32)> {
			let a = FreeCalls::<T>::get(who).filter(|a| a.sponsors > 0)?;
			let now = frame_system::Pallet::<T>::block_number();
			if now >= a.window_start.saturating_add(T::FreeCallWindow::get()) {
				Some((now, 0))
			} else {
				(a.used < T::FreeCallsPerWindow::get()).then_some((a.window_start, a.used))
			}
		}

		/// Counts one fee-less call of `who` (a new window starts once the
		/// last one ended).
		pub fn use_free_call(who: &T::AccountId) {
			let now = frame_system::Pallet::<T>::block_number();
			FreeCalls::<T>::mutate_extant(who, |a| {
				if now >= a.window_start.saturating_add(T::FreeCallWindow::get()) {
					a.window_start = now;
					a.used = 0;
				}
				a.used = a.used.saturating_add(1);
			});
		}

		/// Stores a new record (a first version or an amendment of `previous`)
		/// and schedules the end of its voting; returns its id.
		#[allow(clippy::too_many_arguments)]
		fn insert_record(
			issuer: T::AccountId,
			patient: T::AccountId,
			kind: Option<RecordKind>,
			digest: ContentDigest,
			pointer: StorePointer<T::MaxPointerLen>,
			size: u64,
			capsule_hash: H256,
			previous: Option<(RecordId, &Record<T>)>,
		) -> Result<RecordId, DispatchError> {
			ensure!(size > 0, Error::<T>::EmptyRecord);
			let record_id = NextRecordId::<T>::get();
			let next_id = record_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let now = frame_system::Pallet::<T>::block_number();
			let deadline = now.saturating_add(T::ConfirmationPeriod::get());
			let (version, link, parent_chain) = match previous {
				Some((id, prev)) => (
					prev.version.checked_add(1).ok_or(Error::<T>::Overflow)?,
					Some((id, prev.digest)),
					prev.chain_hash,
				),
				None => (1, None, H256::zero()),
			};
			let chain_hash = Self::chain_hash(&parent_chain, &digest);
			ExpiringAt::<T>::try_mutate(deadline.saturating_add(1u32.into()), |list| {
				list.try_push(record_id).map_err(|_| Error::<T>::TooManyExpiring)
			})?;
			// Nothing below can fail.
			Records::<T>::insert(
				record_id,
				Record {
					patient: patient.clone(),
					issuer,
					kind,
					digest,
					pointer: Some(pointer),
					size,
					capsule_hash,
					published_at: now,
					timestamp: T::UnixTime::now().as_millis().try_into().unwrap_or(u64::MAX),
					version,
					previous: link,
					chain_hash,
					status: RecordStatus::Pending,
					confirmations: 0,
					rejections: 0,
					deadline,
				},
			);
			PatientRecords::<T>::insert(&patient, record_id, ());
			NextRecordId::<T>::put(next_id);
			Ok(record_id)
		}

		/// The version-chain hash of a record with `digest` whose previous
		/// version has chain hash `parent` (zero for a first version).
		pub fn chain_hash(parent: &H256, digest: &ContentDigest) -> H256 {
			let mut data = parent.as_bytes().to_vec();
			data.extend_from_slice(&digest.encode());
			<BlakeTwo256 as HashT>::hash(&data)
		}

		/// Records of `patient` with id greater than `start_after`, at most
		/// `limit`, oldest first (runtime API).
		pub fn records_of_patient(
			patient: &T::AccountId,
			start_after: Option<RecordId>,
			limit: u32,
		) -> Vec<(RecordId, Record<T>)> {
			let mut ids: Vec<RecordId> = PatientRecords::<T>::iter_key_prefix(patient)
				.filter(|id| start_after.map_or(true, |s| *id > s))
				.collect();
			ids.sort_unstable();
			ids.into_iter()
				.take(limit as usize)
				.filter_map(|id| Records::<T>::get(id).map(|r| (id, r)))
				.collect()
		}

		/// `record_id` and every earlier version, newest first (runtime API).
		pub fn version_chain(record_id: RecordId) -> Vec<(RecordId, Record<T>)> {
			let mut out = Vec::new();
			let mut next = Some(record_id);
			while let Some(id) = next {
				let Some(r) = Records::<T>::get(id) else { break };
				next = r.previous.map(|(p, _)| p);
				out.push((id, r));
			}
			out
		}

		/// Pending records `validator` may still vote on, at most `limit`
		/// (runtime API).
		pub fn pending_for(validator: &T::AccountId, limit: u32) -> Vec<(RecordId, Record<T>)> {
			let now = frame_system::Pallet::<T>::block_number();
			let mut out = Vec::new();
			for (at, ids) in ExpiringAt::<T>::iter() {
				if at <= now {
					continue;
				}
				for id in ids {
					if let Some(r) = Records::<T>::get(id) {
						if r.status == RecordStatus::Pending &&
							&r.issuer != validator && !Votes::<T>::contains_key(id, validator)
						{
							out.push((id, r));
						}
					}
				}
			}
			out.sort_by_key(|(id, _)| *id);
			out.truncate(limit as usize);
			out
		}

		/// Checks the pallet's invariants.
		#[cfg(any(feature = "try-runtime", feature = "std", test))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			let now = frame_system::Pallet::<T>::block_number();
			let mut counted = alloc::collections::BTreeMap::new();
			for (block, (gateway, _)) in LoggedReads::<T>::iter_keys() {
				*counted.entry((block, gateway)).or_insert(0u32) += 1;
			}
			// The block being forgotten may have lost some of its reads
			// already; older ones none left, newer ones all counted.
			let forgetting = ForgetFrom::<T>::get();
			for (block, gateway, n) in ReadsCheckedAt::<T>::iter() {
				ensure!(n <= T::MaxReadsPerCheckedBlock::get(), "more reads logged by a gateway for a block than allowed");
				ensure!(block <= now, "a read logged as checked at a block to come");
				ensure!(forgetting.is_none_or(|f| block >= f), "reads kept for a block already forgotten");
				let left = counted.remove(&(block, gateway.clone())).unwrap_or(0);
				if forgetting == Some(block) {
					ensure!(left <= n, "logged reads miscounted");
				} else {
					ensure!(left == n, "logged reads miscounted");
				}
			}
			ensure!(counted.is_empty(), "a logged read not counted");
			for (block, id, link) in ErasedLinks::<T>::iter() {
				ensure!(ErasedAt::<T>::get(id) == Some(block), "an erased record's link kept under another block");
				ensure!(forgetting.is_none_or(|f| block >= f), "an erased record's link kept past the log delay");
				ensure!(
					!matches!(link.status, RecordStatus::Erased | RecordStatus::Pending),
					"an erased record's link holds a status it could not be erased from"
				);
			}
			for (id, block) in ErasedAt::<T>::iter() {
				ensure!(
					Records::<T>::get(id).is_some_and(|r| r.status == RecordStatus::Erased),
					"an erasure block kept for a record not erased"
				);
				ensure!(ErasedLinks::<T>::contains_key(block, id), "an erasure block kept without its link");
			}
			let next = NextRecordId::<T>::get();
			for (id, r) in Records::<T>::iter() {
				ensure!(id < next, "record id at or above NextRecordId");
				if r.status == RecordStatus::Erased {
					ensure!(r.patient == Self::nobody(&r.issuer), "an erased record still names its patient");
					ensure!(r.kind.is_none() && r.size == 0, "an erased record still holds its kind or size");
				} else {
					ensure!(r.kind.is_some() && r.size > 0, "a record that is not erased lost its kind or size");
					ensure!(
						PatientRecords::<T>::contains_key(&r.patient, id),
						"record missing from its patient's list"
					);
				}
				let parent = match r.previous {
					Some((p, d)) => {
						let prev = Records::<T>::get(p).ok_or("previous version missing")?;
						ensure!(prev.digest == d, "previous digest does not match");
						ensure!(Successor::<T>::get(p) == Some(id), "successor link broken");
						prev.chain_hash
					},
					None => H256::zero(),
				};
				ensure!(r.chain_hash == Self::chain_hash(&parent, &r.digest), "chain hash broken");
				ensure!(
					(r.status == RecordStatus::Erased) == r.pointer.is_none(),
					"erased records and only they have no pointer"
				);
			}
			let mut in_force = alloc::collections::btree_map::BTreeMap::<T::AccountId, u32>::new();
			for (patient, _, consent) in IndexConsents::<T>::iter() {
				ensure!(consent.given || !consent.sponsored, "a withdrawn consent still sponsors");
				if consent.sponsored {
					let n = in_force.entry(patient).or_insert(0);
					*n = n.saturating_add(1);
				}
			}
			for (patient, allowance) in FreeCalls::<T>::iter() {
				ensure!(
					allowance.sponsors == in_force.remove(&patient).unwrap_or(0),
					"fee-less sponsors differ from the sponsored consents in force"
				);
				ensure!(
					frame_system::Pallet::<T>::providers(&patient) > 0,
					"a registered patient's account lost its provider reference"
				);
				ensure!(allowance.used <= T::FreeCallsPerWindow::get(), "more free calls than the allowance");
			}
			ensure!(in_force.is_empty(), "a registered patient without its fee-less allowance");
			Ok(())
		}
	}
}

/// What other pallets see of index entry `r`: available unless erased or
/// rejected by validators.
fn record_ref<T: Config>(r: Record<T>) -> RecordRef<T::AccountId> {
	RecordRef {
		available: !matches!(r.status, RecordStatus::Erased | RecordStatus::Rejected),
		confirmed: r.status == RecordStatus::Confirmed,
		patient: r.patient,
		issuer: r.issuer,
		kind: r.kind,
		capsule_hash: r.capsule_hash.0,
	}
}

/// Other pallets look records up through [`RecordIndex`].
impl<T: Config> RecordIndex<T::AccountId> for Pallet<T> {
	fn record(id: u64) -> Option<RecordRef<T::AccountId>> {
		Records::<T>::get(id).map(record_ref)
	}

	/// As the record stood at block `at`: an erased record's patient, kind
	/// and confirmation as before its erasure if `at` is before it (while
	/// kept: reads checked then may still be logged).
	fn record_as_of(id: u64, at: u64) -> Option<RecordRef<T::AccountId>> {
		let mut r = Records::<T>::get(id)?;
		// A block number past the chain's type is later than any erasure.
		let at = frame_system::pallet_prelude::BlockNumberFor::<T>::unique_saturated_from(at);
		if let Some(link) = Self::erased_link_at(id, &r, at) {
			(r.patient, r.kind, r.status) = (link.patient, link.kind, link.status);
		}
		Some(record_ref(r))
	}

	fn records_of(patient: &T::AccountId) -> Vec<u64> {
		PatientRecords::<T>::iter_key_prefix(patient).collect()
	}
}
