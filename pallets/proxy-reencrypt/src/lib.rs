//! # Proxy re-encryption pallet
//!
//! Patients decide who reads their records (seed paper 002). Each record's
//! data key is encrypted to the patient's Umbral public key (the record's
//! *key capsule*); a grant hands threshold *key fragments* to proxies, which
//! re-encrypt the capsule for the grantee without ever learning the key.
//!
//! ## Overview
//!
//! - **Keys.** Patients and grantees register Umbral keys
//!   ([`Pallet::register_key`]); institutions that run proxies register theirs
//!   ([`Pallet::register_proxy`]). The issuer of a record attaches its key
//!   capsule ([`Pallet::attach_capsule`]); the record index already commits to
//!   it through `capsule_hash`.
//! - **Grant.** [`Pallet::grant_access`]: patient → grantee, a scope (one
//!   record, a kind, all), a purpose, an optional expiry block, M of N proxies,
//!   each proxy's key fragment sealed to that proxy's public key, so nobody else
//!   reading the chain can use it. The seals' capsules are checked on chain.
//! - **Revoke and expiry.** [`Pallet::revoke_grant`] or the expiry block end a
//!   grant: no new request, no fragment accepted, the gateway refuses.
//! - **Consent of the proxies.** A proxy named in a grant opens and verifies
//!   its sealed key fragment and then [`Pallet::acknowledge_grant`]s it, or
//!   [`Pallet::dispute_grant`]s it if the fragment does not open or verify (a
//!   grant is unusable once fewer than `threshold` undisputed proxies remain;
//!   one proxy cannot veto a grant the others can serve). Nodes' offchain
//!   workers do this by themselves. No request is accepted before
//!   `threshold` proxies acknowledged, and only acknowledged proxies are asked to serve, earn
//!   credit for serving or lose it for failing: nobody can make an
//!   institution liable for a grant it never agreed to serve.
//! - **Request.** [`Pallet::request_access`]: the grantee asks for one record
//!   (the audit event), at most once per `MinRequestInterval` blocks per
//!   grant. Proxies' offchain workers open their fragment,
//!   re-encrypt the capsule and [`Pallet::submit_fragment`]; the pallet
//!   verifies each capsule fragment (Umbral's proof) before accepting it: a
//!   valid one earns the proxy credit (unless the proxy is the grant's
//!   patient or grantee), an invalid one costs it. With M
//!   fragments the request is `Ready` and the grantee decrypts the data key.
//!   Requests not served by their deadline expire and the silent acknowledged
//!   proxies lose credit.
//! - **Break-glass.** A patient opts in to emergency access by an institution
//!   with an *emergency grant*. Its doctors reach records only through
//!   [`Pallet::break_glass`], with a stated reason (a category and the hash of
//!   the written statement): the patient is notified by event, and an auditor
//!   other than the institution itself must [`Pallet::review_emergency`]
//!   within `ReviewWindow` blocks or the institution loses credit (as it does
//!   when the access is judged unjustified).
//!
//! Every call made for an institution checks that it is an active
//! institution at the time of the call.
//!
//! Nothing secret is on chain: public keys, capsules, sealed fragments and
//! capsule fragments are all useless without the matching secret keys.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

/// What a proxy signs with each capsule fragment it serves off chain: SCALE
/// of `(b"medchain-pre-fragment:v2", genesis, grant, record, grantee,
/// blake2_256(fragment))`, on the chain with genesis hash `genesis`. The
/// grantee keeps it; a bad fragment with it is a fraud proof
/// ([`Pallet::report_bad_fragment`]).
pub fn fragment_statement<H: codec::Encode, A: codec::Encode>(
	genesis: H,
	grant: GrantId,
	record: RecordId,
	grantee: &A,
	fragment: &[u8],
) -> alloc::vec::Vec<u8> {
	(FRAGMENT_STATEMENT_TAG, genesis, grant, record, grantee, sp_io::hashing::blake2_256(fragment)).encode()
}

/// The tag [`fragment_statement`] starts with.
pub const FRAGMENT_STATEMENT_TAG: &[u8; 24] = b"medchain-pre-fragment:v2";

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod impl_queries;
pub mod migrations;
mod offchain;
pub mod types;
pub mod weights;

pub use types::*;
pub use weights::WeightInfo;

use alloc::vec::Vec;
use frame_support::BoundedVec;
use medchain_primitives::{AuditorVerdicts, Behaviour, CreditReporter, InstitutionRegistry, RecordIndex, Role};
use sp_core::H256;
use codec::Encode;
use sp_runtime::{
	traits::{IdentifyAccount, Saturating, Verify},
	KeyTypeId,
};

/// Key type of proxy signing keys in a node's keystore.
pub const KEY_TYPE: KeyTypeId = KeyTypeId(*b"prx0");

/// Log target of this pallet.
pub const LOG_TARGET: &str = "runtime::proxy-reencrypt";

/// Prefix of the node-local (offchain persistent storage) key under which a
/// proxy's 32-byte Umbral key seed is kept: the prefix followed by the
/// proxy's 33-byte public key. Set it with the node's
/// `offchain_localStorageSet` RPC; the key is `medchain_umbral::proxy_secret_key(seed)`.
pub const PROXY_SECRET_PREFIX: &[u8] = b"medchain/pre/secret/";

/// Proxy signing keys: sr25519, key type [`KEY_TYPE`].
pub mod crypto {
	use super::KEY_TYPE;
	use sp_runtime::{
		app_crypto::{app_crypto, sr25519},
		MultiSignature, MultiSigner,
	};
	app_crypto!(sr25519, KEY_TYPE);

	/// Binds proxy keys to the runtime's `MultiSigner` accounts.
	pub struct ProxyId;

	impl frame_system::offchain::AppCrypto<MultiSigner, MultiSignature> for ProxyId {
		type RuntimeAppPublic = Public;
		type GenericSignature = sp_core::sr25519::Signature;
		type GenericPublic = sp_core::sr25519::Public;
	}
}

/// Material the benchmarks need from the runtime.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId, Signature> {
	/// The `n`-th active institution holding `role` (distinct for distinct `n`).
	fn institution(n: u32, role: Role) -> AccountId;
	/// An active institution whose key [`BenchmarkHelper::sign`] signs with.
	fn signing_institution() -> AccountId;
	/// The signature of `message` by `who`, [`BenchmarkHelper::signing_institution`].
	fn sign(who: &AccountId, message: &[u8]) -> Signature;
	/// A record of `patient` issued by `issuer` whose `capsule_hash` is
	/// `capsule_hash`; returns its id.
	fn record(issuer: &AccountId, patient: &AccountId, capsule_hash: H256) -> RecordId;
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;
	use frame_system::{offchain::CreateSignedTransaction, pallet_prelude::*};
	use medchain_primitives::{AccessPurpose, RecordKind};

	/// The in-code storage version.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Configuration of the pallet.
	#[pallet::config]
	pub trait Config: CreateSignedTransaction<Call<Self>> + frame_system::Config {
		/// The overarching event type.
		#[allow(deprecated)]
		type RuntimeEvent: From<Event<Self>> + IsType<<Self as frame_system::Config>::RuntimeEvent>;

		/// Which accounts are active institutions, with which roles.
		type Registry: InstitutionRegistry<Self::AccountId>;

		/// Where proxies' and break-glass institutions' behaviour is reported.
		type Credit: CreditReporter<Self::AccountId> + AuditorVerdicts<Self::AccountId>;

		/// A motion of the regulators: reviews a break-glass access as a
		/// body (not charged to any auditor's allowance) and may overturn an
		/// auditor's clearance within the review window.
		type RegulatorOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// The record index.
		type Records: RecordIndex<Self::AccountId>;

		/// Proxy signing keys of offchain workers.
		type AuthorityId: frame_system::offchain::AppCrypto<Self::Public, Self::Signature>;

		/// Most proxies (N) per grant.
		#[pallet::constant]
		type MaxProxies: Get<u32>;

		/// Most listed (not revoked) grants per patient.
		#[pallet::constant]
		type MaxGrantsPerAccount: Get<u32>;

		/// Most requests waiting for proxies at once. Ordinary requests may
		/// take three quarters of them; the last quarter is kept for
		/// break-glass accesses, so that no flood of ordinary requests can
		/// keep an emergency doctor out.
		#[pallet::constant]
		type MaxOpenRequests: Get<u32>;

		/// Most ordinary requests one account may have waiting for proxies
		/// at once (break-glass accesses are not counted: each is reviewed).
		#[pallet::constant]
		type MaxOpenRequestsPerRequester: Get<u32>;

		/// Most requests (ordinary and break-glass) one grant may have
		/// waiting for proxies at once: what ending a grant closes is bounded.
		#[pallet::constant]
		type MaxOpenRequestsPerGrant: Get<u32>;

		/// Most one-time record keys a patient keeps registered and unused
		/// (`RecordKeyPool`).
		#[pallet::constant]
		type MaxRecordKeys: Get<u32>;

		/// Upper bound of a sealed key fragment's ciphertext.
		#[pallet::constant]
		type MaxSealedFragmentLen: Get<u32>;

		/// Upper bound of a capsule fragment in wire format.
		#[pallet::constant]
		type MaxCapsuleFragmentLen: Get<u32>;

		/// Blocks proxies have to serve a request.
		#[pallet::constant]
		type RequestTimeout: Get<BlockNumberFor<Self>>;

		/// Blocks auditors have to review a break-glass access.
		#[pallet::constant]
		type ReviewWindow: Get<BlockNumberFor<Self>>;

		/// Fewest blocks between two requests under the same grant (break-glass
		/// accesses are not limited: each one is reviewed).
		#[pallet::constant]
		type MinRequestInterval: Get<BlockNumberFor<Self>>;

		/// Weights of the calls.
		type WeightInfo: WeightInfo;

		/// Set-up for the benchmarks.
		/// Signatures of proxies over what they served on the instant path
		/// ([`fragment_statement`]): a grantee's fraud proof carries one.
		type ProxySignature: Parameter + Verify<Signer: IdentifyAccount<AccountId = Self::AccountId>>;

		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId, Self::ProxySignature>;
	}

	/// Umbral keys of patients and grantees.
	#[pallet::storage]
	pub type Keys<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, UmbralKeys, OptionQuery>;

	/// Patients' keys for every record of a kind, by patient and kind
	/// (derived from the patient's secret under `medchain_umbral::kind_label`).
	/// An issuer encrypts a record's data key to its kind's key too, and a
	/// grant of a kind delegates from it: its fragments open that kind only.
	#[pallet::storage]
	pub type KindKeys<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Twox64Concat, RecordKind, UmbralPublicKey, OptionQuery>;

	/// Patients' one-time record keys not yet taken by a record, with their
	/// numbers (derived under `medchain_umbral::record_label`). An issuer
	/// takes one for each new record without the patient online; a grant of
	/// that record delegates from it, so its fragments open that record only.
	/// The patient's wallet tops the pool up ([`Pallet::add_record_keys`]).
	#[pallet::storage]
	pub type RecordKeyPool<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		BoundedVec<(RecordKeyIndex, UmbralPublicKey), T::MaxRecordKeys>,
		ValueQuery,
	>;

	/// The number the next one-time record key a patient adds must have
	/// (each number is used once).
	#[pallet::storage]
	pub type NextRecordKeyIndex<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, RecordKeyIndex, ValueQuery>;

	/// Records' data keys encrypted to the patient's key for their kind.
	#[pallet::storage]
	pub type KindCapsules<T: Config> = StorageMap<_, Twox64Concat, RecordId, KeyCapsule, OptionQuery>;

	/// Records' data keys encrypted to a one-time key of the patient.
	#[pallet::storage]
	pub type OneTimeCapsules<T: Config> = StorageMap<_, Twox64Concat, RecordId, OneTimeCapsule, OptionQuery>;

	/// The narrower key a grant delegates from, for grants whose scope has
	/// one (a kind with a kind key; a record with a one-time or kind
	/// capsule). A grant without one delegates from the patient's key
	/// (`Keys`), which opens every record.
	#[pallet::storage]
	pub type GrantKeys<T: Config> = StorageMap<_, Twox64Concat, GrantId, GrantKey, OptionQuery>;

	/// Umbral public keys of proxy institutions.
	#[pallet::storage]
	pub type Proxies<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, UmbralPublicKey, OptionQuery>;

	/// Key capsules of records (the data key encrypted to the patient).
	#[pallet::storage]
	pub type Capsules<T: Config> = StorageMap<_, Twox64Concat, RecordId, KeyCapsule, OptionQuery>;

	/// Grants, including revoked and expired ones (the audit trail).
	#[pallet::storage]
	pub type Grants<T: Config> = StorageMap<_, Twox64Concat, GrantId, Grant<T>, OptionQuery>;

	/// The id the next grant gets.
	#[pallet::storage]
	pub type NextGrantId<T> = StorageValue<_, GrantId, ValueQuery>;

	/// Sealed key fragments of grants that are not revoked, by proxy.
	#[pallet::storage]
	pub type SealedFragments<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		GrantId,
		Blake2_128Concat,
		T::AccountId,
		SealedFragment<T::MaxSealedFragmentLen>,
		OptionQuery,
	>;

	/// The id of each proxy's key fragment, by grant and proxy, as the
	/// patient's wallet drew it (`medchain_umbral::KfragId`). A capsule
	/// fragment counts for the proxy only if it was made from that key
	/// fragment, so a proxy cannot pass off another proxy's fragment as its
	/// own; a proxy whose sealed fragment carries another id disputes the
	/// grant. Grants made before ids were bound have none. Cleared with the
	/// sealed fragments on revocation.
	#[pallet::storage]
	pub type KeyFragmentIds<T: Config> =
		StorageDoubleMap<_, Twox64Concat, GrantId, Blake2_128Concat, T::AccountId, KfragId, OptionQuery>;

	/// Patients who accept grants that one proxy alone can serve (threshold
	/// 1): such a proxy together with the grantee can open every record in
	/// the grant's scope, so a patient must ask for it
	/// ([`Pallet::allow_single_proxy_grants`]).
	#[pallet::storage]
	pub type SingleProxyGrants<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, (), OptionQuery>;

	/// Grants whose patient requires audit before anything is served: their
	/// proxies and gateways serve only on the on-chain path
	/// (`request_access`, `log_access` first), never on the instant path.
	/// The block from which it holds, by grant
	/// ([`Pallet::require_audit_first`]); kept as long as the grant.
	#[pallet::storage]
	pub type AuditFirst<T: Config> = StorageMap<_, Twox64Concat, GrantId, BlockNumberFor<T>, OptionQuery>;

	/// Bad capsule fragments proven against their proxies
	/// ([`Pallet::report_bad_fragment`]), by BLAKE2-256 of (grant, record,
	/// proxy), with the block of the proof: a proxy is charged once per grant
	/// and record. At most one entry per record a proxy served badly under a
	/// grant.
	#[pallet::storage]
	pub type ReportedFragments<T: Config> = StorageMap<_, Identity, H256, BlockNumberFor<T>, OptionQuery>;

	/// Grants a proxy is named in and has neither acknowledged nor disputed
	/// (what offchain workers scan), by proxy; cleared on revocation and
	/// dispute.
	#[pallet::storage]
	pub type PendingAcknowledgements<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Twox64Concat, GrantId, (), OptionQuery>;

	/// Proxies of a grant that disputed their key fragment (it did not open
	/// or verify), by grant; cleared on revocation. The grant stays usable
	/// while `threshold` of its other proxies can still serve.
	#[pallet::storage]
	pub type Disputes<T: Config> =
		StorageMap<_, Twox64Concat, GrantId, BoundedVec<T::AccountId, T::MaxProxies>, ValueQuery>;

	/// Grants a patient made that are not revoked.
	#[pallet::storage]
	pub type PatientGrants<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BoundedVec<GrantId, T::MaxGrantsPerAccount>, ValueQuery>;

	/// Grants made to a grantee that are not revoked, by grantee and grant.
	/// Not capped per grantee: nobody can fill a doctor's list with junk
	/// grants and so lock real patients out. (Each grant is paid for by its
	/// patient, who holds at most `MaxGrantsPerAccount`.)
	#[pallet::storage]
	pub type GranteeGrants<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Twox64Concat, GrantId, (), OptionQuery>;

	/// Access requests.
	#[pallet::storage]
	pub type Requests<T: Config> = StorageMap<_, Twox64Concat, RequestId, AccessRequest<T>, OptionQuery>;

	/// The id the next request gets.
	#[pallet::storage]
	pub type NextRequestId<T> = StorageValue<_, RequestId, ValueQuery>;

	/// Requests waiting for proxies (what offchain workers scan).
	#[pallet::storage]
	pub type OpenRequests<T: Config> = StorageValue<_, BoundedVec<RequestId, T::MaxOpenRequests>, ValueQuery>;

	/// Requests waiting for proxies, by grant: what ending the grant closes.
	#[pallet::storage]
	pub type GrantOpenRequests<T: Config> =
		StorageMap<_, Twox64Concat, GrantId, BoundedVec<RequestId, T::MaxOpenRequestsPerGrant>, ValueQuery>;

	/// How many ordinary (not break-glass) requests each account has
	/// waiting for proxies.
	#[pallet::storage]
	pub type OpenRequestsOf<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Open requests whose deadline is a block.
	#[pallet::storage]
	pub type RequestDeadlines<T: Config> =
		StorageMap<_, Twox64Concat, BlockNumberFor<T>, BoundedVec<RequestId, T::MaxOpenRequests>, ValueQuery>;

	/// Break-glass accesses whose review window ends at a block.
	#[pallet::storage]
	pub type ReviewDeadlines<T: Config> =
		StorageMap<_, Twox64Concat, BlockNumberFor<T>, BoundedVec<RequestId, T::MaxOpenRequests>, ValueQuery>;

	/// What each proxy submitted for a request.
	#[pallet::storage]
	pub type Fragments<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		RequestId,
		Blake2_128Concat,
		T::AccountId,
		Submission<T::MaxCapsuleFragmentLen>,
		OptionQuery,
	>;

	/// The latest break-glass access under an emergency grant to a record:
	/// what lets the grant's institution read that record through the
	/// record's gateway (while the access has not expired unserved).
	#[pallet::storage]
	pub type BrokenGlass<T: Config> =
		StorageDoubleMap<_, Twox64Concat, GrantId, Twox64Concat, RecordId, RequestId, OptionQuery>;

	/// Requests for each record: the record's access log.
	#[pallet::storage]
	pub type RecordRequests<T: Config> =
		StorageDoubleMap<_, Twox64Concat, RecordId, Twox64Concat, RequestId, (), OptionQuery>;

	/// Events of this pallet.
	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// An account registered its Umbral keys.
		KeyRegistered { who: T::AccountId, public_key: UmbralPublicKey },
		/// A patient registered keys for kinds of records.
		KindKeysRegistered { who: T::AccountId, kinds: u32 },
		/// A patient added one-time record keys; `next` is the number the
		/// next one must have.
		RecordKeysAdded { who: T::AccountId, added: u32, next: RecordKeyIndex },
		/// An institution registered (or rotated) its proxy key.
		ProxyRegistered { proxy: T::AccountId, public_key: UmbralPublicKey },
		/// A record's key capsule was attached.
		CapsuleAttached { record: RecordId },
		/// A patient granted access.
		/// (No patient and no scope: the grant's id leads to them in storage,
		/// readable as long as the grant is kept.)
		AccessGranted { grant: GrantId, grantee: T::AccountId, expires_at: Option<BlockNumberFor<T>>, emergency: bool },
		/// A patient revoked a grant.
		GrantRevoked { grant: GrantId },
		/// The grantee declined a grant: it ended as if revoked.
		GrantDeclined { grant: GrantId },
		/// A proxy opened and verified its key fragment and agreed to serve.
		GrantAcknowledged { grant: GrantId, proxy: T::AccountId },
		/// A proxy's key fragment did not open or verify: that proxy will not
		/// serve the grant. `unusable` when fewer than `threshold` proxies are
		/// left that could (the grant's `disputed_by` then names `proxy`).
		GrantDisputed { grant: GrantId, proxy: T::AccountId, unusable: bool },
		/// A grantee asked to read a record (audit entry). The purpose is
		/// the grant's (`Grants`): events name a grant, not its terms.
		AccessRequested { request: RequestId, grant: GrantId, record: RecordId, requester: T::AccountId },
		/// A proxy's capsule fragment verified and was accepted.
		FragmentAccepted { request: RequestId, proxy: T::AccountId },
		/// A proxy's capsule fragment failed verification.
		FragmentRejected { request: RequestId, proxy: T::AccountId },
		/// The request has threshold fragments: the grantee can decrypt.
		AccessReady { request: RequestId },
		/// The request's deadline passed below the threshold.
		RequestExpired { request: RequestId },
		/// Break-glass access to a patient's record (the patient's notification).
		/// (No patient: the record's id leads to it.)
		EmergencyAccess {
			request: RequestId,
			institution: T::AccountId,
			record: RecordId,
			reason: EmergencyReason,
			review_by: BlockNumberFor<T>,
		},
		/// A patient allowed (or no longer allows) grants with threshold 1.
		SingleProxyGrantsAllowed { allowed: bool },
		/// An auditor reviewed a break-glass access.
		EmergencyReviewed { request: RequestId, auditor: T::AccountId, justified: bool },
		/// The regulators reviewed a break-glass access by motion;
		/// `overturned` when an auditor had cleared it.
		EmergencyReviewedByRegulators { request: RequestId, justified: bool, overturned: bool },
		/// A break-glass access was not reviewed in time.
		EmergencyUnreviewed { request: RequestId, institution: T::AccountId },
		/// The grant's patient requires audit before anything is served
		/// under it, for the rest of the grant's life.
		AuditFirstRequired { grant: GrantId },
		/// The grantee proved that `proxy` served it a bad capsule fragment
		/// under `grant` (signed by the proxy): the proxy lost credit.
		BadFragmentReported { grant: GrantId, proxy: T::AccountId },
	}

	/// A list of requests a caller already took whole from storage, so
	/// closing each request on it leaves that list alone.
	#[derive(Clone, Copy, PartialEq, Eq)]
	enum TakenList {
		/// The ended grant's `GrantOpenRequests`.
		Grant,
		/// The block's `RequestDeadlines`.
		Deadline,
	}

	/// Errors of this pallet.
	#[pallet::error]
	pub enum Error<T> {
		/// Not a compressed secp256k1 public key.
		BadPublicKey,
		/// The first new one-time record key does not have the number the
		/// chain expects (`NextRecordKeyIndex`).
		WrongRecordKeyIndex,
		/// More one-time record keys than the pool holds (`MaxRecordKeys`).
		TooManyRecordKeys,
		/// The patient has a key for the record's kind or unused one-time
		/// keys, and the issuer did not encrypt the data key to it.
		ScopedCapsuleMissing,
		/// A capsule to a key the patient does not have: no key for the
		/// record's kind, or a one-time key that is not in the pool (never
		/// added, or taken by another record).
		NoScopeKey,
		/// The scope has no key of its own (a kind without a key, a record
		/// attached without scoped capsules): its grant would open every
		/// record of a patient who keeps keys per scope. Grant all records
		/// if that is meant, or register the kind's key first.
		WiderKeyOnly,
		/// The account already registered Umbral keys.
		KeyAlreadyRegistered,
		/// The patient has no registered Umbral keys.
		NoPatientKey,
		/// The grantee has no registered Umbral keys.
		NoGranteeKey,
		/// Only active institutions may do this.
		NotInstitution,
		/// Only active auditor institutions review break-glass accesses.
		NotAuditor,
		/// No record with this id in the index.
		RecordNotFound,
		/// Only the record's issuer attaches its capsule.
		NotIssuer,
		/// The record's content was erased or its index entry refused.
		RecordUnavailable,
		/// The record already has a key capsule.
		CapsuleAlreadyAttached,
		/// `blake2_256(capsule ++ ciphertext)` differs from the record's `capsule_hash`.
		CapsuleMismatch,
		/// The capsule does not decode or fails its self-check.
		MalformedCapsule,
		/// The record has no key capsule yet.
		NoCapsule,
		/// A patient cannot grant to themselves.
		SelfGrant,
		/// The threshold must be between 1 and the number of proxies.
		BadThreshold,
		/// A fragment names an account that is not a registered proxy.
		UnknownProxy,
		/// A proxy appears twice in one grant.
		DuplicateProxy,
		/// Two proxies of one grant are given key fragments with one id.
		DuplicateKeyFragment,
		/// With threshold 1 one proxy and the grantee together can open
		/// every record in the grant's scope: the patient allows it first
		/// (`allow_single_proxy_grants`), or grants with threshold 2 or more.
		SingleProxyNotAllowed,
		/// The expiry block is not in the future.
		ExpiryInPast,
		/// The scope names a record of another patient.
		NotPatientsRecord,
		/// The patient has too many grants listed (revoke one first).
		TooManyGrants,
		/// No grant with this id.
		GrantNotFound,
		/// Only the grant's patient revokes it.
		NotPatient,
		/// The grant was already revoked.
		AlreadyRevoked,
		/// Only the grantee requests under a grant.
		NotGrantee,
		/// The grant is revoked or expired.
		GrantNotLive,
		/// The record is outside the grant's scope.
		OutOfScope,
		/// Emergency grants are used through `break_glass` only.
		EmergencyOnly,
		/// `break_glass` needs an emergency grant.
		NotEmergencyGrant,
		/// Too many requests are waiting for proxies; retry later. (Ordinary
		/// requests may fill three quarters of the queue; the rest is kept
		/// for break-glass accesses.)
		TooManyOpenRequests,
		/// The requester already has `MaxOpenRequestsPerRequester` requests
		/// waiting; retry once one is served or expired.
		TooManyOwnRequests,
		/// No request with this id.
		RequestNotFound,
		/// The request is no longer waiting for fragments.
		RequestClosed,
		/// The sender holds no fragment of this grant.
		NotProxyOfGrant,
		/// This proxy already submitted for this request.
		AlreadySubmitted,
		/// The request is not a break-glass access.
		NotEmergency,
		/// The break-glass access was already reviewed or its window passed.
		AlreadyReviewed,
		/// Identifiers are exhausted.
		Overflow,
		/// The grant names its patient or grantee as one of its proxies.
		ProxyIsParty,
		/// Fewer than `threshold` proxies acknowledged the grant yet.
		GrantNotAcknowledged,
		/// Too many proxies disputed the grant: it cannot be used.
		GrantDisputed,
		/// This proxy already acknowledged the grant.
		AlreadyAcknowledged,
		/// The sender did not acknowledge the grant, so it does not serve it.
		NotAcknowledged,
		/// The grant's last request is less than `MinRequestInterval` blocks old.
		RequestTooSoon,
		/// The grant already has `MaxOpenRequestsPerGrant` requests waiting;
		/// retry once one is served or expired.
		TooManyGrantRequests,
		/// An institution cannot review its own break-glass access.
		CannotReviewOwnAccess,
		/// This proxy already disputed the grant.
		AlreadyDisputed,
		/// The auditor used up its allowance of penalties for this session.
		VerdictCapExceeded,
		/// Validators have not confirmed the record (it is pending review,
		/// or its review expired): only confirmed records are shared.
		RecordNotConfirmed,
		/// The grant already requires audit first.
		AlreadyAuditFirst,
		/// The signature is not the proxy's over this fragment, grant,
		/// record and grantee ([`fragment_statement`]).
		BadProxySignature,
		/// The reported fragment verifies and was made from the proxy's own
		/// key fragment: it is no fraud.
		FragmentIsValid,
		/// This proxy was already charged for a bad fragment of this record
		/// under this grant.
		AlreadyReported,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let expired = Self::expire_requests(now);
			let lapsed = Self::lapse_reviews(now);
			// Plus each expired request's requester count and grant list.
			T::WeightInfo::on_initialize(expired, lapsed).saturating_add(
				Self::count_weight().saturating_add(Self::grant_list_weight()).saturating_mul(expired.into()),
			)
		}

		fn offchain_worker(now: BlockNumberFor<T>) {
			if let Err(e) = Self::run_proxies(now) {
				log::debug!(target: LOG_TARGET, "proxy idle: {e}");
			}
		}

		fn integrity_test() {
			assert!(T::MaxProxies::get() >= 1 && T::MaxProxies::get() <= u8::MAX as u32);
			assert!(T::MaxOpenRequests::get() >= 4, "a quarter of the queue is kept for break-glass");
			assert!(T::MaxOpenRequestsPerRequester::get() >= 1);
			assert!(T::MaxOpenRequestsPerGrant::get() >= 1);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Registers the sender's Umbral public key and the verifying key of the
		/// signer it signs key fragments with. Once per account.
		///
		/// Errors: `BadPublicKey`, `KeyAlreadyRegistered`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_key())]
		pub fn register_key(
			origin: OriginFor<T>,
			public_key: UmbralPublicKey,
			verifying_key: UmbralPublicKey,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(!Keys::<T>::contains_key(&who), Error::<T>::KeyAlreadyRegistered);
			Self::check_public_key(&public_key)?;
			Self::check_public_key(&verifying_key)?;
			Keys::<T>::insert(&who, UmbralKeys { public_key, verifying_key });
			Self::deposit_event(Event::KeyRegistered { who, public_key });
			Ok(())
		}

		/// Registers the sender's keys for kinds of records (each derived
		/// from its secret key under `medchain_umbral::kind_label`), once per
		/// kind. From then on issuers encrypt each new record's data key to
		/// its kind's key too, and a grant of that kind delegates from it:
		/// the grant's proxies and grantee together open records of that kind
		/// only.
		///
		/// Errors: `NoPatientKey` (register the account's own key first),
		/// `BadPublicKey`, `KeyAlreadyRegistered` (a kind given twice or
		/// registered before).
		#[pallet::call_index(13)]
		#[pallet::weight(T::WeightInfo::register_kind_keys(keys.len() as u32))]
		pub fn register_kind_keys(
			origin: OriginFor<T>,
			keys: BoundedVec<(RecordKind, UmbralPublicKey), ConstU32<{ RecordKind::COUNT }>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(Keys::<T>::contains_key(&who), Error::<T>::NoPatientKey);
			for (i, (kind, key)) in keys.iter().enumerate() {
				Self::check_public_key(key)?;
				ensure!(
					!KindKeys::<T>::contains_key(&who, kind) && keys.iter().take(i).all(|(k, _)| k != kind),
					Error::<T>::KeyAlreadyRegistered
				);
			}
			for (kind, key) in keys.iter() {
				KindKeys::<T>::insert(&who, kind, key);
			}
			Self::deposit_event(Event::KindKeysRegistered { who, kinds: keys.len() as u32 });
			Ok(())
		}

		/// Adds one-time record keys to the sender's pool, numbered from
		/// `first` (which must be `NextRecordKeyIndex`; each derived from the
		/// sender's secret key under `medchain_umbral::record_label`). An
		/// issuer takes one for each new record; a grant of that record
		/// delegates from it, so the grant opens that record only. The
		/// patient's wallet keeps the pool topped up.
		///
		/// Errors: `NoPatientKey`, `WrongRecordKeyIndex`, `BadPublicKey`,
		/// `TooManyRecordKeys`, `Overflow`.
		#[pallet::call_index(14)]
		#[pallet::weight(T::WeightInfo::add_record_keys(keys.len() as u32))]
		pub fn add_record_keys(
			origin: OriginFor<T>,
			first: RecordKeyIndex,
			keys: BoundedVec<UmbralPublicKey, T::MaxRecordKeys>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(Keys::<T>::contains_key(&who), Error::<T>::NoPatientKey);
			ensure!(NextRecordKeyIndex::<T>::get(&who) == first, Error::<T>::WrongRecordKeyIndex);
			let added = keys.len() as u32;
			let next = first.checked_add(added).ok_or(Error::<T>::Overflow)?;
			let mut pool = RecordKeyPool::<T>::get(&who);
			for (index, key) in (first..next).zip(keys) {
				Self::check_public_key(&key)?;
				pool.try_push((index, key)).map_err(|_| Error::<T>::TooManyRecordKeys)?;
			}
			RecordKeyPool::<T>::insert(&who, pool);
			NextRecordKeyIndex::<T>::insert(&who, next);
			Self::deposit_event(Event::RecordKeysAdded { who, added, next });
			Ok(())
		}

		/// Registers (or rotates) the sender institution's proxy key. Fragments
		/// sealed to a previous key can no longer be opened.
		///
		/// Errors: `NotInstitution`, `BadPublicKey`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::register_proxy())]
		pub fn register_proxy(origin: OriginFor<T>, public_key: UmbralPublicKey) -> DispatchResult {
			let proxy = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&proxy), Error::<T>::NotInstitution);
			Self::check_public_key(&public_key)?;
			Proxies::<T>::insert(&proxy, public_key);
			Self::deposit_event(Event::ProxyRegistered { proxy, public_key });
			Ok(())
		}

		/// Attaches a record's key capsule: its data key encrypted to the
		/// patient's public key, and in `scoped` to the patient's narrower
		/// keys. Where the patient registered a key for the record's kind, a
		/// capsule to it is required; where the patient has unused one-time
		/// keys, a capsule to one of them is required, and that key leaves the
		/// pool (two issuers racing for one key: the second is refused and
		/// tries another). `capsule` must match the record's `capsule_hash`;
		/// the scoped capsules are attached with it, once. (Which key a
		/// capsule was made for cannot be checked on chain; the issuer, who
		/// holds the data key anyway, is trusted for that, and the patient's
		/// wallet can check.)
		///
		/// Origin: the record's issuer, an active institution. Errors:
		/// `NotInstitution`, `RecordNotFound`, `NotIssuer`, `RecordUnavailable`,
		/// `CapsuleAlreadyAttached`, `CapsuleMismatch`, `MalformedCapsule`,
		/// `ScopedCapsuleMissing`, `NoScopeKey`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::attach_capsule())]
		pub fn attach_capsule(
			origin: OriginFor<T>,
			record: RecordId,
			capsule: KeyCapsule,
			scoped: ScopedCapsules,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&who), Error::<T>::NotInstitution);
			let r = T::Records::record(record).ok_or(Error::<T>::RecordNotFound)?;
			ensure!(r.issuer == who, Error::<T>::NotIssuer);
			ensure!(r.available, Error::<T>::RecordUnavailable);
			ensure!(!Capsules::<T>::contains_key(record), Error::<T>::CapsuleAlreadyAttached);
			ensure!(capsule.hash().0 == r.capsule_hash, Error::<T>::CapsuleMismatch);
			for c in [Some(&capsule), scoped.kind.as_ref(), scoped.record.as_ref().map(|(_, c)| c)].into_iter().flatten() {
				medchain_umbral::capsule(&c.capsule).map_err(|_| Error::<T>::MalformedCapsule)?;
			}
			let kind_key = r.kind.and_then(|kind| KindKeys::<T>::get(&r.patient, kind));
			ensure!(kind_key.is_some() || scoped.kind.is_none(), Error::<T>::NoScopeKey);
			ensure!(kind_key.is_none() || scoped.kind.is_some(), Error::<T>::ScopedCapsuleMissing);
			let mut pool = RecordKeyPool::<T>::get(&r.patient);
			let one_time = match scoped.record {
				Some((index, capsule)) => {
					let at = pool.iter().position(|(i, _)| *i == index).ok_or(Error::<T>::NoScopeKey)?;
					let (_, public_key) = pool.remove(at);
					RecordKeyPool::<T>::insert(&r.patient, pool);
					Some(OneTimeCapsule { index, public_key, capsule })
				},
				None => {
					ensure!(pool.is_empty(), Error::<T>::ScopedCapsuleMissing);
					None
				},
			};
			if let Some(c) = one_time {
				OneTimeCapsules::<T>::insert(record, c);
			}
			if let Some(c) = scoped.kind {
				KindCapsules::<T>::insert(record, c);
			}
			Capsules::<T>::insert(record, capsule);
			Self::deposit_event(Event::CapsuleAttached { record });
			Ok(())
		}

		/// Grants `grantee` access to the sender's records in `scope` until
		/// `expires_at` (exclusive; `None`: until revoked). `fragments` holds
		/// one key fragment per proxy, sealed to that proxy's key, with the
		/// fragment's id (see [`KeyFragmentIds`]); `threshold` of them are
		/// needed to decrypt. An `emergency` grant (to an
		/// institution) is usable only by break-glass access. The grant is
		/// usable once `threshold` of its proxies acknowledged it
		/// ([`Pallet::acknowledge_grant`]). The patient and the grantee cannot
		/// be proxies of their own grant. A threshold of 1 needs the patient's
		/// [`Pallet::allow_single_proxy_grants`]. The fragments must be made
		/// from the scope's key ([`Pallet::scope_key`], kept in `GrantKeys`);
		/// for a patient who keeps scope keys, a scope without a key of its
		/// own is refused rather than granted with the patient's key.
		///
		/// Errors: `NoPatientKey`, `NoGranteeKey`, `SelfGrant`, `BadThreshold`,
		/// `SingleProxyNotAllowed`,
		/// `ProxyIsParty`, `UnknownProxy`, `DuplicateProxy`, `DuplicateKeyFragment`,
		/// `MalformedCapsule`, `ExpiryInPast`,
		/// `RecordNotFound`, `NotPatientsRecord`, `RecordNotConfirmed`, `WiderKeyOnly`,
		/// `NotInstitution`, `TooManyGrants`, `Overflow`.
		#[pallet::call_index(3)]
		// Plus one key fragment id per proxy, the patient's choice of
		// threshold 1, and the scope's key (looked up in up to three items,
		// written to `GrantKeys`).
		#[pallet::weight(T::WeightInfo::grant_access(fragments.len() as u32)
			.saturating_add(Pallet::<T>::kfrag_id_weight().saturating_mul(fragments.len() as u64 + 1))
			.saturating_add(Pallet::<T>::scope_key_weight()))]
		#[allow(clippy::too_many_arguments)]
		pub fn grant_access(
			origin: OriginFor<T>,
			grantee: T::AccountId,
			scope: GrantScope,
			purpose: AccessPurpose,
			expires_at: Option<BlockNumberFor<T>>,
			threshold: u8,
			fragments: BoundedVec<(T::AccountId, SealedFragment<T::MaxSealedFragmentLen>, KfragId), T::MaxProxies>,
			emergency: bool,
		) -> DispatchResult {
			let patient = ensure_signed(origin)?;
			ensure!(Keys::<T>::contains_key(&patient), Error::<T>::NoPatientKey);
			ensure!(Keys::<T>::contains_key(&grantee), Error::<T>::NoGranteeKey);
			ensure!(patient != grantee, Error::<T>::SelfGrant);
			ensure!(threshold >= 1 && threshold as usize <= fragments.len(), Error::<T>::BadThreshold);
			ensure!(threshold >= 2 || SingleProxyGrants::<T>::contains_key(&patient), Error::<T>::SingleProxyNotAllowed);
			let now = frame_system::Pallet::<T>::block_number();
			if let Some(e) = expires_at {
				ensure!(e > now, Error::<T>::ExpiryInPast);
			}
			if let GrantScope::Record(id) = scope {
				let r = T::Records::record(id).ok_or(Error::<T>::RecordNotFound)?;
				ensure!(r.patient == patient, Error::<T>::NotPatientsRecord);
				ensure!(r.confirmed, Error::<T>::RecordNotConfirmed);
			}
			let grant_key = Self::scope_key(&patient, scope);
			// A patient who keeps keys per scope never gets, unasked, a grant
			// of one kind or one record that opens every record.
			ensure!(
				grant_key.is_some() || scope == GrantScope::All || !Self::keeps_scope_keys(&patient),
				Error::<T>::WiderKeyOnly
			);
			if emergency {
				ensure!(T::Registry::is_active(&grantee), Error::<T>::NotInstitution);
			}
			let mut proxies: BoundedVec<T::AccountId, T::MaxProxies> = BoundedVec::new();
			for (i, (proxy, sealed, id)) in fragments.iter().enumerate() {
				ensure!(*proxy != patient && *proxy != grantee, Error::<T>::ProxyIsParty);
				ensure!(Proxies::<T>::contains_key(proxy), Error::<T>::UnknownProxy);
				ensure!(!proxies.contains(proxy), Error::<T>::DuplicateProxy);
				ensure!(fragments.iter().take(i).all(|(_, _, other)| other != id), Error::<T>::DuplicateKeyFragment);
				medchain_umbral::capsule(&sealed.capsule).map_err(|_| Error::<T>::MalformedCapsule)?;
				proxies.try_push(proxy.clone()).map_err(|_| Error::<T>::BadThreshold)?;
			}
			let grant = NextGrantId::<T>::get();
			NextGrantId::<T>::put(grant.checked_add(1).ok_or(Error::<T>::Overflow)?);
			PatientGrants::<T>::try_append(&patient, grant).map_err(|_| Error::<T>::TooManyGrants)?;
			GranteeGrants::<T>::insert(&grantee, grant, ());
			if let Some(key) = grant_key {
				GrantKeys::<T>::insert(grant, key);
			}
			for (proxy, sealed, id) in fragments.into_iter() {
				PendingAcknowledgements::<T>::insert(&proxy, grant, ());
				KeyFragmentIds::<T>::insert(grant, &proxy, id);
				SealedFragments::<T>::insert(grant, proxy, sealed);
			}
			Grants::<T>::insert(
				grant,
				Grant {
					patient: patient.clone(),
					grantee: grantee.clone(),
					scope,
					purpose,
					threshold,
					proxies,
					acknowledged: BoundedVec::new(),
					disputed_by: None,
					last_request_at: None,
					created_at: now,
					expires_at,
					revoked_at: None,
					emergency,
				},
			);
			Self::deposit_event(Event::AccessGranted { grant, grantee, expires_at, emergency });
			Ok(())
		}

		/// Revokes a grant (also a way to clear an expired one from the
		/// lists): its sealed fragments are deleted, no request or fragment is
		/// accepted under it any more, and its requests in flight are closed
		/// (`RequestExpired`; no proxy owes them).
		///
		/// Origin: the grant's patient. Errors: `GrantNotFound`, `NotPatient`,
		/// `AlreadyRevoked`.
		#[pallet::call_index(4)]
		// Plus the proxies' key fragment ids and the requests in flight.
		#[pallet::weight(Pallet::<T>::max_end_grant_weight())]
		pub fn revoke_grant(origin: OriginFor<T>, grant: GrantId) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			let weight = Self::end_grant(grant, |g| g.patient == who, Error::<T>::NotPatient)?;
			Self::deposit_event(Event::GrantRevoked { grant });
			Ok(Some(weight).into())
		}

		/// The grantee refuses a grant: it ends as if revoked (the patient's
		/// and the grantee's lists drop it, its sealed fragments are
		/// deleted). A doctor clears grants it never asked for this way, and
		/// an institution refuses a break-glass duty it cannot carry.
		///
		/// Origin: the grant's grantee. Emits `GrantDeclined`. Errors:
		/// `GrantNotFound`, `NotGrantee`, `AlreadyRevoked`.
		#[pallet::call_index(12)]
		#[pallet::weight(Pallet::<T>::max_end_grant_weight())]
		pub fn decline_grant(origin: OriginFor<T>, grant: GrantId) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			let weight = Self::end_grant(grant, |g| g.grantee == who, Error::<T>::NotGrantee)?;
			Self::deposit_event(Event::GrantDeclined { grant });
			Ok(Some(weight).into())
		}

		/// Asks to read `record` under `grant`: the audit entry proxies answer.
		/// At most one request per grant every `MinRequestInterval` blocks.
		///
		/// Origin: the grantee. Errors: `GrantNotFound`, `NotGrantee`,
		/// `EmergencyOnly`, `GrantNotLive`, `GrantDisputed`,
		/// `GrantNotAcknowledged`, `RequestTooSoon`, `RecordNotFound`,
		/// `OutOfScope`, `RecordUnavailable`, `RecordNotConfirmed`, `NoCapsule`,
		/// `TooManyOpenRequests`, `TooManyOwnRequests`, `Overflow`.
		#[pallet::call_index(5)]
		// Plus the requester's count of open requests.
		#[pallet::weight(T::WeightInfo::request_access()
			.saturating_add(Pallet::<T>::count_weight())
			.saturating_add(Pallet::<T>::grant_list_weight())
			.saturating_add(Pallet::<T>::grant_key_weight()))]
		pub fn request_access(origin: OriginFor<T>, grant: GrantId, record: RecordId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let g = Grants::<T>::get(grant).ok_or(Error::<T>::GrantNotFound)?;
			ensure!(g.grantee == who, Error::<T>::NotGrantee);
			ensure!(!g.emergency, Error::<T>::EmergencyOnly);
			Self::open_request(grant, g, record, who, None).map(|_| ())
		}

		/// Break-glass: an institution's emergency doctor reads `record` under
		/// the patient's emergency grant, stating why. The patient is notified
		/// (`EmergencyAccess`); an auditor must review it within `ReviewWindow`.
		///
		/// Origin: the grant's institution, active. Errors: as `request_access`
		/// (but not `RequestTooSoon` nor `TooManyOwnRequests`: each access is
		/// reviewed instead; and the last quarter of the queue is open to
		/// break-glass only), and `NotEmergencyGrant`, `NotInstitution`.
		#[pallet::call_index(6)]
		// Plus the `BrokenGlass` entry that lets the record's gateway serve it
		// (and the earlier access it may keep).
		#[pallet::weight(T::WeightInfo::break_glass()
			.saturating_add(Pallet::<T>::grant_list_weight())
			.saturating_add(T::DbWeight::get().reads_writes(2, 1))
			.saturating_add(Pallet::<T>::proof_of(Pallet::<T>::broken_glass_len()))
			.saturating_add(Pallet::<T>::proof_of(Pallet::<T>::request_len()))
			.saturating_add(Pallet::<T>::grant_key_weight()))]
		pub fn break_glass(
			origin: OriginFor<T>,
			grant: GrantId,
			record: RecordId,
			reason: EmergencyReason,
			statement_hash: H256,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let g = Grants::<T>::get(grant).ok_or(Error::<T>::GrantNotFound)?;
			ensure!(g.grantee == who, Error::<T>::NotGrantee);
			ensure!(g.emergency, Error::<T>::NotEmergencyGrant);
			ensure!(T::Registry::is_active(&who), Error::<T>::NotInstitution);
			let review_by = frame_system::Pallet::<T>::block_number().saturating_add(T::ReviewWindow::get());
			let emergency = Emergency { reason, statement_hash, review_by, review: Review::Pending };
			let request = Self::open_request(grant, g, record, who.clone(), Some(emergency))?;
			ReviewDeadlines::<T>::try_append(review_by, request).map_err(|_| Error::<T>::TooManyOpenRequests)?;
			Self::note_broken_glass(grant, record, request);
			Self::deposit_event(Event::EmergencyAccess {
				request,
				institution: who,
				record,
				reason,
				review_by,
			});
			Ok(())
		}

		/// A proxy's capsule fragment for a request. The fragment is verified
		/// against the record's capsule and the grant's keys: a valid one is
		/// stored and earns credit (unless the proxy is the grant's patient or
		/// grantee); an invalid one is recorded as rejected and costs credit
		/// (the call itself succeeds so the penalty stands).
		///
		/// Origin: an active institution that acknowledged the grant. Errors:
		/// `NotInstitution`, `RequestNotFound`, `RequestClosed`,
		/// `GrantNotFound`, `GrantNotLive`, `GrantDisputed`, `NotProxyOfGrant`,
		/// `NotAcknowledged`, `AlreadySubmitted`, `NoCapsule`.
		#[pallet::call_index(7)]
		// Plus the requester's count of open requests, when it closes,
		// and the break-glass entry of a served emergency access.
		// And the proxy's key fragment id.
		#[pallet::weight(T::WeightInfo::submit_fragment()
			.saturating_add(Pallet::<T>::count_weight())
			.saturating_add(Pallet::<T>::grant_list_weight())
			.saturating_add(T::DbWeight::get().writes(1))
			.saturating_add(Pallet::<T>::kfrag_id_weight())
			.saturating_add(Pallet::<T>::grant_key_weight()))]
		pub fn submit_fragment(
			origin: OriginFor<T>,
			request: RequestId,
			fragment: BoundedVec<u8, T::MaxCapsuleFragmentLen>,
		) -> DispatchResult {
			let proxy = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&proxy), Error::<T>::NotInstitution);
			let mut req = Requests::<T>::get(request).ok_or(Error::<T>::RequestNotFound)?;
			ensure!(req.status == RequestStatus::Open, Error::<T>::RequestClosed);
			let g = Grants::<T>::get(req.grant).ok_or(Error::<T>::GrantNotFound)?;
			ensure!(g.is_live(frame_system::Pallet::<T>::block_number()), Error::<T>::GrantNotLive);
			ensure!(g.disputed_by.is_none(), Error::<T>::GrantDisputed);
			ensure!(g.proxies.contains(&proxy), Error::<T>::NotProxyOfGrant);
			ensure!(g.acknowledged.contains(&proxy), Error::<T>::NotAcknowledged);
			ensure!(!Fragments::<T>::contains_key(request, &proxy), Error::<T>::AlreadySubmitted);
			let capsule = Self::capsule_for(req.grant, req.record).ok_or(Error::<T>::NoCapsule)?;
			// A copy of another proxy's fragment verifies but is not this
			// proxy's work, and would add nothing to the decryption. (Its id
			// is read once the fragment parsed and verified.)
			let own = || {
				KeyFragmentIds::<T>::get(req.grant, &proxy)
					.is_none_or(|id| medchain_umbral::cfrag_kfrag_id(&fragment) == Ok(id))
			};
			if Self::fragment_verifies(req.grant, &g, &capsule, &fragment) && own() {
				Fragments::<T>::insert(request, &proxy, Submission::Accepted(fragment));
				if Self::earns_serving_credit(&g, req.record, &proxy) {
					T::Credit::report(&proxy, Behaviour::ReencryptionServed);
				}
				Self::deposit_event(Event::FragmentAccepted { request, proxy });
				req.fragments = req.fragments.saturating_add(1);
				if req.fragments >= g.threshold {
					req.status = RequestStatus::Ready;
					Self::close_request(request, &req, None);
					if req.emergency.is_some() {
						// A served break-glass access keeps the record readable.
						BrokenGlass::<T>::insert(req.grant, req.record, request);
					}
					Self::deposit_event(Event::AccessReady { request });
				}
				Requests::<T>::insert(request, req);
			} else {
				Fragments::<T>::insert(request, &proxy, Submission::Rejected);
				T::Credit::report(&proxy, Behaviour::ReencryptionFailed);
				Self::deposit_event(Event::FragmentRejected { request, proxy });
			}
			Ok(())
		}

		/// An auditor's verdict on a break-glass access, within its window. An
		/// unjustified access costs the institution credit (and a share of its
		/// bond), charged to the auditor's per-session penalty allowance in
		/// `pallet-reputation`: one auditor cannot condemn every emergency
		/// access of a competitor. No institution reviews its own access.
		///
		/// The regulators review by motion instead: a pending access, with no
		/// allowance charged, or an auditor's clearance they overturn within
		/// the review window (emits `EmergencyReviewedByRegulators`).
		///
		/// Origin: an active auditor institution other than the one that
		/// broke the glass, or `RegulatorOrigin`. Errors: `NotAuditor`,
		/// `RequestNotFound`, `NotEmergency`, `CannotReviewOwnAccess`,
		/// `AlreadyReviewed`, `VerdictCapExceeded`.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::review_emergency())]
		pub fn review_emergency(origin: OriginFor<T>, request: RequestId, justified: bool) -> DispatchResult {
			let origin = match T::RegulatorOrigin::try_origin(origin) {
				Ok(_) => return Self::review_by_regulators(request, justified),
				Err(origin) => origin,
			};
			let auditor = ensure_signed(origin)?;
			ensure!(T::Registry::has_role(&auditor, Role::Auditor), Error::<T>::NotAuditor);
			Requests::<T>::try_mutate(request, |maybe| -> DispatchResult {
				let req = maybe.as_mut().ok_or(Error::<T>::RequestNotFound)?;
				let e = req.emergency.as_mut().ok_or(Error::<T>::NotEmergency)?;
				ensure!(req.requester != auditor, Error::<T>::CannotReviewOwnAccess);
				ensure!(e.review == Review::Pending, Error::<T>::AlreadyReviewed);
				if !justified {
					ensure!(
						T::Credit::report_verdict(&auditor, &req.requester, Behaviour::BreakGlassUnreviewed),
						Error::<T>::VerdictCapExceeded
					);
				}
				// Nothing below can fail.
				e.review = Review::Reviewed { auditor: auditor.clone(), justified };
				ReviewDeadlines::<T>::mutate(e.review_by, |l| l.retain(|x| *x != request));
				Ok(())
			})?;
			Self::deposit_event(Event::EmergencyReviewed { request, auditor, justified });
			Ok(())
		}

		/// A proxy's consent to serve a grant, sent after it opened its sealed
		/// key fragment and verified it against the patient's keys (the node's
		/// offchain worker does both and sends this by itself). From now on the
		/// proxy is asked to serve the grant's requests: it earns credit for
		/// each fragment that verifies and loses credit for each request it
		/// leaves unserved. Requests are accepted once `threshold` proxies
		/// acknowledged.
		///
		/// Origin: an active institution named as proxy of the grant, neither
		/// its patient nor its grantee. Emits `GrantAcknowledged`. Errors:
		/// `NotInstitution`, `GrantNotFound`, `GrantNotLive`, `GrantDisputed`,
		/// `NotProxyOfGrant`, `ProxyIsParty`, `AlreadyAcknowledged`.
		/// Complexity: O(`MaxProxies`).
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::acknowledge_grant(T::MaxProxies::get()))]
		pub fn acknowledge_grant(origin: OriginFor<T>, grant: GrantId) -> DispatchResult {
			let proxy = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&proxy), Error::<T>::NotInstitution);
			Grants::<T>::try_mutate(grant, |maybe| -> DispatchResult {
				let g = maybe.as_mut().ok_or(Error::<T>::GrantNotFound)?;
				Self::ensure_may_answer(grant, g, &proxy)?;
				ensure!(!g.is_party(&proxy), Error::<T>::ProxyIsParty);
				// Room is certain: `acknowledged` holds distinct proxies of the
				// grant, and `proxy` is one of them not yet in it.
				g.acknowledged.try_push(proxy.clone()).map_err(|_| Error::<T>::AlreadyAcknowledged)?;
				// Nothing below can fail.
				PendingAcknowledgements::<T>::remove(&proxy, grant);
				Ok(())
			})?;
			Self::deposit_event(Event::GrantAcknowledged { grant, proxy });
			Ok(())
		}

		/// A proxy's refusal of a grant whose sealed key fragment does not open
		/// with its key or does not verify against the patient's keys (the
		/// node's offchain worker sends this by itself). The proxy will not
		/// serve the grant. The grant itself stays usable while at least
		/// `threshold` of its proxies have not disputed it: one proxy cannot
		/// take away a patient's grant that the others can serve. Once fewer
		/// remain, the grant cannot be used (`disputed_by`): no request or
		/// fragment is accepted, open requests expire without penalty, and
		/// the patient grants again with working fragments. Nobody's credit
		/// changes.
		///
		/// Origin: an active institution named as proxy of the grant that
		/// neither acknowledged nor disputed it. Emits `GrantDisputed`.
		/// Errors: `NotInstitution`, `GrantNotFound`, `GrantNotLive`,
		/// `GrantDisputed`, `NotProxyOfGrant`, `AlreadyAcknowledged`,
		/// `AlreadyDisputed`. Complexity: O(`MaxProxies`).
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::dispute_grant(T::MaxProxies::get()))]
		pub fn dispute_grant(origin: OriginFor<T>, grant: GrantId) -> DispatchResultWithPostInfo {
			let proxy = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&proxy), Error::<T>::NotInstitution);
			let answer = |maybe: &mut Option<Grant<T>>| -> Result<(u32, bool), DispatchError> {
				let g = maybe.as_mut().ok_or(Error::<T>::GrantNotFound)?;
				Self::ensure_may_answer(grant, g, &proxy)?;
				let mut disputes = Disputes::<T>::get(grant);
				// Room is certain: `disputes` holds distinct proxies of the
				// grant, and `proxy` is one of them not yet in it.
				disputes.try_push(proxy.clone()).map_err(|_| Error::<T>::AlreadyDisputed)?;
				let can_serve = g.proxies.len().saturating_sub(disputes.len());
				let unusable = can_serve < g.threshold as usize;
				Disputes::<T>::insert(grant, disputes);
				PendingAcknowledgements::<T>::remove(&proxy, grant);
				if unusable {
					g.disputed_by = Some(proxy.clone());
					for p in g.proxies.iter() {
						PendingAcknowledgements::<T>::remove(p, grant);
					}
				}
				Ok((g.proxies.len() as u32, unusable))
			};
			let (proxies, unusable) = Grants::<T>::try_mutate(grant, answer)?;
			Self::deposit_event(Event::GrantDisputed { grant, proxy, unusable });
			Ok(Some(T::WeightInfo::dispute_grant(proxies)).into())
		}

		/// Allows (or, with `false`, no longer allows) the sender's grants
		/// with threshold 1. Such a grant's one proxy together with its
		/// grantee can open every record in its scope, past any revocation,
		/// without the chain seeing it; by default a grant needs 2 or more
		/// proxies. Grants already made are not changed.
		///
		/// Origin: any signed account. Emits `SingleProxyGrantsAllowed`.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::allow_single_proxy_grants())]
		pub fn allow_single_proxy_grants(origin: OriginFor<T>, allowed: bool) -> DispatchResult {
			let patient = ensure_signed(origin)?;
			if allowed {
				SingleProxyGrants::<T>::insert(&patient, ());
			} else {
				SingleProxyGrants::<T>::remove(&patient);
			}
			Self::deposit_event(Event::SingleProxyGrantsAllowed { allowed });
			Ok(())
		}

		/// Requires that every read under `grant` is on chain before anything
		/// is served, for the rest of the grant's life: its proxies serve only
		/// `request_access` and the record's gateway logs first. From this
		/// block on, the runtime refuses entries of reads served first under
		/// the grant (`ehrIndex.log_reads` checked at or after it); reads
		/// served before stay loggable. It cannot be undone (a patient who
		/// wants faster access makes a new grant), so no read served while it
		/// held ever becomes loggable. Set it right after `grant_access`:
		/// proxies serve a grant only once they acknowledged it, a block later
		/// at the earliest.
		///
		/// Origin: the grant's patient. Emits `AuditFirstRequired`. Errors:
		/// `GrantNotFound`, `NotPatient`, `AlreadyRevoked`,
		/// `AlreadyAuditFirst`.
		#[pallet::call_index(15)]
		#[pallet::weight(T::WeightInfo::require_audit_first())]
		pub fn require_audit_first(origin: OriginFor<T>, grant: GrantId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let g = Grants::<T>::get(grant).ok_or(Error::<T>::GrantNotFound)?;
			ensure!(g.patient == who, Error::<T>::NotPatient);
			ensure!(g.revoked_at.is_none(), Error::<T>::AlreadyRevoked);
			ensure!(!AuditFirst::<T>::contains_key(grant), Error::<T>::AlreadyAuditFirst);
			AuditFirst::<T>::insert(grant, frame_system::Pallet::<T>::block_number());
			Self::deposit_event(Event::AuditFirstRequired { grant });
			Ok(())
		}

		/// The grantee's fraud proof against a proxy that served it a bad
		/// capsule fragment off chain (the instant key path): `fragment` of
		/// `record`'s data key under `grant`, and `signature`, the proxy's
		/// over [`fragment_statement`] (what every proxy signs with its
		/// answer). The runtime checks the signature, then the fragment as it
		/// checks one submitted on chain: it is bad if it fails Umbral's
		/// proof against the grant's delegation for the capsule the grant
		/// opens, or was made from another key fragment than the one the chain
		/// binds the proxy to (copied; provable while the grant lives: its
		/// revocation clears the bound ids). A bad fragment costs the proxy
		/// credit as one rejected on chain (`ReencryptionFailed`), once per
		/// grant and record whatever number of bad fragments it signed.
		///
		/// Origin: the grant's grantee. Emits `BadFragmentReported`. Errors:
		/// `GrantNotFound`, `NotGrantee`, `NotProxyOfGrant` (not a proxy that
		/// acknowledged the grant), `BadProxySignature`, `AlreadyReported`,
		/// `NoCapsule`, `FragmentIsValid`.
		#[pallet::call_index(16)]
		#[pallet::weight(T::WeightInfo::report_bad_fragment())]
		pub fn report_bad_fragment(
			origin: OriginFor<T>,
			grant: GrantId,
			record: RecordId,
			proxy: T::AccountId,
			fragment: BoundedVec<u8, T::MaxCapsuleFragmentLen>,
			signature: T::ProxySignature,
		) -> DispatchResult {
			let grantee = ensure_signed(origin)?;
			let g = Grants::<T>::get(grant).ok_or(Error::<T>::GrantNotFound)?;
			ensure!(g.grantee == grantee, Error::<T>::NotGrantee);
			ensure!(g.acknowledged.contains(&proxy), Error::<T>::NotProxyOfGrant);
			let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
			let statement = fragment_statement(genesis, grant, record, &grantee, &fragment);
			ensure!(signature.verify(&statement[..], &proxy), Error::<T>::BadProxySignature);
			// One charge per (grant, record, proxy): re-encryption is
			// randomised, so a proxy in one faulty state signs a new bad
			// fragment per request, and a grantee must not turn one fault into
			// as many charges as requests it can sign.
			let proof = H256(sp_io::hashing::blake2_256(&(grant, record, &proxy).encode()));
			ensure!(!ReportedFragments::<T>::contains_key(proof), Error::<T>::AlreadyReported);
			let capsule = Self::capsule_for(grant, record).ok_or(Error::<T>::NoCapsule)?;
			let copied = KeyFragmentIds::<T>::get(grant, &proxy)
				.is_some_and(|id| medchain_umbral::cfrag_kfrag_id(&fragment) != Ok(id));
			ensure!(copied || !Self::fragment_verifies(grant, &g, &capsule, &fragment), Error::<T>::FragmentIsValid);
			ReportedFragments::<T>::insert(proof, frame_system::Pallet::<T>::block_number());
			T::Credit::report(&proxy, Behaviour::ReencryptionFailed);
			Self::deposit_event(Event::BadFragmentReported { grant, proxy });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// The regulators' verdict on break-glass access `request`: on a
		/// pending access, or overturning an auditor's clearance before
		/// `review_by`. An unjustified access is reported as
		/// `BreakGlassUnreviewed`, charged to no auditor.
		fn review_by_regulators(request: RequestId, justified: bool) -> DispatchResult {
			let now = frame_system::Pallet::<T>::block_number();
			let overturned = Requests::<T>::try_mutate(request, |maybe| -> Result<bool, DispatchError> {
				let req = maybe.as_mut().ok_or(Error::<T>::RequestNotFound)?;
				let e = req.emergency.as_mut().ok_or(Error::<T>::NotEmergency)?;
				let overturned = match e.review {
					Review::Pending => false,
					Review::Reviewed { justified: true, .. } if !justified && now <= e.review_by => true,
					_ => return Err(Error::<T>::AlreadyReviewed.into()),
				};
				if !justified {
					T::Credit::report(&req.requester, Behaviour::BreakGlassUnreviewed);
				}
				e.review = Review::ReviewedByRegulators { justified, overturned };
				ReviewDeadlines::<T>::mutate(e.review_by, |l| l.retain(|x| *x != request));
				Ok(overturned)
			})?;
			Self::deposit_event(Event::EmergencyReviewedByRegulators { request, justified, overturned });
			Ok(())
		}

		fn check_public_key(key: &UmbralPublicKey) -> DispatchResult {
			medchain_umbral::public_key(key).map(|_| ()).map_err(|_| Error::<T>::BadPublicKey.into())
		}

		/// Checks that `proxy` may still acknowledge or dispute grant `id`
		/// (`g`): the grant is live and usable, names `proxy`, and `proxy` has
		/// neither acknowledged nor disputed it.
		fn ensure_may_answer(id: GrantId, g: &Grant<T>, proxy: &T::AccountId) -> DispatchResult {
			ensure!(g.is_live(frame_system::Pallet::<T>::block_number()), Error::<T>::GrantNotLive);
			ensure!(g.disputed_by.is_none(), Error::<T>::GrantDisputed);
			ensure!(g.proxies.contains(proxy), Error::<T>::NotProxyOfGrant);
			ensure!(!g.acknowledged.contains(proxy), Error::<T>::AlreadyAcknowledged);
			ensure!(!Disputes::<T>::get(id).contains(proxy), Error::<T>::AlreadyDisputed);
			Ok(())
		}

		/// Checks that `record` may be read under the usable grant `g` (and,
		/// unless it is a break-glass access, that the grant's last request
		/// is `MinRequestInterval` old), records the request and its block in
		/// the grant; returns the request's id.
		fn open_request(
			grant: GrantId,
			mut g: Grant<T>,
			record: RecordId,
			requester: T::AccountId,
			emergency: Option<Emergency<T>>,
		) -> Result<RequestId, DispatchError> {
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(g.is_live(now), Error::<T>::GrantNotLive);
			ensure!(g.disputed_by.is_none(), Error::<T>::GrantDisputed);
			ensure!(g.is_acknowledged(), Error::<T>::GrantNotAcknowledged);
			if let (None, Some(last)) = (&emergency, g.last_request_at) {
				ensure!(now >= last.saturating_add(T::MinRequestInterval::get()), Error::<T>::RequestTooSoon);
			}
			let r = T::Records::record(record).ok_or(Error::<T>::RecordNotFound)?;
			// Availability first: an erased record names no patient any more,
			// and its requester learns it was erased rather than out of scope.
			ensure!(r.available, Error::<T>::RecordUnavailable);
			ensure!(r.patient == g.patient && g.scope.covers(record, r.kind), Error::<T>::OutOfScope);
			ensure!(r.confirmed, Error::<T>::RecordNotConfirmed);
			ensure!(Self::capsule_for(grant, record).is_some(), Error::<T>::NoCapsule);
			let ordinary = emergency.is_none();
			if ordinary {
				let open = OpenRequests::<T>::decode_len().unwrap_or(0) as u32;
				ensure!(open < Self::ordinary_capacity(), Error::<T>::TooManyOpenRequests);
				ensure!(
					OpenRequestsOf::<T>::get(&requester) < T::MaxOpenRequestsPerRequester::get(),
					Error::<T>::TooManyOwnRequests
				);
			}
			let request = NextRequestId::<T>::get();
			let deadline = now.saturating_add(T::RequestTimeout::get());
			GrantOpenRequests::<T>::try_append(grant, request).map_err(|_| Error::<T>::TooManyGrantRequests)?;
			OpenRequests::<T>::try_append(request).map_err(|_| Error::<T>::TooManyOpenRequests)?;
			RequestDeadlines::<T>::try_append(deadline, request).map_err(|_| Error::<T>::TooManyOpenRequests)?;
			NextRequestId::<T>::put(request.checked_add(1).ok_or(Error::<T>::Overflow)?);
			Requests::<T>::insert(
				request,
				AccessRequest {
					grant,
					record,
					requester: requester.clone(),
					requested_at: now,
					deadline,
					fragments: 0,
					status: RequestStatus::Open,
					emergency,
				},
			);
			RecordRequests::<T>::insert(record, request, ());
			if ordinary {
				OpenRequestsOf::<T>::mutate(&requester, |n| *n = n.saturating_add(1));
			}
			g.last_request_at = Some(now);
			Grants::<T>::insert(grant, g);
			Self::deposit_event(Event::AccessRequested { request, grant, record, requester });
			Ok(request)
		}

		/// The narrowest key of `patient` that opens every record in `scope`
		/// and nothing outside it, if there is one: the kind key for a kind;
		/// for one record its one-time key, else its kind key if its data key
		/// was encrypted to it. `None`: the patient's own key (every record).
		pub(crate) fn scope_key(patient: &T::AccountId, scope: GrantScope) -> Option<GrantKey> {
			let kind_key = |kind| KindKeys::<T>::get(patient, kind).map(|public_key| GrantKey { slot: ScopeKeySlot::Kind, public_key });
			match scope {
				GrantScope::All => None,
				GrantScope::Kind(kind) => kind_key(kind),
				GrantScope::Record(record) => match OneTimeCapsules::<T>::get(record) {
					Some(c) => Some(GrantKey { slot: ScopeKeySlot::Record, public_key: c.public_key }),
					None if KindCapsules::<T>::contains_key(record) =>
						T::Records::record(record).and_then(|r| r.kind).and_then(kind_key),
					None => None,
				},
			}
		}

		/// Whether `patient` registered keys per scope (a kind key, or
		/// one-time keys ever).
		pub(crate) fn keeps_scope_keys(patient: &T::AccountId) -> bool {
			NextRecordKeyIndex::<T>::get(patient) > 0 || KindKeys::<T>::iter_prefix(patient).next().is_some()
		}

		/// The capsule of `record` that grant `grant`'s key fragments open.
		pub(crate) fn capsule_for(grant: GrantId, record: RecordId) -> Option<KeyCapsule> {
			match GrantKeys::<T>::get(grant).map(|k| k.slot) {
				None => Capsules::<T>::get(record),
				Some(ScopeKeySlot::Kind) => KindCapsules::<T>::get(record),
				Some(ScopeKeySlot::Record) => OneTimeCapsules::<T>::get(record).map(|c| c.capsule),
			}
		}

		/// The parsed keys of a grant's delegation (patient → grantee): the
		/// patient's verifying key, the key the grant delegates from (its
		/// scope key, else the patient's) and the grantee's key.
		pub(crate) fn delegation_keys(grant: GrantId, g: &Grant<T>) -> Option<medchain_umbral::DelegationKeys> {
			let patient = Keys::<T>::get(&g.patient)?;
			let grantee = Keys::<T>::get(&g.grantee)?;
			let delegating = GrantKeys::<T>::get(grant).map_or(patient.public_key, |k| k.public_key);
			medchain_umbral::DelegationKeys::parse(&patient.verifying_key, &delegating, &grantee.public_key).ok()
		}

		/// Whether a capsule fragment verifies for the grant's delegation.
		fn fragment_verifies(grant: GrantId, g: &Grant<T>, capsule: &KeyCapsule, fragment: &[u8]) -> bool {
			let (Some(keys), Ok(capsule)) =
				(Self::delegation_keys(grant, g), medchain_umbral::capsule(&capsule.capsule))
			else {
				return false;
			};
			medchain_umbral::verify_cfrag(&capsule, fragment, &keys.delegation()).is_ok()
		}

		/// Whether `proxy` earns `ReencryptionServed` for serving `record`
		/// under `g`: not as the grant's patient or grantee (such grants are
		/// refused; this covers older ones), and not as the record's issuer (a
		/// hospital serving requests for records it wrote itself, e.g. of a
		/// sybil patient, would be paying itself).
		fn earns_serving_credit(g: &Grant<T>, record: RecordId, proxy: &T::AccountId) -> bool {
			!g.is_party(proxy) && T::Records::record(record).is_some_and(|r| r.issuer != *proxy)
		}

		/// Notes break-glass access `request` to `record` under `grant`, unless
		/// an earlier one was served (a later access that goes unserved must
		/// not take away what the served one allowed).
		pub(crate) fn note_broken_glass(grant: GrantId, record: RecordId, request: RequestId) {
			BrokenGlass::<T>::mutate(grant, record, |noted| {
				let served = (*noted)
					.and_then(Requests::<T>::get)
					.is_some_and(|earlier| earlier.status == RequestStatus::Ready);
				if !served {
					*noted = Some(request);
				}
			});
		}

		/// The proof size of reading one storage item of at most `len` bytes
		/// (hashed keys and value), estimated as the frame benchmarks do for
		/// `MaxEncodedLen` items (the value plus 2475 bytes of trie nodes).
		pub(crate) fn proof_of(len: u64) -> Weight {
			Weight::from_parts(0, len.saturating_add(2475))
		}

		/// At most the length of one `Requests` entry: hashed id and request.
		pub(crate) fn request_len() -> u64 {
			16 + AccessRequest::<T>::max_encoded_len() as u64
		}

		/// The length of one `BrokenGlass` entry: two hashed ids and a request id.
		pub(crate) fn broken_glass_len() -> u64 {
			16 + 16 + 9
		}

		/// At most the length of a list of open requests (`OpenRequests`, a
		/// `RequestDeadlines` entry).
		fn request_list_len() -> u64 {
			16 + 5 + 8 * T::MaxOpenRequests::get() as u64
		}

		/// Reading a grant's `GrantKeys` entry and the scoped capsule it
		/// opens (beside the `Capsules` read the benchmarks measure).
		pub(crate) fn grant_key_weight() -> Weight {
			T::DbWeight::get()
				.reads(2)
				.saturating_add(Self::proof_of(16 + GrantKey::max_encoded_len() as u64))
				.saturating_add(Self::proof_of(16 + OneTimeCapsule::max_encoded_len() as u64))
		}

		/// Finding a grant scope's key (a `OneTimeCapsules` entry, a
		/// `KindCapsules` entry and a `KindKeys` entry, the record's kind
		/// being read with the record) and writing it to `GrantKeys`.
		pub(crate) fn scope_key_weight() -> Weight {
			let one_time = 16 + OneTimeCapsule::max_encoded_len() as u64;
			let kind_key = 48 + 9 + 33;
			let record = 16 + KeyCapsule::max_encoded_len() as u64;
			T::DbWeight::get()
				.reads_writes(3, 1)
				.saturating_add(Self::proof_of(one_time))
				.saturating_add(Self::proof_of(kind_key))
				.saturating_add(Self::proof_of(record))
		}

		/// Reading and writing one `KeyFragmentIds` entry: two hashed keys and
		/// 32 bytes.
		pub(crate) fn kfrag_id_weight() -> Weight {
			T::DbWeight::get().reads_writes(1, 1).saturating_add(Self::proof_of(16 + 48 + 32))
		}

		/// Reading and writing one `OpenRequestsOf` entry: a hashed account and
		/// a `u32`.
		pub(crate) fn count_weight() -> Weight {
			T::DbWeight::get().reads_writes(1, 1).saturating_add(Self::proof_of(48 + 4))
		}

		/// How many requests ordinary (not break-glass) requests may fill:
		/// three quarters of the queue.
		pub fn ordinary_capacity() -> u32 {
			let max = T::MaxOpenRequests::get();
			max.saturating_sub(max / 4)
		}

		/// Ends `grant` if `may_end` holds for it (else `refused`): marks it
		/// revoked now, drops it from the patient's and grantee's lists,
		/// deletes what its proxies were given and closes its requests in
		/// flight. Returns the weight it took.
		fn end_grant(
			grant: GrantId,
			may_end: impl FnOnce(&Grant<T>) -> bool,
			refused: Error<T>,
		) -> Result<Weight, DispatchError> {
			let proxies = Grants::<T>::try_mutate(grant, |maybe| -> Result<u32, DispatchError> {
				let g = maybe.as_mut().ok_or(Error::<T>::GrantNotFound)?;
				ensure!(may_end(g), refused);
				ensure!(g.revoked_at.is_none(), Error::<T>::AlreadyRevoked);
				g.revoked_at = Some(frame_system::Pallet::<T>::block_number());
				PatientGrants::<T>::mutate(&g.patient, |l| l.retain(|x| *x != grant));
				GranteeGrants::<T>::remove(&g.grantee, grant);
				for proxy in g.proxies.iter() {
					PendingAcknowledgements::<T>::remove(proxy, grant);
				}
				Ok(g.proxies.len() as u32)
			})?;
			let _ = SealedFragments::<T>::clear_prefix(grant, proxies, None);
			let _ = KeyFragmentIds::<T>::clear_prefix(grant, proxies, None);
			Disputes::<T>::remove(grant);
			let closed = Self::close_requests_of(grant);
			Ok(Self::end_grant_weight(proxies, closed))
		}

		/// Closes the open requests under `grant`, which ended: no proxy may
		/// serve them any more, so they end now as expired (no proxy owes
		/// them) and their requesters get their slots back. Returns how many
		/// open requests were looked at and how many were closed.
		fn close_requests_of(grant: GrantId) -> u32 {
			let open = GrantOpenRequests::<T>::take(grant);
			for request in open.iter() {
				let Some(req) = Requests::<T>::get(request) else { continue };
				if req.status == RequestStatus::Open {
					Self::expire_request(*request, req, Some(TakenList::Grant));
				}
			}
			open.len() as u32
		}

		/// The weight of ending a grant of `proxies` proxies with `closed`
		/// requests in flight.
		pub(crate) fn end_grant_weight(proxies: u32, closed: u32) -> Weight {
			let db = T::DbWeight::get();
			// Each closed request is read and written, with its deadline's
			// list, the open list and its requester's count.
			let close = db
				.reads_writes(3, 3)
				.saturating_add(Self::proof_of(Self::request_len()))
				.saturating_add(Self::proof_of(Self::request_list_len()))
				.saturating_add(Self::proof_of(Self::request_list_len()))
				.saturating_add(Self::count_weight());
			T::WeightInfo::revoke_grant(proxies)
				.saturating_add(Self::kfrag_id_weight().saturating_mul(proxies.into()))
				.saturating_add(Self::grant_list_weight())
				.saturating_add(close.saturating_mul(closed.into()))
		}

		/// The most ending a grant can weigh: all its proxies, the most
		/// requests a grant may have in flight.
		fn max_end_grant_weight() -> Weight {
			Self::end_grant_weight(T::MaxProxies::get(), T::MaxOpenRequestsPerGrant::get())
		}

		/// Reading and writing one `GrantOpenRequests` entry.
		pub(crate) fn grant_list_weight() -> Weight {
			let len = 16 + 5 + 8 * T::MaxOpenRequestsPerGrant::get() as u64;
			T::DbWeight::get().reads_writes(1, 1).saturating_add(Self::proof_of(len))
		}

		/// Takes a request off the open list, its grant's list and its
		/// deadline's list, except `taken` (a list the caller took whole),
		/// and gives its requester's slot back.
		fn close_request(request: RequestId, req: &AccessRequest<T>, taken: Option<TakenList>) {
			OpenRequests::<T>::mutate(|l| l.retain(|x| *x != request));
			if taken != Some(TakenList::Grant) {
				Self::unlist_from_grant(request, req.grant);
			}
			if taken != Some(TakenList::Deadline) {
				RequestDeadlines::<T>::mutate(req.deadline, |l| l.retain(|x| *x != request));
			}
			Self::release_slot(req);
		}

		/// Ends open request `request` as expired: closed (but for the list
		/// the caller took, `taken`), stored, `RequestExpired`.
		fn expire_request(request: RequestId, mut req: AccessRequest<T>, taken: Option<TakenList>) {
			req.status = RequestStatus::Expired;
			Self::close_request(request, &req, taken);
			Requests::<T>::insert(request, req);
			Self::deposit_event(Event::RequestExpired { request });
		}

		/// Takes `request` off its grant's list of requests in flight.
		fn unlist_from_grant(request: RequestId, grant: GrantId) {
			GrantOpenRequests::<T>::mutate_exists(grant, |l| {
				if let Some(list) = l {
					list.retain(|x| *x != request);
					if list.is_empty() {
						*l = None;
					}
				}
			});
		}

		/// Gives an ordinary request's slot back to its requester.
		fn release_slot(req: &AccessRequest<T>) {
			if req.emergency.is_none() {
				OpenRequestsOf::<T>::mutate_exists(&req.requester, |n| {
					*n = n.map(|n| n.saturating_sub(1)).filter(|n| *n > 0);
				});
			}
		}

		/// Expires the open requests whose deadline is `now`; active
		/// acknowledged proxies that did not submit lose credit (none if the
		/// grant ended or was disputed meanwhile). Returns how many expired.
		fn expire_requests(now: BlockNumberFor<T>) -> u32 {
			let due = RequestDeadlines::<T>::take(now);
			for request in due.iter() {
				let Some(req) = Requests::<T>::get(request) else { continue };
				if req.status != RequestStatus::Open {
					continue;
				}
				if let Some(g) = Grants::<T>::get(req.grant) {
					// Proxies are excused once the grant ended or was disputed:
					// they must not serve. Only those that agreed to serve owe.
					// A suspended proxy may not serve (`NotInstitution`), so it
					// is not blamed for staying silent.
					if g.is_live(now) && g.disputed_by.is_none() {
						for proxy in g.acknowledged.iter().filter(|p| {
							!Fragments::<T>::contains_key(request, *p) && T::Registry::is_active(p)
						}) {
							T::Credit::report(proxy, Behaviour::ReencryptionFailed);
						}
					}
				}
				Self::expire_request(*request, req, Some(TakenList::Deadline));
			}
			due.len() as u32
		}

		/// Marks the break-glass accesses whose review window ended at `now`
		/// unreviewed; their institutions lose credit. Returns how many.
		fn lapse_reviews(now: BlockNumberFor<T>) -> u32 {
			let due = ReviewDeadlines::<T>::take(now);
			for request in due.iter() {
				Requests::<T>::mutate(request, |maybe| {
					let Some(req) = maybe.as_mut() else { return };
					let Some(e) = req.emergency.as_mut() else { return };
					if e.review == Review::Pending {
						e.review = Review::Lapsed;
						T::Credit::report(&req.requester, Behaviour::BreakGlassUnreviewed);
						Self::deposit_event(Event::EmergencyUnreviewed {
							request: *request,
							institution: req.requester.clone(),
						});
					}
				});
			}
			due.len() as u32
		}
	}
}
