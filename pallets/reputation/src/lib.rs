//! # Reputation pallet
//!
//! The consortium registry of Medchain, the credit score of every institution,
//! and credit-weighted delegated proof of stake for choosing collators.
//!
//! ## Overview
//!
//! Seed paper 001 runs a region's medical chain as a consortium: tier-3A
//! hospitals produce blocks and publish records, tier-2 hospitals and nursing
//! homes confirm data, regulators audit. Every institution carries a credit
//! score that rises with correct operation and falls with violations, and the
//! set of block producers follows those scores (an improved DPoS).
//!
//! - **Registry.** An institution applies with a kind, the roles it wants and
//!   a bond; the governance origin approves, suspends, reinstates or removes
//!   it. Other pallets ask [`InstitutionRegistry`] whether an account is an
//!   active institution with a role.
//! - **Credit.** Each approved institution has a score in `0..=MaxCredit`,
//!   starting at `InitialCredit`. Pallets report typed [`Behaviour`]s through
//!   [`CreditReporter`]; [`Config::CreditPolicy`] maps each to a change.
//!   Auditors may penalise with a stated reason. At every session change each
//!   score drifts toward the baseline by `CreditDrift` of the gap.
//! - **Credit-weighted DPoS.** Producers bond to become collator candidates;
//!   token holders delegate to them. At each session the collators are the
//!   invulnerables plus the top candidates by *effective stake* = (self bond +
//!   delegations) × credit / `MaxCredit`, excluding candidates under
//!   `MinCollatorCredit`, who are dropped with an event. Unbonded stake waits
//!   `UnbondingDelay` blocks. The pallet is pallet-session's `SessionManager`
//!   and pallet-authorship's `EventHandler`: when a session ends, the
//!   collators that were *active in it* ([`Config::SessionCollators`]) are
//!   scored on the blocks they authored; one that authored its share gains
//!   credit, one that missed slots loses it in proportion to the share missed.
//! - **Limits on credit.** Positive credit an institution gains in one session
//!   is capped (`MaxCreditGainPerSession`), so no behaviour can be farmed; an
//!   auditor's penalties are capped per session
//!   (`MaxPenaltyPerAuditorPerSession`); the gravest behaviours also slash a
//!   share of the institution's bond ([`CreditPolicy::slash`]).
//!
//! ## Terminology
//!
//! - *Institution*: an account registered in the consortium (hospital, nursing
//!   home, insurer, research institute, regulator).
//! - *Credit*: an integer score; deterministic, no floating point.
//! - *Effective stake*: stake scaled by credit, what selection sorts by.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod migrations;
pub mod types;
pub mod weights;

pub use medchain_primitives::{
	AuditorVerdicts, Behaviour, CreditReporter, CreditScore, InstitutionKind, InstitutionRegistry, InstitutionStatus,
	InstitutionSummary, RankingEntry, Role, Roles,
};
pub use types::*;
pub use weights::WeightInfo;

use alloc::vec::Vec;
use frame_support::traits::{
	fungible::{Inspect, MutateHold},
	tokens::{Fortitude, Precision, Restriction},
	ChangeMembers, Get, ValidatorRegistration,
};
use sp_runtime::{
	traits::{CheckedAdd, Zero},
	Perbill, Saturating,
};

/// Set-up the benchmarks need from the runtime.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId> {
	/// Makes `who`'s session keys count as registered.
	fn register_session_keys(who: &AccountId);
}

/// Most pending decisions about one institution: admit, suspend, remove and
/// one per set of roles (seven).
pub const MAX_DECISIONS_PER_INSTITUTION: u32 = 10;

/// Log target of this pallet.
pub const LOG_TARGET: &str = "runtime::reputation";

/// Balance type of the configured currency.
pub type BalanceOf<T> =
	<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;
	use frame_system::pallet_prelude::*;

	/// The in-code storage version.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(3);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why funds are held by this pallet.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// The bond of a registered institution.
		InstitutionBond,
		/// A collator candidate's own bond.
		CandidateBond,
		/// Stake delegated to a candidate.
		Delegation,
		/// Stake waiting out the unbonding delay.
		Unbonding,
	}

	/// Configuration of the pallet.
	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// The overarching event type.
		#[allow(deprecated)]
		type RuntimeEvent: From<Event<Self>> + IsType<<Self as frame_system::Config>::RuntimeEvent>;

		/// The currency bonds and delegations are held in.
		type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;

		/// The council's origin: a motion carried by the member institutions
		/// (active producers). Suspends institutions, sets roles and the
		/// invulnerables, and takes its part in admissions and removals.
		type CouncilOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// The regulators' origin: a motion carried by the active auditors.
		/// Admissions, removals and decisions about an auditor need it as well
		/// as the council.
		type RegulatorOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// Origin that decides alone: root (sudo on dev chains; in production
		/// only a call the council whitelisted and the regulators dispatched).
		type ForceOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// Told whenever the council's membership changes (a
		/// `pallet-collective` instance).
		type CouncilMembers: ChangeMembers<Self::AccountId>;

		/// Told whenever the regulators' membership changes.
		type RegulatorMembers: ChangeMembers<Self::AccountId>;

		/// Most members of each body (the collectives' `MaxMembers`).
		#[pallet::constant]
		type MaxBodyMembers: Get<u32>;

		/// Fewest members a body keeps through its decisions (only
		/// `ForceOrigin` may take it lower): a body too small to carry a motion
		/// would leave the decisions that need it to root alone.
		#[pallet::constant]
		type MinBodyMembers: Get<u32>;

		/// Blocks one body's approval waits for the other body's before it
		/// lapses.
		#[pallet::constant]
		type DecisionPeriod: Get<BlockNumberFor<Self>>;

		/// Tells whether a collator has registered its session keys.
		type ValidatorRegistration: ValidatorRegistration<Self::AccountId>;

		/// Maps reported behaviour to a credit change.
		type CreditPolicy: CreditPolicy;

		/// The collators active in the current session: pallet-session's
		/// validators. Authorship is settled against this set when a session
		/// ends (pallet-session plans one session ahead, so the set this pallet
		/// last selected is not the set that authored).
		type SessionCollators: Get<Vec<Self::AccountId>>;

		/// Where slashed bonds go: `Some(account)` receives them (a treasury),
		/// `None` burns them.
		type SlashBeneficiary: Get<Option<Self::AccountId>>;

		/// Bond an institution holds while registered.
		#[pallet::constant]
		type InstitutionBond: Get<BalanceOf<Self>>;

		/// Smallest self bond of a collator candidate.
		#[pallet::constant]
		type MinCandidateBond: Get<BalanceOf<Self>>;

		/// Smallest delegation.
		#[pallet::constant]
		type MinDelegation: Get<BalanceOf<Self>>;

		/// Highest credit score.
		#[pallet::constant]
		type MaxCredit: Get<u32>;

		/// Credit of a newly approved institution, and the baseline scores
		/// drift back to.
		#[pallet::constant]
		type InitialCredit: Get<u32>;

		/// Credit under which a candidate is not selected and is dropped.
		#[pallet::constant]
		type MinCollatorCredit: Get<u32>;

		/// Share of the gap to the baseline closed at every session change.
		#[pallet::constant]
		type CreditDrift: Get<Perbill>;

		/// Number of collators selected each session, invulnerables included.
		#[pallet::constant]
		type DesiredCollators: Get<u32>;

		/// Blocks unbonded stake waits before it can be withdrawn.
		#[pallet::constant]
		type UnbondingDelay: Get<BlockNumberFor<Self>>;

		/// Most approved institutions (active or suspended) in the registry.
		#[pallet::constant]
		type MaxInstitutions: Get<u32>;

		/// Most applications waiting for approval at once. Counted apart from
		/// [`Config::MaxInstitutions`], so pending applications cannot fill the
		/// registry.
		#[pallet::constant]
		type MaxPendingApplications: Get<u32>;

		/// Most credit an institution may gain in one session from reported
		/// behaviour (drift back to the baseline is not counted).
		#[pallet::constant]
		type MaxCreditGainPerSession: Get<u32>;

		/// Most penalty points one auditor may deduct in one session, over all
		/// institutions.
		#[pallet::constant]
		type MaxPenaltyPerAuditorPerSession: Get<u32>;

		/// Most collator candidates.
		#[pallet::constant]
		type MaxCandidates: Get<u32>;

		/// Most invulnerable collators.
		#[pallet::constant]
		type MaxInvulnerables: Get<u32>;

		/// Most candidates one account may delegate to.
		#[pallet::constant]
		type MaxDelegationsPerDelegator: Get<u32>;

		/// Most delegators one candidate may have.
		#[pallet::constant]
		type MaxDelegatorsPerCandidate: Get<u32>;

		/// Most unbonding chunks an account may have at once.
		#[pallet::constant]
		type MaxUnbondingChunks: Get<u32>;

		/// Longest institution name, in bytes.
		#[pallet::constant]
		type MaxNameLen: Get<u32>;

		/// Longest penalty reason, in bytes.
		#[pallet::constant]
		type MaxReasonLen: Get<u32>;

		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;

		/// Prepares benchmark accounts (registers their session keys).
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
	}

	/// Registered institutions by account.
	#[pallet::storage]
	pub type Institutions<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, Institution<T>, OptionQuery>;

	/// Number of approved (active or suspended) entries in [`Institutions`].
	#[pallet::storage]
	pub type InstitutionCount<T> = StorageValue<_, u32, ValueQuery>;

	/// Number of pending entries in [`Institutions`].
	#[pallet::storage]
	pub type PendingCount<T> = StorageValue<_, u32, ValueQuery>;

	/// Credit score of every approved institution.
	#[pallet::storage]
	pub type Credits<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, u32, OptionQuery>;

	/// Collator candidates and their stake.
	#[pallet::storage]
	pub type Candidates<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, CandidateInfo<BalanceOf<T>>, OptionQuery>;

	/// Number of entries in [`Candidates`].
	#[pallet::storage]
	pub type CandidateCount<T> = StorageValue<_, u32, ValueQuery>;

	/// Delegations still held for a former candidate (it left or was dropped
	/// while delegators had stake on it). Carried over if it registers again;
	/// the entry goes when its last delegator undelegates. `bond` is zero.
	#[pallet::storage]
	pub type FormerCandidates<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, CandidateInfo<BalanceOf<T>>, OptionQuery>;

	/// Delegations: delegator, candidate → amount.
	#[pallet::storage]
	pub type Delegations<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Blake2_128Concat,
		T::AccountId,
		BalanceOf<T>,
		OptionQuery,
	>;

	/// Number of candidates each delegator delegates to.
	#[pallet::storage]
	pub type DelegationCount<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Sum of all entries in [`Delegations`].
	#[pallet::storage]
	pub type TotalDelegated<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

	/// Stake waiting to be withdrawn, per account.
	#[pallet::storage]
	pub type Unbonding<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		BoundedVec<UnbondingChunk<BalanceOf<T>, BlockNumberFor<T>>, T::MaxUnbondingChunks>,
		ValueQuery,
	>;

	/// Collators selected whatever their stake (bootstrap).
	#[pallet::storage]
	pub type Invulnerables<T: Config> =
		StorageValue<_, BoundedVec<T::AccountId, T::MaxInvulnerables>, ValueQuery>;

	/// The collators most recently selected: the set planned for the next
	/// session (pallet-session plans one session ahead).
	#[pallet::storage]
	pub type SelectedCollators<T: Config> =
		StorageValue<_, BoundedVec<T::AccountId, T::DesiredCollators>, ValueQuery>;

	/// Blocks authored in the current session, per collator.
	#[pallet::storage]
	pub type AuthoredBlocks<T: Config> =
		StorageMap<_, Twox64Concat, T::AccountId, u32, ValueQuery>;

	/// Credit gained from reported behaviour in the current session, per
	/// institution (capped by `MaxCreditGainPerSession`).
	#[pallet::storage]
	pub type SessionGains<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Penalty points deducted in the current session, per auditor (capped by
	/// `MaxPenaltyPerAuditorPerSession`).
	#[pallet::storage]
	pub type AuditorPenalties<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Blocks authored in the current session by anyone.
	#[pallet::storage]
	pub type SessionBlocks<T> = StorageValue<_, u32, ValueQuery>;

	/// The council: active institutions with the producer role, sorted.
	#[pallet::storage]
	pub type Council<T: Config> =
		StorageValue<_, BoundedVec<T::AccountId, T::MaxBodyMembers>, ValueQuery>;

	/// The regulators: active institutions with the auditor role, sorted.
	#[pallet::storage]
	pub type Regulators<T: Config> =
		StorageValue<_, BoundedVec<T::AccountId, T::MaxBodyMembers>, ValueQuery>;

	/// Decisions one body approved that wait for the other body, by the
	/// institution they are about.
	#[pallet::storage]
	pub type PendingDecisions<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Blake2_128Concat,
		Decision<T::AccountId>,
		PendingApproval<BlockNumberFor<T>>,
	>;

	/// Genesis: institutions approved from the start and the invulnerables.
	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// `(account, name, kind, roles)` of institutions active at genesis.
		/// Their bond is held from their genesis balance.
		pub institutions: Vec<(T::AccountId, Vec<u8>, InstitutionKind, Roles)>,
		/// Collators selected whatever their stake.
		pub invulnerables: Vec<T::AccountId>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			for (who, name, kind, roles) in &self.institutions {
				let name: BoundedVec<u8, T::MaxNameLen> =
					name.clone().try_into().expect("genesis institution name too long");
				Pallet::<T>::do_apply(who, name, *kind, *roles)
					.expect("genesis institution could not apply");
				Pallet::<T>::do_approve(who).expect("genesis institution could not be approved");
				Pallet::<T>::sync_bodies(who, true).expect("genesis bodies are too large");
			}
			let invulnerables: BoundedVec<T::AccountId, T::MaxInvulnerables> =
				self.invulnerables.clone().try_into().expect("too many genesis invulnerables");
			// The first `DesiredCollators` invulnerables collate from genesis.
			let selected: BoundedVec<T::AccountId, T::DesiredCollators> =
				BoundedVec::truncate_from(invulnerables.to_vec());
			Invulnerables::<T>::put(invulnerables);
			SelectedCollators::<T>::put(selected);
		}
	}

	/// Events of this pallet.
	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// An institution applied to join and its bond was held.
		InstitutionApplied { who: T::AccountId, kind: InstitutionKind, roles: Roles },
		/// Governance approved (or reinstated) an institution.
		InstitutionApproved { who: T::AccountId, credit: u32 },
		/// Governance suspended an institution.
		InstitutionSuspended { who: T::AccountId },
		/// Governance removed an institution; its bond was released.
		InstitutionRemoved { who: T::AccountId },
		/// Governance changed an institution's roles.
		RolesChanged { who: T::AccountId, roles: Roles },
		/// A credit score changed.
		CreditChanged { who: T::AccountId, old: u32, new: u32, reason: CreditReason<T> },
		/// A producer became a collator candidate.
		CandidateRegistered { who: T::AccountId, bond: BalanceOf<T> },
		/// A candidate left; its bond is unbonding.
		CandidateLeft { who: T::AccountId },
		/// A candidate was dropped at a session change: credit under the minimum,
		/// or no longer an active producer.
		CandidateDropped { who: T::AccountId, credit: u32 },
		/// Stake was delegated to a candidate.
		Delegated { delegator: T::AccountId, candidate: T::AccountId, amount: BalanceOf<T> },
		/// Delegated stake was withdrawn from a candidate and is unbonding.
		Undelegated { delegator: T::AccountId, candidate: T::AccountId, amount: BalanceOf<T> },
		/// Unbonded stake was released to its owner.
		Withdrawn { who: T::AccountId, amount: BalanceOf<T> },
		/// Governance replaced the invulnerables.
		InvulnerablesSet { invulnerables: Vec<T::AccountId> },
		/// Collators selected for a session.
		CollatorsSelected { session: u32, collators: Vec<T::AccountId> },
		/// Nobody qualified for a session: the active collators that are still
		/// active producers keep their seats so the chain does not stall.
		CollatorsKept { session: u32, collators: Vec<T::AccountId> },
		/// A share of an institution's bond was slashed for a grave behaviour.
		BondSlashed { who: T::AccountId, amount: BalanceOf<T>, behaviour: Behaviour },
		/// A collator's authorship in the session that ended was scored.
		AuthorshipSettled { session: u32, collators: u32, blocks: u32 },
		/// One body approved a decision that now waits for the other body
		/// until `expires_at`.
		DecisionAwaiting { decision: Decision<T::AccountId>, approved_by: Body, expires_at: BlockNumberFor<T> },
		/// A body's membership changed.
		BodyChanged { body: Body, joined: Vec<T::AccountId>, left: Vec<T::AccountId> },
	}

	/// Errors of this pallet.
	#[pallet::error]
	pub enum Error<T> {
		/// The account has already applied or is registered.
		AlreadyRegistered,
		/// The registry is full.
		TooManyInstitutions,
		/// The institution kind is malformed (hospital level outside 1..=3).
		InvalidKind,
		/// An institution must hold at least one role.
		NoRoles,
		/// The account is not a registered institution.
		NotInstitution,
		/// The institution is already active.
		AlreadyActive,
		/// The institution is not active.
		NotActive,
		/// The caller is not an active auditor.
		NotAuditor,
		/// A penalty must be at least one point.
		ZeroPenalty,
		/// The account is not an active producer.
		NotProducer,
		/// The institution's credit is under the collator minimum.
		CreditTooLow,
		/// The account is already a candidate.
		AlreadyCandidate,
		/// The account is not a candidate.
		NotCandidate,
		/// Too many candidates.
		TooManyCandidates,
		/// The candidate bond is under the minimum.
		BondTooLow,
		/// The candidate has not registered session keys.
		SessionKeysNotRegistered,
		/// The delegation is under the minimum.
		DelegationTooLow,
		/// The delegator delegates to too many candidates.
		TooManyDelegations,
		/// The candidate has too many delegators.
		TooManyDelegators,
		/// No delegation from this delegator to this candidate.
		NoDelegation,
		/// More than was delegated was asked back.
		InsufficientDelegation,
		/// Too many unbonding chunks: withdraw matured ones first.
		TooManyUnbondingChunks,
		/// Nothing has finished unbonding.
		NothingToWithdraw,
		/// Too many invulnerables.
		TooManyInvulnerables,
		/// Too many applications are waiting for approval.
		TooManyApplications,
		/// The auditor has used up its penalty points for this session.
		PenaltyCapExceeded,
		/// An amount overflowed.
		Overflow,
		/// This body has already approved the decision; it waits for the other.
		AlreadyApproved,
		/// The regulators alone cannot take this decision: it is the
		/// council's.
		NotRegulatorsDecision,
		/// The decision would leave a governing body with fewer than
		/// `MinBodyMembers` members.
		LastBodyMember,
		/// A governing body is full.
		TooManyBodyMembers,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(T::InitialCredit::get() <= T::MaxCredit::get(), "InitialCredit > MaxCredit");
			assert!(
				T::MinCollatorCredit::get() <= T::MaxCredit::get(),
				"MinCollatorCredit > MaxCredit"
			);
			assert!(T::MaxCredit::get() > 0, "MaxCredit must be positive");
			assert!(T::DesiredCollators::get() > 0, "DesiredCollators must be positive");
			assert!(T::MaxUnbondingChunks::get() > 0, "MaxUnbondingChunks must be positive");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Applies to join the consortium as an institution of `kind` holding
		/// `roles`. Holds `InstitutionBond` from the caller.
		///
		/// Origin: signed. Emits `InstitutionApplied`.
		/// Errors: `AlreadyRegistered`, `InvalidKind`, `NoRoles`,
		/// `TooManyInstitutions`, or the currency's error if the bond cannot be held.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::apply_for_membership())]
		pub fn apply_for_membership(
			origin: OriginFor<T>,
			name: BoundedVec<u8, T::MaxNameLen>,
			kind: InstitutionKind,
			roles: Roles,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_apply(&who, name, kind, roles)?;
			Self::deposit_event(Event::InstitutionApplied { who, kind, roles });
			Ok(())
		}

		/// Approves a pending institution, or reinstates a suspended one. A
		/// newly approved institution starts at `InitialCredit`.
		///
		/// Origin: the council and the regulators, in either order within
		/// `DecisionPeriod` (the first approval emits `DecisionAwaiting`), or
		/// `ForceOrigin`. Emits `InstitutionApproved`.
		/// Errors: `NotInstitution`, `AlreadyActive`, `TooManyInstitutions`,
		/// `AlreadyApproved`, `TooManyBodyMembers`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::approve_institution())]
		pub fn approve_institution(origin: OriginFor<T>, who: T::AccountId) -> DispatchResult {
			let inst = Institutions::<T>::get(&who).ok_or(Error::<T>::NotInstitution)?;
			ensure!(inst.status != InstitutionStatus::Active, Error::<T>::AlreadyActive);
			let Some(forced) = Self::decide(origin, &Decision::Admit(who.clone()))? else {
				return Ok(());
			};
			let credit = Self::do_approve(&who)?;
			Self::sync_bodies(&who, forced)?;
			Self::deposit_event(Event::InstitutionApproved { who, credit });
			Ok(())
		}

		/// Suspends an active institution: it keeps bond and credit but fails
		/// every role check, and leaves the governing bodies, until approved
		/// again.
		///
		/// Origin: the council (and the regulators too if the institution
		/// sits in a body: a producer or an auditor), or `ForceOrigin`. Emits
		/// `InstitutionSuspended`.
		/// Errors: `NotInstitution`, `NotActive`, `NotRegulatorsDecision`,
		/// `AlreadyApproved`, `LastBodyMember`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::suspend_institution())]
		pub fn suspend_institution(origin: OriginFor<T>, who: T::AccountId) -> DispatchResult {
			let inst = Institutions::<T>::get(&who).ok_or(Error::<T>::NotInstitution)?;
			ensure!(inst.status == InstitutionStatus::Active, Error::<T>::NotActive);
			let Some(forced) = Self::decide(origin, &Decision::Suspend(who.clone()))? else {
				return Ok(());
			};
			Institutions::<T>::mutate(&who, |maybe| {
				if let Some(inst) = maybe {
					inst.status = InstitutionStatus::Suspended;
				}
			});
			Self::sync_bodies(&who, forced)?;
			Self::deposit_event(Event::InstitutionSuspended { who });
			Ok(())
		}

		/// Removes an institution (or refuses a pending application): releases
		/// its bond and forgets its credit. If it was a collator candidate, its
		/// candidate bond starts unbonding, even when its unbonding slots are
		/// full (the stake then joins its latest chunk), so removal cannot be
		/// blocked.
		///
		/// Origin: the council and the regulators, in either order within
		/// `DecisionPeriod`, or `ForceOrigin`. Emits `InstitutionRemoved`.
		/// Errors: `NotInstitution`, `AlreadyApproved`, `LastBodyMember`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::remove_institution())]
		pub fn remove_institution(origin: OriginFor<T>, who: T::AccountId) -> DispatchResult {
			let inst = Institutions::<T>::get(&who).ok_or(Error::<T>::NotInstitution)?;
			let Some(forced) = Self::decide(origin, &Decision::Remove(who.clone()))? else {
				return Ok(());
			};
			if Candidates::<T>::contains_key(&who) {
				Self::do_leave_candidates(&who, true)?;
			}
			T::Currency::release(
				&HoldReason::InstitutionBond.into(),
				&who,
				inst.bond,
				Precision::BestEffort,
			)?;
			Institutions::<T>::remove(&who);
			Credits::<T>::remove(&who);
			SessionGains::<T>::remove(&who);
			if inst.status == InstitutionStatus::Pending {
				PendingCount::<T>::mutate(|c| *c = c.saturating_sub(1));
			} else {
				InstitutionCount::<T>::mutate(|c| *c = c.saturating_sub(1));
			}
			Self::sync_bodies(&who, forced)?;
			Self::deposit_event(Event::InstitutionRemoved { who });
			Ok(())
		}

		/// Replaces the roles of an institution. An active institution joins
		/// or leaves the council and the regulators with its producer and
		/// auditor roles.
		///
		/// Origin: the council (and the regulators too if the producer or the
		/// auditor role is given or taken), or `ForceOrigin`. Emits
		/// `RolesChanged`.
		/// Errors: `NotInstitution`, `NoRoles`, `NotRegulatorsDecision`,
		/// `AlreadyApproved`, `LastBodyMember`, `TooManyBodyMembers`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::set_roles())]
		pub fn set_roles(origin: OriginFor<T>, who: T::AccountId, roles: Roles) -> DispatchResult {
			ensure!(!roles.is_empty(), Error::<T>::NoRoles);
			ensure!(Institutions::<T>::contains_key(&who), Error::<T>::NotInstitution);
			let Some(forced) = Self::decide(origin, &Decision::SetRoles(who.clone(), roles))? else {
				return Ok(());
			};
			Institutions::<T>::mutate(&who, |maybe| {
				if let Some(inst) = maybe {
					inst.roles = roles;
				}
			});
			Self::sync_bodies(&who, forced)?;
			Self::deposit_event(Event::RolesChanged { who, roles });
			Ok(())
		}

		/// An auditor lowers an institution's credit by `points`, stating why.
		/// One auditor deducts at most `MaxPenaltyPerAuditorPerSession` points
		/// per session, so a single auditor cannot wipe out a competitor; a
		/// larger penalty takes a motion of the regulators
		/// (`RegulatorOrigin`), which is not capped.
		///
		/// Origin: signed by an active institution with the auditor role, or
		/// `RegulatorOrigin`. Emits `CreditChanged` with a `Penalty` (or
		/// `RegulatorsPenalty`) reason.
		/// Errors: `NotAuditor`, `ZeroPenalty`, `NotInstitution`,
		/// `PenaltyCapExceeded`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::penalise())]
		pub fn penalise(
			origin: OriginFor<T>,
			who: T::AccountId,
			points: u32,
			reason: BoundedVec<u8, T::MaxReasonLen>,
		) -> DispatchResult {
			let origin = match T::RegulatorOrigin::try_origin(origin) {
				Ok(_) => {
					ensure!(points > 0, Error::<T>::ZeroPenalty);
					ensure!(Credits::<T>::contains_key(&who), Error::<T>::NotInstitution);
					let delta = i64::from(points).saturating_neg();
					Self::change_credit(&who, delta, CreditReason::RegulatorsPenalty { reason });
					return Ok(());
				},
				Err(origin) => origin,
			};
			let auditor = ensure_signed(origin)?;
			ensure!(Self::has_role(&auditor, Role::Auditor), Error::<T>::NotAuditor);
			ensure!(points > 0, Error::<T>::ZeroPenalty);
			ensure!(Credits::<T>::contains_key(&who), Error::<T>::NotInstitution);
			let used = AuditorPenalties::<T>::get(&auditor);
			let total = used.checked_add(points).ok_or(Error::<T>::PenaltyCapExceeded)?;
			ensure!(
				total <= T::MaxPenaltyPerAuditorPerSession::get(),
				Error::<T>::PenaltyCapExceeded
			);
			// Nothing below can fail.
			AuditorPenalties::<T>::insert(&auditor, total);
			let delta = i64::from(points).saturating_neg();
			Self::change_credit(&who, delta, CreditReason::Penalty { auditor, reason });
			Ok(())
		}

		/// Becomes a collator candidate with a self bond of `bond`. Delegations
		/// still held from an earlier candidacy count again.
		///
		/// Origin: signed by an active producer whose credit is at least
		/// `MinCollatorCredit` and whose session keys are registered.
		/// Emits `CandidateRegistered`.
		/// Errors: `NotProducer`, `AlreadyCandidate`, `BondTooLow`,
		/// `CreditTooLow`, `SessionKeysNotRegistered`, `TooManyCandidates`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::register_as_candidate())]
		pub fn register_as_candidate(origin: OriginFor<T>, bond: BalanceOf<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(Self::has_role(&who, Role::Producer), Error::<T>::NotProducer);
			ensure!(!Candidates::<T>::contains_key(&who), Error::<T>::AlreadyCandidate);
			ensure!(bond >= T::MinCandidateBond::get(), Error::<T>::BondTooLow);
			ensure!(
				Self::credit_of(&who) >= T::MinCollatorCredit::get(),
				Error::<T>::CreditTooLow
			);
			ensure!(
				T::ValidatorRegistration::is_registered(&who),
				Error::<T>::SessionKeysNotRegistered
			);
			let count = CandidateCount::<T>::get();
			ensure!(count < T::MaxCandidates::get(), Error::<T>::TooManyCandidates);
			T::Currency::hold(&HoldReason::CandidateBond.into(), &who, bond)?;
			// Nothing below can fail.
			let carried = FormerCandidates::<T>::take(&who).unwrap_or_default();
			Candidates::<T>::insert(
				&who,
				CandidateInfo { bond, delegated: carried.delegated, delegators: carried.delegators },
			);
			CandidateCount::<T>::put(count.saturating_add(1));
			Self::deposit_event(Event::CandidateRegistered { who, bond });
			Ok(())
		}

		/// Stops being a candidate. The self bond starts unbonding; delegations
		/// stay (in [`FormerCandidates`]) until their delegators undelegate, and
		/// count again if the account registers anew.
		///
		/// Origin: signed. Emits `CandidateLeft`.
		/// Errors: `NotCandidate`, `TooManyUnbondingChunks`.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::leave_candidates())]
		pub fn leave_candidates(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_leave_candidates(&who, false)?;
			Self::deposit_event(Event::CandidateLeft { who });
			Ok(())
		}

		/// Delegates `amount` to `candidate`, adding to any earlier delegation.
		///
		/// Origin: signed. Emits `Delegated`.
		/// Errors: `NotCandidate`, `DelegationTooLow`, `TooManyDelegations`,
		/// `TooManyDelegators`, `Overflow`, or the currency's error.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::delegate())]
		pub fn delegate(
			origin: OriginFor<T>,
			candidate: T::AccountId,
			amount: BalanceOf<T>,
		) -> DispatchResult {
			let delegator = ensure_signed(origin)?;
			let mut info = Candidates::<T>::get(&candidate).ok_or(Error::<T>::NotCandidate)?;
			let existing = Delegations::<T>::get(&delegator, &candidate);
			let new_amount = existing
				.unwrap_or_else(Zero::zero)
				.checked_add(&amount)
				.ok_or(Error::<T>::Overflow)?;
			ensure!(new_amount >= T::MinDelegation::get(), Error::<T>::DelegationTooLow);
			let mut count = DelegationCount::<T>::get(&delegator);
			if existing.is_none() {
				ensure!(
					count < T::MaxDelegationsPerDelegator::get(),
					Error::<T>::TooManyDelegations
				);
				ensure!(
					info.delegators < T::MaxDelegatorsPerCandidate::get(),
					Error::<T>::TooManyDelegators
				);
				count = count.saturating_add(1);
				info.delegators = info.delegators.saturating_add(1);
			}
			info.delegated = info.delegated.checked_add(&amount).ok_or(Error::<T>::Overflow)?;
			let total = TotalDelegated::<T>::get().checked_add(&amount).ok_or(Error::<T>::Overflow)?;
			T::Currency::hold(&HoldReason::Delegation.into(), &delegator, amount)?;
			// Nothing below can fail.
			Delegations::<T>::insert(&delegator, &candidate, new_amount);
			DelegationCount::<T>::insert(&delegator, count);
			Candidates::<T>::insert(&candidate, info);
			TotalDelegated::<T>::put(total);
			Self::deposit_event(Event::Delegated { delegator, candidate, amount });
			Ok(())
		}

		/// Takes back `amount` of a delegation; it unbonds for `UnbondingDelay`.
		/// Works after the candidate has left. What remains must be zero or at
		/// least `MinDelegation`.
		///
		/// Origin: signed. Emits `Undelegated`.
		/// Errors: `NoDelegation`, `InsufficientDelegation`, `DelegationTooLow`,
		/// `TooManyUnbondingChunks`.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::undelegate())]
		pub fn undelegate(
			origin: OriginFor<T>,
			candidate: T::AccountId,
			amount: BalanceOf<T>,
		) -> DispatchResult {
			let delegator = ensure_signed(origin)?;
			let existing =
				Delegations::<T>::get(&delegator, &candidate).ok_or(Error::<T>::NoDelegation)?;
			ensure!(amount <= existing && !amount.is_zero(), Error::<T>::InsufficientDelegation);
			let remaining = existing.saturating_sub(amount);
			ensure!(
				remaining.is_zero() || remaining >= T::MinDelegation::get(),
				Error::<T>::DelegationTooLow
			);
			Self::start_unbonding(&delegator, HoldReason::Delegation, amount, false)?;
			// Nothing below can fail.
			if remaining.is_zero() {
				Delegations::<T>::remove(&delegator, &candidate);
				DelegationCount::<T>::mutate_exists(&delegator, |c| {
					let n = c.unwrap_or(0).saturating_sub(1);
					*c = if n == 0 { None } else { Some(n) };
				});
			} else {
				Delegations::<T>::insert(&delegator, &candidate, remaining);
			}
			let shrink = |info: &mut CandidateInfo<BalanceOf<T>>| {
				info.delegated = info.delegated.saturating_sub(amount);
				if remaining.is_zero() {
					info.delegators = info.delegators.saturating_sub(1);
				}
			};
			if Candidates::<T>::contains_key(&candidate) {
				Candidates::<T>::mutate(&candidate, |maybe| maybe.as_mut().map(shrink));
			} else {
				FormerCandidates::<T>::mutate_exists(&candidate, |maybe| {
					if let Some(info) = maybe {
						shrink(info);
						if info.delegators == 0 {
							*maybe = None;
						}
					}
				});
			}
			TotalDelegated::<T>::mutate(|t| *t = t.saturating_sub(amount));
			Self::deposit_event(Event::Undelegated { delegator, candidate, amount });
			Ok(())
		}

		/// Releases every unbonding chunk whose delay has passed.
		///
		/// Origin: signed. Emits `Withdrawn`.
		/// Errors: `NothingToWithdraw`.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::withdraw_unbonded(T::MaxUnbondingChunks::get()))]
		pub fn withdraw_unbonded(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let now = frame_system::Pallet::<T>::block_number();
			let chunks = Unbonding::<T>::get(&who);
			let (ready, waiting): (Vec<_>, Vec<_>) =
				chunks.into_iter().partition(|c| c.unlock_at <= now);
			let amount = ready
				.iter()
				.fold(BalanceOf::<T>::zero(), |acc, c| acc.saturating_add(c.amount));
			ensure!(!amount.is_zero(), Error::<T>::NothingToWithdraw);
			T::Currency::release(&HoldReason::Unbonding.into(), &who, amount, Precision::BestEffort)?;
			let waiting: BoundedVec<_, T::MaxUnbondingChunks> =
				BoundedVec::truncate_from(waiting);
			if waiting.is_empty() {
				Unbonding::<T>::remove(&who);
			} else {
				Unbonding::<T>::insert(&who, waiting);
			}
			Self::deposit_event(Event::Withdrawn { who, amount });
			Ok(())
		}

		/// Replaces the invulnerable collators.
		///
		/// Origin: the council (every invulnerable an active producer) or
		/// `ForceOrigin`. Emits `InvulnerablesSet`.
		/// Errors: `NotRegulatorsDecision`, `NotProducer`, `TooManyInvulnerables`.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::set_invulnerables(T::MaxInvulnerables::get()))]
		pub fn set_invulnerables(
			origin: OriginFor<T>,
			invulnerables: Vec<T::AccountId>,
		) -> DispatchResult {
			match Self::body_of(origin)? {
				Some(Body::Regulators) => return Err(Error::<T>::NotRegulatorsDecision.into()),
				Some(Body::Council) => ensure!(
					invulnerables.iter().all(|who| Self::has_role(who, Role::Producer)),
					Error::<T>::NotProducer
				),
				None => {},
			}
			let mut list = invulnerables;
			list.sort();
			list.dedup();
			let bounded: BoundedVec<T::AccountId, T::MaxInvulnerables> =
				list.clone().try_into().map_err(|_| Error::<T>::TooManyInvulnerables)?;
			Invulnerables::<T>::put(bounded);
			Self::deposit_event(Event::InvulnerablesSet { invulnerables: list });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// Registers `who` as a pending institution and holds its bond.
		pub(crate) fn do_apply(
			who: &T::AccountId,
			name: BoundedVec<u8, T::MaxNameLen>,
			kind: InstitutionKind,
			roles: Roles,
		) -> DispatchResult {
			ensure!(!Institutions::<T>::contains_key(who), Error::<T>::AlreadyRegistered);
			ensure!(kind.is_valid(), Error::<T>::InvalidKind);
			ensure!(!roles.is_empty(), Error::<T>::NoRoles);
			let pending = PendingCount::<T>::get();
			ensure!(pending < T::MaxPendingApplications::get(), Error::<T>::TooManyApplications);
			let bond = T::InstitutionBond::get();
			T::Currency::hold(&HoldReason::InstitutionBond.into(), who, bond)?;
			Institutions::<T>::insert(
				who,
				Institution {
					name,
					kind,
					roles,
					status: InstitutionStatus::Pending,
					bond,
					applied_at: frame_system::Pallet::<T>::block_number(),
				},
			);
			PendingCount::<T>::put(pending.saturating_add(1));
			Ok(())
		}

		/// Makes a pending or suspended institution active; returns its credit.
		pub(crate) fn do_approve(who: &T::AccountId) -> Result<u32, DispatchError> {
			Institutions::<T>::try_mutate(who, |maybe| {
				let inst = maybe.as_mut().ok_or(Error::<T>::NotInstitution)?;
				ensure!(inst.status != InstitutionStatus::Active, Error::<T>::AlreadyActive);
				if inst.status == InstitutionStatus::Pending {
					let members = InstitutionCount::<T>::get();
					ensure!(members < T::MaxInstitutions::get(), Error::<T>::TooManyInstitutions);
					InstitutionCount::<T>::put(members.saturating_add(1));
					PendingCount::<T>::mutate(|c| *c = c.saturating_sub(1));
				}
				inst.status = InstitutionStatus::Active;
				let credit = Credits::<T>::get(who).unwrap_or_else(T::InitialCredit::get);
				Credits::<T>::insert(who, credit);
				Ok(credit)
			})
		}

		/// Which body an origin speaks for: `None` for `ForceOrigin`.
		fn body_of(origin: OriginFor<T>) -> Result<Option<Body>, DispatchError> {
			let origin = match T::ForceOrigin::try_origin(origin) {
				Ok(_) => return Ok(None),
				Err(origin) => origin,
			};
			let origin = match T::CouncilOrigin::try_origin(origin) {
				Ok(_) => return Ok(Some(Body::Council)),
				Err(origin) => origin,
			};
			T::RegulatorOrigin::ensure_origin(origin)?;
			Ok(Some(Body::Regulators))
		}

		/// Whether `decision` needs the regulators as well as the council:
		/// every decision that changes who sits in either body (admission,
		/// removal, suspending a producer or an auditor, giving or taking the
		/// producer or auditor role). The council alone cannot pack itself,
		/// shut out its minority or change who supervises it.
		pub fn needs_regulators(decision: &Decision<T::AccountId>) -> bool {
			let roles = |who: &T::AccountId| Institutions::<T>::get(who).map(|i| i.roles);
			match decision {
				Decision::Admit(_) | Decision::Remove(_) => true,
				Decision::Suspend(who) => roles(who).is_some_and(|r| r.producer || r.auditor),
				Decision::SetRoles(who, new) => roles(who)
					.is_some_and(|r| r.producer != new.producer || r.auditor != new.auditor),
			}
		}

		/// Records `origin`'s approval of `decision`. Returns `Some(forced)`
		/// when the decision is carried (`forced` for `ForceOrigin`), `None`
		/// when it waits for the other body.
		///
		/// A carried decision voids every other approval waiting about the
		/// same institution: they approved a state that no longer holds.
		fn decide(
			origin: OriginFor<T>,
			decision: &Decision<T::AccountId>,
		) -> Result<Option<bool>, DispatchError> {
			let who = decision.subject();
			let Some(body) = Self::body_of(origin)? else {
				Self::forget_decisions(who);
				return Ok(Some(true));
			};
			if !Self::needs_regulators(decision) {
				ensure!(body == Body::Council, Error::<T>::NotRegulatorsDecision);
				Self::forget_decisions(who);
				return Ok(Some(false));
			}
			let now = frame_system::Pallet::<T>::block_number();
			if let Some(pending) =
				PendingDecisions::<T>::get(who, decision).filter(|p| now <= p.expires_at)
			{
				ensure!(pending.body != body, Error::<T>::AlreadyApproved);
				Self::forget_decisions(who);
				return Ok(Some(false));
			}
			let expires_at = now.saturating_add(T::DecisionPeriod::get());
			PendingDecisions::<T>::insert(who, decision, PendingApproval { body, expires_at });
			Self::deposit_event(Event::DecisionAwaiting {
				decision: decision.clone(),
				approved_by: body,
				expires_at,
			});
			Ok(None)
		}

		/// Drops every approval waiting about `who` (at most
		/// [`MAX_DECISIONS_PER_INSTITUTION`]).
		fn forget_decisions(who: &T::AccountId) {
			let _ = PendingDecisions::<T>::clear_prefix(who, MAX_DECISIONS_PER_INSTITUTION, None);
		}

		/// The members of `body`.
		pub fn members_of(body: Body) -> BoundedVec<T::AccountId, T::MaxBodyMembers> {
			match body {
				Body::Council => Council::<T>::get(),
				Body::Regulators => Regulators::<T>::get(),
			}
		}

		/// Puts `who` in the council if it is an active producer and among the
		/// regulators if it is an active auditor, and takes it out otherwise.
		/// Unless `forced`, a body keeps at least `MinBodyMembers` members.
		pub(crate) fn sync_bodies(who: &T::AccountId, forced: bool) -> DispatchResult {
			let active = Institutions::<T>::get(who).filter(|i| i.status == InstitutionStatus::Active);
			for body in [Body::Council, Body::Regulators] {
				let member = active.as_ref().is_some_and(|i| body.seats(&i.roles));
				Self::set_membership(body, who, member, forced)?;
			}
			Ok(())
		}

		/// Every active institution that sits in `body` by its roles, sorted:
		/// what the body's stored members must equal (read by the storage
		/// migration and `try_state`; iterates the whole registry).
		pub fn seated_in(body: Body) -> Vec<T::AccountId> {
			let mut members: Vec<T::AccountId> = Institutions::<T>::iter()
				.filter(|(_, i)| i.status == InstitutionStatus::Active && body.seats(&i.roles))
				.map(|(who, _)| who)
				.collect();
			members.sort();
			members
		}

		fn set_membership(body: Body, who: &T::AccountId, member: bool, forced: bool) -> DispatchResult {
			let mut members = Self::members_of(body);
			let (joined, left) = match (members.binary_search(who), member) {
				(Err(at), true) => {
					members
						.try_insert(at, who.clone())
						.map_err(|_| Error::<T>::TooManyBodyMembers)?;
					(alloc::vec![who.clone()], Vec::new())
				},
				(Ok(at), false) => {
					ensure!(
						forced || members.len() > T::MinBodyMembers::get() as usize,
						Error::<T>::LastBodyMember
					);
					members.remove(at);
					(Vec::new(), alloc::vec![who.clone()])
				},
				_ => return Ok(()),
			};
			match body {
				Body::Council => {
					T::CouncilMembers::change_members_sorted(&joined, &left, &members);
					Council::<T>::put(members);
				},
				Body::Regulators => {
					T::RegulatorMembers::change_members_sorted(&joined, &left, &members);
					Regulators::<T>::put(members);
				},
			}
			Self::deposit_event(Event::BodyChanged { body, joined, left });
			Ok(())
		}

		/// Removes `who` from the candidates; its bond starts unbonding and its
		/// delegations move to [`FormerCandidates`]. `force` (governance removal,
		/// automatic drops) never fails on full unbonding slots.
		pub(crate) fn do_leave_candidates(who: &T::AccountId, force: bool) -> DispatchResult {
			let info = Candidates::<T>::get(who).ok_or(Error::<T>::NotCandidate)?;
			Self::start_unbonding(who, HoldReason::CandidateBond, info.bond, force)?;
			Candidates::<T>::remove(who);
			CandidateCount::<T>::mutate(|c| *c = c.saturating_sub(1));
			if info.delegators > 0 {
				FormerCandidates::<T>::insert(
					who,
					CandidateInfo {
						bond: Zero::zero(),
						delegated: info.delegated,
						delegators: info.delegators,
					},
				);
			}
			Ok(())
		}

		/// Moves `amount` held for `from` into an unbonding chunk. With all
		/// slots taken, `force` adds the amount to the latest chunk and moves
		/// that chunk's unlock to the new (later) unlock block; otherwise it
		/// fails with `TooManyUnbondingChunks`.
		fn start_unbonding(
			who: &T::AccountId,
			from: HoldReason,
			amount: BalanceOf<T>,
			force: bool,
		) -> DispatchResult {
			let unlock_at =
				frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingDelay::get());
			let mut chunks = Unbonding::<T>::get(who);
			if let Err(chunk) = chunks.try_push(UnbondingChunk { amount, unlock_at }) {
				ensure!(force, Error::<T>::TooManyUnbondingChunks);
				let last = chunks.last_mut().ok_or(Error::<T>::TooManyUnbondingChunks)?;
				last.amount = last.amount.saturating_add(chunk.amount);
				last.unlock_at = last.unlock_at.max(chunk.unlock_at);
			}
			T::Currency::release(&from.into(), who, amount, Precision::Exact)?;
			T::Currency::hold(&HoldReason::Unbonding.into(), who, amount)?;
			Unbonding::<T>::insert(who, chunks);
			Ok(())
		}

		/// Credit of `who`, zero if it has none.
		pub fn credit_of(who: &T::AccountId) -> u32 {
			Credits::<T>::get(who).unwrap_or(0)
		}

		/// Whether `who` is an active institution holding `role`.
		pub fn has_role(who: &T::AccountId, role: Role) -> bool {
			Institutions::<T>::get(who).is_some_and(|i| i.acts_as(role))
		}

		/// Adds `delta` to the credit of `who`, clamped to `0..=MaxCredit`, and
		/// emits `CreditChanged` if it moved. Institutions without credit are
		/// ignored. A gain from reported behaviour is cut to what is left of
		/// the institution's `MaxCreditGainPerSession`.
		pub(crate) fn change_credit(who: &T::AccountId, delta: i64, reason: CreditReason<T>) {
			let Some(old) = Credits::<T>::get(who) else { return };
			let mut delta = delta;
			if delta > 0 && matches!(reason, CreditReason::Behaviour(_)) {
				let gained = SessionGains::<T>::get(who);
				let room = T::MaxCreditGainPerSession::get().saturating_sub(gained);
				delta = delta.min(i64::from(room));
				if delta <= 0 {
					return;
				}
				// `delta` lies in 1..=room, a u32.
				let add = u32::try_from(delta).unwrap_or(0);
				SessionGains::<T>::insert(who, gained.saturating_add(add));
			}
			let max = i64::from(T::MaxCredit::get());
			let new = i64::from(old).saturating_add(delta).clamp(0, max);
			// `new` lies in 0..=MaxCredit, a u32.
			let new = u32::try_from(new).unwrap_or(old);
			if new != old {
				Credits::<T>::insert(who, new);
				Self::deposit_event(Event::CreditChanged { who: who.clone(), old, new, reason });
			}
		}

		/// `stake` scaled by `credit / MaxCredit`.
		pub fn effective_stake(stake: BalanceOf<T>, credit: u32) -> BalanceOf<T> {
			Perbill::from_rational(credit.min(T::MaxCredit::get()), T::MaxCredit::get()) * stake
		}

		/// What the runtime API tells about `who`.
		pub fn summary(who: &T::AccountId) -> Option<InstitutionSummary> {
			Institutions::<T>::get(who).map(|i| InstitutionSummary {
				kind: i.kind,
				roles: i.roles,
				status: i.status,
				credit: Credits::<T>::get(who),
			})
		}

		/// Credit ranking of all institutions, best first, with stake for
		/// candidates.
		pub fn ranking() -> Vec<RankingEntry<T::AccountId, BalanceOf<T>>> {
			let mut rows: Vec<_> = Credits::<T>::iter()
				.map(|(who, credit)| {
					let stake = Candidates::<T>::get(&who)
						.map(|c| c.bond.saturating_add(c.delegated))
						.unwrap_or_else(Zero::zero);
					let effective_stake = Self::effective_stake(stake, credit);
					RankingEntry { who, credit, stake, effective_stake }
				})
				.collect();
			rows.sort_by(|a, b| {
				b.credit
					.cmp(&a.credit)
					.then(b.effective_stake.cmp(&a.effective_stake))
					.then(a.who.cmp(&b.who))
			});
			rows
		}

		/// Scores the collators that were active in the ending session on the
		/// blocks they authored. Under Aura each had as many slots as the
		/// others, so a full share is what the best of them authored (a stalled
		/// chain costs nobody). One block short is tolerated (slot timing at
		/// the session's edges); a collator short of more loses `BlockMissed`
		/// for every tenth of the full share it missed (rounded up), whatever
		/// the session length; one that authored its share gains
		/// `BlockAuthored`.
		pub(crate) fn settle_authorship(session: u32, collators: Vec<T::AccountId>) -> Weight {
			let blocks = SessionBlocks::<T>::take();
			let n = collators.len() as u32;
			let authored: Vec<u32> = collators.iter().map(AuthoredBlocks::<T>::take).collect();
			let expected = authored.iter().copied().max().unwrap_or(0);
			for (who, authored) in collators.iter().zip(authored) {
				let short = expected.saturating_sub(authored);
				let missed = if short > 1 { short } else { 0 };
				if missed > 0 {
					// `expected > missed > 0` here.
					let tenths = missed.saturating_mul(10).div_ceil(expected.max(1)).min(10);
					let delta = i64::from(T::CreditPolicy::delta(Behaviour::BlockMissed))
						.saturating_mul(i64::from(tenths));
					Self::change_credit(who, delta, CreditReason::Behaviour(Behaviour::BlockMissed));
				} else if authored > 0 {
					let delta = i64::from(T::CreditPolicy::delta(Behaviour::BlockAuthored));
					Self::change_credit(
						who,
						delta,
						CreditReason::Behaviour(Behaviour::BlockAuthored),
					);
				}
			}
			// Authors outside the active set (none, unless the set changed
			// outside pallet-session).
			let _ = AuthoredBlocks::<T>::clear(T::MaxCandidates::get(), None);
			Self::deposit_event(Event::AuthorshipSettled { session, collators: n, blocks });
			T::DbWeight::get().reads_writes(
				u64::from(n).saturating_add(2),
				u64::from(n).saturating_mul(2).saturating_add(2),
			)
		}

		/// Moves every credit `CreditDrift` of the way back to the baseline.
		pub(crate) fn drift_credits() -> Weight {
			let base = i64::from(T::InitialCredit::get());
			let rate = T::CreditDrift::get();
			let mut n: u64 = 0;
			if rate.is_zero() {
				return Weight::zero();
			}
			let all: Vec<(T::AccountId, u32)> = Credits::<T>::iter().collect();
			for (who, credit) in all {
				n = n.saturating_add(1);
				let gap = base.saturating_sub(i64::from(credit));
				if gap == 0 {
					continue;
				}
				let step = i64::try_from(rate * gap.unsigned_abs()).unwrap_or(0).max(1);
				let delta = if gap > 0 { step } else { step.saturating_neg() };
				Self::change_credit(&who, delta, CreditReason::Drift);
			}
			T::DbWeight::get().reads_writes(n, n)
		}

		/// Picks the collators of the next session; drops candidates that no
		/// longer qualify. Only accounts with session keys are picked,
		/// invulnerables included: pallet-session leaves out a collator
		/// without keys, so a set of keyless invulnerables would empty it.
		pub(crate) fn select_collators(session: u32) -> Vec<T::AccountId> {
			let invulnerables: Vec<T::AccountId> = Invulnerables::<T>::get()
				.into_iter()
				.filter(|who| T::ValidatorRegistration::is_registered(who))
				.collect();
			let desired = T::DesiredCollators::get() as usize;
			let mut ranked: Vec<(T::AccountId, BalanceOf<T>)> = Vec::new();
			let candidates: Vec<_> = Candidates::<T>::iter().collect();
			for (who, info) in candidates {
				let credit = Self::credit_of(&who);
				if credit < T::MinCollatorCredit::get() || !Self::has_role(&who, Role::Producer) {
					if Self::do_leave_candidates(&who, true).is_ok() {
						Self::deposit_event(Event::CandidateDropped { who, credit });
					}
					continue;
				}
				if invulnerables.contains(&who) || !T::ValidatorRegistration::is_registered(&who) {
					continue;
				}
				let stake = info.bond.saturating_add(info.delegated);
				ranked.push((who, Self::effective_stake(stake, credit)));
			}
			ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
			let mut selected: Vec<T::AccountId> =
				invulnerables.into_iter().take(desired).collect();
			let room = desired.saturating_sub(selected.len());
			selected.extend(ranked.into_iter().take(room).map(|(who, _)| who));
			log::debug!(target: LOG_TARGET, "session {session}: {} collators", selected.len());
			selected
		}

		/// Checks the pallet's invariants (also callable from the runtime's
		/// native tests, after every block they build).
		#[cfg(any(feature = "try-runtime", feature = "std", test))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			use frame_support::traits::fungible::InspectHold;
			let sum = Delegations::<T>::iter()
				.fold(BalanceOf::<T>::zero(), |acc, (_, _, amount)| acc.saturating_add(amount));
			ensure!(sum == TotalDelegated::<T>::get(), "TotalDelegated differs from the sum");
			ensure!(
				Council::<T>::get().to_vec() == Self::seated_in(Body::Council),
				"the council differs from the active producers"
			);
			ensure!(
				Regulators::<T>::get().to_vec() == Self::seated_in(Body::Regulators),
				"the regulators differ from the active auditors"
			);
			let pending = Institutions::<T>::iter()
				.filter(|(_, i)| i.status == InstitutionStatus::Pending)
				.count() as u32;
			ensure!(pending == PendingCount::<T>::get(), "PendingCount differs from the registry");
			ensure!(
				Institutions::<T>::iter().count() as u32 ==
					InstitutionCount::<T>::get().saturating_add(pending),
				"InstitutionCount differs from the registry"
			);
			ensure!(
				InstitutionCount::<T>::get() <= T::MaxInstitutions::get(),
				"more members than MaxInstitutions"
			);
			ensure!(
				pending <= T::MaxPendingApplications::get(),
				"more applications than MaxPendingApplications"
			);
			// The caps may be governance parameters, lowered mid-session: the
			// gains and penalties already counted are checked against what no
			// cap can exceed.
			for (who, gained) in SessionGains::<T>::iter() {
				ensure!(gained <= T::MaxCredit::get(), "session gain above the maximum credit");
				ensure!(Credits::<T>::contains_key(&who), "session gain without credit");
			}
			for (_, used) in AuditorPenalties::<T>::iter() {
				ensure!(used <= T::MaxCredit::get(), "auditor penalties above the maximum credit");
			}
			for (who, info) in FormerCandidates::<T>::iter() {
				ensure!(!Candidates::<T>::contains_key(&who), "former candidate is a candidate");
				ensure!(info.delegators > 0, "former candidate without delegators");
				let delegated = Delegations::<T>::iter()
					.filter(|(_, c, _)| c == &who)
					.fold(BalanceOf::<T>::zero(), |acc, (_, _, a)| acc.saturating_add(a));
				ensure!(delegated == info.delegated, "former candidate's delegated differs");
			}
			for (_, candidate, _) in Delegations::<T>::iter() {
				ensure!(
					Candidates::<T>::contains_key(&candidate) ||
						FormerCandidates::<T>::contains_key(&candidate),
					"delegation to an unknown candidate"
				);
			}
			for (who, inst) in Institutions::<T>::iter() {
				ensure!(
					T::Currency::balance_on_hold(&HoldReason::InstitutionBond.into(), &who) >=
						inst.bond,
					"institution bond not held"
				);
				ensure!(
					(inst.status == InstitutionStatus::Pending) != Credits::<T>::contains_key(&who),
					"credit must exist exactly for approved institutions"
				);
			}
			ensure!(
				Candidates::<T>::iter().count() as u32 == CandidateCount::<T>::get(),
				"CandidateCount differs from the candidates"
			);
			for (who, credit) in Credits::<T>::iter() {
				ensure!(credit <= T::MaxCredit::get(), "credit above MaxCredit");
				ensure!(Institutions::<T>::contains_key(&who), "credit without institution");
			}
			for (who, info) in Candidates::<T>::iter() {
				let delegated = Delegations::<T>::iter()
					.filter(|(_, c, _)| c == &who)
					.fold(BalanceOf::<T>::zero(), |acc, (_, _, a)| acc.saturating_add(a));
				ensure!(delegated == info.delegated, "candidate's delegated differs from the sum");
				ensure!(
					T::Currency::balance_on_hold(&HoldReason::CandidateBond.into(), &who) >=
						info.bond,
					"candidate bond not held"
				);
			}
			Ok(())
		}
	}
}

impl<T: Config> InstitutionRegistry<T::AccountId> for Pallet<T> {
	fn is_active(who: &T::AccountId) -> bool {
		Institutions::<T>::get(who).is_some_and(|i| i.status == InstitutionStatus::Active)
	}

	fn has_role(who: &T::AccountId, role: Role) -> bool {
		Pallet::<T>::has_role(who, role)
	}
}

impl<T: Config> CreditScore<T::AccountId> for Pallet<T> {
	fn credit(who: &T::AccountId) -> u32 {
		Pallet::<T>::credit_of(who)
	}
}

/// A verdict's credit loss counts against the auditor's
/// `MaxPenaltyPerAuditorPerSession`, like its `penalise` calls.
impl<T: Config> AuditorVerdicts<T::AccountId> for Pallet<T> {
	fn report_verdict(auditor: &T::AccountId, who: &T::AccountId, behaviour: Behaviour) -> bool {
		let points = T::CreditPolicy::delta(behaviour).min(0).unsigned_abs();
		let used = AuditorPenalties::<T>::get(auditor);
		let Some(total) = used.checked_add(points).filter(|t| *t <= T::MaxPenaltyPerAuditorPerSession::get())
		else {
			return false;
		};
		if points > 0 {
			AuditorPenalties::<T>::insert(auditor, total);
		}
		<Self as CreditReporter<T::AccountId>>::report(who, behaviour);
		true
	}
}

impl<T: Config> CreditReporter<T::AccountId> for Pallet<T> {
	fn report(who: &T::AccountId, behaviour: Behaviour) {
		let delta = i64::from(T::CreditPolicy::delta(behaviour));
		Pallet::<T>::change_credit(who, delta, CreditReason::Behaviour(behaviour));
		Pallet::<T>::slash_bond(who, behaviour);
	}
}

impl<T: Config> Pallet<T> {
	/// Slashes `CreditPolicy::slash(behaviour)` of `who`'s institution bond, to
	/// `SlashBeneficiary` or burned, if `who` is an active or suspended
	/// member. Never fails: whatever is held is taken.
	pub(crate) fn slash_bond(who: &T::AccountId, behaviour: Behaviour) {
		let share = T::CreditPolicy::slash(behaviour);
		if share.is_zero() {
			return;
		}
		let Some(inst) = Institutions::<T>::get(who) else { return };
		// Only a member's bond answers for its behaviour: an applicant has
		// not been admitted and may not act (a removed one has no entry).
		if inst.status == InstitutionStatus::Pending {
			return;
		}
		let amount = share * inst.bond;
		if amount.is_zero() {
			return;
		}
		let reason = HoldReason::InstitutionBond.into();
		let taken = match T::SlashBeneficiary::get() {
			Some(dest) => T::Currency::transfer_on_hold(
				&reason,
				who,
				&dest,
				amount,
				Precision::BestEffort,
				Restriction::Free,
				Fortitude::Force,
			),
			None => T::Currency::burn_held(
				&reason,
				who,
				amount,
				Precision::BestEffort,
				Fortitude::Force,
			),
		};
		let Ok(taken) = taken else {
			log::warn!(target: LOG_TARGET, "could not slash an institution bond");
			return;
		};
		Institutions::<T>::mutate(who, |maybe| {
			if let Some(inst) = maybe {
				inst.bond = inst.bond.saturating_sub(taken);
			}
		});
		Self::deposit_event(Event::BondSlashed { who: who.clone(), amount: taken, behaviour });
	}
}

/// pallet-session calls, in one rotation from session `i` to `i + 1`:
/// `end_session(i)`, `start_session(i + 1)`, then `new_session(i + 2)` to plan
/// the set after next. Authorship is therefore settled in `end_session`,
/// against the set that was active in `i` ([`Config::SessionCollators`]),
/// never against the set `new_session` plans.
impl<T: Config> pallet_session::SessionManager<T::AccountId> for Pallet<T> {
	fn new_session(index: u32) -> Option<Vec<T::AccountId>> {
		let mut weight = Self::drift_credits();
		let mut selected = Self::select_collators(index);
		weight.saturating_accrue(T::WeightInfo::new_session(
			CandidateCount::<T>::get(),
			InstitutionCount::<T>::get(),
		));
		let kept = selected.is_empty();
		if kept {
			// Nobody qualifies and there are no invulnerables: keep the active
			// collators that are still active producers, so the chain goes on.
			selected = T::SessionCollators::get()
				.into_iter()
				.filter(|who| {
					Self::has_role(who, Role::Producer) && T::ValidatorRegistration::is_registered(who)
				})
				.take(T::DesiredCollators::get() as usize)
				.collect();
		}
		frame_system::Pallet::<T>::register_extra_weight_unchecked(
			weight,
			frame_support::dispatch::DispatchClass::Mandatory,
		);
		if selected.is_empty() {
			log::warn!(target: LOG_TARGET, "session {index}: no collator qualifies; set unchanged");
			return None;
		}
		let bounded = frame_support::BoundedVec::truncate_from(selected.clone());
		SelectedCollators::<T>::put(bounded);
		if kept {
			Self::deposit_event(Event::CollatorsKept { session: index, collators: selected.clone() });
		} else {
			Self::deposit_event(Event::CollatorsSelected {
				session: index,
				collators: selected.clone(),
			});
		}
		Some(selected)
	}

	fn new_session_genesis(_index: u32) -> Option<Vec<T::AccountId>> {
		let selected = SelectedCollators::<T>::get().into_inner();
		if selected.is_empty() {
			None
		} else {
			Some(selected)
		}
	}

	fn end_session(index: u32) {
		// Session caps start afresh with every session.
		let max = T::MaxInstitutions::get().saturating_add(T::MaxPendingApplications::get());
		let gains = SessionGains::<T>::clear(max, None).loops;
		let penalties = AuditorPenalties::<T>::clear(max, None).loops;
		let mut weight = T::DbWeight::get().writes(u64::from(gains.saturating_add(penalties)));
		weight.saturating_accrue(Self::settle_authorship(index, T::SessionCollators::get()));
		frame_system::Pallet::<T>::register_extra_weight_unchecked(
			weight,
			frame_support::dispatch::DispatchClass::Mandatory,
		);
	}

	fn start_session(_: u32) {}
}

impl<T: Config> pallet_authorship::EventHandler<T::AccountId, frame_system::pallet_prelude::BlockNumberFor<T>>
	for Pallet<T>
{
	fn note_author(author: T::AccountId) {
		AuthoredBlocks::<T>::mutate(&author, |n| *n = n.saturating_add(1));
		SessionBlocks::<T>::mutate(|n| *n = n.saturating_add(1));
	}
}
