//! v1 → v2: evaluations rest on a minimum of held-out rows, tasks may ask
//! for differential privacy, and rounds are aggregated by a committee.
//!
//! - `Tasks`: each task gets `limits.min_held_out` at the runtime's
//!   `MinSamplesFloor` and no differential privacy (its participants never
//!   agreed to add noise).
//! - `Updates` of running rounds: `held_out` 0 (they were accepted before the
//!   rule).
//! - A round that was already aggregating gets its committee now (the
//!   producers collating at the upgrade), so it can still be adopted; a
//!   round still collecting gets its evaluations from the updates it holds,
//!   so its measured accuracy counts them.

use crate::{
	Committees, Config, Evaluations, LearningTask, ModelUpdate, Pallet, RoundPhase, Rounds, Tasks, UpdateLimits,
	Updates,
};
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
		Updates::<T>::translate::<v1::ModelUpdate<T::MaxParams>, _>(|_, _, old| {
			reads.saturating_inc();
			writes.saturating_inc();
			Some(ModelUpdate { params: old.params, samples: old.samples, accuracy: old.accuracy, loss: old.loss, held_out: 0 })
		});
		for task in crate::ActiveTasks::<T>::get() {
			reads.saturating_accrue(3);
			let Some(t) = Tasks::<T>::get(task) else { continue };
			let round = t.round;
			match Rounds::<T>::get(task, round).map(|r| r.phase) {
				Some(RoundPhase::Aggregating { .. }) if !Committees::<T>::contains_key((task, round)) => {
					Pallet::<T>::seat_committee(task, &t, round);
					writes.saturating_inc();
				},
				Some(RoundPhase::Collecting) if Evaluations::<T>::get((task, round)).is_empty() => {
					let evaluations: alloc::vec::Vec<_> =
						Updates::<T>::iter_prefix_values((task, round)).map(|u| u.accuracy).collect();
					reads.saturating_accrue(evaluations.len() as u64);
					writes.saturating_inc();
					Evaluations::<T>::insert((task, round), BoundedVec::truncate_from(evaluations));
				},
				_ => {},
			}
		}
		log::info!(target: crate::LOG_TARGET, "v2: {reads} entries read, {writes} written");
		// Seating a committee reads the collators and their roles.
		T::DbWeight::get().reads_writes(reads.saturating_add(T::MaxAggregators::get().into()), writes)
	}

	#[cfg(feature = "try-runtime")]
	fn pre_upgrade() -> Result<alloc::vec::Vec<u8>, sp_runtime::TryRuntimeError> {
		let tasks = Tasks::<T>::iter_keys().count() as u64;
		let updates = Updates::<T>::iter_keys().count() as u64;
		Ok((tasks, updates).encode())
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		let (tasks, updates) = <(u64, u64)>::decode(&mut &state[..]).map_err(|_| "bad pre-upgrade state")?;
		ensure!(Tasks::<T>::iter().count() as u64 == tasks, "tasks lost in the migration");
		ensure!(Updates::<T>::iter().count() as u64 == updates, "updates lost in the migration");
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
			model_digest: sp_core::H256::repeat_byte(7),
			stored_models: false,
		}
	}

	fn round(phase: RoundPhase<u64>, submitted: u32) -> Round<u64> {
		Round { phase, deadline: 9, extensions: 0, submitted, samples: 20, accuracy: Permill::zero(), loss: 0 , outliers: 0 }
	}

	#[test]
	fn v1_tasks_and_running_rounds_keep_going_under_v2() {
		new_test_ext(|_| {
			type Pre = Pallet<Test>;
			// Nothing else in the mock's genesis: the two tasks below are all.
			StorageVersion::new(1).put::<Pre>();
			let old_update = |acc: u32| v1::ModelUpdate::<ConstU32<64>> {
				params: ModelParams::Inline(vec![1, 2, 3].try_into().unwrap()),
				samples: 10,
				accuracy: Permill::from_percent(acc),
				loss: 0,
			};
			// Task 0 collects (two updates in), task 1 aggregates (no committee yet).
			for (task, phase) in [(0u32, RoundPhase::Collecting), (1, RoundPhase::Aggregating { since: 1 })] {
				unhashed::put(&Tasks::<Test>::hashed_key_for(task), &v1_task(0));
				Rounds::<Test>::insert(task, 0, round(phase, 2));
				for (who, acc) in [(4u64, 60), (5, 80)] {
					unhashed::put(&Updates::<Test>::hashed_key_for((task, 0), who), &old_update(acc));
					crate::Participants::<Test>::insert(task, who, ());
				}
			}
			crate::ActiveTasks::<Test>::put(BoundedVec::truncate_from(vec![0, 1]));
			crate::NextTaskId::<Test>::put(2);
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(Pre::on_chain_storage_version(), 2);
			for task in [0, 1] {
				let t = Tasks::<Test>::get(task).expect("the task survives");
				assert_eq!(t.privacy, None);
				assert_eq!(t.limits.min_held_out, <<Test as Config>::MinSamplesFloor as frame_support::traits::Get<u32>>::get());
				assert_eq!((t.limits.max_abs, t.limits.min_samples, t.limits.max_samples), (FIXED_ONE * 10, 1, 100));
				let u = Updates::<Test>::get((task, 0), 5).expect("the update survives");
				assert_eq!((u.samples, u.accuracy, u.held_out), (10, Permill::from_percent(80), 0));
			}
			// The collecting round counts the evaluations it already holds.
			let mut evaluations = Evaluations::<Test>::get((0, 0)).into_inner();
			evaluations.sort();
			assert_eq!(evaluations, vec![Permill::from_percent(60), Permill::from_percent(80)]);
			// The aggregating round has a committee, so it can be adopted.
			let (required, committee) = Committees::<Test>::get((1, 0)).expect("seated at the upgrade");
			assert!(required >= 2 && committee.len() as u32 >= required);
			assert!(!Committees::<Test>::contains_key((0, 0)));
			// Once only: a second run leaves v2 state alone.
			Tasks::<Test>::mutate(0, |t| t.as_mut().unwrap().limits.min_held_out = 77);
			MigrateV1ToV2::<Test>::on_runtime_upgrade();
			assert_eq!(Tasks::<Test>::get(0).unwrap().limits.min_held_out, 77);
			// Leave the mock consistent for its invariants.
			for task in [0, 1] {
				Pallet::<Test>::clear_round_state(task, 0);
				Tasks::<Test>::remove(task);
				Rounds::<Test>::remove(task, 0);
				let _ = crate::Participants::<Test>::clear_prefix(task, u32::MAX, None);
			}
			crate::ActiveTasks::<Test>::kill();
		});
	}
}
