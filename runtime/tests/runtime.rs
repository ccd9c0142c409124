//! Runtime tests, run natively in `TestExternalities` built from the genesis
//! presets the chain specs use.

use frame_support::{assert_noop, assert_ok, traits::fungible::Inspect};
use medchain_runtime::{
	configs::MAX_CONTRACT_CODE_LEN,
	genesis_config_presets::{get_preset, preset_names, ENDOWMENT, PARACHAIN_ID},
	AccountId, Balances, Contracts, ParachainInfo, Reputation, Runtime, RuntimeGenesisConfig,
	RuntimeOrigin, Session, System, EXISTENTIAL_DEPOSIT, UNIT,
};
use medchain_primitives::{InstitutionRegistry, Role};
use pallet_contracts::Determinism;
use serde_json::Value;
use sp_keyring::Sr25519Keyring::{Alice, Bob, Charlie, Ferdie};

/// Applies a JSON patch onto a JSON document, as the chain-spec builder does.
fn merge(base: &mut Value, patch: Value) {
	match (base, patch) {
		(Value::Object(base), Value::Object(patch)) => {
			for (k, v) in patch {
				merge(base.entry(k).or_insert(Value::Null), v);
			}
		},
		(base, patch) => *base = patch,
	}
}

/// Externalities holding the genesis state of preset `name`.
fn genesis(name: &str) -> sp_io::TestExternalities {
	let patch: Value =
		serde_json::from_slice(&get_preset(&name.to_string()).expect("preset exists")).unwrap();
	let mut full = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
	merge(&mut full, patch);
	let config: RuntimeGenesisConfig = serde_json::from_value(full).expect("patch fits the config");
	let storage = frame_support::sp_runtime::BuildStorage::build_storage(&config).unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

fn account(k: sp_keyring::Sr25519Keyring) -> AccountId {
	k.to_account_id()
}

#[test]
fn presets_are_listed() {
	let names = preset_names();
	assert_eq!(
		names,
		vec!["development".to_string(), "local_testnet".to_string(), "medchain_local".to_string()]
	);
	assert!(get_preset(&"no-such-preset".to_string()).is_none());
}

#[test]
fn development_preset_builds_with_one_collator() {
	genesis("development").execute_with(|| {
		assert_eq!(ParachainInfo::parachain_id(), PARACHAIN_ID.into());
		assert_eq!(
			pallet_reputation::Invulnerables::<Runtime>::get().into_inner(),
			vec![account(Alice)]
		);
		assert_eq!(Session::validators(), vec![account(Alice)]);
		// Alice is a tier-3A hospital producing blocks, at the initial credit.
		assert!(<Reputation as InstitutionRegistry<_>>::has_role(&account(Alice), Role::Producer));
		assert_eq!(pallet_reputation::Credits::<Runtime>::get(account(Alice)), Some(600));
		// Her institution bond is held.
		assert_eq!(
			Balances::balance(&account(Alice)),
			ENDOWMENT - medchain_runtime::configs::InstitutionBond::get()
		);
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(account(Alice)));
		assert_eq!(Balances::balance(&account(Ferdie)), ENDOWMENT);
	});
}

#[test]
fn local_testnet_preset_builds_with_two_collators() {
	genesis("local_testnet").execute_with(|| {
		assert_eq!(
			pallet_reputation::Invulnerables::<Runtime>::get().into_inner(),
			vec![account(Alice), account(Bob)]
		);
		assert_eq!(pallet_reputation::InstitutionCount::<Runtime>::get(), 2);
		assert_eq!(Session::validators(), vec![account(Alice), account(Bob)]);
	});
}

#[test]
fn transfer_moves_balance() {
	genesis("development").execute_with(|| {
		let amount = 42 * UNIT;
		assert_ok!(Balances::transfer_keep_alive(
			RuntimeOrigin::signed(account(Charlie)),
			account(Ferdie).into(),
			amount
		));
		assert_eq!(Balances::balance(&account(Charlie)), ENDOWMENT - amount);
		assert_eq!(Balances::balance(&account(Ferdie)), ENDOWMENT + amount);
	});
}

#[test]
fn transfer_beyond_balance_fails_and_changes_nothing() {
	genesis("development").execute_with(|| {
		assert_noop!(
			Balances::transfer_keep_alive(
				RuntimeOrigin::signed(account(Charlie)),
				account(Ferdie).into(),
				ENDOWMENT + 1
			),
			sp_runtime::TokenError::FundsUnavailable
		);
		assert!(EXISTENTIAL_DEPOSIT > 0);
	});
}

/// The smallest module `pallet-contracts` accepts: imported memory, `deploy`
/// and `call` exported.
fn minimal_contract(data_len: usize) -> Vec<u8> {
	let data = "\\00".repeat(data_len);
	let wat = format!(
		r#"(module
			(import "env" "memory" (memory 1 16))
			(func (export "deploy"))
			(func (export "call"))
			(data (i32.const 0) "{data}")
		)"#
	);
	wat::parse_str(wat).expect("valid wat")
}

#[test]
fn contract_upload_within_limits_is_stored() {
	genesis("development").execute_with(|| {
		let code = minimal_contract(16);
		assert!(code.len() < MAX_CONTRACT_CODE_LEN as usize);
		let free_before = Balances::balance(&account(Alice));
		assert_ok!(Contracts::upload_code(
			RuntimeOrigin::signed(account(Alice)),
			code.clone(),
			None,
			Determinism::Enforced
		));
		let hash = sp_core::H256(sp_io::hashing::blake2_256(&code));
		let stored = System::events().into_iter().any(|r| {
			matches!(
				r.event,
				medchain_runtime::RuntimeEvent::Contracts(pallet_contracts::Event::CodeStored {
					code_hash, ..
				}) if code_hash == hash
			)
		});
		assert!(stored, "CodeStored event for the uploaded code");
		// The storage deposit is held from the uploader.
		assert!(Balances::balance(&account(Alice)) < free_before);
	});
}

#[test]
fn oversized_contract_upload_is_rejected_with_code_too_large() {
	genesis("development").execute_with(|| {
		let code = minimal_contract(MAX_CONTRACT_CODE_LEN as usize + 1);
		assert!(code.len() > MAX_CONTRACT_CODE_LEN as usize);
		assert_noop!(
			Contracts::upload_code(
				RuntimeOrigin::signed(account(Alice)),
				code,
				None,
				Determinism::Enforced
			),
			pallet_contracts::Error::<Runtime>::CodeTooLarge
		);
	});
}

#[test]
fn contract_upload_that_is_not_wasm_is_rejected() {
	genesis("development").execute_with(|| {
		assert_noop!(
			Contracts::upload_code(
				RuntimeOrigin::signed(account(Alice)),
				b"definitely not wasm".to_vec(),
				None,
				Determinism::Enforced
			),
			pallet_contracts::Error::<Runtime>::CodeRejected
		);
	});
}

// ---- credit-weighted DPoS over real session rotations ------------------------------

mod sessions {
	use super::*;
	use codec::Encode;
	use frame_support::traits::{OnFinalize, OnInitialize};
	use medchain_runtime::{
		configs::{MinCandidateBond, SessionPeriod},
		Aura, Authorship, BlockNumber, SessionKeys,
	};
	use medchain_primitives::{HospitalGrade, InstitutionKind, Roles};
	use sp_consensus_aura::{Slot, AURA_ENGINE_ID};
	use sp_core::{proof_of_possession::ProofOfPossessionGenerator, Pair};
	use sp_runtime::{Digest, DigestItem};

	/// Blocks per session in these tests.
	const PERIOD: u32 = 10;

	/// A chain driven block by block through the real runtime's collator
	/// pallets: each block carries an Aura pre-digest for its slot, and
	/// authorship, reputation, session and Aura run their hooks in the
	/// runtime's order. A slot whose collator is silent produces no block.
	struct Chain {
		slot: u64,
		parent: medchain_runtime::Hash,
	}

	impl Chain {
		fn new() -> Self {
			SessionPeriod::set(&PERIOD);
			Chain { slot: 1_000, parent: System::parent_hash() }
		}

		/// The collator Aura gives the next slot to.
		fn next_author(&self) -> AccountId {
			let set = Session::validators();
			set[(self.slot + 1) as usize % set.len()].clone()
		}

		/// Advances one slot; builds a block unless its collator is `silent`.
		fn slot(&mut self, silent: &[AccountId]) {
			let author = self.next_author();
			self.slot += 1;
			if silent.contains(&author) {
				return;
			}
			let n: BlockNumber = System::block_number() + 1;
			let pre = DigestItem::PreRuntime(AURA_ENGINE_ID, Slot::from(self.slot).encode());
			System::initialize(&n, &self.parent, &Digest { logs: vec![pre] });
			type Collators = (Authorship, Reputation, Session, Aura);
			<Collators as OnInitialize<BlockNumber>>::on_initialize(n);
			<Collators as OnFinalize<BlockNumber>>::on_finalize(n);
			let header = System::finalize();
			self.parent = header.hash();
			frame_system::BlockHash::<Runtime>::insert(n, self.parent);
			assert!(!Session::validators().is_empty(), "the collator set emptied at block {n}");
			pallet_reputation::Pallet::<Runtime>::do_try_state().expect("reputation invariants");
		}

		/// Runs slots until `sessions` more sessions have started.
		fn sessions(&mut self, sessions: u32, silent: &[AccountId]) {
			let target = Session::current_index() + sessions;
			while Session::current_index() < target {
				self.slot(silent);
			}
		}
	}

	/// `who` joins as a producer hospital, registers session keys (with a real
	/// ownership proof) and becomes a collator candidate.
	fn become_candidate(k: sp_keyring::Sr25519Keyring) {
		let who = account(k);
		assert_ok!(Reputation::apply_for_membership(
			RuntimeOrigin::signed(who.clone()),
			b"Candidate Hospital".to_vec().try_into().unwrap(),
			InstitutionKind::Hospital { level: 3, grade: HospitalGrade::A },
			Roles { producer: true, validator: true, auditor: false },
		));
		assert_ok!(Reputation::approve_institution(RuntimeOrigin::root(), who.clone()));
		let mut pair = k.pair();
		let keys = SessionKeys { aura: pair.public().into() };
		let proof = pair.generate_proof_of_possession(&who.encode());
		assert_ok!(Session::set_keys(RuntimeOrigin::signed(who.clone()), keys, proof.encode()));
		assert_ok!(Reputation::register_as_candidate(
			RuntimeOrigin::signed(who),
			MinCandidateBond::get()
		));
	}

	fn credit(k: sp_keyring::Sr25519Keyring) -> u32 {
		pallet_reputation::Credits::<Runtime>::get(account(k)).unwrap_or(0)
	}

	#[test]
	fn newly_elected_collator_keeps_credit_over_real_session_rotations() {
		genesis("development").execute_with(|| {
			let mut chain = Chain::new();
			become_candidate(Bob);
			let mut seated = 0;
			for _ in 0..5 {
				chain.sessions(1, &[]);
				if Session::validators().contains(&account(Bob)) {
					seated += 1;
				}
				// Bob authors every slot it gets: never scored below its start.
				assert!(credit(Bob) >= 600, "Bob's credit fell to {}", credit(Bob));
				assert!(pallet_reputation::Candidates::<Runtime>::contains_key(account(Bob)));
			}
			assert!(Session::current_index() >= 5);
			assert!(seated >= 3, "Bob was seated in {seated} of 5 sessions");
			assert!(credit(Bob) > 600, "Bob authored its share and gained: {}", credit(Bob));
			assert!(credit(Alice) >= 600);
		});
	}

	#[test]
	fn collator_that_stops_authoring_loses_its_seat_within_two_sessions() {
		genesis("development").execute_with(|| {
			let mut chain = Chain::new();
			become_candidate(Bob);
			chain.sessions(3, &[]);
			assert_eq!(Session::validators(), vec![account(Alice), account(Bob)]);
			// Bob's node goes down: its slots stay empty from now on.
			chain.sessions(2, &[account(Bob)]);
			assert_eq!(Session::validators(), vec![account(Alice)], "Bob still seated");
			assert!(credit(Bob) < 400, "Bob's credit {}", credit(Bob));
			assert!(!pallet_reputation::Candidates::<Runtime>::contains_key(account(Bob)));
			// Alice, who authored every block, is still seated and in credit.
			assert!(credit(Alice) >= 600);
			chain.sessions(1, &[account(Bob)]);
			assert_eq!(Session::validators(), vec![account(Alice)]);
		});
	}

	#[test]
	fn invulnerables_without_session_keys_cannot_empty_the_collator_set() {
		genesis("development").execute_with(|| {
			let mut chain = Chain::new();
			// Governance names invulnerables that never registered session
			// keys (found by the runtime fuzzer): pallet-session would leave
			// every one of them out and the chain would have no collator.
			assert_ok!(Reputation::set_invulnerables(
				RuntimeOrigin::root(),
				vec![account(Bob), account(Charlie)]
			));
			chain.sessions(3, &[]);
			assert_eq!(Session::validators(), vec![account(Alice)]);
			// A keyless invulnerable next to one with keys: only the latter.
			assert_ok!(Reputation::set_invulnerables(
				RuntimeOrigin::root(),
				vec![account(Alice), account(Bob)]
			));
			chain.sessions(2, &[]);
			assert_eq!(Session::validators(), vec![account(Alice)]);
		});
	}

	#[test]
	fn zero_session_period_cannot_halt_the_chain() {
		genesis("development").execute_with(|| {
			let mut chain = Chain::new();
			// A governance mistake (or a dev's `system.setStorage`) writes 0:
			// sessions then last one block instead of dividing by zero.
			SessionPeriod::set(&0);
			let start = Session::current_index();
			for _ in 0..5 {
				chain.slot(&[]);
			}
			assert_eq!(Session::current_index(), start + 5);
			assert_eq!(Session::validators(), vec![account(Alice)]);
		});
	}

	/// `k` joins as a hospital that validates and does not produce.
	fn become_hospital(k: sp_keyring::Sr25519Keyring) {
		let who = account(k);
		assert_ok!(Reputation::apply_for_membership(
			RuntimeOrigin::signed(who.clone()),
			b"Training Hospital".to_vec().try_into().unwrap(),
			InstitutionKind::Hospital { level: 2, grade: HospitalGrade::A },
			Roles { producer: false, validator: true, auditor: false },
		));
		assert_ok!(Reputation::approve_institution(RuntimeOrigin::root(), who));
	}

	#[test]
	fn only_the_collators_of_the_session_aggregate_and_two_thirds_of_them_adopt() {
		use frame_support::BoundedVec;
		use medchain_runtime::FlTask;
		use pallet_fl_task::{
			AggregationRule, ModelKind, ModelParams, ModelUpdate, RoundPhase, Rounds, TaskSpec, TrainingHints,
			UpdateLimits, FIXED_ONE,
		};
		use sp_keyring::Sr25519Keyring::Dave;
		use sp_runtime::Permill;
		genesis("development").execute_with(|| {
			let mut chain = Chain::new();
			become_candidate(Bob);
			become_hospital(Charlie);
			become_hospital(Dave);
			let inline = |v: Vec<i64>| ModelParams::Inline(BoundedVec::truncate_from(v));
			let spec = TaskSpec {
				model: ModelKind::LogisticRegression { features: 3 },
				initial_model: inline(vec![0; 4]),
				hints: TrainingHints { epochs: 1, learning_rate: FIXED_ONE / 10, batch_size: 0 },
				target_accuracy: Permill::from_percent(99),
				max_rounds: 5,
				min_participants: 2,
				round_blocks: 10,
				rule: AggregationRule::FedAvg,
				aggregators_required: 2,
				limits: UpdateLimits { max_abs: 100 * FIXED_ONE, min_samples: 10, max_samples: 1_000, min_held_out: 10 },
				privacy: None,
			};
			let task = pallet_fl_task::NextTaskId::<Runtime>::get();
			assert_ok!(FlTask::publish_task(RuntimeOrigin::signed(account(Alice)), spec));
			for k in [Charlie, Dave] {
				assert_ok!(FlTask::join_task(RuntimeOrigin::signed(account(k)), task));
			}
			type Outliers = BoundedVec<AccountId, <Runtime as pallet_fl_task::Config>::MaxParticipants>;
			// Charlie and Dave train round `round`; it closes on the second
			// update, taking the session's collating producers as its
			// committee. The honest aggregate.
			let train = |round: u32| {
				for (k, p) in [(Charlie, vec![FIXED_ONE, 0, 0, 0]), (Dave, vec![0, FIXED_ONE, 0, 0])] {
					let update =
						ModelUpdate {
						params: inline(p),
						samples: 100,
						accuracy: Permill::from_percent(80),
						loss: 0,
						held_out: 20,
					};
					assert_ok!(FlTask::submit_update(RuntimeOrigin::signed(account(k)), task, round, update));
				}
				let (honest, outliers) = FlTask::compute_aggregate(task, round).unwrap();
				(honest, Outliers::truncate_from(outliers))
			};
			let vote = |k: sp_keyring::Sr25519Keyring, round: u32, aggregate: &(Vec<i64>, Outliers)| {
				FlTask::submit_aggregate(
					RuntimeOrigin::signed(account(k)),
					task,
					round,
					inline(aggregate.0.clone()),
					aggregate.1.clone(),
					2,
				)
				.map(|_| ())
				.map_err(|e| e.error)
			};
			let adopted = |round: u32| {
				matches!(Rounds::<Runtime>::get(task, round).unwrap().phase, RoundPhase::Adopted { .. })
			};
			let not_collator: sp_runtime::DispatchError = pallet_fl_task::Error::<Runtime>::NotCollator.into();

			// Round 0 closes while Alice alone collates: Bob, a producer
			// that does not collate, may not vote; Alice's vote adopts.
			let round0 = train(0);
			assert_eq!(vote(Bob, 0, &round0), Err(not_collator));
			assert_ok!(vote(Alice, 0, &round0));
			assert!(adopted(0));

			// pallet-session plans the next set one session ahead. Round 1
			// closes while Bob is only planned: he is not in its committee.
			let mut slots = 0;
			while !pallet_reputation::SelectedCollators::<Runtime>::get().contains(&account(Bob)) {
				chain.slot(&[]);
				slots += 1;
				assert!(slots < 100, "Bob was never selected");
			}
			assert!(!Session::validators().contains(&account(Bob)));
			let round1 = train(1);
			assert_eq!(vote(Bob, 1, &round1), Err(not_collator));
			assert_ok!(vote(Alice, 1, &round1));
			assert!(adopted(1));

			// Round 2 closes with Alice and Bob collating: Alice's vote alone
			// no longer adopts, Bob's agreeing vote does.
			while !Session::validators().contains(&account(Bob)) {
				chain.slot(&[]);
				slots += 1;
				assert!(slots < 100, "Bob was never seated");
			}
			let round2 = train(2);
			assert_ok!(vote(Alice, 2, &round2));
			assert!(!adopted(2));
			assert_ok!(vote(Bob, 2, &round2));
			assert!(adopted(2));

			// Round 3: Alice forges a model, Bob votes the honest one. The
			// committee is split, so the runtime aggregates the round
			// itself and adopts the honest model; Alice loses credit.
			let round3 = train(3);
			let forged = (round3.0.iter().map(|p| p + FIXED_ONE).collect::<Vec<_>>(), round3.1.clone());
			let before = credit(Alice);
			assert_ok!(vote(Alice, 3, &forged));
			assert!(!adopted(3));
			assert_ok!(vote(Bob, 3, &round3));
			assert!(adopted(3));
			assert_eq!(pallet_fl_task::GlobalModel::<Runtime>::get(task), Some(inline(round3.0.clone())));
			assert!(credit(Alice) < before, "the forger is mismatched: {} → {}", before, credit(Alice));
		});
	}

	#[test]
	fn farmed_credit_settles_below_the_maximum() {
		use medchain_primitives::{Behaviour, CreditReporter};
		genesis("development").execute_with(|| {
			let mut chain = Chain::new();
			let farmer = account(Alice);
			let mut peak = 0;
			// Every session the farmer reports far more gains than it may
			// keep (colluding institutions trading FL credit).
			for _ in 0..60 {
				for _ in 0..100 {
					<Reputation as CreditReporter<AccountId>>::report(&farmer, Behaviour::UpdateAccepted);
				}
				peak = peak.max(credit(Alice));
				chain.sessions(1, &[]);
			}
			// 20 points a session against 10 % drift to 600: it settles at
			// 780..=800, never near the 1000 maximum.
			assert!(peak <= 800, "credit peaked at {peak}");
			assert!(credit(Alice) >= 770, "credit {} did not approach the ceiling", credit(Alice));
		});
	}
}

/// Governance on the production-style preset (`medchain_local`): no sudo, a
/// council of three hospitals (Alice, Bob, Charlie) and three regulators
/// (Dave, Eve, Ferdie), driven through real `pallet-collective` motions.
mod governance {
	use super::*;
	use codec::Encode;
	use frame_support::{dispatch::GetDispatchInfo, traits::UnfilteredDispatchable};
	use medchain_primitives::{InstitutionKind, InstitutionStatus, Roles};
	use medchain_runtime::{
		configs::{dynamic_params, RuntimeParameters}, Council, RuntimeCall, RuntimeEvent,
	};
	use sp_keyring::Sr25519Keyring::{self as K, Dave, Eve};
	use sp_runtime::{traits::Hash as _, DispatchError};

	type CouncilI = pallet_collective::Instance1;
	type RegulatorsI = pallet_collective::Instance2;

	fn consortium() -> sp_io::TestExternalities {
		genesis("medchain_local")
	}

	/// Which body carries a motion.
	#[derive(Clone, Copy)]
	enum Body {
		Council,
		Regulators,
	}

	/// Proposes `call` in `body` with a threshold of `ayes.len()`; every
	/// account in `ayes` (the first proposes) votes aye, then the motion is
	/// closed. Returns the result the dispatched call had, or `None` if the
	/// motion did not pass.
	fn motion(body: Body, ayes: &[K], call: RuntimeCall) -> Option<Result<(), DispatchError>> {
		let len = call.encoded_size() as u32;
		let hash = <Runtime as frame_system::Config>::Hashing::hash_of(&call);
		let weight = call.get_dispatch_info().call_weight;
		System::reset_events();
		match body {
			Body::Council => carry::<CouncilI>(ayes, call, hash, weight, len),
			Body::Regulators => carry::<RegulatorsI>(ayes, call, hash, weight, len),
		}
		System::events().into_iter().find_map(|r| match r.event {
			RuntimeEvent::Council(pallet_collective::Event::Executed { result, .. }) |
			RuntimeEvent::Regulators(pallet_collective::Event::Executed { result, .. }) => Some(result),
			_ => None,
		})
	}

	/// Proposes, votes and closes `call` in collective `I` (see [`motion`]).
	fn carry<I: 'static>(ayes: &[K], call: RuntimeCall, hash: sp_core::H256, weight: frame_support::weights::Weight, len: u32)
	where
		Runtime: pallet_collective::Config<I, Proposal = RuntimeCall>,
	{
		type C<I> = pallet_collective::Pallet<Runtime, I>;
		let signed = |k: &K| RuntimeOrigin::signed(account(*k));
		let index = pallet_collective::ProposalCount::<Runtime, I>::get();
		let threshold = ayes.len() as u32;
		assert_ok!(C::<I>::propose(signed(&ayes[0]), threshold, Box::new(call), len));
		if threshold > 1 {
			for k in ayes {
				assert_ok!(C::<I>::vote(signed(k), hash, index, true));
			}
			assert_ok!(C::<I>::close(signed(&ayes[0]), hash, index, weight, len));
		}
	}

	fn reputation(call: pallet_reputation::Call<Runtime>) -> RuntimeCall {
		RuntimeCall::Reputation(call)
	}

	fn status(k: K) -> Option<InstitutionStatus> {
		pallet_reputation::Institutions::<Runtime>::get(account(k)).map(|i| i.status)
	}

	/// George applies as a hospital.
	fn george_applies() -> AccountId {
		let george = account(K::One);
		assert_ok!(Balances::force_set_balance(RuntimeOrigin::root(), george.clone().into(), 1_000 * UNIT));
		assert_ok!(Reputation::apply_for_membership(
			RuntimeOrigin::signed(george.clone()),
			b"New Hospital".to_vec().try_into().unwrap(),
			InstitutionKind::Hospital { level: 2, grade: medchain_primitives::HospitalGrade::B },
			Roles { producer: true, validator: true, auditor: false },
		));
		george
	}

	#[test]
	fn the_consortium_preset_has_no_sudo_and_founding_bodies() {
		consortium().execute_with(|| {
			assert_eq!(pallet_sudo::Key::<Runtime>::get(), None);
			let mut council = vec![account(Alice), account(Bob), account(Charlie)];
			council.sort();
			let mut regulators = vec![account(Dave), account(Eve), account(Ferdie)];
			regulators.sort();
			assert_eq!(pallet_collective::Members::<Runtime, CouncilI>::get(), council);
			assert_eq!(pallet_collective::Members::<Runtime, RegulatorsI>::get(), regulators);
			assert_eq!(pallet_reputation::Council::<Runtime>::get().to_vec(), council);
			assert_eq!(Session::validators(), vec![account(Alice), account(Bob)]);
		});
	}

	/// Every privileged call of the runtime, as a consortium would use it.
	fn privileged_calls(target: &AccountId) -> Vec<RuntimeCall> {
		let code_hash = sp_core::H256::repeat_byte(7);
		let upgrade = RuntimeCall::System(frame_system::Call::authorize_upgrade { code_hash });
		vec![
			reputation(pallet_reputation::Call::approve_institution { who: target.clone() }),
			reputation(pallet_reputation::Call::suspend_institution { who: account(Charlie) }),
			reputation(pallet_reputation::Call::remove_institution { who: account(Charlie) }),
			reputation(pallet_reputation::Call::set_roles { who: account(Charlie), roles: Roles::only(Role::Validator) }),
			reputation(pallet_reputation::Call::set_invulnerables { invulnerables: vec![account(Charlie)] }),
			RuntimeCall::Whitelist(pallet_whitelist::Call::whitelist_call {
				call_hash: <Runtime as frame_system::Config>::Hashing::hash_of(&upgrade),
			}),
			RuntimeCall::Whitelist(pallet_whitelist::Call::dispatch_whitelisted_call_with_preimage {
				call: Box::new(upgrade.clone()),
			}),
			RuntimeCall::Parameters(pallet_parameters::Call::set_parameter {
				key_value: RuntimeParameters::EhrIndex(dynamic_params::ehr_index::Parameters::ConfirmationsRequired(
					dynamic_params::ehr_index::ConfirmationsRequired,
					Some(5),
				)),
			}),
			RuntimeCall::Council(pallet_collective::Call::set_members {
				new_members: vec![account(Alice)],
				prime: None,
				old_count: 3,
			}),
			upgrade,
		]
	}

	#[test]
	fn a_signed_account_or_a_single_member_cannot_use_any_privileged_call() {
		consortium().execute_with(|| {
			let george = george_applies();
			for call in privileged_calls(&george) {
				let name: String = format!("{call:?}").chars().take(60).collect();
				for origin in [
					RuntimeOrigin::signed(account(Alice)),
					RuntimeOrigin::signed(account(Dave)),
					pallet_collective::RawOrigin::<AccountId, CouncilI>::Members(1, 3).into(),
					pallet_collective::RawOrigin::<AccountId, RegulatorsI>::Members(1, 3).into(),
				] {
					let before = sp_io::storage::root(sp_runtime::StateVersion::V1);
					let error = call.clone().dispatch_bypass_filter(origin).map_err(|e| e.error);
					// A signed account may only relay a dispatch both bodies
					// already agreed on; here none is waiting.
					let refused = error == Err(DispatchError::BadOrigin) ||
						(name.contains("dispatch_whitelisted") &&
							matches!(error, Err(DispatchError::Module(m)) if m.message == Some("DeferredDispatchNotFound")));
					assert!(refused, "{name} accepted a plain or single-member origin: {error:?}");
					assert_eq!(before, sp_io::storage::root(sp_runtime::StateVersion::V1), "{name}");
				}
				// Through the collective: a motion with a threshold of one
				// executes at once, as one member's vote.
				assert_eq!(
					motion(Body::Council, &[Alice], call.clone()),
					Some(Err(DispatchError::BadOrigin)),
					"{name}: one council member"
				);
			}
			assert_eq!(status(K::One), Some(InstitutionStatus::Pending));
		});
	}

	#[test]
	fn a_body_of_one_member_cannot_act_as_that_account() {
		consortium().execute_with(|| {
			let george = george_applies();
			let admit = reputation(pallet_reputation::Call::approve_institution { who: george });
			// All of a one-seat body, as pallet-collective would dispatch it.
			for origin in [
				pallet_collective::RawOrigin::<AccountId, CouncilI>::Members(1, 1).into(),
				pallet_collective::RawOrigin::<AccountId, RegulatorsI>::Members(1, 1).into(),
			] {
				let error = admit.clone().dispatch_bypass_filter(origin).map_err(|e| e.error);
				assert_eq!(error, Err(DispatchError::BadOrigin));
			}
			assert_eq!(status(K::One), Some(InstitutionStatus::Pending));
		});
	}

	#[test]
	fn admission_needs_two_thirds_of_the_council_and_the_regulators() {
		consortium().execute_with(|| {
			let george = george_applies();
			let admit = reputation(pallet_reputation::Call::approve_institution { who: george.clone() });
			// Two thirds of the council: waits for the regulators.
			assert_eq!(motion(Body::Council, &[Alice, Bob], admit.clone()), Some(Ok(())));
			assert_eq!(status(K::One), Some(InstitutionStatus::Pending));
			// One regulator is not a majority.
			assert_eq!(motion(Body::Regulators, &[Dave], admit.clone()), Some(Err(DispatchError::BadOrigin)));
			assert_eq!(status(K::One), Some(InstitutionStatus::Pending));
			assert_eq!(motion(Body::Regulators, &[Dave, Eve], admit), Some(Ok(())));
			assert_eq!(status(K::One), Some(InstitutionStatus::Active));
			// George now sits on the council.
			assert!(pallet_collective::Members::<Runtime, CouncilI>::get().contains(&george));
		});
	}

	#[test]
	fn removal_needs_the_regulators_and_they_can_veto_the_council() {
		consortium().execute_with(|| {
			let remove = reputation(pallet_reputation::Call::remove_institution { who: account(Charlie) });
			assert_eq!(motion(Body::Council, &[Alice, Bob], remove.clone()), Some(Ok(())));
			assert!(status(Charlie).is_some());
			assert_eq!(motion(Body::Regulators, &[Eve, Ferdie], remove), Some(Ok(())));
			assert_eq!(status(Charlie), None);
			assert!(!pallet_collective::Members::<Runtime, CouncilI>::get().contains(&account(Charlie)));

			// A council motion the regulators disapprove of is dropped.
			let suspend = reputation(pallet_reputation::Call::suspend_institution { who: account(Bob) });
			let hash = <Runtime as frame_system::Config>::Hashing::hash_of(&suspend);
			let len = suspend.encoded_size() as u32;
			assert_ok!(Council::propose(RuntimeOrigin::signed(account(Alice)), 2, Box::new(suspend), len));
			let veto = RuntimeCall::Council(pallet_collective::Call::disapprove_proposal { proposal_hash: hash });
			assert_eq!(motion(Body::Regulators, &[Dave, Eve], veto), Some(Ok(())));
			assert!(pallet_collective::ProposalOf::<Runtime, CouncilI>::get(hash).is_none());
			assert_eq!(status(Bob), Some(InstitutionStatus::Active));
		});
	}

	#[test]
	fn a_parameter_changes_by_council_motion_within_its_bounds() {
		consortium().execute_with(|| {
			type Confirmations = <Runtime as pallet_ehr_index::Config>::ConfirmationsRequired;
			use frame_support::traits::Get;
			assert_eq!(Confirmations::get(), 2);
			let set = |n| {
				RuntimeCall::Parameters(pallet_parameters::Call::set_parameter {
					key_value: RuntimeParameters::EhrIndex(
						dynamic_params::ehr_index::Parameters::ConfirmationsRequired(
							dynamic_params::ehr_index::ConfirmationsRequired,
							Some(n),
						),
					),
				})
			};
			assert_eq!(motion(Body::Council, &[Alice], set(3)), Some(Err(DispatchError::BadOrigin)));
			assert_eq!(motion(Body::Council, &[Alice, Charlie], set(3)), Some(Ok(())));
			assert!(System::events().iter().any(|r| matches!(
				r.event,
				RuntimeEvent::Parameters(pallet_parameters::Event::Updated { .. })
			)));
			assert_eq!(Confirmations::get(), 3);
			// One confirmation (or none) would let a single validator confirm:
			// the runtime reads 2.
			assert_eq!(motion(Body::Council, &[Alice, Charlie], set(0)), Some(Ok(())));
			assert_eq!(Confirmations::get(), 2);
		});
	}

	/// The code hash of the authorised upgrade, read from its storage item.
	fn authorized() -> Option<sp_core::H256> {
		let key = frame_support::storage::storage_prefix(b"System", b"AuthorizedUpgrade");
		// `CodeUpgradeAuthorization { code_hash, check_version }`.
		frame_support::storage::unhashed::get::<(sp_core::H256, bool)>(&key).map(|(hash, _)| hash)
	}

	#[test]
	fn a_runtime_upgrade_is_authorised_by_both_bodies_through_the_whitelist() {
		consortium().execute_with(|| {
			let code_hash = sp_core::H256::repeat_byte(9);
			let upgrade = RuntimeCall::System(frame_system::Call::authorize_upgrade_without_checks { code_hash });
			let dispatch = RuntimeCall::Whitelist(pallet_whitelist::Call::dispatch_whitelisted_call_with_preimage {
				call: Box::new(upgrade.clone()),
			});
			// The regulators alone: the dispatch waits for a whitelisting.
			assert_eq!(motion(Body::Regulators, &[Dave, Eve], dispatch.clone()), Some(Ok(())));
			assert_eq!(authorized(), None);
			// The council alone cannot dispatch.
			assert_eq!(motion(Body::Council, &[Alice, Bob, Charlie], dispatch), Some(Err(DispatchError::BadOrigin)));
			let whitelist = RuntimeCall::Whitelist(pallet_whitelist::Call::whitelist_call {
				call_hash: <Runtime as frame_system::Config>::Hashing::hash_of(&upgrade),
			});
			assert_eq!(motion(Body::Council, &[Alice, Bob], whitelist), Some(Ok(())));
			// The deferred dispatch can now be relayed by anyone.
			let relay = RuntimeCall::Whitelist(pallet_whitelist::Call::dispatch_whitelisted_call_with_preimage {
				call: Box::new(upgrade),
			});
			assert_ok!(relay.dispatch_bypass_filter(RuntimeOrigin::signed(account(Ferdie))));
			assert_eq!(authorized(), Some(code_hash));
		});
	}

	#[test]
	fn a_penalty_beyond_the_auditor_cap_takes_a_majority_of_regulators() {
		consortium().execute_with(|| {
			let reason: frame_support::BoundedVec<u8, _> = b"falsified records".to_vec().try_into().unwrap();
			let penalise = |points| {
				reputation(pallet_reputation::Call::penalise {
					who: account(Charlie),
					points,
					reason: reason.clone(),
				})
			};
			// Over the 200-point auditor cap: one auditor, or one regulator's
			// motion, is refused.
			assert_noop!(
				Reputation::penalise(RuntimeOrigin::signed(account(Dave)), account(Charlie), 300, reason.clone()),
				pallet_reputation::Error::<Runtime>::PenaltyCapExceeded
			);
			assert_eq!(motion(Body::Regulators, &[Dave], penalise(300)), Some(Err(DispatchError::BadOrigin)));
			assert_eq!(pallet_reputation::Credits::<Runtime>::get(account(Charlie)), Some(600));
			assert_eq!(motion(Body::Regulators, &[Dave, Eve], penalise(300)), Some(Ok(())));
			assert_eq!(pallet_reputation::Credits::<Runtime>::get(account(Charlie)), Some(300));
		});
	}

	/// Found by the fuzzer (an account's holds exceeded its open motions'
	/// deposits): `pallet-collective` keys a motion's deposit by the
	/// proposal's hash, so proposing a finished motion's call again
	/// overwrote the first deposit's record and left it on hold for ever —
	/// any member could do that to another. The runtime's call filter now
	/// refuses such a proposal until the finished motion's deposit is
	/// released.
	#[test]
	fn reproposing_a_finished_motion_cannot_lock_the_first_proposers_deposit() {
		use codec::Encode;
		use frame_support::traits::fungible::InspectHold;
		use sp_runtime::traits::Dispatchable;
		consortium().execute_with(|| {
			type Regulators = pallet_collective::Pallet<Runtime, RegulatorsI>;
			let hold = medchain_runtime::RuntimeHoldReason::Regulators(pallet_collective::HoldReason::ProposalSubmission);
			let held = |k: K| Balances::balance_on_hold(&hold, &account(k));
			let reason: frame_support::BoundedVec<u8, _> = b"late reports".to_vec().try_into().unwrap();
			let call = reputation(pallet_reputation::Call::penalise { who: account(Charlie), points: 10, reason });
			let hash = <Runtime as frame_system::Config>::Hashing::hash_of(&call);
			let propose = |k: K| {
				let length_bound = call.encoded_size() as u32;
				RuntimeCall::Regulators(pallet_collective::Call::propose { threshold: 2, proposal: Box::new(call.clone()), length_bound })
					.dispatch(RuntimeOrigin::signed(account(k)))
					.map(|_| ())
					.map_err(|e| e.error)
			};
			assert_eq!(motion(Body::Regulators, &[Dave, Eve], call.clone()), Some(Ok(())));
			let deposit = held(Dave);
			assert!(deposit > 0, "the motion held a deposit");
			// Eve proposes the same call again: refused, Dave's deposit stays
			// on record.
			assert_eq!(propose(Eve), Err(frame_system::Error::<Runtime>::CallFiltered.into()));
			assert!(pallet_collective::CostOf::<Runtime, RegulatorsI>::get(hash).is_some_and(|(who, _)| who == account(Dave)));
			assert_eq!(held(Eve), 0);
			// Anyone releases the finished motion's deposit; then the call
			// may be proposed again, under a new deposit.
			assert_ok!(Regulators::release_proposal_cost(RuntimeOrigin::signed(account(Eve)), hash));
			assert_eq!(held(Dave), 0);
			assert_eq!(propose(Eve), Ok(()));
			assert_eq!(held(Eve), deposit);
			// An open motion is refused as a duplicate, as before.
			assert_eq!(propose(Ferdie), Err(pallet_collective::Error::<Runtime, RegulatorsI>::DuplicateProposal.into()));
		});
	}
}

/// Patients' pseudonyms call without funds: a registered patient's own calls
/// are fee-less (within its allowance), through the runtime's real
/// transaction pipeline (`Executive::apply_extrinsic`, every extension).
mod free_patient_calls {
	use super::*;
	use codec::Encode;
	use frame_support::traits::Get;
	use medchain_runtime::{EhrIndex, Executive, RuntimeCall, UncheckedExtrinsic};
	use sp_core::{sr25519, Pair};
	use sp_runtime::transaction_validity::{InvalidTransaction, TransactionValidityError};

	/// `call` signed by `pair` as a wallet signs it, applied to the block.
	fn apply(pair: &sr25519::Pair, call: RuntimeCall) -> sp_runtime::ApplyExtrinsicResult {
		let nonce = System::account_nonce(AccountId::from(pair.public()));
		Executive::apply_extrinsic(signed(pair, call, nonce))
	}

	/// `call` signed by `pair` with `nonce`, as a wallet signs it.
	fn signed(pair: &sr25519::Pair, call: RuntimeCall, nonce: u32) -> UncheckedExtrinsic {
		let who: AccountId = pair.public().into();
		let tx_ext = medchain_runtime::tx_extension(sp_runtime::generic::Era::Immortal, nonce);
		let payload = sp_runtime::generic::SignedPayload::new(call, tx_ext).expect("implicit data");
		let signature = payload.using_encoded(|bytes| pair.sign(bytes));
		let (call, tx_ext, _) = payload.deconstruct();
		UncheckedExtrinsic::new_signed(call, who.into(), signature.into(), tx_ext)
	}

	/// A pseudonym of a patient for one hospital, derived in its wallet
	/// (hard derivation: nobody can link it to the root key).
	fn pseudonym(hospital: &str) -> sr25519::Pair {
		sr25519::Pair::from_string(&format!("//Patient//medchain//{hospital}"), None).unwrap()
	}

	/// Alice's hospital registers the pseudonym with its signed consent.
	fn register_at_alice(p: &sr25519::Pair) {
		let patient: AccountId = p.public().into();
		let message = EhrIndex::consent_message(&account(Alice), &patient, 0);
		assert_ok!(EhrIndex::register_patient(
			RuntimeOrigin::signed(account(Alice)),
			patient,
			p.sign(&message).into()
		));
	}

	/// The patient's pseudonym for Alice's hospital, registered there.
	fn registered_pseudonym() -> sr25519::Pair {
		let p = pseudonym("alice");
		register_at_alice(&p);
		p
	}

	fn withdraw(issuer: AccountId) -> RuntimeCall {
		RuntimeCall::EhrIndex(pallet_ehr_index::Call::withdraw_index_consent { issuer })
	}

	const CANNOT_PAY: TransactionValidityError = TransactionValidityError::Invalid(InvalidTransaction::Payment);

	#[test]
	fn a_registered_pseudonym_without_funds_makes_its_calls_for_free() {
		genesis("development").execute_with(|| {
			let p = pseudonym("alice");
			let who: AccountId = p.public().into();
			// Unregistered and unfunded, the pseudonym cannot even be sent.
			assert_eq!(apply(&p, withdraw(account(Alice))), Err(CANNOT_PAY));
			register_at_alice(&p);
			assert_eq!(Balances::balance(&who), 0);
			let issuance = Balances::total_issuance();
			// A patient call from proxy-reencrypt (its key; junk here, so the
			// dispatch fails: it still counts against the allowance).
			let key = RuntimeCall::ProxyReencrypt(pallet_proxy_reencrypt::Call::register_key {
				public_key: [7; 33],
				verifying_key: [7; 33],
			});
			assert!(matches!(apply(&p, key), Ok(Err(_))), "included, dispatch refused the junk key");
			// And from the index: withdrawing the consent succeeds.
			assert_eq!(apply(&p, withdraw(account(Alice))), Ok(Ok(())));
			assert_eq!(System::account_nonce(&who), 2, "both were included");
			assert_eq!(Balances::balance(&who), 0);
			assert_eq!(Balances::total_issuance(), issuance, "no fee was charged or minted");
			// Once no hospital sponsors it, it pays again (and cannot).
			assert_eq!(apply(&p, withdraw(account(Alice))), Err(CANNOT_PAY));
		});
	}

	#[test]
	fn a_registered_pseudonym_registers_its_scope_keys_for_free() {
		genesis("development").execute_with(|| {
			let p = registered_pseudonym();
			let who: AccountId = p.public().into();
			let root = medchain_umbral::secret_key(&[5; 32], b"root").unwrap();
			let key = |label: Vec<u8>| {
				medchain_umbral::Fixture::public(&medchain_umbral::scope_secret_key(&root, &label).unwrap())
			};
			let public = medchain_umbral::Fixture::public(&root);
			let calls = [
				pallet_proxy_reencrypt::Call::register_key { public_key: public, verifying_key: public },
				pallet_proxy_reencrypt::Call::register_kind_keys {
					keys: vec![(pallet_ehr_index::RecordKind::LabResult, key(medchain_umbral::kind_label("LabResult")))].try_into().unwrap(),
				},
				pallet_proxy_reencrypt::Call::add_record_keys {
					first: 0,
					keys: (0..16).map(|i| key(medchain_umbral::record_label(i))).collect::<Vec<_>>().try_into().unwrap(),
				},
			];
			for call in calls {
				assert_eq!(apply(&p, RuntimeCall::ProxyReencrypt(call)), Ok(Ok(())));
			}
			assert_eq!(Balances::balance(&who), 0, "never funded, nothing charged");
			assert_eq!(pallet_proxy_reencrypt::RecordKeyPool::<Runtime>::get(&who).len(), 16);
			assert!(pallet_proxy_reencrypt::KindKeys::<Runtime>::contains_key(&who, pallet_ehr_index::RecordKind::LabResult));
		});
	}

	#[test]
	fn a_registered_pseudonym_cannot_make_other_calls_for_free() {
		genesis("development").execute_with(|| {
			let p = registered_pseudonym();
			let transfer = RuntimeCall::Balances(pallet_balances::Call::transfer_allow_death {
				dest: account(Bob).into(),
				value: 0,
			});
			assert_eq!(apply(&p, transfer), Err(CANNOT_PAY));
			let remark = RuntimeCall::System(frame_system::Call::remark { remark: vec![0; 1000] });
			assert_eq!(apply(&p, remark), Err(CANNOT_PAY));
		});
	}

	#[test]
	fn a_registered_pseudonym_cannot_flood_blocks_for_free() {
		genesis("development").execute_with(|| {
			let p = registered_pseudonym();
			let allowance: u32 = <<Runtime as pallet_ehr_index::Config>::FreeCallsPerWindow as Get<u32>>::get();
			// Failing calls (erasing a record that does not exist) are the
			// cheapest way to take block space: they count too.
			let erase = || RuntimeCall::EhrIndex(pallet_ehr_index::Call::erase_record { record_id: 999 });
			for _ in 0..allowance {
				assert!(matches!(apply(&p, erase()), Ok(Err(_))));
			}
			assert_eq!(apply(&p, erase()), Err(CANNOT_PAY));
			// An hour later the allowance is back.
			let window: u32 = <<Runtime as pallet_ehr_index::Config>::FreeCallWindow as Get<u32>>::get();
			System::set_block_number(System::block_number() + window);
			assert!(matches!(apply(&p, erase()), Ok(Err(_))));
			// A funded account pays as before: its own fee, the allowance untouched.
			let before = Balances::balance(&account(Ferdie));
			assert_eq!(apply(&Ferdie.pair(), erase()).map(|r| r.is_err()), Ok(true));
			assert!(Balances::balance(&account(Ferdie)) < before, "Ferdie paid a fee");
		});
	}

	#[test]
	fn the_runtime_migrations_give_registered_patients_their_allowance() {
		use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
		genesis("development").execute_with(|| {
			let p = pseudonym("alice");
			let who: AccountId = p.public().into();
			register_at_alice(&p);
			// A record of the patient erased before version 1, in the layout
			// of versions 0 and 1: it names its patient, kind and size.
			let erased = old_erased_record(&who);
			// As storage version 0 left it: the consent encoded as
			// `{ given, generation }`, no allowance, no provider reference.
			frame_support::storage::unhashed::put(
				&pallet_ehr_index::IndexConsents::<Runtime>::hashed_key_for(&who, account(Alice)),
				&(true, 0u32),
			);
			pallet_ehr_index::FreeCalls::<Runtime>::remove(&who);
			frame_system::Pallet::<Runtime>::dec_providers(&who).unwrap();
			StorageVersion::new(0).put::<EhrIndex>();
			assert_eq!(apply(&p, withdraw(account(Alice))), Err(CANNOT_PAY));
			<medchain_runtime::Migrations as OnRuntimeUpgrade>::on_runtime_upgrade();
			assert_eq!(EhrIndex::on_chain_storage_version(), 2);
			assert_eq!(pallet_ehr_index::FreeCalls::<Runtime>::get(&who).map(|a| a.sponsors), Some(1));
			assert!(pallet_ehr_index::IndexConsents::<Runtime>::get(&who, account(Alice)).sponsored);
			let r = pallet_ehr_index::Records::<Runtime>::get(erased).expect("still decodes");
			assert_eq!((r.kind, r.size), (None, 0), "erasure forgets kind and size");
			assert_eq!(r.patient, EhrIndex::nobody(&account(Alice)));
			assert!(!pallet_ehr_index::PatientRecords::<Runtime>::contains_key(&who, erased));
			EhrIndex::do_try_state().expect("sponsors match the consents in force, erased records unlinked");
			assert_eq!(apply(&p, withdraw(account(Alice))), Ok(Ok(())));
		});
	}

	/// Alice's hospital publishes a record of `patient`, rewritten as an
	/// erased record in the layout of storage versions 0 and 1.
	fn old_erased_record(patient: &AccountId) -> u64 {
		use pallet_ehr_index::{ContentDigest, DigestAlgorithm, RecordKind, RecordStatus, StorePointer};
		let id = pallet_ehr_index::NextRecordId::<Runtime>::get();
		assert_ok!(EhrIndex::publish_record(
			RuntimeOrigin::signed(account(Alice)),
			patient.clone(),
			RecordKind::Imaging,
			ContentDigest { algorithm: DigestAlgorithm::Sm3, digest: [7; 32] },
			StorePointer {
				store_id: b"alice".to_vec().try_into().unwrap(),
				collection: b"records".to_vec().try_into().unwrap(),
				object_id: [1; 12],
			},
			100,
			Default::default(),
		));
		let r = pallet_ehr_index::Records::<Runtime>::get(id).unwrap();
		let mut old = pallet_ehr_index::migrations::v2::RecordV1::downgrade(r, RecordKind::Imaging);
		old.pointer = None;
		old.status = RecordStatus::Erased;
		frame_support::storage::unhashed::put(&pallet_ehr_index::Records::<Runtime>::hashed_key_for(id), &old);
		id
	}

	#[test]
	fn patient_calls_in_a_batch_are_not_free() {
		genesis("development").execute_with(|| {
			let p = registered_pseudonym();
			let batch = RuntimeCall::Utility(pallet_utility::Call::batch { calls: vec![withdraw(account(Alice))] });
			assert_eq!(apply(&p, batch), Err(CANNOT_PAY));
		});
	}

	#[test]
	fn the_pool_holds_one_free_call_of_an_account_at_a_time() {
		use sp_runtime::transaction_validity::TransactionSource;
		genesis("development").execute_with(|| {
			let p = registered_pseudonym();
			let erase = || RuntimeCall::EhrIndex(pallet_ehr_index::Call::erase_record { record_id: 999 });
			let at = System::parent_hash();
			let check = |nonce| Executive::validate_transaction(TransactionSource::External, signed(&p, erase(), nonce), at);
			let (first, second) = (check(0).expect("valid"), check(1).expect("valid"));
			// Both are valid against this state; the pool sees them provide
			// the same free-call tag and keeps one.
			let shared: Vec<_> = first.provides.iter().filter(|t| second.provides.contains(t)).collect();
			assert_eq!(shared.len(), 1, "one tag in common: the free call's");
			assert!(matches!(apply(&p, erase()), Ok(Err(_))));
			let next = check(1).expect("valid");
			assert!(!next.provides.iter().any(|t| first.provides.contains(t)), "the next free call may wait now");
		});
	}
}
