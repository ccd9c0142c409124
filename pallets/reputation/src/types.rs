//! Types stored and emitted by the reputation pallet.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use frame_system::pallet_prelude::BlockNumberFor;

use crate::{BalanceOf, Config};
use medchain_primitives::{Behaviour, InstitutionKind, InstitutionStatus, Role, Roles};
use scale_info::TypeInfo;
use sp_runtime::Perbill;

/// A registered institution.
#[derive(CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct Institution<T: Config> {
	/// Public name, as registered.
	pub name: BoundedVec<u8, T::MaxNameLen>,
	/// What kind of institution it is.
	pub kind: InstitutionKind,
	/// The roles it holds.
	pub roles: Roles,
	/// Pending, active or suspended.
	pub status: InstitutionStatus,
	/// Bond held while it is registered.
	pub bond: BalanceOf<T>,
	/// Block at which it applied.
	pub applied_at: BlockNumberFor<T>,
}

impl<T: Config> Institution<T> {
	/// Whether it may act in `role` now: active and holding the role. The
	/// one rule behind `Pallet::has_role`, also for off-chain readers of
	/// `Institutions`.
	pub fn acts_as(&self, role: Role) -> bool {
		self.status == InstitutionStatus::Active && self.roles.contains(role)
	}
}

/// A collator candidate and the stake behind it.
#[derive(Clone, PartialEq, Eq, Debug, Default, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct CandidateInfo<Balance> {
	/// The candidate's own bond.
	pub bond: Balance,
	/// Sum of the delegations it received.
	pub delegated: Balance,
	/// Number of distinct delegators.
	pub delegators: u32,
}

/// Stake waiting out the unbonding delay.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct UnbondingChunk<Balance, BlockNumber> {
	/// Amount still held.
	pub amount: Balance,
	/// First block at which it may be withdrawn.
	pub unlock_at: BlockNumber,
}

/// Why a credit score changed.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub enum CreditReason<T: Config> {
	/// Reported behaviour, mapped by the credit policy.
	Behaviour(Behaviour),
	/// An auditor's penalty with its stated reason.
	Penalty {
		/// The auditing institution.
		auditor: T::AccountId,
		/// Stated reason (UTF-8).
		reason: BoundedVec<u8, T::MaxReasonLen>,
	},
	/// Drift back toward the baseline at a session change.
	Drift,
	/// A penalty the regulators imposed by motion (not capped per session).
	RegulatorsPenalty {
		/// Stated reason (UTF-8).
		reason: BoundedVec<u8, T::MaxReasonLen>,
	},
}

/// Maps each reported behaviour to a credit change and, for the gravest, a
/// share of the institution's bond to slash.
pub trait CreditPolicy {
	/// The credit change for `behaviour` (negative lowers the score).
	fn delta(behaviour: Behaviour) -> i32;

	/// The share of the institution bond slashed for `behaviour` (none by
	/// default).
	fn slash(_behaviour: Behaviour) -> Perbill {
		Perbill::zero()
	}
}

/// The default credit changes (see the crate README for the table).
pub struct DefaultCreditPolicy;

impl CreditPolicy for DefaultCreditPolicy {
	fn delta(behaviour: Behaviour) -> i32 {
		match behaviour {
			Behaviour::RecordConfirmed => 2,
			Behaviour::RecordRejected => -10,
			Behaviour::UpdateAccepted => 3,
			Behaviour::UpdateOutlier => -30,
			Behaviour::AggregationAgreed => 2,
			Behaviour::AggregationMismatched => -40,
			Behaviour::ReencryptionServed => 1,
			Behaviour::ReencryptionFailed => -25,
			Behaviour::BlockAuthored => 5,
			// Per tenth of its expected share of a session's blocks missed.
			Behaviour::BlockMissed => -25,
			Behaviour::BreakGlassUnreviewed => -50,
		}
	}

	fn slash(behaviour: Behaviour) -> Perbill {
		match behaviour {
			// A break-glass access nobody could justify: a tenth of the bond.
			Behaviour::BreakGlassUnreviewed => Perbill::from_percent(10),
			// An aggregate outvoted by others is not slashed: two colluding
			// aggregators could outvote an honest one. It costs credit only.
			// A record the validators rejected as false: a fiftieth.
			Behaviour::RecordRejected => Perbill::from_percent(2),
			_ => Perbill::zero(),
		}
	}
}

/// A governing body of the consortium.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum Body {
	/// The council: every active institution with the producer role.
	Council,
	/// The regulators: every active institution with the auditor role.
	Regulators,
}

impl Body {
	/// Whether an active institution holding `roles` sits in this body.
	pub fn seats(&self, roles: &Roles) -> bool {
		match self {
			Body::Council => roles.producer,
			Body::Regulators => roles.auditor,
		}
	}
}

/// A governance decision on one institution. Admissions and removals need
/// both bodies; a suspension or a change of roles needs the council, and the
/// regulators too when it touches an institution that holds or is given the
/// auditor role (the council cannot change who supervises it on its own).
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum Decision<AccountId> {
	/// Approve a pending application or reinstate a suspended institution.
	Admit(AccountId),
	/// Suspend an active institution.
	Suspend(AccountId),
	/// Remove an institution or refuse its application.
	Remove(AccountId),
	/// Replace an institution's roles.
	SetRoles(AccountId, Roles),
}

impl<AccountId> Decision<AccountId> {
	/// The institution the decision is about.
	pub fn subject(&self) -> &AccountId {
		match self {
			Decision::Admit(who) |
			Decision::Suspend(who) |
			Decision::Remove(who) |
			Decision::SetRoles(who, _) => who,
		}
	}
}

/// One body's approval of a decision that waits for the other body.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct PendingApproval<BlockNumber> {
	/// The body that approved.
	pub body: Body,
	/// Last block at which the other body's approval completes the decision.
	pub expires_at: BlockNumber,
}
