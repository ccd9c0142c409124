//! Benchmarks of the reputation pallet (frame-benchmarking v2). They also run
//! as tests against the mock runtime.

use super::*;
use crate::Pallet as Reputation;
use alloc::vec;
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{fungible::Mutate, EnsureOrigin, Get},
	BoundedVec,
};
use frame_system::RawOrigin;
use medchain_primitives::HospitalGrade;

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId
where
	T::Currency: Mutate<T::AccountId>,
{
	let who: T::AccountId = account(name, index, 0);
	let amount = T::MinCandidateBond::get()
		.saturating_add(T::InstitutionBond::get())
		.saturating_add(T::MinDelegation::get())
		.saturating_mul(100u32.into());
	T::Currency::set_balance(&who, amount);
	who
}

fn kind() -> InstitutionKind {
	InstitutionKind::Hospital { level: 3, grade: HospitalGrade::A }
}

fn all_roles() -> Roles {
	Roles { producer: true, validator: true, auditor: true }
}

fn max_name<T: Config>() -> BoundedVec<u8, T::MaxNameLen> {
	BoundedVec::truncate_from(vec![b'n'; T::MaxNameLen::get() as usize])
}

fn active<T: Config>(name: &'static str, index: u32) -> T::AccountId
where
	T::Currency: Mutate<T::AccountId>,
{
	let who = funded::<T>(name, index);
	Reputation::<T>::do_apply(&who, max_name::<T>(), kind(), all_roles()).expect("apply");
	Reputation::<T>::do_approve(&who).expect("approve");
	who
}

/// Fills both governing bodies up to one seat short of `MaxBodyMembers`, with
/// `member` among them if given: the worst case for a membership change.
fn fill_bodies<T: Config>(member: Option<&T::AccountId>) {
	let seats = T::MaxBodyMembers::get().saturating_sub(1);
	let mut list: Vec<T::AccountId> = (0..seats).map(|n| account("member", n, 0)).collect();
	if let Some(member) = member {
		list.pop();
		list.push(member.clone());
	}
	list.sort();
	let list = BoundedVec::truncate_from(list);
	Council::<T>::put(list.clone());
	Regulators::<T>::put(list);
}

/// The council's origin, with the regulators' approval of every possible
/// decision about `decision`'s subject already waiting: the call under
/// benchmark carries a two-body decision and voids the other approvals
/// (`MAX_DECISIONS_PER_INSTITUTION` of them at most).
fn council_completing<T: Config>(
	decision: Decision<T::AccountId>,
) -> Result<T::RuntimeOrigin, BenchmarkError> {
	let expires_at = frame_system::Pallet::<T>::block_number().saturating_add(T::DecisionPeriod::get());
	let who = decision.subject().clone();
	let role_sets = (1u8..8).map(|b| Roles { producer: b & 1 != 0, validator: b & 2 != 0, auditor: b & 4 != 0 });
	let all = [Decision::Admit(who.clone()), Decision::Suspend(who.clone()), Decision::Remove(who.clone())]
		.into_iter()
		.chain(role_sets.map(|r| Decision::SetRoles(who.clone(), r)));
	for d in all {
		PendingDecisions::<T>::insert(&who, &d, PendingApproval { body: Body::Regulators, expires_at });
	}
	assert_eq!(PendingDecisions::<T>::iter_prefix(&who).count() as u32, MAX_DECISIONS_PER_INSTITUTION);
	T::CouncilOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)
}

fn make_candidate<T: Config>(index: u32) -> T::AccountId
where
	T::Currency: Mutate<T::AccountId>,
{
	let who = active::<T>("candidate", index);
	let bond = T::MinCandidateBond::get();
	T::Currency::hold(&HoldReason::CandidateBond.into(), &who, bond).expect("hold");
	Candidates::<T>::insert(&who, CandidateInfo { bond, delegated: Zero::zero(), delegators: 0 });
	CandidateCount::<T>::mutate(|c| *c = c.saturating_add(1));
	who
}

#[benchmarks(where T::Currency: Mutate<T::AccountId>)]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn apply_for_membership() {
		let who = funded::<T>("applicant", 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), max_name::<T>(), kind(), all_roles());
		assert!(Institutions::<T>::contains_key(&who));
	}

	#[benchmark]
	fn approve_institution() -> Result<(), BenchmarkError> {
		let who = funded::<T>("applicant", 0);
		Reputation::<T>::do_apply(&who, max_name::<T>(), kind(), all_roles())?;
		fill_bodies::<T>(None);
		let origin = council_completing::<T>(Decision::Admit(who.clone()))?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, who.clone());
		assert!(Credits::<T>::contains_key(&who));
		assert!(Council::<T>::get().contains(&who) && Regulators::<T>::get().contains(&who));
		Ok(())
	}

	#[benchmark]
	fn suspend_institution() -> Result<(), BenchmarkError> {
		// An auditor: both bodies decide, and it leaves both.
		let who = active::<T>("inst", 0);
		fill_bodies::<T>(Some(&who));
		let origin = council_completing::<T>(Decision::Suspend(who.clone()))?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, who.clone());
		assert!(!Reputation::<T>::has_role(&who, Role::Producer));
		assert!(!Council::<T>::get().contains(&who));
		Ok(())
	}

	#[benchmark]
	fn remove_institution() -> Result<(), BenchmarkError> {
		// Worst case: a candidate with delegators (moved to `FormerCandidates`)
		// and every unbonding slot taken (the bond joins the latest chunk).
		let who = make_candidate::<T>(0);
		let delegated = T::MinDelegation::get();
		Candidates::<T>::mutate(&who, |c| {
			if let Some(c) = c {
				c.delegated = delegated;
				c.delegators = 1;
			}
		});
		let delegator = funded::<T>("delegator", 0);
		T::Currency::hold(&HoldReason::Delegation.into(), &delegator, delegated)?;
		Delegations::<T>::insert(&delegator, &who, delegated);
		TotalDelegated::<T>::put(delegated);
		let chunk = UnbondingChunk { amount: Zero::zero(), unlock_at: Zero::zero() };
		let full = alloc::vec![chunk; T::MaxUnbondingChunks::get() as usize];
		Unbonding::<T>::insert(&who, BoundedVec::truncate_from(full));
		fill_bodies::<T>(Some(&who));
		let origin = council_completing::<T>(Decision::Remove(who.clone()))?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, who.clone());
		assert!(!Institutions::<T>::contains_key(&who));
		Ok(())
	}

	#[benchmark]
	fn set_roles() -> Result<(), BenchmarkError> {
		let who = active::<T>("inst", 0);
		fill_bodies::<T>(Some(&who));
		let roles = Roles::only(Role::Validator);
		let origin = council_completing::<T>(Decision::SetRoles(who.clone(), roles))?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, who.clone(), roles);
		assert!(!Reputation::<T>::has_role(&who, Role::Producer));
		Ok(())
	}

	#[benchmark]
	fn penalise() {
		let auditor = active::<T>("auditor", 0);
		let target = active::<T>("target", 1);
		let reason = BoundedVec::truncate_from(vec![b'r'; T::MaxReasonLen::get() as usize]);
		AuditorPenalties::<T>::insert(&auditor, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(auditor), target.clone(), 1, reason);
		assert!(Reputation::<T>::credit_of(&target) < T::InitialCredit::get());
	}

	#[benchmark]
	fn register_as_candidate() {
		let who = active::<T>("producer", 0);
		T::BenchmarkHelper::register_session_keys(&who);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), T::MinCandidateBond::get());
		assert!(Candidates::<T>::contains_key(&who));
	}

	#[benchmark]
	fn leave_candidates() {
		let who = make_candidate::<T>(0);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(!Candidates::<T>::contains_key(&who));
	}

	#[benchmark]
	fn delegate() {
		let candidate = make_candidate::<T>(0);
		let delegator = funded::<T>("delegator", 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(delegator.clone()), candidate.clone(), T::MinDelegation::get());
		assert!(Delegations::<T>::contains_key(&delegator, &candidate));
	}

	#[benchmark]
	fn undelegate() -> Result<(), BenchmarkError> {
		let candidate = make_candidate::<T>(0);
		let delegator = funded::<T>("delegator", 0);
		Reputation::<T>::delegate(
			RawOrigin::Signed(delegator.clone()).into(),
			candidate.clone(),
			T::MinDelegation::get(),
		)?;
		#[extrinsic_call]
		_(RawOrigin::Signed(delegator.clone()), candidate.clone(), T::MinDelegation::get());
		assert!(!Delegations::<T>::contains_key(&delegator, &candidate));
		Ok(())
	}

	#[benchmark]
	fn withdraw_unbonded(c: Linear<1, { T::MaxUnbondingChunks::get() }>) {
		let who = funded::<T>("unbonder", 0);
		let amount = T::MinDelegation::get();
		let mut chunks = BoundedVec::new();
		for _ in 0..c {
			T::Currency::hold(&HoldReason::Unbonding.into(), &who, amount).expect("hold");
			chunks
				.try_push(UnbondingChunk { amount, unlock_at: Zero::zero() })
				.expect("c is within MaxUnbondingChunks");
		}
		Unbonding::<T>::insert(&who, chunks);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(Unbonding::<T>::get(&who).is_empty());
	}

	#[benchmark]
	fn set_invulnerables(i: Linear<1, { T::MaxInvulnerables::get() }>) -> Result<(), BenchmarkError> {
		// The council names them: each must be an active producer.
		let list: Vec<T::AccountId> = (0..i).map(|n| active::<T>("invulnerable", n)).collect();
		let origin =
			T::CouncilOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, list);
		assert_eq!(Invulnerables::<T>::get().len() as u32, i);
		Ok(())
	}

	#[benchmark]
	fn new_session(
		c: Linear<1, { T::MaxCandidates::get() }>,
		i: Linear<1, { T::MaxInstitutions::get() }>,
	) {
		// Genesis institutions (the runtime's collators) count against the
		// limit too.
		let i = i.min(T::MaxInstitutions::get().saturating_sub(InstitutionCount::<T>::get()));
		let c = c.min(i);
		for n in 0..c {
			let who = make_candidate::<T>(n);
			Credits::<T>::insert(&who, T::MaxCredit::get());
		}
		for n in c..i {
			let who = active::<T>("inst", n);
			Credits::<T>::insert(&who, T::MaxCredit::get());
		}
		#[block]
		{
			<Reputation<T> as pallet_session::SessionManager<T::AccountId>>::new_session(1);
		}
	}

	impl_benchmark_test_suite!(Reputation, crate::mock::ExtBuilder::default().build(), crate::mock::Test);
}
