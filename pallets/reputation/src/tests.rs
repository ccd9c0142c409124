//! Tests of the reputation pallet: every call, every error, session rotation.

use crate::{mock::*, *};
use frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold, BoundedVec};
use medchain_primitives::{HospitalGrade, InstitutionKind, Role, Roles};
use pallet_session::SessionManager;
use sp_runtime::DispatchError;

fn name(s: &str) -> BoundedVec<u8, <Test as Config>::MaxNameLen> {
	s.as_bytes().to_vec().try_into().unwrap()
}

fn reason(s: &str) -> BoundedVec<u8, <Test as Config>::MaxReasonLen> {
	s.as_bytes().to_vec().try_into().unwrap()
}

fn origin(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

/// Registers and approves `who` with `roles`.
fn join(who: AccountId, roles: Roles) {
	assert_ok!(Reputation::apply_for_membership(origin(who), name("inst"), hospital(), roles));
	assert_ok!(Reputation::approve_institution(RuntimeOrigin::root(), who));
}

/// Joins as producer, registers keys and becomes a candidate with `bond`.
fn candidate(who: AccountId, bond: u64) {
	join(who, producer());
	KeysRegistered::mutate(|k| k.push(who));
	assert_ok!(Reputation::register_as_candidate(origin(who), bond));
}

fn held(reason: HoldReason, who: AccountId) -> u64 {
	Balances::balance_on_hold(&reason.into(), &who)
}

fn credit_events() -> Vec<(AccountId, u32, u32)> {
	System::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::Reputation(Event::CreditChanged { who, old, new, .. }) =>
				Some((who, old, new)),
			_ => None,
		})
		.collect()
}

// ---- registry ---------------------------------------------------------------

#[test]
fn apply_for_membership_works() {
	new_test_ext(|| {
		assert_ok!(Reputation::apply_for_membership(origin(1), name("City Hospital"), hospital(), producer()));
		let inst = Institutions::<Test>::get(1).unwrap();
		assert_eq!(inst.status, InstitutionStatus::Pending);
		assert_eq!(inst.bond, INSTITUTION_BOND);
		assert_eq!(held(HoldReason::InstitutionBond, 1), INSTITUTION_BOND);
		assert_eq!(InstitutionCount::<Test>::get(), 1);
		assert!(!<Reputation as InstitutionRegistry<_>>::is_active(&1));
		System::assert_last_event(
			Event::InstitutionApplied { who: 1, kind: hospital(), roles: producer() }.into(),
		);
	});
}

#[test]
fn apply_fails_if_already_registered() {
	new_test_ext(|| {
		join(1, producer());
		assert_noop!(
			Reputation::apply_for_membership(origin(1), name("again"), hospital(), producer()),
			Error::<Test>::AlreadyRegistered
		);
	});
}

#[test]
fn apply_fails_for_invalid_kind_or_no_roles() {
	new_test_ext(|| {
		let bad = InstitutionKind::Hospital { level: 4, grade: HospitalGrade::B };
		assert_noop!(
			Reputation::apply_for_membership(origin(1), name("x"), bad, producer()),
			Error::<Test>::InvalidKind
		);
		assert_noop!(
			Reputation::apply_for_membership(origin(1), name("x"), hospital(), Roles::default()),
			Error::<Test>::NoRoles
		);
	});
}

#[test]
fn apply_fails_when_registry_is_full() {
	new_test_ext(|| {
		for who in 1..=8 {
			assert_ok!(Reputation::apply_for_membership(origin(who), name("i"), InstitutionKind::Insurer, producer()));
		}
		assert_noop!(
			Reputation::apply_for_membership(origin(9), name("i"), InstitutionKind::Insurer, producer()),
			Error::<Test>::TooManyInstitutions
		);
	});
}

#[test]
fn apply_fails_without_funds_for_the_bond() {
	new_test_ext(|| {
		// Account 99 has no balance.
		assert!(Reputation::apply_for_membership(origin(99), name("poor"), hospital(), producer()).is_err());
		assert!(Institutions::<Test>::get(99).is_none());
		assert_eq!(InstitutionCount::<Test>::get(), 0);
	});
}

#[test]
fn approve_institution_works_and_sets_initial_credit() {
	new_test_ext(|| {
		assert_ok!(Reputation::apply_for_membership(origin(1), name("h"), hospital(), producer()));
		assert_noop!(Reputation::approve_institution(origin(2), 1), DispatchError::BadOrigin);
		assert_ok!(Reputation::approve_institution(RuntimeOrigin::root(), 1));
		assert_eq!(Credits::<Test>::get(1), Some(600));
		assert!(<Reputation as InstitutionRegistry<_>>::has_role(&1, Role::Producer));
		assert!(!<Reputation as InstitutionRegistry<_>>::has_role(&1, Role::Auditor));
		System::assert_last_event(Event::InstitutionApproved { who: 1, credit: 600 }.into());
	});
}

#[test]
fn approve_fails_if_unknown_or_already_active() {
	new_test_ext(|| {
		assert_noop!(
			Reputation::approve_institution(RuntimeOrigin::root(), 1),
			Error::<Test>::NotInstitution
		);
		join(1, producer());
		assert_noop!(
			Reputation::approve_institution(RuntimeOrigin::root(), 1),
			Error::<Test>::AlreadyActive
		);
	});
}

#[test]
fn suspend_and_reinstate_keep_credit() {
	new_test_ext(|| {
		join(1, producer());
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::RecordRejected);
		assert_ok!(Reputation::suspend_institution(RuntimeOrigin::root(), 1));
		assert!(!<Reputation as InstitutionRegistry<_>>::is_active(&1));
		assert!(!<Reputation as InstitutionRegistry<_>>::has_role(&1, Role::Producer));
		System::assert_last_event(Event::InstitutionSuspended { who: 1 }.into());
		assert_noop!(
			Reputation::suspend_institution(RuntimeOrigin::root(), 1),
			Error::<Test>::NotActive
		);
		assert_ok!(Reputation::approve_institution(RuntimeOrigin::root(), 1));
		assert_eq!(Credits::<Test>::get(1), Some(590));
	});
}

#[test]
fn suspend_fails_if_unknown_or_pending() {
	new_test_ext(|| {
		assert_noop!(
			Reputation::suspend_institution(RuntimeOrigin::root(), 1),
			Error::<Test>::NotInstitution
		);
		assert_ok!(Reputation::apply_for_membership(origin(1), name("h"), hospital(), producer()));
		assert_noop!(
			Reputation::suspend_institution(RuntimeOrigin::root(), 1),
			Error::<Test>::NotActive
		);
	});
}

#[test]
fn remove_institution_releases_bond_and_candidacy() {
	new_test_ext(|| {
		candidate(1, 600);
		assert_ok!(Reputation::remove_institution(RuntimeOrigin::root(), 1));
		assert!(Institutions::<Test>::get(1).is_none());
		assert!(Credits::<Test>::get(1).is_none());
		assert!(Candidates::<Test>::get(1).is_none());
		assert_eq!(held(HoldReason::InstitutionBond, 1), 0);
		assert_eq!(held(HoldReason::CandidateBond, 1), 0);
		assert_eq!(held(HoldReason::Unbonding, 1), 600);
		assert_eq!(InstitutionCount::<Test>::get(), 0);
		System::assert_last_event(Event::InstitutionRemoved { who: 1 }.into());
		assert_noop!(
			Reputation::remove_institution(RuntimeOrigin::root(), 1),
			Error::<Test>::NotInstitution
		);
	});
}

#[test]
fn set_roles_works_and_checks_input() {
	new_test_ext(|| {
		assert_noop!(
			Reputation::set_roles(RuntimeOrigin::root(), 1, auditor()),
			Error::<Test>::NotInstitution
		);
		join(1, producer());
		assert_noop!(
			Reputation::set_roles(RuntimeOrigin::root(), 1, Roles::default()),
			Error::<Test>::NoRoles
		);
		assert_ok!(Reputation::set_roles(RuntimeOrigin::root(), 1, auditor()));
		assert!(<Reputation as InstitutionRegistry<_>>::has_role(&1, Role::Auditor));
		assert!(!<Reputation as InstitutionRegistry<_>>::has_role(&1, Role::Producer));
		System::assert_last_event(Event::RolesChanged { who: 1, roles: auditor() }.into());
	});
}

// ---- credit -------------------------------------------------------------------

#[test]
fn reported_behaviour_moves_credit_with_reason() {
	new_test_ext(|| {
		join(1, producer());
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::RecordConfirmed);
		System::assert_last_event(
			Event::CreditChanged {
				who: 1,
				old: 600,
				new: 602,
				reason: CreditReason::Behaviour(Behaviour::RecordConfirmed),
			}
			.into(),
		);
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::UpdateOutlier);
		assert_eq!(Credits::<Test>::get(1), Some(572));
		// Unknown accounts are ignored.
		<Reputation as CreditReporter<_>>::report(&7, Behaviour::RecordConfirmed);
		assert!(Credits::<Test>::get(7).is_none());
	});
}

#[test]
fn credit_is_clamped_to_its_range() {
	new_test_ext(|| {
		join(1, producer());
		for _ in 0..100 {
			<Reputation as CreditReporter<_>>::report(&1, Behaviour::BreakGlassUnreviewed);
		}
		assert_eq!(Credits::<Test>::get(1), Some(0));
		for _ in 0..400 {
			<Reputation as CreditReporter<_>>::report(&1, Behaviour::UpdateAccepted);
		}
		assert_eq!(Credits::<Test>::get(1), Some(1000));
	});
}

#[test]
fn penalise_works_for_auditors() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		assert_ok!(Reputation::penalise(origin(2), 1, 50, reason("altered record")));
		assert_eq!(Credits::<Test>::get(1), Some(550));
		System::assert_last_event(
			Event::CreditChanged {
				who: 1,
				old: 600,
				new: 550,
				reason: CreditReason::Penalty { auditor: 2, reason: reason("altered record") },
			}
			.into(),
		);
	});
}

#[test]
fn penalise_fails_for_non_auditors_zero_points_or_unknown_targets() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		assert_noop!(Reputation::penalise(origin(1), 2, 10, reason("r")), Error::<Test>::NotAuditor);
		assert_noop!(Reputation::penalise(origin(2), 1, 0, reason("r")), Error::<Test>::ZeroPenalty);
		assert_noop!(Reputation::penalise(origin(2), 9, 10, reason("r")), Error::<Test>::NotInstitution);
		// A suspended auditor may not penalise.
		assert_ok!(Reputation::suspend_institution(RuntimeOrigin::root(), 2));
		assert_noop!(Reputation::penalise(origin(2), 1, 10, reason("r")), Error::<Test>::NotAuditor);
	});
}

#[test]
fn credit_drifts_back_to_baseline_each_session() {
	new_test_ext(|| {
		join(1, producer());
		join(2, producer());
		Credits::<Test>::insert(1, 800);
		Credits::<Test>::insert(2, 500);
		Reputation::new_session(1);
		// 10 % of the gap: 800 → 780, 500 → 510.
		assert_eq!(Credits::<Test>::get(1), Some(780));
		assert_eq!(Credits::<Test>::get(2), Some(510));
		for s in 2..200 {
			Reputation::new_session(s);
		}
		assert_eq!(Credits::<Test>::get(1), Some(600));
		assert_eq!(Credits::<Test>::get(2), Some(600));
	});
}

// ---- candidates and delegation --------------------------------------------------

#[test]
fn register_as_candidate_works() {
	new_test_ext(|| {
		candidate(1, 600);
		assert_eq!(Candidates::<Test>::get(1).unwrap().bond, 600);
		assert_eq!(held(HoldReason::CandidateBond, 1), 600);
		System::assert_last_event(Event::CandidateRegistered { who: 1, bond: 600 }.into());
	});
}

#[test]
fn register_as_candidate_checks_every_condition() {
	new_test_ext(|| {
		// Not an institution, then a validator-only institution.
		assert_noop!(Reputation::register_as_candidate(origin(1), 600), Error::<Test>::NotProducer);
		join(2, Roles::only(Role::Validator));
		assert_noop!(Reputation::register_as_candidate(origin(2), 600), Error::<Test>::NotProducer);
		join(1, producer());
		assert_noop!(Reputation::register_as_candidate(origin(1), 499), Error::<Test>::BondTooLow);
		assert_noop!(
			Reputation::register_as_candidate(origin(1), 600),
			Error::<Test>::SessionKeysNotRegistered
		);
		KeysRegistered::mutate(|k| k.push(1));
		Credits::<Test>::insert(1, 399);
		assert_noop!(Reputation::register_as_candidate(origin(1), 600), Error::<Test>::CreditTooLow);
		Credits::<Test>::insert(1, 400);
		assert_ok!(Reputation::register_as_candidate(origin(1), 600));
		assert_noop!(Reputation::register_as_candidate(origin(1), 600), Error::<Test>::AlreadyCandidate);
	});
}

#[test]
fn register_as_candidate_fails_when_full() {
	new_test_ext(|| {
		for who in 1..=4 {
			candidate(who, 500);
		}
		join(5, producer());
		KeysRegistered::mutate(|k| k.push(5));
		assert_noop!(Reputation::register_as_candidate(origin(5), 500), Error::<Test>::TooManyCandidates);
	});
}

#[test]
fn leave_candidates_unbonds_and_withdraw_waits_for_the_delay() {
	new_test_ext(|| {
		assert_noop!(Reputation::leave_candidates(origin(1)), Error::<Test>::NotCandidate);
		candidate(1, 600);
		assert_ok!(Reputation::leave_candidates(origin(1)));
		System::assert_last_event(Event::CandidateLeft { who: 1 }.into());
		assert_eq!(held(HoldReason::Unbonding, 1), 600);
		assert_noop!(Reputation::withdraw_unbonded(origin(1)), Error::<Test>::NothingToWithdraw);
		System::set_block_number(1 + UNBONDING_DELAY);
		assert_ok!(Reputation::withdraw_unbonded(origin(1)));
		assert_eq!(held(HoldReason::Unbonding, 1), 0);
		assert!(Unbonding::<Test>::get(1).is_empty());
		System::assert_last_event(Event::Withdrawn { who: 1, amount: 600 }.into());
	});
}

#[test]
fn delegate_and_undelegate_work() {
	new_test_ext(|| {
		candidate(1, 600);
		assert_ok!(Reputation::delegate(origin(10), 1, 300));
		System::assert_last_event(Event::Delegated { delegator: 10, candidate: 1, amount: 300 }.into());
		assert_ok!(Reputation::delegate(origin(10), 1, 200));
		let info = Candidates::<Test>::get(1).unwrap();
		assert_eq!((info.delegated, info.delegators), (500, 1));
		assert_eq!(Delegations::<Test>::get(10, 1), Some(500));
		assert_eq!(TotalDelegated::<Test>::get(), 500);
		assert_eq!(held(HoldReason::Delegation, 10), 500);

		assert_ok!(Reputation::undelegate(origin(10), 1, 100));
		assert_eq!(Delegations::<Test>::get(10, 1), Some(400));
		assert_ok!(Reputation::undelegate(origin(10), 1, 400));
		assert!(Delegations::<Test>::get(10, 1).is_none());
		assert_eq!(DelegationCount::<Test>::get(10), 0);
		let info = Candidates::<Test>::get(1).unwrap();
		assert_eq!((info.delegated, info.delegators), (0, 0));
		assert_eq!(held(HoldReason::Unbonding, 10), 500);
		System::assert_last_event(Event::Undelegated { delegator: 10, candidate: 1, amount: 400 }.into());
	});
}

#[test]
fn delegate_checks_every_limit() {
	new_test_ext(|| {
		assert_noop!(Reputation::delegate(origin(10), 1, 100), Error::<Test>::NotCandidate);
		candidate(1, 600);
		candidate(2, 600);
		candidate(3, 600);
		assert_noop!(Reputation::delegate(origin(10), 1, 9), Error::<Test>::DelegationTooLow);
		assert_ok!(Reputation::delegate(origin(10), 1, 10));
		assert_ok!(Reputation::delegate(origin(10), 2, 10));
		assert_noop!(Reputation::delegate(origin(10), 3, 10), Error::<Test>::TooManyDelegations);
		assert_ok!(Reputation::delegate(origin(11), 1, 10));
		assert_noop!(Reputation::delegate(origin(12), 1, 10), Error::<Test>::TooManyDelegators);
		assert_noop!(Reputation::delegate(origin(10), 1, u64::MAX), Error::<Test>::Overflow);
		// More than the delegator owns: the currency refuses, nothing changes.
		assert!(Reputation::delegate(origin(11), 1, 1_000_000).is_err());
		assert_eq!(Delegations::<Test>::get(11, 1), Some(10));
	});
}

#[test]
fn undelegate_checks_amounts_and_chunks() {
	new_test_ext(|| {
		candidate(1, 600);
		assert_noop!(Reputation::undelegate(origin(10), 1, 10), Error::<Test>::NoDelegation);
		assert_ok!(Reputation::delegate(origin(10), 1, 100));
		assert_noop!(Reputation::undelegate(origin(10), 1, 101), Error::<Test>::InsufficientDelegation);
		assert_noop!(Reputation::undelegate(origin(10), 1, 0), Error::<Test>::InsufficientDelegation);
		assert_noop!(Reputation::undelegate(origin(10), 1, 95), Error::<Test>::DelegationTooLow);
		assert_ok!(Reputation::undelegate(origin(10), 1, 10));
		assert_ok!(Reputation::undelegate(origin(10), 1, 10));
		assert_noop!(Reputation::undelegate(origin(10), 1, 10), Error::<Test>::TooManyUnbondingChunks);
		System::set_block_number(1 + UNBONDING_DELAY);
		assert_ok!(Reputation::withdraw_unbonded(origin(10)));
		assert_ok!(Reputation::undelegate(origin(10), 1, 10));
	});
}

#[test]
fn undelegate_works_after_the_candidate_left() {
	new_test_ext(|| {
		candidate(1, 600);
		assert_ok!(Reputation::delegate(origin(10), 1, 100));
		assert_ok!(Reputation::leave_candidates(origin(1)));
		assert_ok!(Reputation::undelegate(origin(10), 1, 100));
		assert_eq!(TotalDelegated::<Test>::get(), 0);
	});
}

#[test]
fn set_invulnerables_works_and_is_bounded() {
	new_test_ext(|| {
		assert_noop!(Reputation::set_invulnerables(origin(1), vec![1]), DispatchError::BadOrigin);
		assert_ok!(Reputation::set_invulnerables(RuntimeOrigin::root(), vec![2, 1, 2]));
		assert_eq!(Invulnerables::<Test>::get().into_inner(), vec![1, 2]);
		System::assert_last_event(Event::InvulnerablesSet { invulnerables: vec![1, 2] }.into());
		assert_noop!(
			Reputation::set_invulnerables(RuntimeOrigin::root(), vec![1, 2, 3]),
			Error::<Test>::TooManyInvulnerables
		);
	});
}

// ---- sessions ---------------------------------------------------------------------

#[test]
fn genesis_institutions_and_invulnerables_are_set() {
	ExtBuilder::default()
		.with_institutions(vec![(1, b"Regional Hospital".to_vec(), hospital(), producer())])
		.with_invulnerables(vec![1])
		.build()
		.execute_with(|| {
			assert!(<Reputation as InstitutionRegistry<_>>::has_role(&1, Role::Producer));
			assert_eq!(Credits::<Test>::get(1), Some(600));
			assert_eq!(Reputation::new_session_genesis(0), Some(vec![1]));
			Reputation::do_try_state().unwrap();
		});
}

#[test]
fn selection_orders_by_credit_weighted_stake() {
	new_test_ext(|| {
		candidate(1, 1000);
		candidate(2, 900);
		candidate(3, 800);
		// Equal credit: stake decides.
		assert_eq!(Reputation::new_session(1), Some(vec![1, 2]));
		// Candidate 3 gets delegations: 1300 × 0.6 beats 1000 × 0.6.
		assert_ok!(Reputation::delegate(origin(10), 3, 500));
		assert_eq!(Reputation::new_session(2), Some(vec![3, 1]));
		// Candidate 2's credit rises: 900 × 1.0 = 900 beats 1000 × 0.6 = 600.
		Credits::<Test>::insert(2, 1000);
		let selected = Reputation::new_session(3).unwrap();
		assert_eq!(selected[0], 2);
		assert_eq!(SelectedCollators::<Test>::get().into_inner(), selected);
	});
}

#[test]
fn invulnerables_are_always_selected() {
	new_test_ext(|| {
		candidate(1, 5000);
		candidate(2, 4000);
		assert_ok!(Reputation::set_invulnerables(RuntimeOrigin::root(), vec![7]));
		assert_eq!(Reputation::new_session(1), Some(vec![7, 1]));
	});
}

#[test]
fn candidate_under_minimum_credit_is_dropped_with_an_event() {
	new_test_ext(|| {
		candidate(1, 600);
		candidate(2, 600);
		Credits::<Test>::insert(2, 300);
		let selected = Reputation::new_session(1).unwrap();
		assert_eq!(selected, vec![1]);
		assert!(Candidates::<Test>::get(2).is_none());
		assert_eq!(held(HoldReason::Unbonding, 2), 600);
		assert!(System::events().iter().any(|r| r.event ==
			RuntimeEvent::Reputation(Event::CandidateDropped { who: 2, credit: 330 })));
	});
}

#[test]
fn authorship_feeds_credit_at_session_end() {
	new_test_ext(|| {
		candidate(1, 600);
		candidate(2, 600);
		assert_eq!(Reputation::new_session(1), Some(vec![1, 2]));
		System::reset_events();
		// Ten blocks; 1 authors all of them, 2 none: 2 missed its five.
		for _ in 0..10 {
			<Reputation as pallet_authorship::EventHandler<_, _>>::note_author(1);
		}
		Reputation::new_session(2);
		let changes = credit_events();
		assert!(changes.contains(&(1, 600, 605)), "{changes:?}");
		assert!(changes.contains(&(2, 600, 500)), "{changes:?}");
		assert_eq!(SessionBlocks::<Test>::get(), 0);
		assert_eq!(AuthoredBlocks::<Test>::get(1), 0);
	});
}

#[test]
fn a_producer_that_keeps_missing_slots_loses_its_seat() {
	new_test_ext(|| {
		candidate(1, 1000);
		candidate(2, 900);
		candidate(3, 700);
		assert_eq!(Reputation::new_session(1), Some(vec![1, 2]));
		let mut lost_at = None;
		for session in 2..=6 {
			// Producer 1 authors every block of the session; producer 2 none.
			for _ in 0..10 {
				<Reputation as pallet_authorship::EventHandler<_, _>>::note_author(1);
			}
			let selected = Reputation::new_session(session).unwrap();
			if !selected.contains(&2) {
				assert!(selected.contains(&3), "the better-behaved candidate takes the seat");
				lost_at = Some(session);
				break;
			}
		}
		let lost_at = lost_at.expect("producer 2 lost its seat within five sessions");
		assert!(lost_at <= 3, "lost at session {lost_at}");
		assert!(Reputation::credit_of(&2) < Reputation::credit_of(&3));
	});
}

#[test]
fn ranking_lists_best_credit_first() {
	new_test_ext(|| {
		candidate(1, 600);
		join(2, auditor());
		Credits::<Test>::insert(2, 900);
		let ranking = Reputation::ranking();
		assert_eq!(ranking.len(), 2);
		assert_eq!((ranking[0].who, ranking[0].credit, ranking[0].stake), (2, 900, 0));
		assert_eq!(
			(ranking[1].who, ranking[1].credit, ranking[1].stake, ranking[1].effective_stake),
			(1, 600, 600, 360)
		);
	});
}

#[test]
fn try_state_detects_a_broken_total() {
	ExtBuilder::default().build().execute_with(|| {
		candidate(1, 600);
		assert_ok!(Reputation::delegate(origin(10), 1, 100));
		assert!(Reputation::do_try_state().is_ok());
		TotalDelegated::<Test>::put(1);
		assert!(Reputation::do_try_state().is_err());
	});
}

#[test]
fn integrity_test_passes() {
	use frame_support::traits::Hooks;
	new_test_ext(|| {
		<Reputation as Hooks<u64>>::integrity_test();
	});
}
