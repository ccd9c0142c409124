//! v1 → v2: evaluations rest on a minimum of held-out rows, tasks may ask
//! for differential privacy, and rounds are aggregated by a committee.
//!
//! - `Tasks`: each task gets `limits.min_held_out` at the runtime's
//!   `MinSamplesFloor` and no differential privacy (its participants never
//!   agreed to add noise).
//! - The round each running task is in starts again: its updates (in the
//!   v1 layout, without a held-out count), votes, proposals and evaluations
//!   are cleared and it collects afresh for `round_blocks` (`RoundStarted`).
//!   Its participants' clients see it open without their update and train
//!   again. Clearing instead of translating keeps the upgrade block small:
//!   a round's updates may hold megabytes of inline parameters, and
//!   removing them needs no read of their values.

use crate::{Config, Event, LearningTask, Pallet, RoundPhase, Rounds, Tasks, UpdateLimits};
#[cfg(feature = "try-runtime")]
use codec::{Decode, Encode};
use frame_support::{migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade};
use sp_runtime::Saturating;

/// The v1 layout.
pub mod v1 {
	use crate::{
		AggregationRule, Fixed, ModelKind, ModelParams, RoundIndex, TaskStatus, TrainingHints,
	};
	use codec::{Decode, Encode};
	use frame_support::traits::Get;
	use sp_core::H256;
	use sp_runtime::Permill;

	/// What one update may contain, in v1: v2 without `min_held_out`.
	#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
	pub struct UpdateLimits {
		/// Largest absolute value of a parameter.
		pub max_abs: Fixed,
		/// Fewest samples behind an update.
		pub min_samples: u32,
		/// Most samples an update is weighted by.
		pub max_samples: u32,
	}

	/// A task as stored in v1: v2 without `privacy`, with v1 limits.
	#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
	pub struct LearningTask<AccountId> {
		/// Who published it.
		pub publisher: AccountId,
		/// The model trained.
		pub model: ModelKind,
		/// Suggested local training.
		pub hints: TrainingHints,
		/// Accuracy that finishes the task.
		pub target_accuracy: Permill,
		/// Most rounds.
		pub max_rounds: u32,
		/// Quorum of a round.
		pub min_participants: u32,
		/// Blocks a round collects updates for.
		pub round_blocks: u32,
		/// Aggregation rule.
		pub rule: AggregationRule,
		/// Agreeing aggregators needed to adopt a model.
		pub aggregators_required: u32,
		/// What one update may contain.
		pub limits: UpdateLimits,
		/// Where the task stands.
		pub status: TaskStatus,
		/// The current round.
		pub round: RoundIndex,
		/// Institutions that joined.
		pub participants: u32,
		/// Digest of the current global model.
		pub model_digest: H256,
		/// The task's models are kept in model stores.
		pub stored_models: bool,
	}

	/// `Tasks` in v1.
	#[frame_support::storage_alias]
	pub type Tasks<T: crate::Config> = StorageMap<
		crate::Pallet<T>,
		frame_support::Twox64Concat,
		crate::TaskId,
		LearningTask<<T as frame_system::Config>::AccountId>,
		frame_support::pallet_prelude::OptionQuery,
	>;

	/// An update as stored in v1: v2 without `held_out`.
	#[derive(Encode, Decode)]
	pub struct ModelUpdate<MaxParams: Get<u32>> {
		/// The parameters.
		pub params: ModelParams<MaxParams>,
		/// Samples behind them.
		pub samples: u32,
		/// The participant's evaluation of the global model.
		pub accuracy: Permill,
		/// Its loss.
		pub loss: Fixed,
	}
}

/// The unversioned step; use [`MigrateV1ToV2`].
pub struct InnerMigrateV1ToV2<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV1ToV2<T> {
	fn on_runtime_upgrade() -> Weight {
		let floor = T::MinSamplesFloor::get();
		let (mut reads, mut writes) = (0u64, 0u64);
		Tasks::<T>::translate::<v1::LearningTask<T::AccountId>, _>(|_, old| {
			reads.saturating_inc();
			writes.saturating_inc();
			Some(LearningTask {
				publisher: old.publisher,
				model: old.model,
				hints: old.hints,
				target_accuracy: old.target_accuracy,
				max_rounds: old.max_rounds,
				min_participants: old.min_participants,
				round_blocks: old.round_blocks,
				rule: old.rule,
				aggregators_required: old.aggregators_required,
				limits: UpdateLimits {
					max_abs: old.limits.max_abs,
					min_samples: old.limits.min_samples,
					max_samples: old.limits.max_samples,
					min_held_out: floor,
				},
				status: old.status,
				round: old.round,
				participants: old.participants,
				model_digest: old.model_digest,
				stored_models: old.stored_models,
				privacy: None,
			})
		});
		let now = frame_system::Pallet::<T>::block_number();
		let mut restarted = 0u64;
		for task in crate::ActiveTasks::<T>::get() {
			reads.saturating_accrue(2);
			let Some(t) = Tasks::<T>::get(task) else { continue };
			let round = t.round;
			let Some(mut r) = Rounds::<T>::get(task, round) else { continue };
			if !matches!(r.phase, RoundPhase::Collecting | RoundPhase::Aggregating { .. }) {
				continue;
			}
			// Keys only: removing an update reads no parameters.
			Pallet::<T>::clear_round_state(task, round);
			r.phase = RoundPhase::Collecting;
			r.deadline = now.saturating_add(t.round_blocks.into());
			r.submitted = 0;
			r.samples = 0;
			r.accuracy = Default::default();
			r.loss = 0;
			r.outliers = 0;
			Rounds::<T>::insert(task, round, r);
			Pallet::<T>::deposit_event(Event::RoundStarted { task, round, deadline: r.deadline });
			restarted.saturating_inc();
		}
		log::info!(target: crate::LOG_TARGET, "v2: {reads} tasks read, {restarted} running rounds restarted");
		// A restarted round removes at most `MaxParticipants` entries from
		// each of four maps, plus its votes, proposals, committee and count.
		let per_round = u64::from(T::MaxParticipants::get())
			.saturating_mul(2)
			.saturating_add(u64::from(T::MaxAggregators::get()).saturating_mul(2))
			.saturating_add(4);
		T::DbWeight::get()
			.reads_writes(reads, writes.saturating_add(restarted.saturating_mul(per_round)))
			// Proof: the tasks and rounds read (small, bounded entries).
			.saturating_add(Weight::from_parts(0, reads.saturating_mul(512)))
	}

	#[cfg(feature = "try-runtime")]
	fn pre_upgrade() -> Result<alloc::vec::Vec<u8>, sp_runtime::TryRuntimeError> {
		Ok((v1::Tasks::<T>::iter_keys().count() as u64).encode())
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		let tasks = u64::decode(&mut &state[..]).map_err(|_| "bad pre-upgrade state")?;
		ensure!(Tasks::<T>::iter().count() as u64 == tasks, "tasks lost in the migration");
		Pallet::<T>::do_try_state()
	}
}

/// Migrates v1 to v2 once (checks and bumps the storage version).
pub type MigrateV1ToV2<T> = VersionedMigration<
	1,
	2,
	InnerMigrateV1ToV2<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{
		mock::*, AggregationRule, ModelKind, ModelParams, Round, TaskStatus, TrainingHints, FIXED_ONE,
	};
	use frame_support::assert_ok;
	use frame_support::{
		storage::unhashed,
		traits::{ConstU32, GetStorageVersion, OnRuntimeUpgrade, StorageVersion},
	};
	use sp_runtime::Permill;

	fn v1_task(round: u32) -> v1::LearningTask<AccountId> {
		v1::LearningTask {
			publisher: 1,
			model: ModelKind::LogisticRegression { features: 2 },
			hints: TrainingHints { epochs: 1, learning_rate: 1, batch_size: 0 },
			target_accuracy: Permill::from_percent(90),
			max_rounds: 3,
			min_participants: 2,
			round_blocks: 5,
			rule: AggregationRule::Median,
			aggregators_required: 2,
			limits: v1::UpdateLimits { max_abs: FIXED_ONE * 10, min_samples: 1, max_samples: 100 },
			status: TaskStatus::Running,
			round,
			participants: 2,
			model_digest: crate::model_digest(&[0, 0, 0]),
			stored_models: false,
		}
	}

	fn round(phase: RoundPhase<u64>, submitted: u32) -> Round<u64> {
		Round { phase, deadline: 9, extensions: 0, submitted, samples: 20, accuracy: Permill::zero(), loss: 0 , outliers: 0 }
	}

	#[test]
	fn v1_tasks_keep_going_under_v2_with_their_running_rounds_restarted() {
		new_test_ext(|_| {
			type Pre = Pallet<Test>;
			StorageVersion::new(1).put::<Pre>();
			let old_update = |acc: u32| v1::ModelUpdate::<ConstU32<64>> {
				params: ModelParams::Inline(vec![1, 2, 3].try_into().unwrap()),
				samples: 10,
				accuracy: Permill::from_percent(acc),
				loss: 0,
			};
			// Task 0 collects (two updates in), task 1 aggregates (a vote in).
			for (task, phase) in [(0u32, RoundPhase::Collecting), (1, RoundPhase::Aggregating { since: 1 })] {
				v1::Tasks::<Test>::insert(task, v1_task(0));
				crate::GlobalModel::<Test>::insert(task, ModelParams::Inline(vec![0, 0, 0].try_into().unwrap()));
				Rounds::<Test>::insert(task, 0, round(phase, 2));
				for (who, acc) in [(4u64, 60), (5, 80)] {
					unhashed::put(&crate::Updates::<Test>::hashed_key_for((task, 0), who), &old_update(acc));
					crate::Participants::<Test>::insert(task, who, ());
				}
			}
			crate::AggregateVotes::<Test>::insert((1, 0), 1, sp_core::H256::repeat_byte(1));
			crate::VoteCount::<Test>::insert((1, 0), 1);
			crate::ActiveTasks::<Test>::put(BoundedVec::truncate_from(vec![0, 1]));
			crate::NextTaskId::<Test>::put(2);
			System::set_block_number(7);
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(Pre::on_chain_storage_version(), 2);
			for task in [0, 1] {
				let t = Tasks::<Test>::get(task).expect("the task survives");
				assert_eq!(t.privacy, None);
				assert_eq!(t.limits.min_held_out, <<Test as Config>::MinSamplesFloor as frame_support::traits::Get<u32>>::get());
				assert_eq!((t.limits.max_abs, t.limits.min_samples, t.limits.max_samples), (FIXED_ONE * 10, 1, 100));
				// The round collects again from scratch, for round_blocks.
				let r = Rounds::<Test>::get(task, 0).unwrap();
				assert_eq!((r.phase, r.deadline, r.submitted, r.samples), (RoundPhase::Collecting, 7 + 5, 0, 0));
				assert_eq!(crate::Updates::<Test>::iter_prefix((task, 0)).count(), 0);
				assert!(crate::Evaluations::<Test>::get((task, 0)).is_empty());
				assert!(System::events().iter().any(|e| e.event ==
					RuntimeEvent::FlTask(crate::Event::RoundStarted { task, round: 0, deadline: 12 })));
			}
			assert_eq!(crate::AggregateVotes::<Test>::iter().count(), 0);
			assert_eq!(crate::VoteCount::<Test>::get((1, 0)), 0);
			// The pallet's invariants hold right after the upgrade.
			assert_ok!(Pallet::<Test>::do_try_state());
			// A participant submits in the v2 layout, and the round goes on.
			assert_ok!(crate::Pallet::<Test>::submit_update(
				RuntimeOrigin::signed(4),
				0,
				0,
				crate::ModelUpdate {
					params: ModelParams::Inline(vec![1, 2, 3].try_into().unwrap()),
					samples: 10,
					accuracy: Permill::from_percent(70),
					loss: 0,
					held_out: 20,
				}
			));
			// Once only: a second run leaves v2 state alone.
			Tasks::<Test>::mutate(0, |t| t.as_mut().unwrap().limits.min_held_out = 77);
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(Tasks::<Test>::get(0).unwrap().limits.min_held_out, 77);
			assert_eq!(crate::Updates::<Test>::iter_prefix((0, 0)).count(), 1);
		});
	}
}
