//! v0 → v1: a task records what one update may contain ([`UpdateLimits`]).
//!
//! Tasks stored before get the limits that change least for their
//! participants: parameters bounded by the runtime's `MaxParamAbs` (the
//! ceiling under which aggregation cannot overflow), at least one sample
//! (the old rule) and no cap on the sample weight. Running rounds keep
//! their updates; an inline update already beyond the bound is left out and
//! flagged by the aggregators, as a new one would be refused.

use super::v2::v1::{LearningTask, Tasks, UpdateLimits};
use crate::{Config, Pallet};
use codec::{Decode, Encode};
use frame_support::{migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade};

/// The v0 layout.
pub mod v0 {
	use super::*;
	use crate::{AggregationRule, ModelKind, RoundIndex, TaskStatus, TrainingHints};
	use sp_core::H256;
	use sp_runtime::Permill;

	/// A task as stored in v0: v1 without `limits`.
	#[derive(Encode, Decode)]
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

	/// `Tasks` in v0.
	#[cfg(any(feature = "try-runtime", test))]
	#[frame_support::storage_alias]
	pub type Tasks<T: Config> = StorageMap<
		Pallet<T>,
		Twox64Concat,
		crate::TaskId,
		LearningTask<<T as frame_system::Config>::AccountId>,
		OptionQuery,
	>;
}

/// The limits a v0 task gets.
pub fn v0_limits<T: Config>() -> UpdateLimits {
	UpdateLimits { max_abs: T::MaxParamAbs::get(), min_samples: 1, max_samples: u32::MAX }
}

/// The unversioned step; use [`MigrateV0ToV1`].
pub struct InnerMigrateV0ToV1<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV0ToV1<T> {
	fn on_runtime_upgrade() -> Weight {
		let mut tasks = 0u64;
		Tasks::<T>::translate::<v0::LearningTask<T::AccountId>, _>(|_, old| {
			tasks = tasks.saturating_add(1);
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
				limits: v0_limits::<T>(),
				status: old.status,
				round: old.round,
				participants: old.participants,
				model_digest: old.model_digest,
				stored_models: old.stored_models,
			})
		});
		log::info!(target: crate::LOG_TARGET, "v1: {tasks} tasks given update limits");
		T::DbWeight::get().reads_writes(tasks, tasks)
	}

	#[cfg(feature = "try-runtime")]
	fn pre_upgrade() -> Result<alloc::vec::Vec<u8>, sp_runtime::TryRuntimeError> {
		Ok((v0::Tasks::<T>::iter_keys().count() as u64).encode())
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		let before = u64::decode(&mut &state[..]).map_err(|_| "bad pre-upgrade state")?;
		ensure!(Tasks::<T>::iter().count() as u64 == before, "tasks lost in the migration");
		// Tasks are in the v1 layout here: the pallet's own checks run
		// after the v2 step.
		Ok(())
	}
}

/// Migrates `Tasks` from v0 to v1 once (checks and bumps the storage version).
pub type MigrateV0ToV1<T> = VersionedMigration<
	0,
	1,
	InnerMigrateV0ToV1<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{mock::*, AggregationRule, ModelKind, TaskStatus, TrainingHints};
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade};
	use sp_runtime::Permill;

	#[test]
	fn v0_tasks_get_limits_that_keep_them_running() {
		new_test_ext(|_| {
			type Pre = Pallet<Test>;
			assert_eq!(Pre::on_chain_storage_version(), 0);
			let old = v0::LearningTask::<AccountId> {
				publisher: 1,
				model: ModelKind::LogisticRegression { features: 2 },
				hints: TrainingHints { epochs: 1, learning_rate: 1, batch_size: 0 },
				target_accuracy: Permill::from_percent(90),
				max_rounds: 3,
				min_participants: 2,
				round_blocks: 5,
				rule: AggregationRule::Median,
				aggregators_required: 2,
				status: TaskStatus::Running,
				round: 1,
				participants: 2,
				model_digest: sp_core::H256::repeat_byte(7),
				stored_models: false,
			};
			v0::Tasks::<Test>::insert(3, old);
			MigrateV0ToV1::<Test>::on_runtime_upgrade();
			assert_eq!(Pre::on_chain_storage_version(), 1);
			let t = Tasks::<Test>::get(3).expect("the task survives");
			assert_eq!(t.limits, v0_limits::<Test>());
			assert_eq!(t.limits.max_abs, <Test as Config>::MaxParamAbs::get());
			assert_eq!((t.rule, t.round, t.participants, t.min_participants), (AggregationRule::Median, 1, 2, 2));
			assert_eq!(t.model_digest, sp_core::H256::repeat_byte(7));
			// Once only: a second run leaves a v1 task alone.
			let mut changed = t.clone();
			changed.limits.min_samples = 5;
			Tasks::<Test>::insert(3, changed.clone());
			MigrateV0ToV1::<Test>::on_runtime_upgrade();
			assert_eq!(Tasks::<Test>::get(3), Some(changed));
			// Nothing else in the mock's genesis: remove it so try_state holds.
			Tasks::<Test>::remove(3);
		});
	}
}
