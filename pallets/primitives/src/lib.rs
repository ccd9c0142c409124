//! # Medchain primitives
//!
//! The vocabulary Medchain's pallets share, and the traits through which they
//! reach each other without depending on each other's crates:
//!
//! - [`InstitutionKind`], [`Roles`] and [`Role`]: who an institution is and what
//!   it may do on the chain (seed paper 001's consortium: tier-3A hospitals
//!   produce data, tier-2 hospitals and nursing homes confirm it, regulators
//!   audit).
//! - [`InstitutionRegistry`]: "is this account an active institution with role
//!   R?", implemented by `pallet-reputation` and mocked in other pallets' tests.
//! - [`Behaviour`] and [`CreditReporter`]: typed reasons for which an
//!   institution's credit rises or falls, reported by the pallets that observe
//!   the behaviour.
//! - [`RecordKind`], [`AccessPurpose`] and [`RecordIndex`]: what a record is,
//!   why it is read, and how other pallets look records up in the index
//!   (implemented by `pallet-ehr-index`).
//! - [`DigestAlgorithm`] and [`ContentDigest`]: how a record's content is
//!   digested, shared by the record index and the tools that compute it.
//! - [`GrantedReads`]: whether a grant lets an account read a record now, for
//!   the index's access log (implemented by `pallet-proxy-reencrypt`).

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Grade within a hospital level, as in the Chinese hospital grading system
/// (for example level 3 grade A, "三级甲等").
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
	serde::Serialize, serde::Deserialize,
)]
pub enum HospitalGrade {
	/// Grade A (甲等).
	A,
	/// Grade B (乙等).
	B,
	/// Grade C (丙等).
	C,
}

/// The kind of an institution in the consortium. Patients and doctors are not
/// institutions: they are plain accounts.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
	serde::Serialize, serde::Deserialize,
)]
pub enum InstitutionKind {
	/// A hospital of `level` 1 to 3 and a grade.
	Hospital {
		/// Hospital level, 1 (community) to 3 (regional centre).
		level: u8,
		/// Grade within the level.
		grade: HospitalGrade,
	},
	/// A nursing home or elderly-care institution.
	NursingHome,
	/// A health insurer.
	Insurer,
	/// A third-party research institute.
	ResearchInstitute,
	/// A government health regulator.
	Regulator,
}

impl InstitutionKind {
	/// Whether the kind is well formed (hospital levels are 1 to 3).
	pub fn is_valid(&self) -> bool {
		match self {
			InstitutionKind::Hospital { level, .. } => (1..=3).contains(level),
			_ => true,
		}
	}
}

/// One role an institution may hold.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
	serde::Serialize, serde::Deserialize,
)]
pub enum Role {
	/// Produces blocks (may be a collator candidate) and publishes records.
	Producer,
	/// Confirms or rejects records published by others.
	Validator,
	/// Audits: may penalise institutions and reviews break-glass accesses.
	Auditor,
}

/// The set of roles an institution holds.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Default, Encode, Decode, DecodeWithMemTracking,
	MaxEncodedLen, TypeInfo, serde::Serialize, serde::Deserialize,
)]
pub struct Roles {
	/// Holds [`Role::Producer`].
	pub producer: bool,
	/// Holds [`Role::Validator`].
	pub validator: bool,
	/// Holds [`Role::Auditor`].
	pub auditor: bool,
}

impl Roles {
	/// The set holding exactly `role`.
	pub fn only(role: Role) -> Self {
		let mut r = Self::default();
		r.insert(role);
		r
	}

	/// Whether `role` is in the set.
	pub fn contains(&self, role: Role) -> bool {
		match role {
			Role::Producer => self.producer,
			Role::Validator => self.validator,
			Role::Auditor => self.auditor,
		}
	}

	/// Adds `role` to the set.
	pub fn insert(&mut self, role: Role) {
		match role {
			Role::Producer => self.producer = true,
			Role::Validator => self.validator = true,
			Role::Auditor => self.auditor = true,
		}
	}

	/// Whether the set is empty.
	pub fn is_empty(&self) -> bool {
		!(self.producer || self.validator || self.auditor)
	}
}

/// Where an institution stands in the consortium.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
	serde::Serialize, serde::Deserialize,
)]
pub enum InstitutionStatus {
	/// Applied, waiting for governance to approve.
	Pending,
	/// Approved: may act in its roles.
	Active,
	/// Suspended by governance: keeps its bond and credit, may not act.
	Suspended,
}

/// What the runtime API tells about one institution.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct InstitutionSummary {
	/// Its kind.
	pub kind: InstitutionKind,
	/// Its roles.
	pub roles: Roles,
	/// Pending, active or suspended.
	pub status: InstitutionStatus,
	/// Its credit score (none until approved).
	pub credit: Option<u32>,
}

/// One row of the credit ranking returned by the runtime API.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct RankingEntry<AccountId, Balance> {
	/// The institution.
	pub who: AccountId,
	/// Its credit score.
	pub credit: u32,
	/// Self bond plus delegations, if it is a collator candidate.
	pub stake: Balance,
	/// `stake` weighted by credit: what collator selection sorts by.
	pub effective_stake: Balance,
}

/// A behaviour that moves an institution's credit. Each pallet reports what it
/// observes; `pallet-reputation` maps each variant to a configured change.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
	serde::Serialize, serde::Deserialize,
)]
pub enum Behaviour {
	/// A record it published was confirmed by validators.
	RecordConfirmed,
	/// A record it published was rejected by validators.
	RecordRejected,
	/// Its federated-learning update was accepted into an aggregate.
	UpdateAccepted,
	/// Its federated-learning update was flagged as an outlier (poisoning).
	UpdateOutlier,
	/// Its aggregation agreed with the adopted model.
	AggregationAgreed,
	/// Its aggregation mismatched the adopted model.
	AggregationMismatched,
	/// As a proxy it served a valid re-encryption fragment.
	ReencryptionServed,
	/// As a proxy it submitted an invalid fragment or failed to serve.
	ReencryptionFailed,
	/// It authored a block.
	BlockAuthored,
	/// It missed a block it was expected to author.
	BlockMissed,
	/// A break-glass access by its staff was not reviewed in time.
	BreakGlassUnreviewed,
}

/// What a medical record is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum RecordKind {
	/// Diagnosis or outpatient note.
	Diagnosis,
	/// Laboratory result.
	LabResult,
	/// Imaging study (PACS).
	Imaging,
	/// Prescription.
	Prescription,
	/// Discharge summary.
	DischargeSummary,
	/// Nursing-home care record.
	NursingCare,
	/// Bill or insurance claim.
	Billing,
	/// Wearable sensor data.
	Wearable,
	/// Anything else.
	Other,
}

impl RecordKind {
	/// How many kinds there are.
	pub const COUNT: u32 = 9;

	/// Every kind, in encoding order.
	pub const ALL: [RecordKind; Self::COUNT as usize] = [
		RecordKind::Diagnosis,
		RecordKind::LabResult,
		RecordKind::Imaging,
		RecordKind::Prescription,
		RecordKind::DischargeSummary,
		RecordKind::NursingCare,
		RecordKind::Billing,
		RecordKind::Wearable,
		RecordKind::Other,
	];

	/// The kind's name as the runtime's metadata spells it (what wallets
	/// see, and what a patient's key for the kind is derived under).
	pub fn name(&self) -> &'static str {
		match self {
			RecordKind::Diagnosis => "Diagnosis",
			RecordKind::LabResult => "LabResult",
			RecordKind::Imaging => "Imaging",
			RecordKind::Prescription => "Prescription",
			RecordKind::DischargeSummary => "DischargeSummary",
			RecordKind::NursingCare => "NursingCare",
			RecordKind::Billing => "Billing",
			RecordKind::Wearable => "Wearable",
			RecordKind::Other => "Other",
		}
	}
}

/// The hash function a record's content digest was computed with. All three
/// give 32 bytes; seed paper 001 uses SM3. The one definition the record
/// index and the tools share.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum DigestAlgorithm {
	/// BLAKE2b-256.
	Blake2_256,
	/// SHA-256.
	Sha2_256,
	/// SM3 (GB/T 32905-2016).
	Sm3,
}

impl DigestAlgorithm {
	/// Every algorithm, in encoding order.
	pub const ALL: [DigestAlgorithm; 3] = [DigestAlgorithm::Blake2_256, DigestAlgorithm::Sha2_256, DigestAlgorithm::Sm3];

	/// The name the tools print, store and accept.
	pub fn name(&self) -> &'static str {
		match self {
			DigestAlgorithm::Blake2_256 => "blake2-256",
			DigestAlgorithm::Sha2_256 => "sha-256",
			DigestAlgorithm::Sm3 => "sm3",
		}
	}

	/// Parses [`DigestAlgorithm::name`].
	pub fn from_name(name: &str) -> Option<Self> {
		Self::ALL.into_iter().find(|a| a.name() == name)
	}
}

/// Digest of a record's encrypted content, with its algorithm.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct ContentDigest {
	/// Algorithm used.
	pub algorithm: DigestAlgorithm,
	/// The 32-byte digest.
	pub digest: [u8; 32],
}

/// Why a record is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum AccessPurpose {
	/// Treatment by a care provider.
	Treatment,
	/// The patient reading their own record.
	PatientView,
	/// An insurance claim.
	Insurance,
	/// Approved research.
	Research,
	/// Regulatory audit.
	Audit,
	/// Break-glass emergency access.
	Emergency,
}

/// What other pallets need to know about an indexed record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RecordRef<AccountId> {
	/// The patient the record is about.
	pub patient: AccountId,
	/// The institution that published it.
	pub issuer: AccountId,
	/// What it is; `None` once erased (erasure forgets the kind).
	pub kind: Option<RecordKind>,
	/// Hash of the capsule that encrypts its data key.
	pub capsule_hash: [u8; 32],
	/// Whether its content may be read: not erased, not rejected by validators.
	pub available: bool,
	/// Whether validators confirmed it (and it was not erased since): only
	/// such records are shared with grantees. Its patient and issuer read it
	/// whatever its status.
	pub confirmed: bool,
}

/// Looks records up in the record index.
pub trait RecordIndex<AccountId> {
	/// The record with `id`, if indexed.
	fn record(id: u64) -> Option<RecordRef<AccountId>>;
	/// The record with `id` as it stood at block `at` (now or earlier) for
	/// judging a read checked then: a record erased since still names its
	/// patient and kind, and its status before the erasure, while reads
	/// checked before the erasure may be logged. Otherwise as
	/// [`RecordIndex::record`].
	fn record_as_of(id: u64, at: u64) -> Option<RecordRef<AccountId>> {
		let _ = at;
		Self::record(id)
	}
	/// Ids of every record of `patient` (unordered).
	fn records_of(patient: &AccountId) -> alloc::vec::Vec<u64>;
}

/// Grants under which an account other than a record's patient and issuer
/// may read it (the proxy re-encryption pallet's, seen from the record
/// index).
pub trait GrantedReads<AccountId, BlockNumber> {
	/// The purpose of grant `grant` if `who` could read record `record` under
	/// it at block `at` (now or earlier): `who` is its grantee, the grant was
	/// made at or before `at`, neither revoked nor expired by then, is
	/// undisputed and acknowledged by its threshold of proxies, and covers
	/// the record; an emergency grant only once the glass was broken for
	/// that record.
	fn purpose_of_read(who: &AccountId, record: u64, grant: u64, at: BlockNumber) -> Option<AccessPurpose>;
	/// What one [`GrantedReads::purpose_of_read`] costs at most.
	fn purpose_of_read_weight() -> sp_runtime::Weight;
	/// Whether `proxy` is one of grant `grant`'s proxies that acknowledged
	/// it: it holds a verified key fragment of the grant and serves it (an
	/// acknowledgement is never undone). Reads the grant, which
	/// [`GrantedReads::purpose_of_read_weight`] covers.
	fn serves_grant(proxy: &AccountId, grant: u64) -> bool;
	/// Whether the patient of grant `grant` required, at or before block
	/// `at`, that every read under it is on chain before it is served (no
	/// instant path). Covered by [`GrantedReads::purpose_of_read_weight`].
	fn audit_first_at(grant: u64, at: BlockNumber) -> bool;
}

/// What one of a grant's proxies needs to serve the grant off chain, on the
/// instant path (the runtime API's `key_fragment_of`): its sealed key
/// fragment and the keys it verifies it against. Wire formats are
/// `medchain-umbral`'s.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct ProxyAssignment {
	/// The seal's capsule (to the proxy's Umbral key).
	pub sealed_capsule: alloc::vec::Vec<u8>,
	/// The key fragment, sealed.
	pub sealed_ciphertext: alloc::vec::Vec<u8>,
	/// The patient's verifying key (it signed the fragment).
	pub verifying_key: alloc::vec::Vec<u8>,
	/// The key the grant delegates from: its scope key, else the patient's.
	pub delegating_key: alloc::vec::Vec<u8>,
	/// The grantee's key, which the fragments re-encrypt to.
	pub receiving_key: alloc::vec::Vec<u8>,
	/// The key fragment id the chain binds this proxy to, if bound.
	pub kfrag_id: Option<[u8; 32]>,
}

/// Answers whether an account is an active institution holding a role.
pub trait InstitutionRegistry<AccountId> {
	/// Whether `who` is a registered, approved and not suspended institution.
	fn is_active(who: &AccountId) -> bool;
	/// Whether `who` is active and holds `role`.
	fn has_role(who: &AccountId, role: Role) -> bool;
}

/// Receives reports of behaviour that moves credit.
pub trait CreditReporter<AccountId> {
	/// Reports that `who` behaved as `behaviour`. Unknown accounts are ignored.
	fn report(who: &AccountId, behaviour: Behaviour);
}

/// Reports behaviour an auditor's verdict establishes, charged to that
/// auditor's allowance of penalties per session, so that one auditor cannot
/// condemn everything a competitor does.
pub trait AuditorVerdicts<AccountId> {
	/// Reports `behaviour` of `who` on the verdict of `auditor` if what it
	/// costs `who` fits in what is left of `auditor`'s allowance; returns
	/// whether it was reported (nothing changes otherwise).
	fn report_verdict(auditor: &AccountId, who: &AccountId, behaviour: Behaviour) -> bool;
}

/// Reads credit scores.
pub trait CreditScore<AccountId> {
	/// The credit score of `who`; zero for accounts without one.
	fn credit(who: &AccountId) -> u32;
}

impl<AccountId> CreditReporter<AccountId> for () {
	fn report(_: &AccountId, _: Behaviour) {}
}

impl<AccountId> AuditorVerdicts<AccountId> for () {
	fn report_verdict(_: &AccountId, _: &AccountId, _: Behaviour) -> bool {
		true
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn every_kind_is_listed_once_in_encoding_order_with_its_metadata_name() {
		for (i, kind) in RecordKind::ALL.iter().enumerate() {
			assert_eq!(kind.encode(), vec![i as u8]);
			assert_eq!(kind.name(), format!("{kind:?}"));
		}
		assert_eq!(RecordKind::decode(&mut &[RecordKind::COUNT as u8][..]).ok(), None, "no tenth kind");
	}

	#[test]
	fn roles_set_operations() {
		let mut r = Roles::only(Role::Validator);
		assert!(r.contains(Role::Validator));
		assert!(!r.contains(Role::Producer));
		assert!(!r.is_empty());
		r.insert(Role::Auditor);
		assert!(r.contains(Role::Auditor));
		assert!(Roles::default().is_empty());
	}

	#[test]
	fn hospital_levels_are_checked() {
		assert!(InstitutionKind::Hospital { level: 3, grade: HospitalGrade::A }.is_valid());
		assert!(!InstitutionKind::Hospital { level: 0, grade: HospitalGrade::A }.is_valid());
		assert!(!InstitutionKind::Hospital { level: 4, grade: HospitalGrade::B }.is_valid());
		assert!(InstitutionKind::Regulator.is_valid());
	}
}
