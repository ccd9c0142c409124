//! # Federated-learning task pallet
//!
//! Institutions train a shared model without their data leaving them (seed
//! paper 000): the chain coordinates rounds and records parameters, never
//! patient data.
//!
//! ## Overview
//!
//! - **Publish.** An institution calls [`Pallet::publish_task`] with the model
//!   shape (logistic regression or a small MLP), the initial model in fixed
//!   point, training hints, target accuracy, most rounds, the round quorum,
//!   the round length in blocks, the aggregation rule and how many
//!   aggregators must agree. Round 0 opens at once.
//! - **Join and train.** Institutions [`Pallet::join_task`], train locally on
//!   the current global model and [`Pallet::submit_update`] once per round:
//!   parameters, sample count, and their evaluation of the global model they
//!   trained from (its accuracy and loss on their held-out data).
//! - **Close.** A round closes when every participant has submitted and the
//!   quorum is reached, or at its deadline with the quorum. Under the quorum,
//!   the deadline is extended up to `MaxExtensions` times, then the task fails
//!   with an event: it never hangs.
//! - **Aggregate.** Offchain workers of aggregator nodes (producer
//!   institutions collating in the current session, [`Config::Collators`],
//!   holding a key of type [`KEY_TYPE`]) read the closed round's updates,
//!   aggregate them with [`Config::Aggregator`] (FedAvg, clipped FedAvg,
//!   median, trimmed mean, in fixed point) and call
//!   [`Pallet::submit_aggregate`]. When [`Pallet::agreement_required`] of
//!   them submit the same digest (the task's `aggregators_required`, at
//!   least ⌈⅔⌉ of the collators and two where more than one collates), the
//!   model is adopted; aggregators that disagreed lose credit, flagged
//!   outlier updates lose credit and accepted ones gain it (see *Credit*
//!   below).
//! - **Finish.** With each update a participant submits its evaluation of
//!   the global model it trained from: that model's accuracy on its
//!   held-out data. When a round is settled (or its aggregation times out)
//!   and the median of its evaluations reaches the target, the task
//!   finishes with the model they measured (the round's aggregate is not
//!   adopted, [`RoundPhase::Stopped`]);
//!   otherwise after `max_rounds`. While liars are fewer than half, the
//!   median is an honest participant's value. The final model and each
//!   round's history stay queryable.
//!
//! ## Credit: only between distinct institutions
//!
//! Positive credit rewards work done for *another* institution, so no single
//! institution can farm it by publishing a task, training on it and
//! aggregating its own update:
//!
//! - `UpdateAccepted` goes to a participant whose update was not flagged,
//!   unless it is the task's publisher.
//! - `AggregationAgreed` goes to an aggregator that voted for the adopted
//!   digest, unless it is the task's publisher or the round has no accepted
//!   update from an account other than that aggregator.
//! - `UpdateOutlier` (flagged update) and `AggregationMismatched` (a vote for
//!   another digest) are reported to everyone, publisher included.
//!
//! ## Update limits: fail-soft aggregation
//!
//! A task's [`UpdateLimits`] bound every parameter (`max_abs`, at most the
//! runtime's [`Config::MaxParamAbs`]) and the samples behind an update
//! (`min_samples`, at least [`Config::MinSamplesFloor`]; counts above
//! `max_samples` are recorded as `max_samples`). Inline models beyond the
//! bound are refused; aggregators leave out and flag any update they cannot
//! read or that breaks the bound, and aggregate the rest while the quorum
//! holds ([`aggregate_fail_soft`]), so one participant cannot make a round
//! fail.
//!
//! The runtime also sets floors no task may go under:
//! [`Config::MinParticipantsFloor`] for the round quorum and
//! [`Config::MinAggregatorsFloor`] for the aggregators that must agree. Every
//! call made for an institution (publish, join, submit an update, submit an
//! aggregate, cancel as publisher) checks at call time that it is still an
//! active institution ([`InstitutionRegistry`]), so a suspended or removed
//! institution stops acting at once, not only from its next task.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub mod aggregate;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod migrations;
pub mod store;
pub mod types;
pub mod weights;

pub use aggregate::{
	aggregate_fail_soft, Admission, Aggregate, AggregationError, Aggregated, FixedPointAggregator, Model,
	ModelSource, SliceSource, UpdateView, UpdateWeight,
};
pub use types::*;
pub use weights::WeightInfo;

use alloc::vec::Vec;
use codec::Encode;
use frame_system::offchain::{AppCrypto, CreateSignedTransaction, SendSignedTransaction, Signer};
use medchain_primitives::{Behaviour, CreditReporter, CreditScore, InstitutionRegistry, Role};
use sp_core::{crypto::KeyTypeId, H256};
use sp_runtime::{
	offchain::storage::StorageValueRef,
	traits::{IdentifyAccount, Saturating},
	Permill,
};

/// Proof size the benchmarks add to a map entry's largest encoding for the
/// trie nodes above it (`MaxEncodedLen` mode; e.g. `Reputation::Institutions`:
/// 141 bytes, 2 616 with its proof).
pub const TRIE_PROOF_OVERHEAD: u64 = 2_475;

/// Key type of aggregator keys in a node's keystore.
pub const KEY_TYPE: KeyTypeId = KeyTypeId(*b"fl00");

/// Log target of this pallet.
pub const LOG_TARGET: &str = "runtime::fl-task";

/// Blocks after which an offchain worker submits again if its aggregate has
/// not reached the chain (the transaction was dropped).
pub const RESUBMIT_AFTER: u32 = 10;

/// How many blocks behind the newest a sealed read names (never before the
/// round closed): a model store checks the read in that block's state, and
/// its node may not have imported the newest yet.
pub const SEALED_READ_LAG: u32 = 4;

/// For how many blocks after a round closed an offchain worker waits for a
/// busy model store (`429`, `5xx`, no answer) instead of leaving its update
/// out.
pub const STORE_PATIENCE: u32 = 20;

/// Aggregator keys: sr25519, key type [`KEY_TYPE`].
pub mod crypto {
	use super::KEY_TYPE;
	use sp_runtime::{
		app_crypto::{app_crypto, sr25519},
		MultiSignature, MultiSigner,
	};
	app_crypto!(sr25519, KEY_TYPE);

	/// Binds aggregator keys to the runtime's `MultiSigner` accounts.
	pub struct AggregatorId;

	impl frame_system::offchain::AppCrypto<MultiSigner, MultiSignature> for AggregatorId {
		type RuntimeAppPublic = Public;
		type GenericSignature = sp_core::sr25519::Signature;
		type GenericPublic = sp_core::sr25519::Public;
	}
}

/// Aggregates a round's inline updates in the canonical order every
/// aggregator uses (sorted by account) and names the flagged outliers,
/// failing soft ([`aggregate_fail_soft`]): an update beyond
/// `admission.max_abs` is left out and flagged. The offchain worker and
/// off-chain tools (`medchain-fl-client aggregate`) both call this, so they
/// agree bit for bit. `credit` gives each submitter's credit as recorded
/// with its update (used by [`AggregationRule::CreditWeightedFedAvg`]).
pub fn aggregate_round<A: Aggregate, AccountId: Ord + Clone, M: frame_support::traits::Get<u32>>(
	rule: &AggregationRule,
	admission: Admission,
	global: &[Fixed],
	mut updates: Vec<(AccountId, ModelUpdate<M>)>,
	credit: impl Fn(&AccountId) -> u32,
) -> Result<(Vec<Fixed>, Vec<AccountId>), AggregationError> {
	updates.sort_by(|a, b| a.0.cmp(&b.0));
	let mut weights = Vec::with_capacity(updates.len());
	let mut params = Vec::with_capacity(updates.len());
	for (who, u) in &updates {
		params.push(u.params.inline().ok_or(AggregationError::Unavailable)?);
		weights.push(UpdateWeight { samples: u.samples, credit: credit(who) });
	}
	if params.iter().any(|p| p.len() != global.len()) {
		return Err(AggregationError::LengthMismatch);
	}
	let mut source = SliceSource { global, updates: params };
	let (model, flagged) = aggregate_fail_soft::<A, Vec<Fixed>>(
		rule,
		global.len(),
		&weights,
		admission,
		&mut source,
		|| Vec::with_capacity(global.len()),
		|model, window| {
			model.extend_from_slice(window);
			Ok(())
		},
	)?;
	Ok((model, flagged.into_iter().map(|i| updates[i].0.clone()).collect()))
}

/// The lower median of `values` (the middle one, or the lower of the two
/// middle ones): what a round's evaluations measure. Zero when empty.
pub fn lower_median(values: &mut [Permill]) -> Permill {
	values.sort_unstable();
	values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or_default()
}

/// Set-up the benchmarks need from the runtime.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId> {
	/// The `n`-th active institution with the producer role (distinct for
	/// distinct `n`); producers may publish, participate and aggregate.
	fn institution(n: u32) -> AccountId;

	/// Makes `collators` the collators of the current session.
	fn set_collators(collators: Vec<AccountId>);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;
	use frame_support::dispatch::{Pays, PostDispatchInfo};
	use frame_system::pallet_prelude::*;

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

		/// Who is an institution, with which roles.
		type Registry: InstitutionRegistry<Self::AccountId>;

		/// Origin that may cancel any running task: root (sudo on dev chains,
		/// a dispatch the consortium's bodies whitelisted in production).
		type ForceOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// The collators of the current session. When a round closes, those
		/// with the producer role become its aggregation committee
		/// ([`Committees`]): only they aggregate it, and a model is adopted
		/// only when enough of them agree ([`Pallet::agreement_required`]).
		type Collators: Get<Vec<Self::AccountId>>;

		/// Where update and aggregation outcomes are reported, and where
		/// credit-weighted aggregation reads scores.
		type Credit: CreditReporter<Self::AccountId> + CreditScore<Self::AccountId>;

		/// The aggregation algorithm offchain workers run.
		type Aggregator: Aggregate;

		/// Aggregator keys of offchain workers.
		type AuthorityId: AppCrypto<Self::Public, Self::Signature>;

		/// Most parameters of a model kept on chain (inline).
		#[pallet::constant]
		type MaxParams: Get<u32>;

		/// Most parameters of a model kept in model stores (by reference).
		#[pallet::constant]
		type MaxStoredParams: Get<u32>;

		/// Most participants of a task.
		#[pallet::constant]
		type MaxParticipants: Get<u32>;

		/// Most tasks running at once.
		#[pallet::constant]
		type MaxActiveTasks: Get<u32>;

		/// Most rounds of a task.
		#[pallet::constant]
		type MaxRounds: Get<u32>;

		/// Most aggregators a task may require to agree.
		#[pallet::constant]
		type MaxAggregators: Get<u32>;

		/// Smallest round quorum (`min_participants`) a task may set: a
		/// round never closes with fewer updates. At least 1, at most
		/// `MaxParticipants`.
		#[pallet::constant]
		type MinParticipantsFloor: Get<u32>;

		/// Fewest aggregators (`aggregators_required`) a task may require to
		/// agree before a model is adopted. At least 1, at most
		/// `MaxAggregators`.
		#[pallet::constant]
		type MinAggregatorsFloor: Get<u32>;

		/// Largest `max_abs` a task may set for its parameters. At most
		/// [`PARAM_ABS_CEILING`], under which no aggregation rule can
		/// overflow its `i128` arithmetic.
		#[pallet::constant]
		type MaxParamAbs: Get<Fixed>;

		/// Smallest `min_samples` a task may set: no update stands for fewer
		/// patients. At least 1.
		#[pallet::constant]
		type MinSamplesFloor: Get<u32>;

		/// Shortest round, in blocks.
		#[pallet::constant]
		type MinRoundBlocks: Get<u32>;

		/// Times a round under quorum is extended before the task fails.
		#[pallet::constant]
		type MaxExtensions: Get<u8>;

		/// Blocks aggregators have to agree on a closed round.
		#[pallet::constant]
		type AggregationTimeout: Get<BlockNumberFor<Self>>;

		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;

		/// Provides institutions for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
	}

	/// The tasks.
	#[pallet::storage]
	pub type Tasks<T: Config> = StorageMap<_, Twox64Concat, TaskId, LearningTask<T::AccountId>, OptionQuery>;

	/// The id the next task gets.
	#[pallet::storage]
	pub type NextTaskId<T> = StorageValue<_, TaskId, ValueQuery>;

	/// Tasks whose rounds are running.
	#[pallet::storage]
	pub type ActiveTasks<T: Config> = StorageValue<_, BoundedVec<TaskId, T::MaxActiveTasks>, ValueQuery>;

	/// The current global model of each task, inline or by reference.
	#[pallet::storage]
	pub type GlobalModel<T: Config> = StorageMap<_, Twox64Concat, TaskId, ModelParams<T::MaxParams>, OptionQuery>;

	/// Participants of each task.
	#[pallet::storage]
	pub type Participants<T: Config> =
		StorageDoubleMap<_, Twox64Concat, TaskId, Blake2_128Concat, T::AccountId, (), OptionQuery>;

	/// Rounds of each task; adopted rounds are the task's history.
	#[pallet::storage]
	pub type Rounds<T: Config> =
		StorageDoubleMap<_, Twox64Concat, TaskId, Twox64Concat, RoundIndex, Round<BlockNumberFor<T>>, OptionQuery>;

	/// Updates of the open or aggregating round; cleared on adoption.
	#[pallet::storage]
	pub type Updates<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		(TaskId, RoundIndex),
		Blake2_128Concat,
		T::AccountId,
		ModelUpdate<T::MaxParams>,
		OptionQuery,
	>;

	/// Credit of each submitter when it submitted, for tasks aggregated with
	/// [`AggregationRule::CreditWeightedFedAvg`]; cleared with the updates.
	#[pallet::storage]
	pub type UpdateCredit<T: Config> =
		StorageDoubleMap<_, Twox64Concat, (TaskId, RoundIndex), Blake2_128Concat, T::AccountId, u32, OptionQuery>;

	/// The digest each aggregator submitted for a round; cleared on adoption.
	#[pallet::storage]
	pub type AggregateVotes<T: Config> =
		StorageDoubleMap<_, Twox64Concat, (TaskId, RoundIndex), Blake2_128Concat, T::AccountId, H256, OptionQuery>;

	/// Models proposed for a round, by digest; cleared on adoption.
	#[pallet::storage]
	pub type Proposals<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		(TaskId, RoundIndex),
		Identity,
		H256,
		Proposal<T::AccountId, T::MaxParams, T::MaxParticipants>,
		OptionQuery,
	>;

	/// Distinct aggregators that voted on a round; cleared on adoption.
	#[pallet::storage]
	pub type VoteCount<T: Config> = StorageMap<_, Twox64Concat, (TaskId, RoundIndex), u32, ValueQuery>;

	/// The aggregation committee of a round that closed: how many agreeing
	/// votes adopt a model, and who may vote (the producers that collated
	/// when it closed, at most `MaxAggregators`). Fixed for the round, so
	/// session changes neither add voters nor move the count. Cleared with
	/// the round.
	#[pallet::storage]
	pub type Committees<T: Config> = StorageMap<
		_,
		Twox64Concat,
		(TaskId, RoundIndex),
		(u32, BoundedVec<T::AccountId, T::MaxAggregators>),
		OptionQuery,
	>;

	/// The participants' evaluations of the global model a round trains
	/// from (each update's `accuracy`), in submission order; their median
	/// is the round's measured accuracy. Cleared with the round.
	#[pallet::storage]
	pub type Evaluations<T: Config> =
		StorageMap<_, Twox64Concat, (TaskId, RoundIndex), BoundedVec<Permill, T::MaxParticipants>, ValueQuery>;

	/// The model store each institution registered ([`Pallet::register_store`]).
	/// A stored model an institution submits (initial model, update,
	/// aggregate) must name its registered store, and offchain workers fetch
	/// an update only from its submitter's registered store.
	#[pallet::storage]
	pub type ModelStores<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BoundedVec<u8, MaxStoreUrl>, OptionQuery>;

	/// Whether model stores on loopback hosts (`http://127.0.0.1:…`) may be
	/// registered: set at genesis on development chains only.
	#[pallet::storage]
	pub type LoopbackStores<T: Config> = StorageValue<_, bool, ValueQuery>;

	/// Genesis of the pallet.
	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Allow model stores on loopback hosts (development chains only).
		pub loopback_stores: bool,
		#[serde(skip)]
		#[doc(hidden)]
		pub _config: core::marker::PhantomData<T>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			LoopbackStores::<T>::put(self.loopback_stores);
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A task was published; its round 0 is open.
		TaskPublished { task: TaskId, publisher: T::AccountId, parameters: u32 },
		/// An institution joined a task.
		Joined { task: TaskId, who: T::AccountId },
		/// A round opened for updates until `deadline`.
		RoundStarted { task: TaskId, round: RoundIndex, deadline: BlockNumberFor<T> },
		/// A participant submitted its update.
		UpdateSubmitted { task: TaskId, round: RoundIndex, who: T::AccountId, samples: u32 },
		/// A round stopped collecting and awaits aggregation.
		RoundClosed { task: TaskId, round: RoundIndex, updates: u32 },
		/// A round under quorum got more time.
		RoundExtended { task: TaskId, round: RoundIndex, deadline: BlockNumberFor<T> },
		/// An aggregator submitted a model digest.
		AggregateSubmitted { task: TaskId, round: RoundIndex, who: T::AccountId, digest: H256 },
		/// Enough aggregators agreed; the model is the new global model.
		/// `accuracy` is the round's measured accuracy of the model it
		/// replaces (the median of the participants' evaluations).
		ModelAdopted {
			task: TaskId,
			round: RoundIndex,
			digest: H256,
			model_digest: H256,
			accuracy: Permill,
			outliers: u32,
		},
		/// A participant's update was flagged as an outlier.
		UpdateFlagged { task: TaskId, round: RoundIndex, who: T::AccountId },
		/// An aggregator's digest differed from the adopted one.
		AggregatorMismatched { task: TaskId, round: RoundIndex, who: T::AccountId },
		/// The task is over.
		TaskFinished { task: TaskId, rounds: u32, reached_target: bool, accuracy: Permill },
		/// The task stopped without a result.
		TaskFailed { task: TaskId, round: RoundIndex, reason: FailureReason },
		/// An institution registered (or changed) its model store.
		StoreRegistered { who: T::AccountId, store: BoundedVec<u8, MaxStoreUrl> },
		/// The committee of an inline round disagreed: the runtime computed
		/// the aggregate itself (`digest`) and adopts it (`ModelAdopted` or
		/// `TaskFinished` follow).
		DisputeSettled { task: TaskId, round: RoundIndex, digest: H256 },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The caller is not an active institution.
		NotInstitution,
		/// The caller is not an aggregator (an institution with the producer role).
		NotAggregator,
		/// The caller is not in the round's committee: the producers that
		/// collated when the round closed.
		NotCollator,
		/// The model kind has a zero dimension or too many parameters.
		InvalidModel,
		/// The model has more parameters than `MaxParams` (inline) or
		/// `MaxStoredParams` (stored).
		ModelTooLarge,
		/// The model is inline where the task's models are stored, or the
		/// other way round.
		WrongModelForm,
		/// A model store's URL may not be registered: not `https://`, a
		/// private or (outside development chains) loopback host, or with user
		/// info, a query, a fragment or a trailing `/`
		/// ([`is_registrable_store`]).
		InvalidStoreUrl,
		/// A stored model names a store other than the one its submitter
		/// registered, or the submitter registered none.
		StoreNotRegistered,
		/// The initial model's length differs from the model kind's parameter count.
		WrongParameterCount,
		/// `max_rounds` is 0 or above `MaxRounds`.
		InvalidRounds,
		/// `min_participants` is 0 or above `MaxParticipants`.
		InvalidQuorum,
		/// `min_participants` is under the runtime's `MinParticipantsFloor`.
		QuorumTooSmall,
		/// `round_blocks` is under `MinRoundBlocks`.
		RoundTooShort,
		/// `aggregators_required` is 0 or above `MaxAggregators`.
		InvalidAggregators,
		/// `aggregators_required` is under the runtime's `MinAggregatorsFloor`.
		TooFewAggregators,
		/// The rule's parameter is unusable (clip norm ≤ 0, trim ≥ 50 %) or the
		/// learning rate is not positive.
		InvalidRule,
		/// The target accuracy is zero.
		InvalidTarget,
		/// `MaxActiveTasks` tasks are already running.
		TooManyActiveTasks,
		/// No task with this id.
		TaskNotFound,
		/// The task is finished or failed.
		TaskNotRunning,
		/// The caller already joined.
		AlreadyJoined,
		/// The task has `MaxParticipants` participants.
		TooManyParticipants,
		/// The caller did not join the task.
		NotParticipant,
		/// The round is not the task's current round.
		WrongRound,
		/// The round no longer collects updates.
		RoundNotCollecting,
		/// The caller already submitted an update this round.
		AlreadySubmitted,
		/// An update has fewer samples than the task's `min_samples`.
		TooFewSamples,
		/// A parameter of an inline model is beyond the task's `max_abs`.
		ParameterOutOfBounds,
		/// The task's `max_abs` is not in `1..=MaxParamAbs`, or its
		/// `min_samples` is above its `max_samples`.
		InvalidLimits,
		/// The task's `min_samples` or `min_held_out` is under the runtime's
		/// `MinSamplesFloor`.
		SampleFloorTooLow,
		/// A loss is never negative.
		NegativeLoss,
		/// The round is not awaiting aggregation.
		RoundNotAggregating,
		/// The caller already submitted an aggregate for this round.
		AlreadyVoted,
		/// The `updates` witness differs from the round's update count.
		WrongUpdateCount,
		/// A flagged outlier did not submit an update this round, or is listed twice.
		UnknownOutlier,
		/// Only the publisher or the root origin may cancel.
		NotPublisher,
		/// An arithmetic overflow.
		Overflow,
		/// An update's evaluation was measured on fewer held-out rows than
		/// the task's `min_held_out`.
		TooFewHeldOut,
		/// The task's differential privacy is out of range: `clip_norm` not in
		/// `1..=max_abs`, the noise multiplier not in 0.1..=100 or δ's
		/// exponent not in 4..=18.
		InvalidPrivacy,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let tasks = ActiveTasks::<T>::get();
			for task in tasks.iter() {
				Self::advance_deadlines(*task, now);
			}
			T::WeightInfo::on_initialize(tasks.len() as u32)
		}

		fn offchain_worker(now: BlockNumberFor<T>) {
			if let Err(e) = Self::aggregate_closed_rounds(now) {
				log::debug!(target: LOG_TARGET, "offchain aggregation skipped: {e}");
			}
		}

		fn integrity_test() {
			let quorum = T::MinParticipantsFloor::get();
			assert!(
				(1..=T::MaxParticipants::get()).contains(&quorum),
				"MinParticipantsFloor must be in 1..=MaxParticipants"
			);
			let aggregators = T::MinAggregatorsFloor::get();
			assert!(
				(1..=T::MaxAggregators::get()).contains(&aggregators),
				"MinAggregatorsFloor must be in 1..=MaxAggregators"
			);
			assert!(
				(1..=PARAM_ABS_CEILING).contains(&T::MaxParamAbs::get()),
				"MaxParamAbs must be in 1..=PARAM_ABS_CEILING"
			);
			assert!(T::MinSamplesFloor::get() >= 1, "MinSamplesFloor must be at least 1");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Publishes a learning task and opens its round 0.
		///
		/// Origin: an active institution. `spec.min_participants` and
		/// `spec.aggregators_required` may not be under the runtime's floors
		/// (`QuorumTooSmall`, `TooFewAggregators`). Emits `TaskPublished`
		/// and `RoundStarted`.
		#[pallet::call_index(0)]
		#[pallet::weight(
			T::WeightInfo::publish_task(spec.initial_model.weight_units())
				.saturating_add(Pallet::<T>::store_check_weight(&spec.initial_model))
		)]
		pub fn publish_task(origin: OriginFor<T>, spec: TaskSpec<T::MaxParams>) -> DispatchResult {
			let publisher = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&publisher), Error::<T>::NotInstitution);
			Self::check_spec(&publisher, &spec)?;
			let task_id = NextTaskId::<T>::get();
			ActiveTasks::<T>::try_mutate(|active| active.try_push(task_id))
				.map_err(|_| Error::<T>::TooManyActiveTasks)?;
			NextTaskId::<T>::put(task_id.checked_add(1).ok_or(Error::<T>::Overflow)?);
			let parameters = spec.initial_model.len();
			Tasks::<T>::insert(
				task_id,
				LearningTask {
					publisher: publisher.clone(),
					model: spec.model,
					hints: spec.hints,
					target_accuracy: spec.target_accuracy,
					max_rounds: spec.max_rounds,
					min_participants: spec.min_participants,
					round_blocks: spec.round_blocks,
					rule: spec.rule,
					aggregators_required: spec.aggregators_required,
					limits: spec.limits,
					status: TaskStatus::Running,
					round: 0,
					participants: 0,
					model_digest: spec.initial_model.digest(),
					stored_models: spec.initial_model.is_stored(),
					privacy: spec.privacy.map(|dp| PrivacyBudget::new(dp, spec.max_rounds)),
				},
			);
			GlobalModel::<T>::insert(task_id, spec.initial_model);
			Self::deposit_event(Event::TaskPublished { task: task_id, publisher, parameters });
			Self::open_round(task_id, 0, spec.round_blocks);
			Ok(())
		}

		/// Joins a running task as a participant.
		///
		/// Origin: an active institution (`NotInstitution`). Emits `Joined`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::join_task())]
		pub fn join_task(origin: OriginFor<T>, task: TaskId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&who), Error::<T>::NotInstitution);
			Tasks::<T>::try_mutate(task, |maybe| -> DispatchResult {
				let t = maybe.as_mut().ok_or(Error::<T>::TaskNotFound)?;
				ensure!(t.status == TaskStatus::Running, Error::<T>::TaskNotRunning);
				ensure!(!Participants::<T>::contains_key(task, &who), Error::<T>::AlreadyJoined);
				ensure!(t.participants < T::MaxParticipants::get(), Error::<T>::TooManyParticipants);
				t.participants += 1;
				Ok(())
			})?;
			Participants::<T>::insert(task, &who, ());
			Self::deposit_event(Event::Joined { task, who });
			Ok(())
		}

		/// Submits the caller's local update for the task's current round.
		/// When every participant has submitted and the quorum is reached, the
		/// round closes.
		///
		/// The update must have at least the task's `min_samples` samples
		/// (`TooFewSamples`); more than `max_samples` are recorded as
		/// `max_samples`. Its evaluation must rest on at least the task's
		/// `min_held_out` held-out rows (`TooFewHeldOut`). Inline parameters
		/// must lie within the task's `max_abs` (`ParameterOutOfBounds`).
		///
		/// Origin: a participant that is still an active institution
		/// (`NotInstitution` once it is suspended or removed). Emits
		/// `UpdateSubmitted` (with the recorded sample count), and
		/// `RoundClosed` when the round closes.
		#[pallet::call_index(2)]
		#[pallet::weight(
			T::WeightInfo::submit_update(update.params.weight_units())
				.saturating_add(Pallet::<T>::store_check_weight(&update.params))
		)]
		pub fn submit_update(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			mut update: ModelUpdate<T::MaxParams>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&who), Error::<T>::NotInstitution);
			let t = Tasks::<T>::get(task).ok_or(Error::<T>::TaskNotFound)?;
			ensure!(t.status == TaskStatus::Running, Error::<T>::TaskNotRunning);
			ensure!(Participants::<T>::contains_key(task, &who), Error::<T>::NotParticipant);
			ensure!(round == t.round, Error::<T>::WrongRound);
			let mut r = Rounds::<T>::get(task, round).ok_or(Error::<T>::WrongRound)?;
			ensure!(r.phase == RoundPhase::Collecting, Error::<T>::RoundNotCollecting);
			ensure!(!Updates::<T>::contains_key((task, round), &who), Error::<T>::AlreadySubmitted);
			Self::check_model(&t, &who, &update.params)?;
			ensure!(update.samples >= t.limits.min_samples, Error::<T>::TooFewSamples);
			ensure!(update.held_out >= t.limits.min_held_out, Error::<T>::TooFewHeldOut);
			ensure!(update.loss >= 0, Error::<T>::NegativeLoss);
			update.samples = t.limits.weight_of(update.samples);
			Self::accumulate(&mut r, &update)?;
			// At most one update per participant, and at most
			// `MaxParticipants` participants: there is room.
			Evaluations::<T>::try_mutate((task, round), |e| e.try_push(update.accuracy))
				.map_err(|_| Error::<T>::Overflow)?;
			let samples = update.samples;
			if t.rule == AggregationRule::CreditWeightedFedAvg {
				UpdateCredit::<T>::insert((task, round), &who, T::Credit::credit(&who));
			}
			Updates::<T>::insert((task, round), &who, update);
			Self::deposit_event(Event::UpdateSubmitted { task, round, who, samples });
			// Never under the quorum, even when every participant submitted:
			// a lone participant must not close a round by itself.
			if r.submitted >= t.participants && r.submitted >= t.min_participants {
				Self::close_round(task, &t, round, &mut r);
			}
			Rounds::<T>::insert(task, round, r);
			Ok(())
		}

		/// Submits an aggregator's model for a closed round: the new global
		/// model (inline, or by reference for a task with stored models) and
		/// the participants it flags as outliers (sorted by account). Adopted
		/// once the round's committee's required count submit the same
		/// digest ([`Committees`], fixed when the round closed:
		/// [`Self::agreement_required`] of the producers then collating). If
		/// the round's evaluations reached the target, the task finishes with
		/// the measured model instead (`RoundPhase::Stopped`, no
		/// `ModelAdopted`).
		/// `updates` is the round's update count (a witness that bounds the
		/// weight of adoption, which reads every update).
		///
		/// For a task with inline models, a vote that leaves the committee
		/// split (a second digest proposed for the round) is settled by the
		/// runtime: it computes the aggregate itself, as honest aggregators
		/// do, and adopts it (`DisputeSettled`); members that voted another
		/// digest are `AggregatorMismatched`. The vote that sets it off pays
		/// nothing if it agrees with the runtime's result and in full if it
		/// does not; an undisputed vote is refunded down to the voting
		/// weight.
		///
		/// Origin: an active institution with the producer role, checked at
		/// call time (`NotAggregator` once it is suspended, removed or loses
		/// the role), in the round's committee (`NotCollator`).
		/// Emits `AggregateSubmitted`; on adoption `ModelAdopted`,
		/// `UpdateFlagged`, `AggregatorMismatched`, and `TaskFinished` or
		/// `RoundStarted`. Credit on adoption follows the rule in the
		/// module docs: positive credit only between distinct institutions.
		#[pallet::call_index(3)]
		#[pallet::weight(
			Pallet::<T>::submit_aggregate_weight(params, *updates, true)
		)]
		pub fn submit_aggregate(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			params: ModelParams<T::MaxParams>,
			outliers: BoundedVec<T::AccountId, T::MaxParticipants>,
			updates: u32,
		) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			// `has_role` holds only for an active institution.
			ensure!(T::Registry::has_role(&who, Role::Producer), Error::<T>::NotAggregator);
			let t = Tasks::<T>::get(task).ok_or(Error::<T>::TaskNotFound)?;
			ensure!(t.status == TaskStatus::Running, Error::<T>::TaskNotRunning);
			ensure!(round == t.round, Error::<T>::WrongRound);
			let r = Rounds::<T>::get(task, round).ok_or(Error::<T>::WrongRound)?;
			ensure!(matches!(r.phase, RoundPhase::Aggregating { .. }), Error::<T>::RoundNotAggregating);
			let (required, committee) = Committees::<T>::get((task, round)).ok_or(Error::<T>::RoundNotAggregating)?;
			ensure!(committee.contains(&who), Error::<T>::NotCollator);
			ensure!(updates == r.submitted, Error::<T>::WrongUpdateCount);
			ensure!(!AggregateVotes::<T>::contains_key((task, round), &who), Error::<T>::AlreadyVoted);
			Self::check_model(&t, &who, &params)?;
			Self::check_outliers(task, round, &outliers)?;
			// Without a dispute, the runtime computes nothing: the rest is
			// refunded.
			let undisputed = Self::submit_aggregate_weight(&params, updates, false);

			let digest = aggregate_digest(task, round, params.digest(), &outliers);
			AggregateVotes::<T>::insert((task, round), &who, digest);
			VoteCount::<T>::mutate((task, round), |c| c.saturating_inc());
			let votes = Proposals::<T>::mutate((task, round), digest, |p| {
				let p = p.get_or_insert_with(|| Proposal { params, outliers, votes: 0 });
				p.votes.saturating_inc();
				p.votes
			});
			Self::deposit_event(Event::AggregateSubmitted { task, round, who, digest });
			if votes >= required {
				Self::adopt(task, t, r, digest)?;
			} else if !t.stored_models && VoteCount::<T>::get((task, round)) > votes {
				// Members disagree on an inline round: the runtime computes
				// the aggregate itself and adopts it. A member whose vote
				// agrees with the result pays nothing for the settlement its
				// vote set off; any other pays for it in full.
				let settled = Self::settle_dispute(task, t, r)?;
				let pays_fee = if settled == Some(digest) { Pays::No } else { Pays::Yes };
				return Ok(PostDispatchInfo { actual_weight: None, pays_fee });
			}
			Ok(Some(undisputed).into())
		}

		/// Cancels a running task. Only its publisher, while it is an active
		/// institution (`NotInstitution`), or `ForceOrigin`. Emits
		/// `TaskFailed`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::cancel_task())]
		pub fn cancel_task(origin: OriginFor<T>, task: TaskId) -> DispatchResult {
			let caller = match T::ForceOrigin::try_origin(origin) {
				Ok(_) => None,
				Err(origin) => Some(ensure_signed(origin)?),
			};
			let t = Tasks::<T>::get(task).ok_or(Error::<T>::TaskNotFound)?;
			ensure!(t.status == TaskStatus::Running, Error::<T>::TaskNotRunning);
			if let Some(who) = caller {
				ensure!(who == t.publisher, Error::<T>::NotPublisher);
				ensure!(T::Registry::is_active(&who), Error::<T>::NotInstitution);
			}
			Self::fail(task, t.round, FailureReason::Cancelled);
			Ok(())
		}

		/// Registers the caller's model store, or changes it: the base URL
		/// its stored models (initial models, updates, aggregates) are served
		/// from. Checked by [`is_registrable_store`] (`InvalidStoreUrl`):
		/// `https://` to a public DNS name, no query or fragment, and a
		/// loopback host only on development chains. A model submitted
		/// before a change is still read from the store it names (the one
		/// registered when it was submitted): keep serving it there until
		/// its round is over.
		///
		/// Origin: an active institution (`NotInstitution`). Emits
		/// `StoreRegistered`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::register_store())]
		pub fn register_store(origin: OriginFor<T>, store: BoundedVec<u8, MaxStoreUrl>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(T::Registry::is_active(&who), Error::<T>::NotInstitution);
			ensure!(is_registrable_store(&store, LoopbackStores::<T>::get()), Error::<T>::InvalidStoreUrl);
			ModelStores::<T>::insert(&who, store.clone());
			Self::deposit_event(Event::StoreRegistered { who, store });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		fn check_spec(publisher: &T::AccountId, spec: &TaskSpec<T::MaxParams>) -> DispatchResult {
			let count = spec.model.parameter_count().ok_or(Error::<T>::InvalidModel)?;
			let most = match spec.initial_model {
				ModelParams::Inline(_) => T::MaxParams::get(),
				ModelParams::Stored(_) => T::MaxStoredParams::get(),
			};
			ensure!(count <= most, Error::<T>::ModelTooLarge);
			ensure!(spec.initial_model.len() == count, Error::<T>::WrongParameterCount);
			Self::check_store(publisher, &spec.initial_model)?;
			let limits = &spec.limits;
			ensure!(
				(1..=T::MaxParamAbs::get()).contains(&limits.max_abs) && limits.min_samples <= limits.max_samples,
				Error::<T>::InvalidLimits
			);
			ensure!(
				limits.min_samples >= T::MinSamplesFloor::get() && limits.min_held_out >= T::MinSamplesFloor::get(),
				Error::<T>::SampleFloorTooLow
			);
			if let Some(dp) = &spec.privacy {
				ensure!(dp.is_valid(limits.max_abs), Error::<T>::InvalidPrivacy);
			}
			Self::check_bounds(limits, &spec.initial_model)?;
			ensure!(
				(1..=T::MaxRounds::get()).contains(&spec.max_rounds),
				Error::<T>::InvalidRounds
			);
			ensure!(
				(1..=T::MaxParticipants::get()).contains(&spec.min_participants),
				Error::<T>::InvalidQuorum
			);
			ensure!(spec.min_participants >= T::MinParticipantsFloor::get(), Error::<T>::QuorumTooSmall);
			ensure!(spec.round_blocks >= T::MinRoundBlocks::get(), Error::<T>::RoundTooShort);
			ensure!(
				(1..=T::MaxAggregators::get()).contains(&spec.aggregators_required),
				Error::<T>::InvalidAggregators
			);
			ensure!(
				spec.aggregators_required >= T::MinAggregatorsFloor::get(),
				Error::<T>::TooFewAggregators
			);
			let rule_ok = match spec.rule {
				AggregationRule::FedAvg | AggregationRule::Median | AggregationRule::CreditWeightedFedAvg => true,
				AggregationRule::ClippedFedAvg { max_norm } => max_norm > 0,
				AggregationRule::TrimmedMean { trim } => trim < Permill::from_percent(50),
			};
			ensure!(rule_ok && spec.hints.learning_rate > 0, Error::<T>::InvalidRule);
			ensure!(!spec.target_accuracy.is_zero(), Error::<T>::InvalidTarget);
			Ok(())
		}

		/// Checks that a model `who` submits has the task's form, parameter
		/// count and bounds, and names `who`'s registered store if stored.
		fn check_model(
			t: &LearningTask<T::AccountId>,
			who: &T::AccountId,
			params: &ModelParams<T::MaxParams>,
		) -> DispatchResult {
			ensure!(params.is_stored() == t.stored_models, Error::<T>::WrongModelForm);
			ensure!(Some(params.len()) == t.model.parameter_count(), Error::<T>::WrongParameterCount);
			Self::check_store(who, params)?;
			Self::check_bounds(&t.limits, params)
		}

		/// Checks that an inline model's parameters lie within `max_abs`
		/// (a stored model's are checked by the aggregators that read it).
		fn check_bounds(limits: &UpdateLimits, params: &ModelParams<T::MaxParams>) -> DispatchResult {
			match params.inline() {
				Some(p) => ensure!(limits.bounds(p), Error::<T>::ParameterOutOfBounds),
				None => {},
			}
			Ok(())
		}

		/// What aggregators accept of a round of task `t`.
		fn admission(t: &LearningTask<T::AccountId>) -> Admission {
			Admission { max_abs: t.limits.max_abs, quorum: t.min_participants as usize }
		}

		/// Checks that a stored model `who` submits names `who`'s registered
		/// store.
		fn check_store(who: &T::AccountId, params: &ModelParams<T::MaxParams>) -> DispatchResult {
			if let ModelParams::Stored(r) = params {
				ensure!(Self::is_registered_store(who, &r.store), Error::<T>::StoreNotRegistered);
			}
			Ok(())
		}

		/// Weight of [`Self::check_store`] beyond the benchmarked inline
		/// models: one read of the submitter's registered store.
		pub fn store_check_weight(params: &ModelParams<T::MaxParams>) -> Weight {
			if !params.is_stored() {
				return Weight::zero();
			}
			// As the benchmarks' `MaxEncodedLen` proof mode counts a map
			// entry: its Blake2_128Concat key (16 hash bytes and the
			// account), its largest value, and the trie nodes above it.
			let proof = 16 + T::AccountId::max_encoded_len() + BoundedVec::<u8, MaxStoreUrl>::max_encoded_len();
			T::DbWeight::get()
				.reads(1)
				.saturating_add(Weight::from_parts(0, (proof as u64).saturating_add(TRIE_PROOF_OVERHEAD)))
		}

		/// Agreeing votes that adopt a model when the committee has
		/// `collators` members (producers collating when the round closed):
		/// the task's `task_required`, raised to ⌈⅔⌉ of them and to two where
		/// there is more than one, so neither a publisher nor a single
		/// collator (a front-runner, say) decides what is adopted; and never
		/// more than the committee, so a round does not wait for members
		/// that do not exist. With one producer collating (a development
		/// chain), its vote adopts.
		pub fn agreement_required(task_required: u32, collators: u32) -> u32 {
			let two_thirds = collators.saturating_mul(2).div_ceil(3);
			let committee = two_thirds.max(collators.min(2));
			task_required.max(committee).min(collators).max(1)
		}

		/// Whether `store` is the model store `who` registered.
		pub fn is_registered_store(who: &T::AccountId, store: &[u8]) -> bool {
			ModelStores::<T>::get(who).is_some_and(|registered| registered[..] == *store)
		}

		fn check_outliers(
			task: TaskId,
			round: RoundIndex,
			outliers: &[T::AccountId],
		) -> DispatchResult {
			for (i, who) in outliers.iter().enumerate() {
				ensure!(
					Updates::<T>::contains_key((task, round), who) && !outliers[..i].contains(who),
					Error::<T>::UnknownOutlier
				);
			}
			Ok(())
		}

		fn open_round(task: TaskId, round: RoundIndex, round_blocks: u32) {
			let deadline = frame_system::Pallet::<T>::block_number().saturating_add(round_blocks.into());
			Rounds::<T>::insert(
				task,
				round,
				Round {
					phase: RoundPhase::Collecting,
					deadline,
					extensions: 0,
					submitted: 0,
					samples: 0,
					accuracy: Permill::zero(),
					loss: 0,
					outliers: 0,
				},
			);
			Self::deposit_event(Event::RoundStarted { task, round, deadline });
		}

		/// Folds an update into the round's samples and sample-weighted loss.
		fn accumulate(r: &mut Round<BlockNumberFor<T>>, u: &ModelUpdate<T::MaxParams>) -> DispatchResult {
			let old = r.samples as u128;
			let add = u.samples as u128;
			let total = old + add;
			let loss = (r.loss as i128)
				.checked_mul(old as i128)
				.and_then(|a| a.checked_add((u.loss as i128).checked_mul(add as i128)?))
				.ok_or(Error::<T>::Overflow)? /
				total as i128;
			r.samples = u64::try_from(total).map_err(|_| Error::<T>::Overflow)?;
			r.loss = Fixed::try_from(loss).map_err(|_| Error::<T>::Overflow)?;
			r.submitted = r.submitted.checked_add(1).ok_or(Error::<T>::Overflow)?;
			Ok(())
		}

		/// Closes a round for aggregation: records its measured accuracy and
		/// its committee.
		fn close_round(
			task: TaskId,
			t: &LearningTask<T::AccountId>,
			round: RoundIndex,
			r: &mut Round<BlockNumberFor<T>>,
		) {
			r.phase = RoundPhase::Aggregating { since: frame_system::Pallet::<T>::block_number() };
			Self::seat_committee(task, t, round);
			r.accuracy = lower_median(&mut Evaluations::<T>::get((task, round)).into_inner());
			Self::deposit_event(Event::RoundClosed { task, round, updates: r.submitted });
		}

		/// Weight of [`Pallet::submit_aggregate`]: voting and adoption, and with
		/// `disputed` (an inline round whose committee disagrees) the
		/// runtime's own aggregation of the round.
		pub fn submit_aggregate_weight(params: &ModelParams<T::MaxParams>, updates: u32, disputed: bool) -> Weight {
			let vote = T::WeightInfo::submit_aggregate(params.weight_units(), updates)
				.saturating_add(Self::store_check_weight(params));
			if params.is_stored() {
				// A stored round may collect a proposal from every member
				// (nobody settles it early); adoption drains them all.
				let members = u64::from(T::MaxAggregators::get());
				let proposal = ModelRef::max_encoded_len()
					.saturating_add(T::AccountId::max_encoded_len().saturating_mul(T::MaxParticipants::get() as usize))
					.saturating_add(16) as u64;
				vote.saturating_add(T::DbWeight::get().reads_writes(members, members))
					.saturating_add(Weight::from_parts(0, members.saturating_mul(proposal)))
			} else if disputed {
				vote.max(T::WeightInfo::settle_dispute(params.weight_units(), updates))
			} else {
				vote
			}
		}

		/// Settles a disputed round of an inline task: computes the aggregate
		/// as honest aggregators do ([`Self::compute_aggregate`]) and adopts
		/// it, whoever proposed it: members that voted for it earn
		/// `AggregationAgreed`, the others `AggregationMismatched`. If the
		/// round cannot be aggregated (fewer usable updates than its quorum),
		/// nothing is adopted and the round times out as before.
		///
		/// A round whose evaluations already reached the target is not
		/// computed: the task finishes with the measured model, as when its
		/// aggregation times out (no credit either way). Returns the digest
		/// adopted, if any.
		pub(crate) fn settle_dispute(
			task: TaskId,
			t: LearningTask<T::AccountId>,
			r: Round<BlockNumberFor<T>>,
		) -> Result<Option<H256>, DispatchError> {
			let round = t.round;
			if r.accuracy >= t.target_accuracy {
				Self::clear_round_state(task, round);
				Self::stop_at_target(task, t, r);
				return Ok(None);
			}
			let Ok((params, outliers)) = Self::compute_aggregate(task, round) else {
				return Ok(None);
			};
			// As long as the global model (at most `MaxParams`) and from
			// the round's participants (at most `MaxParticipants`).
			let params = ModelParams::Inline(BoundedVec::truncate_from(params));
			let outliers = BoundedVec::truncate_from(outliers);
			let digest = aggregate_digest(task, round, params.digest(), &outliers);
			Proposals::<T>::mutate((task, round), digest, |p| {
				p.get_or_insert_with(|| Proposal { params, outliers, votes: 0 });
			});
			Self::deposit_event(Event::DisputeSettled { task, round, digest });
			Self::adopt(task, t, r, digest)?;
			Ok(Some(digest))
		}

		/// Fixes the aggregation committee of a round that closes now: the
		/// producers collating, and how many of them must agree.
		pub(crate) fn seat_committee(task: TaskId, t: &LearningTask<T::AccountId>, round: RoundIndex) {
			let committee: BoundedVec<T::AccountId, T::MaxAggregators> = BoundedVec::truncate_from(
				T::Collators::get().into_iter().filter(|c| T::Registry::has_role(c, Role::Producer)).collect(),
			);
			let required = Self::agreement_required(t.aggregators_required, committee.len() as u32);
			Committees::<T>::insert((task, round), (required, committee));
		}

		/// Closes, extends or fails the current round of `task` whose deadline
		/// passed; fails a round whose aggregation timed out, unless its
		/// evaluations reached the target (the task then finishes with the
		/// model they measured).
		pub(crate) fn advance_deadlines(task: TaskId, now: BlockNumberFor<T>) {
			let Some(t) = Tasks::<T>::get(task) else { return };
			let Some(mut r) = Rounds::<T>::get(task, t.round) else { return };
			match r.phase {
				RoundPhase::Collecting if now >= r.deadline => {
					if r.submitted >= t.min_participants {
						Self::close_round(task, &t, t.round, &mut r);
					} else if r.extensions < T::MaxExtensions::get() {
						r.extensions += 1;
						r.deadline = now.saturating_add(t.round_blocks.into());
						Self::deposit_event(Event::RoundExtended {
							task,
							round: t.round,
							deadline: r.deadline,
						});
					} else {
						return Self::fail(task, t.round, FailureReason::QuorumNotReached);
					}
					Rounds::<T>::insert(task, t.round, r);
				},
				RoundPhase::Aggregating { since } if now >= since.saturating_add(T::AggregationTimeout::get()) =>
					if r.accuracy >= t.target_accuracy {
						// The participants measured the current model at the
						// target: it is the result, with or without an aggregate.
						Self::clear_round_state(task, t.round);
						Self::stop_at_target(task, t, r);
					} else {
						Self::fail(task, t.round, FailureReason::AggregationTimedOut)
					},
				_ => {},
			}
		}

		/// Whether an accepted update of `who` earns `UpdateAccepted`: not
		/// when `who` published the task (no credit for one's own task).
		fn earns_update_credit(t: &LearningTask<T::AccountId>, who: &T::AccountId) -> bool {
			*who != t.publisher
		}

		/// Whether an aggregator `who` that voted for the adopted digest earns
		/// `AggregationAgreed`: not when `who` published the task, and only if
		/// the round has an accepted update (`accepted`) of another account,
		/// so aggregating nothing but one's own update earns nothing.
		fn earns_aggregation_credit(
			t: &LearningTask<T::AccountId>,
			who: &T::AccountId,
			accepted: &[T::AccountId],
		) -> bool {
			*who != t.publisher && accepted.iter().any(|a| a != who)
		}

		/// Adopts the proposal `digest` of the task's current round, reports
		/// credit (positive credit only between distinct institutions, see
		/// the module docs), and opens the next round or finishes the task.
		fn adopt(
			task: TaskId,
			mut t: LearningTask<T::AccountId>,
			mut r: Round<BlockNumberFor<T>>,
			digest: H256,
		) -> DispatchResult {
			let round = t.round;
			let proposal = Proposals::<T>::get((task, round), digest).ok_or(Error::<T>::RoundNotAggregating)?;
			// Updates first: who submitted an accepted update decides which
			// agreeing aggregators earn credit. At most `MaxParticipants`.
			let mut accepted = Vec::new();
			for (who, _) in Updates::<T>::drain_prefix((task, round)) {
				if proposal.outliers.contains(&who) {
					T::Credit::report(&who, Behaviour::UpdateOutlier);
					Self::deposit_event(Event::UpdateFlagged { task, round, who });
				} else {
					if Self::earns_update_credit(&t, &who) {
						T::Credit::report(&who, Behaviour::UpdateAccepted);
					}
					accepted.push(who);
				}
			}
			for (who, voted) in AggregateVotes::<T>::drain_prefix((task, round)) {
				if voted != digest {
					T::Credit::report(&who, Behaviour::AggregationMismatched);
					Self::deposit_event(Event::AggregatorMismatched { task, round, who });
				} else if Self::earns_aggregation_credit(&t, &who, &accepted) {
					T::Credit::report(&who, Behaviour::AggregationAgreed);
				}
			}
			Self::clear_round_state(task, round);
			r.outliers = proposal.outliers.len() as u32;

			// The participants measured the current global model on their
			// held-out data: at the target, it is the final model.
			if r.accuracy >= t.target_accuracy {
				Self::stop_at_target(task, t, r);
				return Ok(());
			}
			r.phase = RoundPhase::Adopted { digest };
			Rounds::<T>::insert(task, round, r);
			t.model_digest = proposal.params.digest();
			GlobalModel::<T>::insert(task, proposal.params);
			Self::deposit_event(Event::ModelAdopted {
				task,
				round,
				digest,
				model_digest: t.model_digest,
				accuracy: r.accuracy,
				outliers: r.outliers,
			});

			let rounds = round.saturating_add(1);
			if rounds >= t.max_rounds {
				Self::finish(task, &mut t, rounds, false, r.accuracy);
			} else {
				t.round = rounds;
				Self::open_round(task, rounds, t.round_blocks);
			}
			Tasks::<T>::insert(task, t);
			Ok(())
		}

		/// Finishes the task with its current global model, which the current
		/// round's evaluations measured at the target: the round is
		/// `Stopped`, its aggregate (if any) not adopted.
		fn stop_at_target(task: TaskId, mut t: LearningTask<T::AccountId>, mut r: Round<BlockNumberFor<T>>) {
			let round = t.round;
			r.phase = RoundPhase::Stopped;
			Rounds::<T>::insert(task, round, r);
			Self::finish(task, &mut t, round, true, r.accuracy);
			Tasks::<T>::insert(task, t);
		}

		/// Marks the task finished after `rounds` adopted rounds.
		fn finish(
			task: TaskId,
			t: &mut LearningTask<T::AccountId>,
			rounds: u32,
			reached_target: bool,
			accuracy: Permill,
		) {
			t.status = TaskStatus::Finished { reached_target };
			ActiveTasks::<T>::mutate(|a| a.retain(|id| *id != task));
			Self::deposit_event(Event::TaskFinished { task, rounds, reached_target, accuracy });
		}

		/// Marks the task failed at `round` and clears the round's working
		/// state.
		fn fail(task: TaskId, round: RoundIndex, reason: FailureReason) {
			Tasks::<T>::mutate(task, |t| {
				if let Some(t) = t {
					t.status = TaskStatus::Failed(reason);
				}
			});
			Rounds::<T>::mutate(task, round, |r| {
				if let Some(r) = r {
					r.phase = RoundPhase::Abandoned;
				}
			});
			ActiveTasks::<T>::mutate(|a| a.retain(|id| *id != task));
			Self::clear_round_state(task, round);
			Self::deposit_event(Event::TaskFailed { task, round, reason });
		}

		/// Removes a finished round's updates, votes and proposals.
		pub(crate) fn clear_round_state(task: TaskId, round: RoundIndex) {
			let _ = Updates::<T>::clear_prefix((task, round), u32::MAX, None);
			let _ = UpdateCredit::<T>::clear_prefix((task, round), u32::MAX, None);
			let _ = AggregateVotes::<T>::clear_prefix((task, round), u32::MAX, None);
			let _ = Proposals::<T>::clear_prefix((task, round), u32::MAX, None);
			VoteCount::<T>::remove((task, round));
			Evaluations::<T>::remove((task, round));
			Committees::<T>::remove((task, round));
		}

		/// Aggregates a round of an inline task as an honest aggregator does:
		/// the new model and the flagged outliers (sorted by account).
		/// [`AggregationError::Unavailable`] for a task with stored models.
		pub fn compute_aggregate(
			task: TaskId,
			round: RoundIndex,
		) -> Result<(Vec<Fixed>, Vec<T::AccountId>), AggregationError> {
			let t = Tasks::<T>::get(task).ok_or(AggregationError::NoUpdates)?;
			let global = GlobalModel::<T>::get(task).ok_or(AggregationError::NoUpdates)?;
			let global = global.inline().ok_or(AggregationError::Unavailable)?;
			let updates = Updates::<T>::iter_prefix((task, round)).collect();
			aggregate_round::<T::Aggregator, _, _>(&t.rule, Self::admission(&t), global, updates, |who| {
				UpdateCredit::<T>::get((task, round), who).unwrap_or(0)
			})
		}

		/// Aggregates a round of a task with stored models as an honest
		/// aggregator does, streaming: reads the global model and the updates
		/// chunk by chunk from their stores, writes the new model to `store`,
		/// and returns its reference and the flagged outliers. An update
		/// whose store withholds it, sends something else or holds a
		/// parameter beyond the task's `max_abs` is left out and flagged
		/// ([`aggregate_fail_soft`]). Needs the offchain HTTP API (an
		/// offchain worker).
		pub fn compute_stored_aggregate(
			task: TaskId,
			round: RoundIndex,
			store: BoundedVec<u8, types::MaxStoreUrl>,
			reader: store::SealedReader,
			sign: store::SignFn,
		) -> Result<(ModelRef, Vec<T::AccountId>), AggregationError> {
			let t = Tasks::<T>::get(task).ok_or(AggregationError::NoUpdates)?;
			// The reads name a block a few blocks back (a store's node may lag
			// behind this one), not before the round closed: the committee and
			// the updates are in its state, and stay so while it aggregates.
			let Some(RoundPhase::Aggregating { since }) = Rounds::<T>::get(task, round).map(|r| r.phase) else {
				return Err(AggregationError::NoUpdates);
			};
			let now = frame_system::Pallet::<T>::block_number();
			let named = now.saturating_sub(SEALED_READ_LAG.into()).max(since);
			let at = H256::decode(&mut &frame_system::Pallet::<T>::block_hash(named).encode()[..])
				.map_err(|_| AggregationError::Unavailable)?;
			// A busy store (or one whose node has not the block yet) is
			// waited for a while before its update is left out.
			let patient = now < since.saturating_add(STORE_PATIENCE.into());
			let global = GlobalModel::<T>::get(task).ok_or(AggregationError::NoUpdates)?;
			let global = global.stored().cloned().ok_or(AggregationError::Unavailable)?;
			let mut updates: Vec<_> = Updates::<T>::iter_prefix((task, round)).collect();
			updates.sort_by(|a, b| a.0.cmp(&b.0));
			// An update names the store its submitter had registered when it
			// was submitted (checked then, so every node reads the same
			// updates whatever the registrations now). Its form is checked
			// again before any request: one the chain no longer accepts (an
			// update older than the registration rules) is not fetched, and
			// is left out and flagged like a withheld one.
			let loopback = LoopbackStores::<T>::get();
			let refs = updates
				.iter()
				.map(|(who, u)| {
					let r = u.params.stored().ok_or(AggregationError::Unavailable)?;
					if !is_registrable_store(&r.store, loopback) {
						return Ok(None);
					}
					let read = SealedRead {
						at,
						task,
						round,
						participant: who.clone(),
						model: r.digest,
						reader: reader.public(),
					};
					let (signer, signature) = sign(&read.signing_payload()).ok_or(AggregationError::Unavailable)?;
					let auth = SealedReadAuth { read, signer, signature };
					Ok(Some(store::SealedRef { model: r.clone(), authorization: store::sealed_read_header(&auth) }))
				})
				.collect::<Result<Vec<_>, _>>()?;
			let weights: Vec<_> = updates
				.iter()
				.map(|(who, u)| UpdateWeight {
					samples: u.samples,
					credit: UpdateCredit::<T>::get((task, round), who).unwrap_or(0),
				})
				.collect();
			let mut source = store::StoreSource::new(global.clone(), refs, reader, patient);
			let (writer, flagged) = aggregate_fail_soft::<T::Aggregator, _>(
				&t.rule,
				global.params as usize,
				&weights,
				Self::admission(&t),
				&mut source,
				|| store::StoreWriter::new(store.clone(), sign),
				|writer, window| writer.push(window),
			)?;
			let model = writer.finish()?;
			Ok((model, flagged.into_iter().map(|i| updates[i].0.clone()).collect()))
		}

		/// What this node's aggregators submit for a closed round: the
		/// model (inline, or written to this node's model store) and the
		/// flagged outliers.
		fn local_aggregate(
			task: TaskId,
			round: RoundIndex,
			stored: bool,
			voters: &[T::Public],
		) -> Result<(ModelParams<T::MaxParams>, Vec<T::AccountId>), AggregationError> {
			if stored {
				let target = store::local_store().ok_or(AggregationError::StoreFailed)?;
				// A one-time key for this aggregation's sealed reads.
				let reader = store::SealedReader::from_seed(&sp_io::offchain::random_seed())
					.ok_or(AggregationError::Unavailable)?;
				let sign = |payload: &[u8]| Self::sign_as_voter(payload, voters);
				let (model, outliers) = Self::compute_stored_aggregate(task, round, target, reader, &sign)?;
				Ok((ModelParams::Stored(model), outliers))
			} else {
				let (params, outliers) = Self::compute_aggregate(task, round)?;
				let params = BoundedVec::try_from(params).map_err(|_| AggregationError::LengthMismatch)?;
				Ok((ModelParams::Inline(params), outliers))
			}
		}

		/// Offchain worker: aggregates each closed round this node's
		/// aggregator keys have not voted on, and submits the result.
		fn aggregate_closed_rounds(now: BlockNumberFor<T>) -> Result<(), &'static str> {
			let signer = Signer::<T, T::AuthorityId>::all_accounts();
			if !signer.can_sign() {
				return Err("no aggregator key in the keystore");
			}
			for task in ActiveTasks::<T>::get() {
				let Some(t) = Tasks::<T>::get(task) else { continue };
				let round = t.round;
				let Some(r) = Rounds::<T>::get(task, round) else { continue };
				let RoundPhase::Aggregating { since } = r.phase else { continue };
				// Sealed reads name a block from the round's close on: wait
				// until the close block is not the newest.
				if t.stored_models && since >= now {
					continue;
				}
				let mut voters = Self::local_aggregators(task, round);
				if t.stored_models {
					// An aggregate is written to this node's store: only
					// aggregators that registered that store may submit it.
					let local = store::local_store();
					let before = voters.len();
					voters.retain(|public| {
						local.as_ref().is_some_and(|url| Self::is_registered_store(&public.clone().into_account(), url))
					});
					if voters.len() < before {
						log::warn!(
							target: LOG_TARGET,
							"task {task} round {round}: {} of this node's aggregator keys do not vote: their accounts \
							 did not register this node's model store ({}) with register_store",
							before - voters.len(),
							if local.is_some() { "set" } else { "none set with aggregator-store" },
						);
					}
				}
				if voters.is_empty() {
					continue;
				}
				let marker_key = (b"medchain/fl-task/submitted", task, round).encode();
				let mut marker = StorageValueRef::persistent(&marker_key);
				let now_u32: u32 = sp_runtime::SaturatedConversion::saturated_into(now);
				let fresh = marker.mutate(|last: Result<Option<u32>, _>| match last {
					Ok(Some(at)) if now_u32 < at.saturating_add(RESUBMIT_AFTER) => Err(()),
					_ => Ok(now_u32),
				});
				if fresh.is_err() {
					continue;
				}
				let (params, outliers) = match Self::local_aggregate(task, round, t.stored_models, &voters) {
					Ok(x) => x,
					Err(e) => {
						log::warn!(target: LOG_TARGET, "task {task} round {round}: cannot aggregate: {e:?}");
						// Try again at the next block, not after RESUBMIT_AFTER.
						marker.clear();
						continue;
					},
				};
				let Ok(outliers) = BoundedVec::try_from(outliers) else { continue };
				let sent = Signer::<T, T::AuthorityId>::all_accounts()
					.with_filter(voters)
					.send_signed_transaction(|_| Call::submit_aggregate {
						task,
						round,
						params: params.clone(),
						outliers: outliers.clone(),
						updates: r.submitted,
					});
				for (account, result) in sent {
					log::info!(
						target: LOG_TARGET,
						"task {task} round {round}: aggregate submitted by {:?}: {:?}",
						account.id,
						result
					);
				}
			}
			Ok(())
		}

		/// `payload` signed by the first of this node's aggregator keys
		/// among `voters` (committee members of the round): its public key
		/// and the signature. Sealed reads and uploads to stores are signed
		/// so.
		fn sign_as_voter(payload: &[u8], voters: &[T::Public]) -> Option<(Vec<u8>, Vec<u8>)> {
			use sp_application_crypto::RuntimeAppPublic;
			// The first voter's key (each is a key of this node's keystore).
			let generic =
				<T::AuthorityId as AppCrypto<T::Public, T::Signature>>::GenericPublic::try_from(voters.first()?.clone())
					.ok()?;
			let key: <T::AuthorityId as AppCrypto<T::Public, T::Signature>>::RuntimeAppPublic = generic.into();
			Some((key.to_raw_vec(), key.sign(&payload)?.encode()))
		}

		/// Public keys in this node's keystore whose accounts are in the
		/// round's committee (producers that collated when it closed) and
		/// have not yet voted on it.
		fn local_aggregators(task: TaskId, round: RoundIndex) -> Vec<T::Public> {
			let committee = Committees::<T>::get((task, round)).map(|(_, c)| c).unwrap_or_default();
			<<T::AuthorityId as AppCrypto<T::Public, T::Signature>>::RuntimeAppPublic as sp_application_crypto::RuntimeAppPublic>::all()
				.into_iter()
				.filter_map(|key| {
					let generic: <T::AuthorityId as AppCrypto<T::Public, T::Signature>>::GenericPublic =
						key.into();
					let public: T::Public = generic.into();
					let account = public.clone().into_account();
					(T::Registry::has_role(&account, Role::Producer) &&
						committee.contains(&account) &&
						!AggregateVotes::<T>::contains_key((task, round), &account))
					.then_some(public)
				})
				.collect()
		}

		/// Checks the pallet's invariants.
		#[cfg(any(feature = "try-runtime", feature = "std", test))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			for task in ActiveTasks::<T>::get() {
				let t = Tasks::<T>::get(task).ok_or("active task missing")?;
				ensure!(t.status == TaskStatus::Running, "active task not running");
				let r = Rounds::<T>::get(task, t.round).ok_or("current round missing")?;
				let updates = Updates::<T>::iter_prefix((task, t.round)).count() as u32;
				ensure!(updates == r.submitted, "round's update count differs from its updates");
				if matches!(r.phase, RoundPhase::Aggregating { .. }) {
					ensure!(Committees::<T>::contains_key((task, t.round)), "aggregating round without committee");
				}
				let evaluations = Evaluations::<T>::get((task, t.round)).len() as u32;
				ensure!(evaluations == r.submitted, "round's evaluation count differs from its updates");
				let votes = AggregateVotes::<T>::iter_prefix((task, t.round)).count() as u32;
				ensure!(votes == VoteCount::<T>::get((task, t.round)), "vote count differs from votes");
				let participants = Participants::<T>::iter_prefix(task).count() as u32;
				ensure!(participants == t.participants, "participant count differs");
			}
			for (task, t) in Tasks::<T>::iter() {
				let model = GlobalModel::<T>::get(task).ok_or("task without global model")?;
				ensure!(model.digest() == t.model_digest, "model digest differs from model");
				ensure!(model.is_stored() == t.stored_models, "model form differs from the task's");
				if t.status != TaskStatus::Running {
					ensure!(!ActiveTasks::<T>::get().contains(&task), "finished task still active");
				}
			}
			Ok(())
		}
	}
}

