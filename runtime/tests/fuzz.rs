//! Runtime fuzzer: random call sequences across Medchain's four pallets
//! (and balances, utility, session) on the real `medchain_runtime::Runtime`,
//! natively, block by block, with every pallet's `try_state` and the
//! cross-pallet invariants below checked after every block.
//!
//! ```text
//! FUZZ_CALLS=20000 FUZZ_SEED=1 cargo test -p medchain-runtime --test fuzz -- --nocapture
//! ./scripts/fuzz.sh [calls] [seed]
//! ```
//!
//! Arguments are drawn (with `rand`'s ChaCha generator, so a seed replays
//! exactly) from what exists: accounts that are institutions, records,
//! grants, requests and tasks in storage, real Umbral keys, capsules, key
//! fragments and capsule fragments prepared once; about one argument in
//! eight is deliberately wrong or extreme (zero, maximum, oversize, another
//! party's id, a self-reference). A failure prints the seed, the block and
//! the calls of the last blocks.

use codec::{Decode, Encode};
use frame_support::{
	dispatch::GetDispatchInfo,
	traits::{
		fungible::InspectHold,
		Get, GetCallMetadata, GetCallName, OnFinalize, OnInitialize, PalletInfoAccess,
	},
	BoundedVec,
};
use medchain_primitives::{AccessPurpose, HospitalGrade, InstitutionKind, RecordKind, Roles};
use medchain_runtime::{
	configs::{MinCandidateBond, SessionPeriod},
	genesis_config_presets::get_preset,
	AccountId, Aura, Authorship, Balances, BlockNumber, Council, EhrIndex, FlTask, ProxyReencrypt, Regulators, Reputation, Runtime,
	RuntimeCall, RuntimeEvent, RuntimeGenesisConfig, RuntimeHoldReason, RuntimeOrigin, Session, SessionKeys, System,
	Utility, UNIT,
};
use pallet_ehr_index::{ContentDigest, DigestAlgorithm, StorePointer, Vote};
use pallet_fl_task::{
	AggregationRule, DifferentialPrivacy, Fixed, ModelKind, ModelParams, ModelRef, ModelUpdate, TaskSpec, TrainingHints, UpdateLimits,
	FIXED_ONE,
};
use pallet_proxy_reencrypt::{EmergencyReason, GrantScope, KeyCapsule, ScopedCapsules, SealedFragment};
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sp_consensus_aura::{Slot, AURA_ENGINE_ID};
use sp_core::{proof_of_possession::ProofOfPossessionGenerator, Pair, H256};
use sp_keyring::Sr25519Keyring as K;
use sp_runtime::{
	traits::{Dispatchable, Hash as _},
	Digest, DigestItem, DispatchError, Permill};
use std::{
	collections::{BTreeMap, BTreeSet, VecDeque},
	time::Instant,
};

type CouncilI = pallet_collective::Instance1;
type RegulatorsI = pallet_collective::Instance2;

/// Blocks per session while fuzzing: rotations happen often.
const PERIOD: u32 = 8;
/// Blocks per episode: each starts again from the consortium's set-up.
const EPISODE_BLOCKS: u64 = 100;
/// Blocks whose calls a failure report replays.
const REPLAY_BLOCKS: usize = 4;
/// The errors that stop a call at its door (wrong caller), not in its logic.
const GATES: &[&str] = &[
	"BadOrigin",
	"NotInstitution",
	"NotAggregator",
	"NotAuditor",
	"NotProducer",
	"NotValidator",
	"NotPatient",
	"NotGrantee",
	"NotIssuer",
	"NotParticipant",
	"NotPublisher",
	"NotProxyOfGrant",
];

/// Applies a JSON patch onto a JSON document, as the chain-spec builder does.
fn merge(base: &mut Value, patch: Value) {
	match (base, patch) {
		(Value::Object(base), Value::Object(patch)) =>
			for (k, v) in patch {
				merge(base.entry(k).or_insert(Value::Null), v);
			},
		(base, patch) => *base = patch,
	}
}

/// Externalities holding the development preset's genesis state.
fn development() -> sp_io::TestExternalities {
	let patch: Value = serde_json::from_slice(&get_preset(&"development".to_string()).unwrap()).unwrap();
	let mut full = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
	merge(&mut full, patch);
	let config: RuntimeGenesisConfig = serde_json::from_value(full).unwrap();
	sp_io::TestExternalities::new(frame_support::sp_runtime::BuildStorage::build_storage(&config).unwrap())
}

/// Umbral material of one patient–grantee pair, prepared once.
struct Umbral {
	patient: AccountId,
	grantee: AccountId,
	capsule: KeyCapsule,
	sealed: Vec<(SealedFragment<frame_support::traits::ConstU32<512>>, [u8; 32])>,
	cfrags: Vec<Vec<u8>>,
}

/// The fuzzer's state: its generator, its actors and what it counted.
struct Fuzzer {
	rng: ChaCha8Rng,
	seed: u64,
	/// Every account that acts (the endowed development accounts).
	actors: Vec<AccountId>,
	/// Institutions that registered an Umbral proxy key.
	proxies: Vec<AccountId>,
	umbral: Vec<Umbral>,
	slot: u64,
	parent: H256,
	/// Calls of the last blocks, for the failure report.
	replay: VecDeque<Vec<String>>,
	outcomes: BTreeMap<String, u64>,
	calls_seen: BTreeSet<String>,
	/// What each proposed motion would call, by proposal hash.
	motions: BTreeMap<H256, String>,
	calls: u64,
	past_gate: u64,
	/// Time spent dispatching calls, and checking invariants.
	dispatching: std::time::Duration,
	checking: std::time::Duration,
}

fn account(k: K) -> AccountId {
	k.to_account_id()
}

fn signed(who: &AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who.clone())
}

fn bounded<S: frame_support::traits::Get<u32>>(bytes: Vec<u8>) -> BoundedVec<u8, S> {
	BoundedVec::truncate_from(bytes)
}

impl Fuzzer {
	fn new(seed: u64) -> Self {
		let keyrings: Vec<K> = K::well_known().collect();
		Fuzzer {
			rng: ChaCha8Rng::seed_from_u64(seed),
			seed,
			actors: keyrings.iter().map(|k| account(*k)).collect(),
			proxies: Vec::new(),
			umbral: Vec::new(),
			slot: 1_000,
			parent: H256::zero(),
			replay: VecDeque::new(),
			outcomes: BTreeMap::new(),
			calls_seen: BTreeSet::new(),
			motions: BTreeMap::new(),
			calls: 0,
			past_gate: 0,
			dispatching: Default::default(),
			checking: Default::default(),
		}
	}

	// ---- blocks -------------------------------------------------------------------

	/// Opens the next block: Aura pre-digest, timestamp, and the hooks of the
	/// collator pallets and of Medchain's pallets, in the runtime's order.
	fn begin_block(&mut self) {
		self.slot += 1;
		let n: BlockNumber = System::block_number() + 1;
		let pre = DigestItem::PreRuntime(AURA_ENGINE_ID, Slot::from(self.slot).encode());
		System::initialize(&n, &self.parent, &Digest { logs: vec![pre] });
		pallet_timestamp::Now::<Runtime>::put(self.slot * 6_000);
		type Hooks = (Authorship, Reputation, Session, Aura, EhrIndex, FlTask, ProxyReencrypt);
		<Hooks as OnInitialize<BlockNumber>>::on_initialize(n);
		self.replay.push_back(Vec::new());
		if self.replay.len() > REPLAY_BLOCKS {
			self.replay.pop_front();
		}
	}

	/// Closes the block and checks every invariant.
	fn end_block(&mut self) {
		let n = System::block_number();
		type Hooks = (Authorship, Reputation, Session, Aura, EhrIndex, FlTask, ProxyReencrypt);
		<Hooks as OnFinalize<BlockNumber>>::on_finalize(n);
		let header = System::finalize();
		self.parent = header.hash();
		frame_system::BlockHash::<Runtime>::insert(n, self.parent);
		let started = Instant::now();
		let checked = self.check_invariants();
		self.checking += started.elapsed();
		if let Err(e) = checked {
			self.fail(&format!("invariant broken after block {n}: {e}"));
		}
	}

	fn check_invariants(&self) -> Result<(), String> {
		let s = |e: sp_runtime::TryRuntimeError| format!("{e:?}");
		pallet_reputation::Pallet::<Runtime>::do_try_state().map_err(s)?;
		pallet_ehr_index::Pallet::<Runtime>::do_try_state().map_err(s)?;
		pallet_proxy_reencrypt::Pallet::<Runtime>::do_try_state().map_err(s)?;
		pallet_fl_task::Pallet::<Runtime>::do_try_state().map_err(s)?;
		// Total issuance is what the accounts hold, free and held; every
		// hold is exactly what the pallets say it is for.
		let mut total: u128 = 0;
		let deposits = (motion_deposits::<CouncilI>(), motion_deposits::<RegulatorsI>());
		for (who, info) in frame_system::Account::<Runtime>::iter() {
			total = total.saturating_add(info.data.free).saturating_add(info.data.reserved);
			let mut expected_total: u128 = 0;
			for (reason, expected) in expected_holds(&who, &deposits) {
				let held = Balances::balance_on_hold(&reason, &who);
				if held != expected {
					return Err(format!("{who} holds {held} for {reason:?}, the pallets account for {expected}"));
				}
				expected_total = expected_total.saturating_add(expected);
			}
			let held = Balances::total_balance_on_hold(&who);
			if held != expected_total {
				return Err(format!("{who} holds {held} in all, the pallets account for {expected_total}"));
			}
		}
		if total != Balances::total_issuance() {
			return Err(format!("accounts hold {total}, issuance is {}", Balances::total_issuance()));
		}
		if Session::validators().is_empty() {
			return Err("the collator set is empty".into());
		}
		let max = <Runtime as pallet_reputation::Config>::MaxCredit::get();
		if let Some((who, c)) = pallet_reputation::Credits::<Runtime>::iter().find(|(_, c)| *c > max) {
			return Err(format!("{who} has credit {c} over {max}"));
		}
		for id in pallet_proxy_reencrypt::OpenRequests::<Runtime>::get() {
			let r = pallet_proxy_reencrypt::Requests::<Runtime>::get(id).ok_or(format!("open request {id} missing"))?;
			if !pallet_proxy_reencrypt::Grants::<Runtime>::contains_key(r.grant) {
				return Err(format!("request {id} under missing grant {}", r.grant));
			}
			if pallet_ehr_index::Records::<Runtime>::get(r.record).is_none() {
				return Err(format!("request {id} for missing record {}", r.record));
			}
		}
		Ok(())
	}

	fn fail(&self, what: &str) -> ! {
		let mut report = format!("fuzzer failure (seed {}): {what}\ncalls of the last blocks:\n", self.seed);
		for (i, block) in self.replay.iter().enumerate() {
			report.push_str(&format!("  block -{}:\n", self.replay.len() - 1 - i));
			for call in block {
				report.push_str(&format!("    {call}\n"));
			}
		}
		report.push_str(&format!(
			"replay: FUZZ_EPISODE_BLOCKS={} ./scripts/fuzz.sh {} {}",
			env_or("FUZZ_EPISODE_BLOCKS", EPISODE_BLOCKS),
			self.calls,
			self.seed
		));
		panic!("{report}");
	}

	// ---- dispatch -----------------------------------------------------------------

	/// Dispatches `call` from `origin`; counts the outcome. A panic is a
	/// failure.
	fn dispatch(&mut self, origin: RuntimeOrigin, who: &str, call: RuntimeCall) -> bool {
		let meta = call.get_call_metadata();
		let name = format!("{}.{}", meta.pallet_name, meta.function_name);
		let line = format!("{who} {call:?}");
		let line = if line.len() > 240 { format!("{}…", &line[..line.floor_char_boundary(240)]) } else { line };
		if let Some(block) = self.replay.back_mut() {
			block.push(line);
		}
		let declared = call.get_dispatch_info().call_weight;
		let events_before = event_count();
		let started = Instant::now();
		let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.dispatch(origin)));
		self.dispatching += started.elapsed();
		let result = match outcome {
			Ok(result) => result,
			Err(_) => self.fail(&format!("{name} panicked")),
		};
		// A call may refund weight it did not use, never charge more than it
		// declared: the block's weight accounting trusts the declaration.
		let actual = match &result {
			Ok(post) => post.actual_weight,
			Err(e) => e.post_info.actual_weight,
		};
		if let Some(actual) = actual.filter(|a| a.any_gt(declared)) {
			self.fail(&format!("{name} used {actual:?}, more than its declared {declared:?}"));
		}
		self.count_motions(events_before);
		self.calls += 1;
		self.calls_seen.insert(name.clone());
		let key = match result {
			Ok(_) => format!("{name}: ok"),
			Err(e) => format!("{name}: {}", error_name(&e.error)),
		};
		let error = key.split_once(": ").map_or("", |(_, e)| e.split('@').next().unwrap_or(""));
		let gated = GATES.contains(&error);
		if !gated {
			self.past_gate += 1;
		}
		*self.outcomes.entry(key).or_default() += 1;
		result.is_ok()
	}

	fn signed_call(&mut self, who: &AccountId, call: RuntimeCall) -> bool {
		let name = format!("{}", who).chars().take(8).collect::<String>();
		self.dispatch(signed(who), &name, call)
	}

	fn root_call(&mut self, call: RuntimeCall) -> bool {
		self.dispatch(RuntimeOrigin::root(), "root", call)
	}

	/// Counts the outcome of every call a motion executed in the last
	/// dispatch, as `<call> by <body>: <outcome>`.
	fn count_motions(&mut self, events_before: u32) {
		let events = System::read_events_no_consensus().skip(events_before as usize);
		let executed: Vec<(H256, sp_runtime::DispatchResult, &str)> = events
			.filter_map(|record| match record.event {
				RuntimeEvent::Council(pallet_collective::Event::Executed { proposal_hash, result }) =>
					Some((proposal_hash, result, "Council")),
				RuntimeEvent::Regulators(pallet_collective::Event::Executed { proposal_hash, result }) =>
					Some((proposal_hash, result, "Regulators")),
				_ => None,
			})
			.collect();
		for (hash, result, body) in executed {
			let name = self.motions.get(&hash).cloned().unwrap_or_else(|| "?".into());
			self.calls_seen.insert(name.clone());
			let key = match result {
				Ok(()) => format!("{name} by {body}: ok"),
				Err(e) => format!("{name} by {body}: {}", error_name(&e)),
			};
			*self.outcomes.entry(key).or_default() += 1;
		}
	}

	// ---- governance ---------------------------------------------------------------

	/// A step of a motion in the council or the regulators.
	fn governance_action(&mut self) {
		if self.one_in(2) {
			self.motion_step::<CouncilI>();
		} else {
			self.motion_step::<RegulatorsI>();
		}
	}

	/// A call the governing bodies decide: admissions, suspensions,
	/// removals, roles, uncapped penalties, invulnerables, break-glass
	/// reviews and task cancellations.
	fn governed_call(&mut self) -> RuntimeCall {
		use pallet_reputation::Call as C;
		let who = self.institution();
		match self.rng.gen_range(0..8) {
			0 => reputation(C::approve_institution { who }),
			1 => reputation(C::suspend_institution { who }),
			2 => reputation(C::remove_institution { who }),
			3 => {
				let roles = Roles { producer: self.rng.gen(), validator: self.rng.gen(), auditor: self.rng.gen() };
				reputation(C::set_roles { who, roles })
			},
			4 => {
				let points = self.number(300);
				reputation(C::penalise { who, points, reason: bounded(b"found by the regulators".to_vec()) })
			},
			5 => {
				let n = self.rng.gen_range(0..4);
				let invulnerables = (0..n).map(|_| self.institution()).collect();
				reputation(C::set_invulnerables { invulnerables })
			},
			6 => {
				let request = self.id(pallet_proxy_reencrypt::NextRequestId::<Runtime>::get());
				proxy(pallet_proxy_reencrypt::Call::review_emergency { request, justified: self.rng.gen() })
			},
			_ => {
				let task = self.id(pallet_fl_task::NextTaskId::<Runtime>::get() as u64) as u32;
				fl(pallet_fl_task::Call::cancel_task { task })
			},
		}
	}

	/// Proposes a governed call, votes on an open motion or closes one, in
	/// collective `I`; mostly by members, with sound thresholds and bounds,
	/// sometimes not.
	fn motion_step<I: 'static>(&mut self)
	where
		Runtime: pallet_collective::Config<I, Proposal = RuntimeCall, Hash = H256>,
		RuntimeCall: From<pallet_collective::Call<Runtime, I>>,
	{
		use pallet_collective::Call as C;
		let members = pallet_collective::Members::<Runtime, I>::get();
		let who = match members.choose(&mut self.rng) {
			Some(m) if !self.one_in(8) => m.clone(),
			_ => self.actor(),
		};
		let open = pallet_collective::Proposals::<Runtime, I>::get();
		let index_of = |hash: &H256| {
			pallet_collective::Voting::<Runtime, I>::get(hash)
				.and_then(|votes| u32::decode(&mut &votes.encode()[..]).ok())
				.unwrap_or(0)
		};
		let step = self.rng.gen_range(0..7);
		if step == 6 {
			// Releases the deposit of a motion, finished or not.
			let costs: Vec<H256> = pallet_collective::CostOf::<Runtime, I>::iter_keys().take(16).collect();
			let Some(hash) = costs.choose(&mut self.rng).copied() else { return };
			let call: pallet_collective::Call<Runtime, I> = C::release_proposal_cost { proposal_hash: hash };
			self.signed_call(&who, call.into());
			return;
		}
		let call: pallet_collective::Call<Runtime, I> = match open.choose(&mut self.rng).copied() {
			Some(hash) if (1..=3).contains(&step) => C::vote { proposal: hash, index: index_of(&hash), approve: !self.one_in(5) },
			Some(hash) if step > 3 => {
				let proposal = pallet_collective::ProposalOf::<Runtime, I>::get(hash);
				let (weight, len) = proposal
					.map(|p| (p.get_dispatch_info().call_weight, p.encoded_size() as u32))
					.unwrap_or_default();
				let weight = if self.one_in(10) { frame_support::weights::Weight::zero() } else { weight };
				C::close { proposal_hash: hash, index: index_of(&hash), proposal_weight_bound: weight, length_bound: len }
			},
			_ => {
				let proposal = self.governed_call();
				let len = proposal.encoded_size() as u32;
				let size = members.len() as u32;
				let threshold = match self.rng.gen_range(0..8) {
					0 => 1,
					1 => 0,
					2 => size.saturating_add(1),
					_ => (size * 2).div_ceil(3).max(2),
				};
				let length_bound = if self.one_in(10) { len.saturating_sub(1) } else { len };
				let meta = proposal.get_call_metadata();
				let hash = <Runtime as frame_system::Config>::Hashing::hash_of(&proposal);
				self.motions.insert(hash, format!("{}.{}", meta.pallet_name, meta.function_name));
				C::propose { threshold, proposal: Box::new(proposal), length_bound }
			},
		};
		self.signed_call(&who, call.into());
	}

	// ---- set-up -------------------------------------------------------------------

	/// A consortium to act in: producers, validators, auditors, proxies with
	/// Umbral keys, patients and grantees with theirs.
	fn set_up(&mut self) {
		SessionPeriod::set(&PERIOD);
		System::set_block_number(1);
		self.parent = System::parent_hash();
		self.begin_block();
		let roles = |p, v, a| Roles { producer: p, validator: v, auditor: a };
		let members = [
			(K::Bob, roles(true, true, false)),
			(K::Charlie, roles(false, true, true)),
			(K::Dave, roles(true, true, false)),
			(K::Eve, roles(false, false, true)),
			(K::Ferdie, roles(true, false, false)),
		];
		for (k, r) in members {
			let who = account(k);
			let kind = InstitutionKind::Hospital { level: 3, grade: HospitalGrade::A };
			let name = bounded(format!("{k:?} hospital").into_bytes());
			assert!(self.signed_call(&who, reputation(pallet_reputation::Call::apply_for_membership { name, kind, roles: r })));
			assert!(self.root_call(reputation(pallet_reputation::Call::approve_institution { who: who.clone() })));
			let pair = k.pair();
			let keys = SessionKeys { aura: pair.public().into() };
			let proof = pair.clone().generate_proof_of_possession(&who.encode());
			assert!(self.signed_call(&who, RuntimeCall::Session(pallet_session::Call::set_keys { keys, proof: proof.encode() })));
		}
		// Umbral: three patients (stash accounts) and their grantees; Bob,
		// Dave and Ferdie serve as proxies.
		let proxies = [account(K::Bob), account(K::Dave), account(K::Ferdie)];
		let stashes = [K::AliceStash, K::BobStash, K::CharlieStash];
		let grantees = [K::DaveStash, K::EveStash, K::FerdieStash];
		for (i, (patient, grantee)) in stashes.iter().zip(grantees.iter()).enumerate() {
			let mut fx = medchain_umbral::Fixture::new(i as u8 + 1, proxies.len());
			let (patient, grantee) = (account(*patient), account(*grantee));
			let call = proxy(pallet_proxy_reencrypt::Call::register_key {
				public_key: medchain_umbral::Fixture::public(&fx.patient),
				verifying_key: fx.verifying(),
			});
			assert!(self.signed_call(&patient, call));
			let g = medchain_umbral::Fixture::public(&fx.grantee);
			assert!(self.signed_call(&grantee, proxy(pallet_proxy_reencrypt::Call::register_key { public_key: g, verifying_key: g })));
			if i == 0 {
				for (p, sk) in proxies.iter().zip(fx.proxies.iter()) {
					let public_key = medchain_umbral::Fixture::public(sk);
					assert!(self.signed_call(p, proxy(pallet_proxy_reencrypt::Call::register_proxy { public_key })));
				}
			}
			let (capsule, ciphertext) = fx.capsule();
			let capsule = KeyCapsule { capsule: bounded(capsule), ciphertext: bounded(ciphertext) };
			let sealed = fx.sealed_kfrags(2);
			let cfrags = (0..proxies.len())
				.map(|j| fx.cfrag(j, &capsule.capsule[..], &sealed[j]).expect("a fixture's capsule fragment"))
				.collect();
			let sealed = sealed
				.into_iter()
				.map(|s| (SealedFragment { capsule: bounded(s.capsule), ciphertext: bounded(s.ciphertext) }, s.kfrag_id))
				.collect();
			self.umbral.push(Umbral { patient, grantee, capsule, sealed, cfrags });
		}
		self.proxies = proxies.to_vec();
		// Time limits at their floors, so that within an episode requests
		// time out, confirmation periods end and aggregation rounds expire.
		use medchain_runtime::configs::{dynamic_params as dp, RuntimeParameters as P};
		for key_value in [
			P::ProxyReencrypt(dp::proxy_reencrypt::Parameters::RequestTimeout(dp::proxy_reencrypt::RequestTimeout, Some(10))),
			P::ProxyReencrypt(dp::proxy_reencrypt::Parameters::MinRequestInterval(
				dp::proxy_reencrypt::MinRequestInterval,
				Some(10),
			)),
			P::EhrIndex(dp::ehr_index::Parameters::ConfirmationPeriod(dp::ehr_index::ConfirmationPeriod, Some(10))),
			P::FlTask(dp::fl_task::Parameters::AggregationTimeout(dp::fl_task::AggregationTimeout, Some(100))),
		] {
			let call = RuntimeCall::Parameters(pallet_parameters::Call::set_parameter { key_value });
			assert!(self.root_call(call));
		}
		self.end_block();
	}

	// ---- choosing -----------------------------------------------------------------

	/// True one time in `n`.
	fn one_in(&mut self, n: u32) -> bool {
		self.rng.gen_range(0..n) == 0
	}

	fn actor(&mut self) -> AccountId {
		self.actors.choose(&mut self.rng).cloned().expect("actors")
	}

	/// An institution most of the time, anyone otherwise.
	fn institution(&mut self) -> AccountId {
		let members: Vec<AccountId> = pallet_reputation::Institutions::<Runtime>::iter_keys().collect();
		if members.is_empty() || self.one_in(8) {
			self.actor()
		} else {
			members.choose(&mut self.rng).cloned().expect("non-empty")
		}
	}

	/// An amount: mostly ordinary, sometimes 0, 1, the whole endowment or
	/// the maximum.
	fn amount(&mut self, typical: u128) -> u128 {
		match self.rng.gen_range(0..10) {
			0 => 0,
			1 => 1,
			2 => u128::MAX,
			3 => medchain_runtime::genesis_config_presets::ENDOWMENT,
			_ => typical.saturating_mul(self.rng.gen_range(1..4)),
		}
	}

	/// A u32 that is mostly `typical`, sometimes extreme.
	fn number(&mut self, typical: u32) -> u32 {
		match self.rng.gen_range(0..10) {
			0 => 0,
			1 => u32::MAX,
			2 => self.rng.gen(),
			_ => typical,
		}
	}

	/// An existing id out of `0..next` most of the time, else any.
	fn id(&mut self, next: u64) -> u64 {
		if next == 0 || self.one_in(10) {
			self.rng.gen_range(0..next.saturating_add(3))
		} else {
			self.rng.gen_range(0..next)
		}
	}

	fn fixture(&mut self) -> usize {
		self.rng.gen_range(0..self.umbral.len())
	}

	// ---- actions ------------------------------------------------------------------

	/// One random call.
	fn act(&mut self) {
		match self.rng.gen_range(0..100) {
			0..=12 => self.reputation_action(),
			13..=35 => self.ehr_action(),
			36..=63 => self.proxy_action(),
			64..=84 => self.fl_action(),
			85..=93 => self.governance_action(),
			94..=95 => self.balances_action(),
			96..=97 => self.session_action(),
			_ => self.batch_action(),
		}
	}

	fn reputation_action(&mut self) {
		use pallet_reputation::Call as C;
		let who = self.institution();
		let target = self.institution();
		let rare = self.one_in(6);
		match self.rng.gen_range(0..12) {
			0 => {
				let kind = match self.rng.gen_range(0..4) {
					0 => InstitutionKind::Hospital { level: self.rng.gen_range(0..5), grade: HospitalGrade::B },
					1 => InstitutionKind::Insurer,
					2 => InstitutionKind::ResearchInstitute,
					_ => InstitutionKind::NursingHome,
				};
				let roles = Roles { producer: self.rng.gen(), validator: self.rng.gen(), auditor: self.rng.gen() };
				let name = bounded(vec![b'x'; self.rng.gen_range(0..80)]);
				let applicant = self.actor();
				self.signed_call(&applicant, reputation(C::apply_for_membership { name, kind, roles }));
			},
			1 => {
				self.root_call(reputation(C::approve_institution { who: target }));
			},
			2 => {
				if rare {
					self.root_call(reputation(C::suspend_institution { who: target }));
				}
			},
			3 => {
				if rare {
					self.root_call(reputation(C::remove_institution { who: target }));
				}
			},
			4 => {
				let roles = Roles { producer: self.rng.gen(), validator: self.rng.gen(), auditor: self.rng.gen() };
				self.root_call(reputation(C::set_roles { who: target, roles }));
			},
			5 => {
				let points = self.number(20);
				let reason = bounded(vec![b'r'; self.rng.gen_range(0..300)]);
				self.signed_call(&who, reputation(C::penalise { who: target, points, reason }));
			},
			6 => {
				let bond = match self.rng.gen_range(0..4) {
					0 => MinCandidateBond::get() - 1,
					1 => u128::MAX,
					_ => MinCandidateBond::get(),
				};
				self.signed_call(&who, reputation(C::register_as_candidate { bond }));
			},
			7 => {
				self.signed_call(&who, reputation(C::leave_candidates {}));
			},
			8 => {
				let candidate = pallet_reputation::Candidates::<Runtime>::iter_keys().next().unwrap_or(target);
				let amount = self.amount(10 * UNIT);
				let delegator = self.actor();
				self.signed_call(&delegator, reputation(C::delegate { candidate, amount }));
			},
			9 => {
				let pick = pallet_reputation::Delegations::<Runtime>::iter().next();
				let (delegator, candidate, amount) = match pick {
					Some((d, c, a)) => (d, c, if self.one_in(2) { a } else { self.amount(a / 2) }),
					None => (who, target, self.amount(10 * UNIT)),
				};
				self.signed_call(&delegator, reputation(C::undelegate { candidate, amount }));
			},
			10 => {
				self.signed_call(&who, reputation(C::withdraw_unbonded {}));
			},
			_ => {
				let n = if self.one_in(6) { 9 } else { self.rng.gen_range(0..3) };
				let invulnerables = (0..n).map(|_| self.institution()).collect();
				self.root_call(reputation(C::set_invulnerables { invulnerables }));
			},
		}
	}

	fn pointer(&mut self) -> StorePointer<frame_support::traits::ConstU32<64>> {
		StorePointer { store_id: bounded(b"mongo-1".to_vec()), collection: bounded(b"records".to_vec()), object_id: self.rng.gen() }
	}

	fn digest(&mut self) -> ContentDigest {
		let algorithm = [DigestAlgorithm::Blake2_256, DigestAlgorithm::Sha2_256, DigestAlgorithm::Sm3]
			.choose(&mut self.rng)
			.copied()
			.expect("three");
		ContentDigest { algorithm, digest: self.rng.gen() }
	}

	fn size(&mut self) -> u64 {
		match self.rng.gen_range(0..10) {
			0 => 0,
			1 => u64::MAX,
			_ => self.rng.gen_range(1..10_000_000),
		}
	}

	fn ehr_action(&mut self) {
		use pallet_ehr_index::Call as C;
		let next = pallet_ehr_index::NextRecordId::<Runtime>::get();
		let record_id = self.id(next);
		let record = pallet_ehr_index::Records::<Runtime>::get(record_id);
		match self.rng.gen_range(0..8) {
			0..=1 => {
				let f = self.fixture();
				let patient = if self.one_in(8) { self.actor() } else { self.umbral[f].patient.clone() };
				let capsule_hash = if self.one_in(8) { H256(self.rng.gen()) } else { self.umbral[f].capsule.hash() };
				let issuer = self.institution();
				// Mostly a patient who consented first; sometimes one who never did.
				if !pallet_ehr_index::IndexConsents::<Runtime>::get(&patient, &issuer).given && !self.one_in(6) {
					self.signed_call(&patient, ehr(C::consent_to_index { issuer: issuer.clone() }));
				}
				let (digest, pointer, size) = (self.digest(), self.pointer(), self.size());
				let kind = [RecordKind::Diagnosis, RecordKind::LabResult, RecordKind::Imaging].choose(&mut self.rng).copied().expect("kinds");
				let id = pallet_ehr_index::NextRecordId::<Runtime>::get();
				let published = self.signed_call(&issuer, ehr(C::publish_record { patient, kind, digest, pointer, size, capsule_hash }));
				// Mostly validators confirm it at once (only confirmed records
				// are shared), so grants and requests reach past that rule.
				if published && !self.one_in(4) {
					let validators: Vec<AccountId> = pallet_reputation::Institutions::<Runtime>::iter_keys()
						.filter(|who| {
							*who != issuer &&
								pallet_reputation::Pallet::<Runtime>::has_role(who, medchain_primitives::Role::Validator)
						})
						.take(<Runtime as pallet_ehr_index::Config>::ConfirmationsRequired::get() as usize)
						.collect();
					for v in validators {
						self.signed_call(&v, ehr(C::vote_record { record_id: id, vote: Vote::Confirm }));
					}
				}
			},
			7 => {
				// Consent: given by signature (sometimes the wrong signer or an
				// old generation, to be refused), or withdrawn.
				let f = self.fixture();
				let patient = if self.one_in(4) { self.actor() } else { self.umbral[f].patient.clone() };
				let issuer = self.institution();
				if self.one_in(3) {
					self.signed_call(&patient, ehr(C::withdraw_index_consent { issuer }));
				} else {
					let signer = if self.one_in(6) { self.actor() } else { patient.clone() };
					let mut generation = pallet_ehr_index::IndexConsents::<Runtime>::get(&patient, &issuer).generation;
					if generation > 0 && self.one_in(4) {
						generation -= 1;
					}
					let message = pallet_ehr_index::Pallet::<Runtime>::consent_message(&issuer, &patient, generation);
					let pair = K::iter().find(|k| k.to_account_id() == signer).expect("actors are keyring accounts");
					let signature = medchain_runtime::Signature::Sr25519(pair.pair().sign(&message));
					self.signed_call(&issuer, ehr(C::register_patient { patient, signature }));
				}
			},
			2 => {
				let issuer = match (&record, self.one_in(6)) {
					(Some(r), false) => r.issuer.clone(),
					_ => self.institution(),
				};
				let (digest, pointer, size) = (self.digest(), self.pointer(), self.size());
				let capsule_hash = record.as_ref().map(|r| r.capsule_hash).unwrap_or_default();
				self.signed_call(&issuer, ehr(C::amend_record { previous: record_id, digest, pointer, size, capsule_hash }));
			},
			3..=4 => {
				let voter = self.institution();
				let vote = if self.one_in(3) { Vote::Reject(self.rng.gen()) } else { Vote::Confirm };
				self.signed_call(&voter, ehr(C::vote_record { record_id, vote }));
			},
			5 => {
				// Mostly the record's own gateway, for its patient or for the
				// grantee of a grant with the grant's purpose; else anything.
				let gateway = match (&record, self.one_in(6)) {
					(Some(r), false) => r.issuer.clone(),
					_ => self.institution(),
				};
				let grant_id = self.id(pallet_proxy_reencrypt::NextGrantId::<Runtime>::get());
				let granted = pallet_proxy_reencrypt::Grants::<Runtime>::get(grant_id);
				let (accessor, purpose) = match (self.rng.gen_range(0..4), &record, &granted) {
					(0, Some(r), _) => (r.patient.clone(), AccessPurpose::PatientView),
					(1 | 2, _, Some(g)) => (g.grantee.clone(), g.purpose),
					_ => (self.actor(), AccessPurpose::Treatment),
				};
				let grant = if self.one_in(4) { None } else { Some(grant_id) };
				if self.one_in(2) {
					self.signed_call(&gateway, ehr(C::log_access { record_id, accessor, purpose, grant }));
				} else {
					// Served first, logged after: checked at a recent block,
					// sometimes one to come or one too old; the same read
					// again now and then.
					let now = frame_system::Pallet::<Runtime>::block_number();
					let checked_at = match self.rng.gen_range(0..10) {
						0 => now.saturating_add(1),
						1 => now.saturating_sub(self.number(2_000)),
						_ => now.saturating_sub(self.rng.gen_range(0..20)),
					};
					let read = H256::repeat_byte(self.rng.gen_range(0..8));
					let served = match self.rng.gen_range(0..3) {
						0 => pallet_ehr_index::Served::KeyFragment,
						_ => pallet_ehr_index::Served::Record,
					};
					let entry =
						pallet_ehr_index::ReadEntry { read, record_id, accessor, purpose, grant, checked_at, served };
					let entries = BoundedVec::truncate_from(vec![entry; self.rng.gen_range(1..3)]);
					self.signed_call(&gateway, ehr(C::log_reads { entries }));
				}
			},
			_ => {
				let who = match (&record, self.rng.gen_range(0..3)) {
					(Some(r), 0) => r.issuer.clone(),
					(Some(r), 1) => r.patient.clone(),
					_ => self.actor(),
				};
				self.signed_call(&who, ehr(C::erase_record { record_id }));
			},
		}
	}

	fn proxy_action(&mut self) {
		use pallet_proxy_reencrypt::Call as C;
		let f = self.fixture();
		let next_grant = pallet_proxy_reencrypt::NextGrantId::<Runtime>::get();
		let grant_id = self.id(next_grant);
		let grant = pallet_proxy_reencrypt::Grants::<Runtime>::get(grant_id);
		match self.rng.gen_range(0..13) {
			0 => {
				// Attach the fixture's capsule to one of its patient's records.
				let records: Vec<u64> = pallet_ehr_index::PatientRecords::<Runtime>::iter_key_prefix(&self.umbral[f].patient).collect();
				let record = records.choose(&mut self.rng).copied().unwrap_or(0);
				let issuer = pallet_ehr_index::Records::<Runtime>::get(record)
					.map(|r| r.issuer)
					.filter(|_| !self.one_in(8))
					.unwrap_or_else(|| self.institution());
				let mut capsule = self.umbral[f].capsule.clone();
				if self.one_in(8) {
					capsule.capsule = bounded(vec![0xAB; self.rng.gen_range(0..140)]);
				}
				// To the patient's kind and one-time keys, or some of them, or
				// to a number the pool does not hold.
				let pool = pallet_proxy_reencrypt::RecordKeyPool::<Runtime>::get(&self.umbral[f].patient);
				let index = match pool.choose(&mut self.rng) {
					Some((i, _)) if !self.one_in(6) => *i,
					_ => self.rng.gen_range(0..4),
				};
				let scoped = ScopedCapsules {
					kind: (!self.one_in(3)).then(|| capsule.clone()),
					record: (!self.one_in(3)).then(|| (index, capsule.clone())),
				};
				self.signed_call(&issuer, proxy(C::attach_capsule { record, capsule, scoped }));
			},
			1..=2 => {
				let u = &self.umbral[f];
				let (patient, mut grantee) = (u.patient.clone(), u.grantee.clone());
				let mut fragments: Vec<_> =
					self.proxies.iter().cloned().zip(u.sealed.iter().cloned()).map(|(p, (s, id))| (p, s, id)).collect();
				let records: Vec<u64> = pallet_ehr_index::PatientRecords::<Runtime>::iter_key_prefix(&patient).collect();
				let scope = match self.rng.gen_range(0..4) {
					0 => GrantScope::All,
					1 => GrantScope::Kind(RecordKind::LabResult),
					_ => GrantScope::Record(records.choose(&mut self.rng).copied().unwrap_or(0)),
				};
				let mut threshold = 2u8;
				let mut patient = patient;
				match self.rng.gen_range(0..15) {
					0 => threshold = 0,
					12 => grantee = account(K::Alice),
					13 => patient = account(K::Charlie),
					14 => fragments[0].0 = account(K::Eve),
					1 => threshold = 4,
					2 => fragments[0].0 = patient.clone(),
					3 => fragments[1].0 = fragments[0].0.clone(),
					4 => grantee = patient.clone(),
					5 => fragments[2].1.capsule = bounded(vec![1; 50]),
					6 => fragments.truncate(1),
					7 => fragments[1].2 = fragments[0].2,
					8 => threshold = 1,
					_ => {},
				}
				let emergency = self.one_in(4);
				let expires_at = if self.one_in(6) { Some(0) } else { None };
				let fragments = BoundedVec::truncate_from(fragments);
				let purpose = if emergency { AccessPurpose::Emergency } else { AccessPurpose::Treatment };
				if threshold == 1 && self.one_in(2) {
					let allowed = !self.one_in(4);
					self.signed_call(&patient, proxy(C::allow_single_proxy_grants { allowed }));
				}
				self.signed_call(&patient, proxy(C::grant_access { grantee, scope, purpose, expires_at, threshold, fragments, emergency }));
			},
			3 => {
				let stranger = self.one_in(6);
				let who = grant.as_ref().map(|g| g.patient.clone()).filter(|_| !stranger).unwrap_or_else(|| self.actor());
				if self.one_in(3) {
					self.signed_call(&who, proxy(C::revoke_grant { grant: grant_id }));
				} else if self.one_in(6) {
					// The grantee (or a stranger) declines.
					let who = grant.as_ref().map(|g| g.grantee.clone()).filter(|_| !stranger).unwrap_or_else(|| self.actor());
					self.signed_call(&who, proxy(C::decline_grant { grant: grant_id }));
				} else if self.one_in(4) {
					// The patient (or a stranger) requires audit first.
					self.signed_call(&who, proxy(C::require_audit_first { grant: grant_id }));
				} else if self.one_in(3) {
					// The grantee (or a stranger) reports a fragment that is
					// not signed, or not bad: refused, nothing changes.
					let who = grant.as_ref().map(|g| g.grantee.clone()).filter(|_| !stranger).unwrap_or_else(|| self.actor());
					let proxy_account = grant.as_ref().and_then(|g| g.acknowledged.first().cloned()).unwrap_or_else(|| self.actor());
					let fragment = BoundedVec::truncate_from(vec![self.rng.gen::<u8>(); self.rng.gen_range(0..300)]);
					let signature = sp_runtime::MultiSignature::Sr25519(sp_core::sr25519::Signature::from_raw([self.rng.gen(); 64]));
					let record = self.number(8) as u64;
					self.signed_call(
						&who,
						proxy(C::report_bad_fragment {
							grant: grant_id,
							record,
							proxy: proxy_account,
							fragment,
							signature,
						}),
					);
				}
			},
			4..=5 => {
				// Mostly an acknowledgement a proxy owes, sometimes any.
				let pending: Vec<(AccountId, u64)> =
					pallet_proxy_reencrypt::PendingAcknowledgements::<Runtime>::iter_keys().take(16).collect();
				let (p, grant) = match pending.choose(&mut self.rng) {
					Some((p, g)) if !self.one_in(4) => (p.clone(), *g),
					_ => (self.proxies.choose(&mut self.rng).cloned().expect("proxies"), grant_id),
				};
				let call = if self.one_in(8) { C::dispute_grant { grant } } else { C::acknowledge_grant { grant } };
				self.signed_call(&p, proxy(call));
			},
			6..=7 => {
				let usable = pallet_proxy_reencrypt::Grants::<Runtime>::iter()
					.filter(|(_, g)| g.revoked_at.is_none() && g.acknowledged.len() >= g.threshold as usize)
					.take(16)
					.collect::<Vec<_>>();
				let (grant_id, grant) = match usable.choose(&mut self.rng) {
					Some((id, g)) if !self.one_in(4) => (*id, Some(g.clone())),
					_ => (grant_id, grant),
				};
				let Some(g) = grant else { return };
				let records: Vec<u64> = pallet_ehr_index::PatientRecords::<Runtime>::iter_key_prefix(&g.patient).collect();
				let record = records.choose(&mut self.rng).copied().unwrap_or(0);
				let who = if self.one_in(8) { self.actor() } else { g.grantee.clone() };
				if g.emergency != self.one_in(8) {
					let statement_hash = H256(self.rng.gen());
					self.signed_call(&who, proxy(C::break_glass { grant: grant_id, record, reason: EmergencyReason::LifeThreatening, statement_hash }));
				} else {
					self.signed_call(&who, proxy(C::request_access { grant: grant_id, record }));
				}
			},
			8..=9 => {
				let open = pallet_proxy_reencrypt::OpenRequests::<Runtime>::get();
				let request = open.choose(&mut self.rng).copied().unwrap_or_else(|| self.rng.gen_range(0..4));
				let i = self.rng.gen_range(0..self.proxies.len());
				let p = if self.one_in(10) { account(K::Charlie) } else { self.proxies[i].clone() };
				let junk = self.one_in(8);
				// The right capsule fragment for the request's patient, or junk.
				let fragment = pallet_proxy_reencrypt::Requests::<Runtime>::get(request)
					.and_then(|r| pallet_proxy_reencrypt::Grants::<Runtime>::get(r.grant))
					.and_then(|g| self.umbral.iter().find(|u| u.patient == g.patient))
					.map(|u| u.cfrags[i].clone())
					.filter(|_| !junk)
					.unwrap_or_else(|| vec![0x5A; 380]);
				self.signed_call(&p, proxy(C::submit_fragment { request, fragment: BoundedVec::truncate_from(fragment) }));
			},
			11 => {
				// Keys again: a patient's (already registered), a proxy's
				// rotation to the same key, or bytes that are no key.
				let u = &self.umbral[f];
				let key = self.umbral[f].capsule.capsule[..33].try_into().unwrap_or([0u8; 33]);
				let junk = [0xFFu8; 33];
				let (patient, p, anyone) = (u.patient.clone(), self.institution(), self.actor());
				let scope_key = medchain_umbral::secret_key(&[self.rng.gen_range(1..4u8); 32], b"fuzz")
					.map(|sk| medchain_umbral::Fixture::public(&sk))
					.unwrap_or(junk);
				match self.rng.gen_range(0..6) {
					4 => {
						let kind = if self.one_in(2) { RecordKind::LabResult } else { RecordKind::Imaging };
						let keys = BoundedVec::truncate_from(vec![(kind, if self.one_in(8) { junk } else { scope_key })]);
						self.signed_call(&patient, proxy(C::register_kind_keys { keys }))
					},
					5 => {
						let next = pallet_proxy_reencrypt::NextRecordKeyIndex::<Runtime>::get(&patient);
						let first = if self.one_in(6) { next.wrapping_add(1) } else { next };
						let n = self.rng.gen_range(0..40);
						let keys = BoundedVec::truncate_from(vec![scope_key; n]);
						self.signed_call(&patient, proxy(C::add_record_keys { first, keys }))
					},
					0 => self.signed_call(&patient, proxy(C::register_key { public_key: key, verifying_key: key })),
					1 => self.signed_call(&anyone, proxy(C::register_key { public_key: junk, verifying_key: junk })),
					2 => self.signed_call(&p, proxy(C::register_proxy { public_key: junk })),
					_ => {
						let stranger = account(K::One);
						self.signed_call(&stranger, proxy(C::register_key { public_key: key, verifying_key: junk }))
					},
				};
			},
			_ => {
				let next = pallet_proxy_reencrypt::NextRequestId::<Runtime>::get();
				let request = self.id(next);
				let auditor = self.institution();
				let justified = self.rng.gen();
				self.signed_call(&auditor, proxy(C::review_emergency { request, justified }));
			},
		}
	}

	/// Parameters for a task of `n` parameters: small, or extreme.
	fn params(&mut self, n: usize) -> Vec<Fixed> {
		match self.rng.gen_range(0..10) {
			0 => vec![Fixed::MAX; n],
			1 => vec![Fixed::MIN; n],
			_ => (0..n).map(|_| self.rng.gen_range(-4 * FIXED_ONE..4 * FIXED_ONE)).collect(),
		}
	}

	fn fl_action(&mut self) {
		use pallet_fl_task::Call as C;
		// Mostly a running task.
		let active = pallet_fl_task::ActiveTasks::<Runtime>::get();
		let next = pallet_fl_task::NextTaskId::<Runtime>::get();
		let task = match active.choose(&mut self.rng) {
			Some(t) if !self.one_in(4) => *t,
			_ => self.id(next as u64) as u32,
		};
		let t = pallet_fl_task::Tasks::<Runtime>::get(task);
		match self.rng.gen_range(0..11) {
			0 => {
				let features = if self.one_in(10) { self.number(3) } else { 3 };
				let n = (features as usize).saturating_add(1).min(70_000);
				let stored = self.one_in(10);
				let publisher = self.institution();
				let initial_model = if stored {
					let store = self.store_of(&publisher);
					ModelParams::Stored(ModelRef { digest: H256(self.rng.gen()), params: n as u32, store })
				} else {
					ModelParams::Inline(BoundedVec::truncate_from(vec![0; n]))
				};
				let rule = match self.rng.gen_range(0..5) {
					0 => AggregationRule::Median,
					1 => AggregationRule::TrimmedMean { trim: Permill::from_percent(self.rng.gen_range(0..60)) },
					2 => AggregationRule::ClippedFedAvg { max_norm: self.rng.gen_range(-1..4) * FIXED_ONE },
					3 => AggregationRule::CreditWeightedFedAvg,
					_ => AggregationRule::FedAvg,
				};
				let spec = TaskSpec {
					model: ModelKind::LogisticRegression { features },
					initial_model,
					hints: TrainingHints { epochs: 1, learning_rate: FIXED_ONE / 10, batch_size: 0 },
					target_accuracy: Permill::from_percent(self.rng.gen_range(0..101)),
					max_rounds: self.number(3),
					min_participants: self.number(2),
					round_blocks: self.number(4),
					rule,
					aggregators_required: self.number(2),
					limits: UpdateLimits {
						max_abs: if self.one_in(8) { self.rng.gen() } else { 100 * FIXED_ONE },
						min_samples: self.number(10),
						max_samples: self.number(1_000),
						min_held_out: self.number(10),
					},
					privacy: self.one_in(3).then(|| DifferentialPrivacy {
						clip_norm: self.rng.gen_range(-1..4) * FIXED_ONE,
						noise_multiplier: self.rng.gen_range(0..200_000),
						delta_exponent: self.rng.gen_range(0..30),
					}),
				};
				self.signed_call(&publisher, fl(C::publish_task { spec }));
			},
			1..=2 => {
				let who = self.institution();
				self.signed_call(&who, fl(C::join_task { task }));
			},
			3..=6 => {
				let who = pallet_fl_task::Participants::<Runtime>::iter_key_prefix(task)
					.collect::<Vec<_>>()
					.choose(&mut self.rng)
					.cloned()
					.unwrap_or_else(|| self.actor());
				let round = t.as_ref().map(|t| t.round).unwrap_or(0);
				let n = t.as_ref().and_then(|t| t.model.parameter_count()).unwrap_or(4) as usize;
				let params = if t.as_ref().is_some_and(|t| t.stored_models) {
					let store = self.store_of(&who);
					ModelParams::Stored(ModelRef { digest: H256(self.rng.gen()), params: n as u32, store })
				} else {
					let p = self.params(n.min(70_000));
					ModelParams::Inline(BoundedVec::truncate_from(p))
				};
				let samples = self.number(100);
				let mut update = ModelUpdate { params, samples, accuracy: Permill::from_percent(self.rng.gen_range(0..101)), loss: self.rng.gen_range(0..FIXED_ONE), held_out: self.number(10) };
				let mut round = round;
				match self.rng.gen_range(0..12) {
					0 => round = round.wrapping_add(1),
					1 => update.loss = -1,
					2 =>
						if let ModelParams::Inline(p) = &mut update.params {
							let _ = p.try_push(0);
						},
					3 => {
						let store = self.store_of(&who);
						update.params = ModelParams::Stored(ModelRef { digest: H256(self.rng.gen()), params: n as u32, store })
					},
					_ => {},
				}
				self.signed_call(&who, fl(C::submit_update { task, round, update }));
			},
			7..=8 => {
				// Producers vote the honest aggregate most of the time.
				let producers: Vec<AccountId> = [K::Alice, K::Bob, K::Dave, K::Ferdie].into_iter().map(account).collect();
				let who = producers.choose(&mut self.rng).cloned().expect("producers");
				let Some(t) = t else { return };
				let updates = pallet_fl_task::Rounds::<Runtime>::get(task, t.round).map(|r| r.submitted).unwrap_or(0);
				let (params, outliers) = match FlTask::compute_aggregate(task, t.round) {
					Ok((p, o)) if !self.one_in(6) => (p, o),
					_ => (self.params(t.model.parameter_count().unwrap_or(4) as usize), Vec::new()),
				};
				let params = ModelParams::Inline(BoundedVec::truncate_from(params));
				let mut outliers = BoundedVec::truncate_from(outliers);
				let mut updates = updates;
				match self.rng.gen_range(0..10) {
					0 => updates = updates.saturating_add(1),
					1 => {
						let _ = outliers.try_push(account(K::One));
					},
					_ => {},
				}
				self.signed_call(&who, fl(C::submit_aggregate { task, round: t.round, params, outliers, updates }));
			},
			10 => {
				// Institutions register model stores: loopback (the dev
				// chain allows it), public, or ones the runtime refuses.
				let who = self.institution();
				let urls: [&[u8]; 4] =
					[b"http://127.0.0.1:8730", b"https://models.hospital.example", b"ftp://10.0.0.1/x?y", b"https://metadata.google.internal"];
				let store = bounded(urls.choose(&mut self.rng).expect("urls").to_vec());
				self.signed_call(&who, fl(C::register_store { store }));
			},
			_ => {
				if self.one_in(4) {
					let who = t.as_ref().map(|t| t.publisher.clone()).filter(|_| !self.one_in(3)).unwrap_or_else(|| self.institution());
					self.signed_call(&who, fl(C::cancel_task { task }));
				}
			},
		}
	}

	/// The store a stored model of `who` names: mostly its registered one,
	/// sometimes a store it did not register.
	fn store_of(&mut self, who: &AccountId) -> BoundedVec<u8, pallet_fl_task::MaxStoreUrl> {
		match pallet_fl_task::ModelStores::<Runtime>::get(who) {
			Some(store) if !self.one_in(4) => store,
			_ => bounded(b"http://127.0.0.1:8731".to_vec()),
		}
	}

	/// Session keys: an account sets its own key with a sound proof, or
	/// someone else's key, or a proof signed by the wrong key; rarely, an
	/// account outside the current and queued collator sets purges its keys.
	///
	/// A collator purging its own keys is left out: pallet-session drops
	/// keyless validators when it queues the next set, so if every collator
	/// did so the chain would have none (the same as every collator going
	/// offline, which no runtime rule can prevent; see the README).
	fn session_action(&mut self) {
		let keyrings: Vec<K> = K::well_known().collect();
		let k = *keyrings.choose(&mut self.rng).expect("keyrings");
		let who = account(k);
		if self.one_in(20) {
			let collator = Session::validators().contains(&who) ||
				Session::queued_keys().iter().any(|(queued, _)| *queued == who);
			if !collator {
				self.signed_call(&who, RuntimeCall::Session(pallet_session::Call::purge_keys {}));
			}
			return;
		}
		let owner = if self.one_in(4) { *keyrings.choose(&mut self.rng).expect("keyrings") } else { k };
		let prover = if self.one_in(4) { *keyrings.choose(&mut self.rng).expect("keyrings") } else { owner };
		let keys = SessionKeys { aura: owner.pair().public().into() };
		let proof = prover.pair().generate_proof_of_possession(&who.encode());
		self.signed_call(&who, RuntimeCall::Session(pallet_session::Call::set_keys { keys, proof: proof.encode() }));
	}

	fn balances_action(&mut self) {
		let from = self.actor();
		let dest = self.actor().into();
		let value = self.amount(UNIT);
		self.signed_call(&from, RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive { dest, value }));
	}

	/// A batch of two calls from one account: the first often succeeds,
	/// the second may fail (`batch_all` must then undo the first).
	fn batch_action(&mut self) {
		let who = self.institution();
		let record_id = self.id(pallet_ehr_index::NextRecordId::<Runtime>::get());
		let calls = vec![
			ehr(pallet_ehr_index::Call::log_access {
				record_id,
				accessor: who.clone(),
				purpose: AccessPurpose::Audit,
				grant: None,
			}),
			fl(pallet_fl_task::Call::join_task { task: self.rng.gen_range(0..4) }),
		];
		let call = if self.one_in(2) {
			RuntimeCall::Utility(pallet_utility::Call::batch_all { calls })
		} else {
			RuntimeCall::Utility(pallet_utility::Call::batch { calls })
		};
		self.signed_call(&who, call);
	}

	// ---- report -------------------------------------------------------------------

	/// Every call of the four pallets, and every error variant, with whether
	/// the run reached it.
	fn coverage(&self) -> (Vec<String>, Vec<String>, usize, usize) {
		let mut calls = Vec::new();
		for (pallet, names) in [
			("Reputation", pallet_reputation::Call::<Runtime>::get_call_names()),
			("EhrIndex", pallet_ehr_index::Call::<Runtime>::get_call_names()),
			("ProxyReencrypt", pallet_proxy_reencrypt::Call::<Runtime>::get_call_names()),
			("FlTask", pallet_fl_task::Call::<Runtime>::get_call_names()),
		] {
			calls.extend(names.iter().map(|n| format!("{pallet}.{n}")));
		}
		let mut errors = Vec::new();
		for (pallet, info) in [
			("Reputation", <pallet_reputation::Error<Runtime> as scale_info::TypeInfo>::type_info()),
			("EhrIndex", <pallet_ehr_index::Error<Runtime> as scale_info::TypeInfo>::type_info()),
			("ProxyReencrypt", <pallet_proxy_reencrypt::Error<Runtime> as scale_info::TypeInfo>::type_info()),
			("FlTask", <pallet_fl_task::Error<Runtime> as scale_info::TypeInfo>::type_info()),
		] {
			if let scale_info::TypeDef::Variant(v) = info.type_def {
				errors.extend(v.variants.iter().map(|variant| format!("{pallet}.{}", variant.name)));
			}
		}
		let reached_errors: BTreeSet<String> = self
			.outcomes
			.keys()
			.filter_map(|k| {
				let (error, pallet) = k.split_once(": ")?.1.split_once('@')?;
				Some(format!("{pallet}.{error}"))
			})
			.collect();
		let missing_calls: Vec<String> = calls.iter().filter(|c| !self.calls_seen.contains(*c)).cloned().collect();
		let missing_errors: Vec<String> = errors.iter().filter(|e| !reached_errors.contains(*e)).cloned().collect();
		let (total_calls, total_errors) = (calls.len(), errors.len());
		(missing_calls, missing_errors, total_calls, total_errors)
	}
}

/// The number of events in the block so far (`frame_system`'s
/// `EventCount`, read raw: the pallet keeps its accessor private).
fn event_count() -> u32 {
	let key = [sp_io::hashing::twox_128(b"System"), sp_io::hashing::twox_128(b"EventCount")].concat();
	frame_support::storage::unhashed::get_or_default(&key)
}

/// What each pallet says `who` should have on hold, by hold reason: the
/// institution bond, the candidate bond, delegations, unbonding chunks, and
/// the deposits of open motions. Nothing else holds funds.
fn expected_holds(
	who: &AccountId,
	(council, regulators): &(BTreeMap<AccountId, u128>, BTreeMap<AccountId, u128>),
) -> Vec<(RuntimeHoldReason, u128)> {
	use pallet_reputation::HoldReason as R;
	let institution = pallet_reputation::Institutions::<Runtime>::get(who).map_or(0, |i| i.bond);
	let candidate = pallet_reputation::Candidates::<Runtime>::get(who).map_or(0, |c| c.bond);
	let delegated = pallet_reputation::Delegations::<Runtime>::iter_prefix_values(who).sum();
	let unbonding = pallet_reputation::Unbonding::<Runtime>::get(who).iter().map(|c| c.amount).sum();
	use pallet_collective::HoldReason::ProposalSubmission as Motion;
	vec![
		(R::InstitutionBond.into(), institution),
		(R::CandidateBond.into(), candidate),
		(R::Delegation.into(), delegated),
		(R::Unbonding.into(), unbonding),
		(RuntimeHoldReason::Council(Motion), council.get(who).copied().unwrap_or(0)),
		(RuntimeHoldReason::Regulators(Motion), regulators.get(who).copied().unwrap_or(0)),
	]
}

/// The deposits each proposer has on record for its motions in collective
/// `I`, finished or not.
fn motion_deposits<I: 'static>() -> BTreeMap<AccountId, u128>
where
	Runtime: pallet_collective::Config<I>,
{
	let mut deposits = BTreeMap::<AccountId, u128>::new();
	for (proposer, cost) in pallet_collective::CostOf::<Runtime, I>::iter_values() {
		// A hold consideration is the amount it holds.
		let amount = u128::decode(&mut &cost.encode()[..]).unwrap_or(u128::MAX);
		let entry = deposits.entry(proposer).or_default();
		*entry = entry.saturating_add(amount);
	}
	deposits
}

/// The name of variant `error` of the error enum of the pallet at `index`
/// (events carry module errors without their names).
fn module_error_name(index: u8, error: u8) -> Option<String> {
	use scale_info::TypeInfo;
	let infos = [
		(Reputation::index(), pallet_reputation::Error::<Runtime>::type_info()),
		(EhrIndex::index(), pallet_ehr_index::Error::<Runtime>::type_info()),
		(ProxyReencrypt::index(), pallet_proxy_reencrypt::Error::<Runtime>::type_info()),
		(FlTask::index(), pallet_fl_task::Error::<Runtime>::type_info()),
	];
	let (_, info) = infos.into_iter().find(|(i, _)| *i as u8 == index)?;
	match info.type_def {
		scale_info::TypeDef::Variant(v) => v.variants.iter().find(|v| v.index == error).map(|v| v.name.to_string()),
		_ => None,
	}
}

fn reputation(call: pallet_reputation::Call<Runtime>) -> RuntimeCall {
	RuntimeCall::Reputation(call)
}
fn ehr(call: pallet_ehr_index::Call<Runtime>) -> RuntimeCall {
	RuntimeCall::EhrIndex(call)
}
fn proxy(call: pallet_proxy_reencrypt::Call<Runtime>) -> RuntimeCall {
	RuntimeCall::ProxyReencrypt(call)
}
fn fl(call: pallet_fl_task::Call<Runtime>) -> RuntimeCall {
	RuntimeCall::FlTask(call)
}

/// `Variant@Pallet` of a module error, the error's kind otherwise.
fn error_name(e: &DispatchError) -> String {
	match e {
		DispatchError::Module(m) => {
			let pallet = [
				(Reputation::index(), "Reputation"),
				(EhrIndex::index(), "EhrIndex"),
				(ProxyReencrypt::index(), "ProxyReencrypt"),
				(FlTask::index(), "FlTask"),
				(Balances::index(), "Balances"),
				(Session::index(), "Session"),
				(Utility::index(), "Utility"),
				(System::index(), "System"),
				(Council::index(), "Council"),
				(Regulators::index(), "Regulators"),
			]
			.iter()
			.find(|(i, _)| *i as u8 == m.index)
			.map_or("Other", |(_, n)| n);
			let name = m.message.map(String::from).or_else(|| module_error_name(m.index, m.error[0]));
			format!("{}@{pallet}", name.as_deref().unwrap_or("?"))
		},
		other => format!("{other:?}").split(['(', ' ']).next().unwrap_or("?").to_string(),
	}
}

fn env_or(key: &str, default: u64) -> u64 {
	std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The fuzz run: `FUZZ_CALLS` calls (2 000 by default) from `FUZZ_SEED`.
#[test]
fn fuzz_the_runtime() {
	let calls = env_or("FUZZ_CALLS", 2_000);
	let seed = env_or("FUZZ_SEED", 1);
	let episode = env_or("FUZZ_EPISODE_BLOCKS", EPISODE_BLOCKS);
	let mut fuzzer = Fuzzer::new(seed);
	// The consortium is set up once; every episode starts from that state.
	let mut ext = development();
	ext.execute_with(|| fuzzer.set_up());
	ext.commit_all().expect("commit");
	let (snapshot, root) = ext.into_raw_snapshot();
	let (slot, parent) = (fuzzer.slot, fuzzer.parent);
	let fresh = || sp_io::TestExternalities::from_raw_snapshot(snapshot.clone(), root, sp_core::storage::StateVersion::V1);
	let mut ext = fresh();
	let (setup_calls, start) = (fuzzer.calls, Instant::now());
	let (mut blocks, mut episodes) = (0u64, 1u64);
	// Every tenth episode runs five times as long, past the runtime's
	// shortest aggregation timeout (100 blocks).
	let length = |episodes: u64| if episodes % 10 == 0 { 5 * episode } else { episode };
	let mut episode_end = length(episodes);
	while fuzzer.calls < setup_calls + calls {
		if blocks == episode_end {
			episode_end += length(episodes + 1);
			// A new episode: state stays small, so every block's checks
			// (which read all of it) cost the same at the millionth call as
			// at the first.
			ext = fresh();
			(fuzzer.slot, fuzzer.parent) = (slot, parent);
			fuzzer.replay.clear();
			episodes += 1;
		}
		ext.execute_with(|| {
			fuzzer.begin_block();
			for _ in 0..fuzzer.rng.gen_range(0..24) {
				fuzzer.act();
			}
			fuzzer.end_block();
		});
		// Each block's changes go to the backend, as on a node: left in the
		// overlay, every storage root would be recomputed over all changes.
		ext.commit_all().expect("commit");
		blocks += 1;
		if blocks % 5_000 == 0 {
			let done = fuzzer.calls - setup_calls;
			println!("fuzz: {done} calls, {blocks} blocks, {:.0} calls/s", done as f64 / start.elapsed().as_secs_f64());
		}
	}
	ext.execute_with(|| {
		let secs = start.elapsed().as_secs_f64();
		let done = fuzzer.calls - setup_calls;
		let (missing_calls, missing_errors, total_calls, total_errors) = fuzzer.coverage();
		println!("fuzz: seed {seed}: {done} calls in {blocks} blocks ({episodes} episodes of {episode} blocks, every tenth of {}), {secs:.1} s, {:.0} calls/s", 5 * episode, done as f64 / secs);
		println!(
			"fuzz: 0 panics, 0 invariant breaks; {:.1} % of calls got past the caller check; {:.1} % succeeded",
			100.0 * fuzzer.past_gate as f64 / fuzzer.calls as f64,
			100.0 * fuzzer.outcomes.iter().filter(|(k, _)| k.ends_with(": ok")).map(|(_, v)| *v).sum::<u64>() as f64 / fuzzer.calls as f64,
		);
		println!(
			"fuzz: time: {:.0} % dispatching calls, {:.0} % checking invariants, the rest choosing arguments and running hooks",
			100.0 * fuzzer.dispatching.as_secs_f64() / secs,
			100.0 * fuzzer.checking.as_secs_f64() / secs,
		);
		println!("fuzz: calls reached {}/{total_calls}; missing: {missing_calls:?}", total_calls - missing_calls.len());
		println!("fuzz: errors reached {}/{total_errors}; missing: {missing_errors:?}", total_errors - missing_errors.len());
		for (outcome, count) in &fuzzer.outcomes {
			println!("fuzz:   {count:>8}  {outcome}");
		}
		// A run that reaches little is a broken fuzzer, not a safe runtime.
		assert!(missing_calls.len() * 5 <= total_calls, "fewer than 80 % of the calls were reached: {missing_calls:?}");
		assert!(fuzzer.past_gate * 2 >= fuzzer.calls, "most calls stopped at the caller check");
	});
}
