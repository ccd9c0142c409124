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
		assert_eq!(PendingCount::<Test>::get(), 1);
		assert_eq!(InstitutionCount::<Test>::get(), 0);
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
fn pending_applications_cannot_fill_the_registry() {
	new_test_ext(|| {
		// Four spam applications fill the waiting room, not the registry.
		for who in 1..=4 {
			assert_ok!(Reputation::apply_for_membership(origin(who), name("i"), InstitutionKind::Insurer, producer()));
		}
		assert_noop!(
			Reputation::apply_for_membership(origin(5), name("i"), InstitutionKind::Insurer, producer()),
			Error::<Test>::TooManyApplications
		);
		// Governance refuses one; an honest hospital applies and is approved.
		assert_ok!(Reputation::remove_institution(RuntimeOrigin::root(), 1));
		assert_eq!(held(HoldReason::InstitutionBond, 1), 0);
		assert_eq!(PendingCount::<Test>::get(), 3);
		join(5, producer());
		assert_eq!(InstitutionCount::<Test>::get(), 1);
		assert_eq!(PendingCount::<Test>::get(), 3);
	});
}

#[test]
fn approve_fails_when_registry_is_full() {
	new_test_ext(|| {
		// Five producers fill the council; the rest only validate.
		for who in 1..=8 {
			join(who, if who <= MAX_BODY_MEMBERS as u64 { producer() } else { Roles::only(Role::Validator) });
		}
		assert_ok!(Reputation::apply_for_membership(origin(9), name("i"), InstitutionKind::Insurer, producer()));
		assert_noop!(
			Reputation::approve_institution(RuntimeOrigin::root(), 9),
			Error::<Test>::TooManyInstitutions
		);
		assert_eq!(InstitutionCount::<Test>::get(), 8);
		assert_eq!(PendingCount::<Test>::get(), 1);
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

// ---- governance -----------------------------------------------------------------

fn council() -> RuntimeOrigin {
	RuntimeOrigin::signed(CouncilMotion::get())
}

fn regulators() -> RuntimeOrigin {
	RuntimeOrigin::signed(RegulatorMotion::get())
}

fn producer_and_auditor() -> Roles {
	Roles { producer: true, validator: false, auditor: true }
}

fn body_events() -> Vec<(Body, Vec<AccountId>, Vec<AccountId>)> {
	System::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::Reputation(Event::BodyChanged { body, joined, left }) => Some((body, joined, left)),
			_ => None,
		})
		.collect()
}

#[test]
fn bodies_follow_active_producers_and_auditors() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		join(3, Roles::only(Role::Validator));
		assert_eq!(Council::<Test>::get().to_vec(), vec![1]);
		assert_eq!(Regulators::<Test>::get().to_vec(), vec![2]);
		// The collectives are told the same lists.
		assert_eq!(CouncilMirror::get(), vec![1]);
		assert_eq!(RegulatorMirror::get(), vec![2]);
		assert_ok!(Reputation::set_roles(RuntimeOrigin::root(), 2, producer_and_auditor()));
		assert_eq!(CouncilMirror::get(), vec![1, 2]);
		assert_ok!(Reputation::suspend_institution(RuntimeOrigin::root(), 1));
		assert_eq!(CouncilMirror::get(), vec![2]);
		assert_ok!(Reputation::approve_institution(RuntimeOrigin::root(), 1));
		assert_eq!(CouncilMirror::get(), vec![1, 2]);
		assert_ok!(Reputation::remove_institution(RuntimeOrigin::root(), 2));
		assert_eq!(CouncilMirror::get(), vec![1]);
		assert_eq!(RegulatorMirror::get(), Vec::<AccountId>::new());
		assert_eq!(
			body_events(),
			vec![
				(Body::Council, vec![1], vec![]),
				(Body::Regulators, vec![2], vec![]),
				(Body::Council, vec![2], vec![]),
				(Body::Council, vec![], vec![1]),
				(Body::Council, vec![1], vec![]),
				(Body::Council, vec![], vec![2]),
				(Body::Regulators, vec![], vec![2]),
			]
		);
	});
}

#[test]
fn genesis_institutions_found_the_bodies() {
	ExtBuilder::default()
		.with_institutions(vec![
			(2, b"b".to_vec(), hospital(), producer()),
			(1, b"a".to_vec(), hospital(), producer()),
			(3, b"r".to_vec(), InstitutionKind::Regulator, auditor()),
		])
		.build()
		.execute_with(|| {
			assert_eq!(Council::<Test>::get().to_vec(), vec![1, 2]);
			assert_eq!(Regulators::<Test>::get().to_vec(), vec![3]);
			assert_eq!(CouncilMirror::get(), vec![1, 2]);
			assert_eq!(RegulatorMirror::get(), vec![3]);
		});
}

#[test]
fn a_member_institution_cannot_govern_by_signing() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		assert_ok!(Reputation::apply_for_membership(origin(3), name("c"), hospital(), producer()));
		for who in [1, 2] {
			assert_noop!(Reputation::approve_institution(origin(who), 3), DispatchError::BadOrigin);
			assert_noop!(Reputation::suspend_institution(origin(who), 1), DispatchError::BadOrigin);
			assert_noop!(Reputation::remove_institution(origin(who), 1), DispatchError::BadOrigin);
			assert_noop!(Reputation::set_roles(origin(who), 1, auditor()), DispatchError::BadOrigin);
			assert_noop!(Reputation::set_invulnerables(origin(who), vec![who]), DispatchError::BadOrigin);
		}
	});
}

#[test]
fn council_alone_cannot_admit_an_institution() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		assert_ok!(Reputation::apply_for_membership(origin(3), name("c"), hospital(), producer()));
		assert_ok!(Reputation::approve_institution(council(), 3));
		let expires_at = 1 + DECISION_PERIOD;
		System::assert_last_event(
			Event::DecisionAwaiting { decision: Decision::Admit(3), approved_by: Body::Council, expires_at }
				.into(),
		);
		assert_eq!(Institutions::<Test>::get(3).unwrap().status, InstitutionStatus::Pending);
		// Voting twice does not stand in for the other body.
		assert_noop!(Reputation::approve_institution(council(), 3), Error::<Test>::AlreadyApproved);
		assert_ok!(Reputation::approve_institution(regulators(), 3));
		assert_eq!(Institutions::<Test>::get(3).unwrap().status, InstitutionStatus::Active);
		assert!(PendingDecisions::<Test>::get(3, Decision::Admit(3)).is_none());
		assert_eq!(Council::<Test>::get().to_vec(), vec![1, 3]);
	});
}

#[test]
fn regulators_alone_cannot_remove_an_institution() {
	new_test_ext(|| {
		join(1, producer());
		join(2, producer());
		join(3, auditor());
		assert_ok!(Reputation::remove_institution(regulators(), 2));
		assert!(Institutions::<Test>::contains_key(2));
		assert_noop!(Reputation::remove_institution(regulators(), 2), Error::<Test>::AlreadyApproved);
		assert_ok!(Reputation::remove_institution(council(), 2));
		assert!(!Institutions::<Test>::contains_key(2));
		assert_eq!(Council::<Test>::get().to_vec(), vec![1]);
	});
}

#[test]
fn an_approval_lapses_after_the_decision_period() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		assert_ok!(Reputation::apply_for_membership(origin(3), name("c"), hospital(), producer()));
		assert_ok!(Reputation::approve_institution(council(), 3));
		System::set_block_number(2 + DECISION_PERIOD);
		// A month-old council vote does not complete today's regulator vote.
		assert_ok!(Reputation::approve_institution(regulators(), 3));
		assert_eq!(Institutions::<Test>::get(3).unwrap().status, InstitutionStatus::Pending);
		assert_eq!(
			PendingDecisions::<Test>::get(3, Decision::Admit(3)).map(|p| p.body),
			Some(Body::Regulators)
		);
		assert_ok!(Reputation::approve_institution(council(), 3));
		assert_eq!(Institutions::<Test>::get(3).unwrap().status, InstitutionStatus::Active);
	});
}

#[test]
fn regulators_cannot_take_the_councils_decisions() {
	new_test_ext(|| {
		join(1, producer());
		// Validates only: sits in no body.
		join(2, Roles::only(Role::Validator));
		join(3, auditor());
		assert_noop!(Reputation::suspend_institution(regulators(), 2), Error::<Test>::NotRegulatorsDecision);
		assert_noop!(
			Reputation::set_roles(regulators(), 2, Roles::only(Role::Validator)),
			Error::<Test>::NotRegulatorsDecision
		);
		assert_noop!(Reputation::set_invulnerables(regulators(), vec![1]), Error::<Test>::NotRegulatorsDecision);
		// The council takes them alone.
		assert_ok!(Reputation::suspend_institution(council(), 2));
		assert_eq!(Institutions::<Test>::get(2).unwrap().status, InstitutionStatus::Suspended);
		assert_ok!(Reputation::set_invulnerables(council(), vec![1]));
		assert_eq!(Invulnerables::<Test>::get().to_vec(), vec![1]);
	});
}

#[test]
fn council_cannot_name_an_outsider_invulnerable() {
	new_test_ext(|| {
		join(1, producer());
		join(2, Roles::only(Role::Validator));
		for outsider in [2, 99] {
			assert_noop!(Reputation::set_invulnerables(council(), vec![1, outsider]), Error::<Test>::NotProducer);
		}
	});
}

#[test]
fn council_cannot_pack_itself_or_shut_out_its_minority() {
	new_test_ext(|| {
		join(1, producer());
		join(2, producer());
		join(3, auditor());
		join(4, Roles::only(Role::Validator));
		// Making a friend a producer, or suspending a member, waits for the
		// regulators.
		assert_ok!(Reputation::set_roles(council(), 4, producer()));
		assert_eq!(Institutions::<Test>::get(4).unwrap().roles, Roles::only(Role::Validator));
		assert_ok!(Reputation::suspend_institution(council(), 2));
		assert_eq!(Institutions::<Test>::get(2).unwrap().status, InstitutionStatus::Active);
		assert_eq!(Council::<Test>::get().to_vec(), vec![1, 2]);
		assert_ok!(Reputation::suspend_institution(regulators(), 2));
		assert_eq!(Council::<Test>::get().to_vec(), vec![1]);
	});
}

#[test]
fn a_carried_decision_voids_stale_approvals() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		join(5, Roles::only(Role::Validator));
		// The regulators approve removing 5; then the council suspends it
		// alone, which changes what the regulators approved.
		assert_ok!(Reputation::remove_institution(regulators(), 5));
		assert_ok!(Reputation::suspend_institution(council(), 5));
		assert_eq!(PendingDecisions::<Test>::iter_prefix(5).count(), 0);
		// The council's removal now waits for a fresh regulators' vote.
		assert_ok!(Reputation::remove_institution(council(), 5));
		assert!(Institutions::<Test>::contains_key(5));
		assert_eq!(
			PendingDecisions::<Test>::get(5, Decision::Remove(5)).map(|p| p.body),
			Some(Body::Council)
		);
	});
}

#[test]
fn council_cannot_silence_a_regulator_alone() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		join(3, auditor());
		assert_ok!(Reputation::suspend_institution(council(), 3));
		assert_eq!(Institutions::<Test>::get(3).unwrap().status, InstitutionStatus::Active);
		assert_ok!(Reputation::set_roles(council(), 2, producer()));
		assert!(Institutions::<Test>::get(2).unwrap().roles.auditor);
		assert_ok!(Reputation::suspend_institution(regulators(), 3));
		assert_eq!(Institutions::<Test>::get(3).unwrap().status, InstitutionStatus::Suspended);
		assert_eq!(Regulators::<Test>::get().to_vec(), vec![2]);
	});
}

#[test]
fn council_cannot_make_itself_a_regulator() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		assert_ok!(Reputation::set_roles(council(), 1, producer_and_auditor()));
		assert!(!Institutions::<Test>::get(1).unwrap().roles.auditor);
		assert_eq!(Regulators::<Test>::get().to_vec(), vec![2]);
		assert_ok!(Reputation::set_roles(regulators(), 1, producer_and_auditor()));
		assert_eq!(Regulators::<Test>::get().to_vec(), vec![1, 2]);
	});
}

#[test]
fn the_last_member_cannot_be_voted_out_of_a_body() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		assert_ok!(Reputation::suspend_institution(council(), 1));
		assert_noop!(Reputation::suspend_institution(regulators(), 1), Error::<Test>::LastBodyMember);
		assert_ok!(Reputation::set_roles(council(), 1, Roles::only(Role::Validator)));
		assert_noop!(
			Reputation::set_roles(regulators(), 1, Roles::only(Role::Validator)),
			Error::<Test>::LastBodyMember
		);
		assert_ok!(Reputation::remove_institution(regulators(), 2));
		assert_noop!(Reputation::remove_institution(council(), 2), Error::<Test>::LastBodyMember);
		// Root (sudo on a dev chain) may still do it.
		assert_ok!(Reputation::suspend_institution(RuntimeOrigin::root(), 1));
		assert!(Council::<Test>::get().is_empty());
	});
}

#[test]
fn a_full_council_admits_no_further_producer() {
	new_test_ext(|| {
		for who in 1..=MAX_BODY_MEMBERS as u64 {
			join(who, producer());
		}
		let next = MAX_BODY_MEMBERS as u64 + 1;
		assert_ok!(Reputation::apply_for_membership(origin(next), name("n"), hospital(), producer()));
		assert_noop!(
			Reputation::approve_institution(RuntimeOrigin::root(), next),
			Error::<Test>::TooManyBodyMembers
		);
		// A validator-only institution still joins.
		assert_ok!(Reputation::set_roles(RuntimeOrigin::root(), next, Roles::only(Role::Validator)));
		assert_ok!(Reputation::approve_institution(RuntimeOrigin::root(), next));
	});
}

#[test]
fn removal_forgets_pending_decisions() {
	new_test_ext(|| {
		join(1, producer());
		join(2, producer());
		join(3, auditor());
		assert_ok!(Reputation::set_roles(council(), 2, producer_and_auditor()));
		assert_ok!(Reputation::remove_institution(council(), 2));
		assert_eq!(PendingDecisions::<Test>::iter_prefix(2).count(), 2);
		assert_ok!(Reputation::remove_institution(RuntimeOrigin::root(), 2));
		assert_eq!(PendingDecisions::<Test>::iter_prefix(2).count(), 0);
	});
}

#[test]
fn only_the_regulators_penalise_beyond_an_auditors_cap() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		join(3, auditor());
		assert_ok!(Reputation::penalise(origin(2), 1, MAX_PENALTY, reason("falsified records")));
		assert_noop!(
			Reputation::penalise(origin(2), 1, 1, reason("more")),
			Error::<Test>::PenaltyCapExceeded
		);
		let before = Credits::<Test>::get(1).unwrap();
		assert_noop!(Reputation::penalise(regulators(), 1, 0, reason("none")), Error::<Test>::ZeroPenalty);
		assert_noop!(Reputation::penalise(regulators(), 99, 1, reason("none")), Error::<Test>::NotInstitution);
		assert_ok!(Reputation::penalise(regulators(), 1, 3 * MAX_PENALTY, reason("repeated fraud")));
		assert_eq!(Credits::<Test>::get(1), Some(before - 3 * MAX_PENALTY));
		System::assert_last_event(
			Event::CreditChanged {
				who: 1,
				old: before,
				new: before - 3 * MAX_PENALTY,
				reason: CreditReason::RegulatorsPenalty { reason: reason("repeated fraud") },
			}
			.into(),
		);
		// The council has no such power.
		assert_noop!(Reputation::penalise(council(), 1, 1, reason("x")), Error::<Test>::NotAuditor);
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
		// Extreme deltas (not reported behaviour, so not capped per session).
		Reputation::change_credit(&1, i64::MAX, CreditReason::Drift);
		assert_eq!(Credits::<Test>::get(1), Some(1000));
		Reputation::change_credit(&1, i64::MIN, CreditReason::Drift);
		assert_eq!(Credits::<Test>::get(1), Some(0));
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
		KeysRegistered::mutate(|k| k.push(7));
		assert_ok!(Reputation::set_invulnerables(RuntimeOrigin::root(), vec![7]));
		assert_eq!(Reputation::new_session(1), Some(vec![7, 1]));
	});
}

#[test]
fn keyless_invulnerables_cannot_empty_the_collator_set() {
	new_test_ext(|| {
		// 7 and 8 never registered session keys: pallet-session would leave
		// them out, so picking them would plan an empty set.
		assert_ok!(Reputation::set_invulnerables(RuntimeOrigin::root(), vec![7, 8]));
		candidate(1, 5000);
		assert_eq!(Reputation::new_session(1), Some(vec![1]));
		assert_ok!(Reputation::leave_candidates(origin(1)));
		// Nobody with keys qualifies: no new set is planned.
		assert_eq!(Reputation::new_session(2), None);
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

/// Candidates 1 and 2 elected and active (sessions rotated as pallet-session
/// does), with events cleared.
fn two_active_collators() {
	candidate(1, 600);
	candidate(2, 600);
	rotate_session();
	rotate_session();
	assert_eq!(ActiveSet::get(), vec![1, 2]);
	System::reset_events();
}

#[test]
fn authorship_feeds_credit_at_session_end() {
	new_test_ext(|| {
		two_active_collators();
		// Ten slots; 2 leaves its five empty: it missed its whole share.
		author_blocks(10, &[2]);
		rotate_session();
		let changes = credit_events();
		assert!(changes.contains(&(1, 600, 605)), "{changes:?}");
		assert!(changes.contains(&(2, 600, 350)), "{changes:?}");
		assert!(System::events().iter().any(|r| r.event ==
			RuntimeEvent::Reputation(Event::AuthorshipSettled { session: 2, collators: 2, blocks: 5 })));
		assert_eq!(SessionBlocks::<Test>::get(), 0);
		assert_eq!(AuthoredBlocks::<Test>::get(1), 0);
	});
}

#[test]
fn penalty_for_missed_slots_is_proportional_and_tolerates_one_block() {
	new_test_ext(|| {
		two_active_collators();
		// Twenty slots, ten each: 1 misses one (tolerated), 2 misses three.
		let set = ActiveSet::get();
		let mut skipped = (0, 0);
		for slot in 0..20usize {
			let author = set[slot % 2];
			let skip = (author == 1 && skipped.0 < 1) || (author == 2 && skipped.1 < 3);
			if skip {
				if author == 1 { skipped.0 += 1 } else { skipped.1 += 1 }
				continue;
			}
			<Reputation as pallet_authorship::EventHandler<_, _>>::note_author(author);
		}
		rotate_session();
		let changes = credit_events();
		// 1: 9, the most anyone authored: its full share.
		assert!(changes.contains(&(1, 600, 605)), "{changes:?}");
		// 2: 7 where the best authored 9: two short, three tenths (rounded up).
		assert!(changes.contains(&(2, 600, 525)), "{changes:?}");
	});
}

#[test]
fn session_scores_the_set_that_authored_not_the_planned_set() {
	new_test_ext(|| {
		two_active_collators();
		// Candidate 3 outbids 2 and is planned for the session after next.
		candidate(3, 2000);
		rotate_session();
		System::reset_events();
		assert!(QueuedSet::get().contains(&3));
		assert!(!ActiveSet::get().contains(&3));
		// The active set (1, 2) authors its blocks; 3 has not had a slot yet.
		author_blocks(10, &[]);
		rotate_session();
		// 3 was not scored for a session it could not author in.
		assert!(credit_events().iter().all(|(who, ..)| *who != 3), "{:?}", credit_events());
		assert_eq!(Reputation::credit_of(&3), 600);
		assert!(ActiveSet::get().contains(&3));
	});
}

#[test]
fn newly_elected_collator_keeps_its_credit_across_rotations() {
	ExtBuilder::default()
		.with_institutions(vec![(7, b"Genesis Hospital".to_vec(), hospital(), producer())])
		.with_invulnerables(vec![7])
		.build()
		.execute_with(|| {
			candidate(1, 600);
			let mut seated = 0;
			for _ in 0..6 {
				author_blocks(12, &[]);
				rotate_session();
				if ActiveSet::get().contains(&1) {
					seated += 1;
				}
				// Never dropped, never below where it started.
				assert!(Candidates::<Test>::contains_key(1));
				assert!(Reputation::credit_of(&1) >= 600, "{}", Reputation::credit_of(&1));
			}
			assert!(seated >= 4, "seated in {seated} sessions");
			assert!(Reputation::credit_of(&1) > 600);
			Reputation::do_try_state().unwrap();
		});
}

#[test]
fn a_collator_that_stops_authoring_loses_its_seat_within_two_sessions() {
	new_test_ext(|| {
		candidate(1, 1000);
		candidate(2, 900);
		candidate(3, 700);
		rotate_session();
		rotate_session();
		assert_eq!(ActiveSet::get(), vec![1, 2]);
		// From now on 2 authors nothing.
		author_blocks(10, &[2]);
		rotate_session();
		author_blocks(10, &[2]);
		rotate_session();
		assert!(!ActiveSet::get().contains(&2), "active: {:?}", ActiveSet::get());
		assert!(ActiveSet::get().contains(&3), "the better-behaved candidate takes the seat");
		assert!(Reputation::credit_of(&2) < Reputation::credit_of(&3));
	});
}

#[test]
fn set_never_empties_when_nobody_qualifies() {
	new_test_ext(|| {
		two_active_collators();
		join(3, producer());
		// Both collators fall under the minimum; no invulnerables, no other
		// candidate: the active producers keep their seats.
		Credits::<Test>::insert(1, 100);
		Credits::<Test>::insert(2, 100);
		author_blocks(10, &[]);
		rotate_session();
		assert_eq!(QueuedSet::get(), vec![1, 2]);
		assert!(System::events().iter().any(|r| matches!(
			r.event,
			RuntimeEvent::Reputation(Event::CollatorsKept { .. })
		)));
		// A suspended collator is not kept.
		assert_ok!(Reputation::suspend_institution(RuntimeOrigin::root(), 1));
		author_blocks(10, &[]);
		rotate_session();
		assert_eq!(QueuedSet::get(), vec![2]);
		assert!(!ActiveSet::get().is_empty());
	});
}

#[test]
fn credit_cannot_be_farmed_beyond_the_session_cap() {
	new_test_ext(|| {
		join(1, producer());
		// Ten "accepted updates" in one session: +3 each, capped at MAX_GAIN.
		for _ in 0..10 {
			<Reputation as CreditReporter<_>>::report(&1, Behaviour::UpdateAccepted);
		}
		assert_eq!(Reputation::credit_of(&1), 600 + MAX_GAIN);
		assert_eq!(SessionGains::<Test>::get(1), MAX_GAIN);
		// Losses are never capped.
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::RecordRejected);
		assert_eq!(Reputation::credit_of(&1), 610);
		// A new session opens a new allowance (after drift toward 600).
		rotate_session();
		assert_eq!(SessionGains::<Test>::get(1), 0);
		let before = Reputation::credit_of(&1);
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::UpdateAccepted);
		assert_eq!(Reputation::credit_of(&1), before + 3);
	});
}

#[test]
fn one_auditor_cannot_deduct_unlimited_points() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		assert_ok!(Reputation::penalise(origin(2), 1, MAX_PENALTY - 10, reason("late")));
		assert_noop!(
			Reputation::penalise(origin(2), 1, 11, reason("again")),
			Error::<Test>::PenaltyCapExceeded
		);
		assert_noop!(
			Reputation::penalise(origin(2), 1, u32::MAX, reason("overflow")),
			Error::<Test>::PenaltyCapExceeded
		);
		assert_ok!(Reputation::penalise(origin(2), 1, 10, reason("last")));
		assert_eq!(Reputation::credit_of(&1), 600 - MAX_PENALTY);
		// The allowance renews with the session.
		rotate_session();
		assert_ok!(Reputation::penalise(origin(2), 1, 1, reason("next session")));
	});
}

#[test]
fn auditor_verdicts_share_the_penalty_cap() {
	new_test_ext(|| {
		join(1, producer());
		join(2, auditor());
		// An unjustified break-glass verdict costs 50 points of the auditor's
		// allowance, like a `penalise` of 50.
		assert_ok!(Reputation::penalise(origin(2), 1, MAX_PENALTY - 60, reason("late")));
		assert!(<Reputation as AuditorVerdicts<_>>::report_verdict(&2, &1, Behaviour::BreakGlassUnreviewed));
		assert_eq!(AuditorPenalties::<Test>::get(2), MAX_PENALTY - 10);
		let credit = Reputation::credit_of(&1);
		let bond = Institutions::<Test>::get(1).unwrap().bond;
		// The next verdict does not fit: nothing is reported, nothing slashed.
		assert!(!<Reputation as AuditorVerdicts<_>>::report_verdict(&2, &1, Behaviour::BreakGlassUnreviewed));
		assert_eq!(Reputation::credit_of(&1), credit);
		assert_eq!(Institutions::<Test>::get(1).unwrap().bond, bond);
		assert_eq!(AuditorPenalties::<Test>::get(2), MAX_PENALTY - 10);
		// A verdict that costs nothing always goes through.
		assert!(<Reputation as AuditorVerdicts<_>>::report_verdict(&2, &1, Behaviour::RecordConfirmed));
		rotate_session();
		assert!(<Reputation as AuditorVerdicts<_>>::report_verdict(&2, &1, Behaviour::BreakGlassUnreviewed));
	});
}

#[test]
fn grave_behaviour_slashes_a_share_of_the_bond() {
	new_test_ext(|| {
		join(1, producer());
		let issuance = Balances::total_issuance();
		// Unreviewed break-glass: a tenth of the bond, burned.
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::BreakGlassUnreviewed);
		let slashed = INSTITUTION_BOND / 10;
		assert_eq!(held(HoldReason::InstitutionBond, 1), INSTITUTION_BOND - slashed);
		assert_eq!(Institutions::<Test>::get(1).unwrap().bond, INSTITUTION_BOND - slashed);
		assert_eq!(Balances::total_issuance(), issuance - slashed);
		System::assert_has_event(
			Event::BondSlashed { who: 1, amount: slashed, behaviour: Behaviour::BreakGlassUnreviewed }
				.into(),
		);
		// With a beneficiary (a treasury), the slash is moved there instead.
		SlashTo::set(Some(20));
		let treasury = Balances::free_balance(20);
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::RecordRejected);
		let second = sp_runtime::Perbill::from_percent(2) * (INSTITUTION_BOND - slashed);
		assert!(second > 0);
		assert_eq!(Balances::free_balance(20), treasury + second);
		assert_eq!(Balances::total_issuance(), issuance - slashed);
		// Mild behaviour slashes nothing.
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::ReencryptionFailed);
		assert_eq!(Institutions::<Test>::get(1).unwrap().bond, INSTITUTION_BOND - slashed - second);
	});
}

#[test]
fn colluding_aggregators_cannot_slash_an_outvoted_honest_one() {
	new_test_ext(|| {
		join(1, producer());
		let issuance = Balances::total_issuance();
		// Two colluders adopt their digest; the honest aggregator is reported
		// as mismatched: it loses credit, never its bond.
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::AggregationMismatched);
		assert_eq!(held(HoldReason::InstitutionBond, 1), INSTITUTION_BOND);
		assert_eq!(Balances::total_issuance(), issuance);
		assert!(Reputation::credit_of(&1) < <Test as Config>::InitialCredit::get());
		assert!(!System::events().iter().any(|r| matches!(
			r.event,
			RuntimeEvent::Reputation(Event::BondSlashed { .. })
		)));
	});
}

#[test]
fn applicant_bond_is_never_slashed() {
	new_test_ext(|| {
		assert_ok!(Reputation::apply_for_membership(origin(1), name("applicant"), hospital(), producer()));
		let held_before = held(HoldReason::InstitutionBond, 1);
		assert!(held_before > 0);
		<Reputation as CreditReporter<_>>::report(&1, Behaviour::BreakGlassUnreviewed);
		assert_eq!(held(HoldReason::InstitutionBond, 1), held_before);
		assert_eq!(Institutions::<Test>::get(1).unwrap().bond, held_before);
	});
}

#[test]
fn candidate_that_leaves_and_returns_keeps_delegations_consistent() {
	new_test_ext(|| {
		candidate(1, 600);
		assert_ok!(Reputation::delegate(origin(10), 1, 100));
		assert_ok!(Reputation::leave_candidates(origin(1)));
		assert_eq!(FormerCandidates::<Test>::get(1).unwrap().delegated, 100);
		// Nobody can delegate to a candidate that left.
		assert_noop!(Reputation::delegate(origin(11), 1, 100), Error::<Test>::NotCandidate);
		// It registers again: the delegation it still holds counts again.
		assert_ok!(Reputation::register_as_candidate(origin(1), 600));
		assert_eq!(Candidates::<Test>::get(1).unwrap().delegated, 100);
		assert_eq!(Candidates::<Test>::get(1).unwrap().delegators, 1);
		assert!(FormerCandidates::<Test>::get(1).is_none());
		Reputation::do_try_state().unwrap();
		// Undelegating takes exactly its own stake away, from nobody else.
		assert_ok!(Reputation::delegate(origin(11), 1, 50));
		assert_ok!(Reputation::undelegate(origin(10), 1, 100));
		assert_eq!(Candidates::<Test>::get(1).unwrap().delegated, 50);
		Reputation::do_try_state().unwrap();
	});
}

#[test]
fn delegators_can_leave_a_former_candidate() {
	new_test_ext(|| {
		candidate(1, 600);
		assert_ok!(Reputation::delegate(origin(10), 1, 100));
		assert_ok!(Reputation::delegate(origin(11), 1, 40));
		assert_ok!(Reputation::leave_candidates(origin(1)));
		assert_ok!(Reputation::undelegate(origin(10), 1, 100));
		assert_eq!(FormerCandidates::<Test>::get(1).unwrap().delegated, 40);
		Reputation::do_try_state().unwrap();
		assert_ok!(Reputation::undelegate(origin(11), 1, 40));
		assert!(FormerCandidates::<Test>::get(1).is_none());
		assert_eq!(TotalDelegated::<Test>::get(), 0);
	});
}

/// Candidates 1 and 2; 1 fills both of its unbonding slots with tiny
/// undelegations from 2 (10 + 10 unbonding, 10 still delegated).
fn candidate_with_full_unbonding_slots() {
	candidate(1, 600);
	candidate(2, 600);
	assert_ok!(Reputation::delegate(origin(1), 2, 30));
	assert_ok!(Reputation::undelegate(origin(1), 2, 10));
	assert_ok!(Reputation::undelegate(origin(1), 2, 10));
	assert_eq!(Unbonding::<Test>::get(1).len(), 2);
}

#[test]
fn full_unbonding_slots_cannot_block_removal() {
	new_test_ext(|| {
		candidate_with_full_unbonding_slots();
		// Leaving by itself is refused ...
		assert_noop!(Reputation::leave_candidates(origin(1)), Error::<Test>::TooManyUnbondingChunks);
		// ... but governance removal goes through: the bond joins the latest chunk.
		System::set_block_number(3);
		assert_ok!(Reputation::remove_institution(RuntimeOrigin::root(), 1));
		let chunks = Unbonding::<Test>::get(1);
		assert_eq!(chunks.len(), 2);
		assert_eq!(chunks[1].amount, 610);
		assert_eq!(chunks[1].unlock_at, 3 + UNBONDING_DELAY);
		assert_eq!(held(HoldReason::Unbonding, 1), 620);
		assert!(Candidates::<Test>::get(1).is_none());
	});
}

#[test]
fn low_credit_candidate_with_full_unbonding_slots_is_still_dropped() {
	new_test_ext(|| {
		candidate_with_full_unbonding_slots();
		Credits::<Test>::insert(1, 100);
		assert_eq!(Reputation::new_session(1), Some(vec![2]));
		assert!(Candidates::<Test>::get(1).is_none());
		assert_eq!(held(HoldReason::Unbonding, 1), 620);
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
