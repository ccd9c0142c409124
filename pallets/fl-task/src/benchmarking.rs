//! Benchmarks of federated learning (frame-benchmarking v2). They also run as
//! tests against the mock runtime.

use super::*;
use crate::Pallet as FlTask;
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{Get, Hooks},
	BoundedVec,
};
use frame_system::RawOrigin;

/// A logistic-regression spec with `p` parameters and quorum `quorum` (at
/// least the runtime's floor), aggregated with credit-weighted FedAvg: the
/// rule that stores the most (a credit snapshot per update), so the weights
/// cover every rule. As few aggregators as the runtime allows.
fn spec<T: Config>(p: u32, quorum: u32) -> TaskSpec<T::MaxParams> {
	TaskSpec {
		model: ModelKind::LogisticRegression { features: p - 1 },
		initial_model: ModelParams::Inline(BoundedVec::truncate_from(alloc::vec![FIXED_ONE; p as usize])),
		hints: TrainingHints { epochs: 1, learning_rate: FIXED_ONE / 10, batch_size: 0 },
		target_accuracy: Permill::from_percent(99),
		max_rounds: T::MaxRounds::get(),
		min_participants: quorum.max(T::MinParticipantsFloor::get()),
		round_blocks: T::MinRoundBlocks::get(),
		rule: AggregationRule::CreditWeightedFedAvg,
		aggregators_required: T::MinAggregatorsFloor::get(),
		// The widest bound: every parameter is checked against it.
		limits: UpdateLimits {
			max_abs: T::MaxParamAbs::get(),
			min_samples: T::MinSamplesFloor::get(),
			max_samples: u32::MAX,
			min_held_out: T::MinSamplesFloor::get(),
		},
		// Differential privacy: publishing computes its ε.
		privacy: Some(DifferentialPrivacy { clip_norm: FIXED_ONE, noise_multiplier: 1_000, delta_exponent: 18 }),
	}
}

/// Publishes a task with `p` parameters and `n` participants, quorum `n`
/// (or the runtime's floor, if higher).
fn task_with<T: Config>(p: u32, n: u32) -> TaskId {
	let id = NextTaskId::<T>::get();
	let publisher = T::BenchmarkHelper::institution(0);
	FlTask::<T>::publish_task(RawOrigin::Signed(publisher).into(), spec::<T>(p, n))
		.expect("benchmark publisher is an institution");
	for i in 0..n {
		FlTask::<T>::join_task(RawOrigin::Signed(T::BenchmarkHelper::institution(i)).into(), id)
			.expect("benchmark institutions may join");
	}
	id
}

/// Seats as many collating producers as a committee may have (the
/// runtime's `MaxAggregators` is its `DesiredCollators`), none of them a
/// participant or the publisher: every vote then reports credit of its own.
fn seat_collators<T: Config>() {
	let first = T::MaxParticipants::get();
	let collators = (first..first + T::MaxAggregators::get()).map(T::BenchmarkHelper::institution).collect();
	T::BenchmarkHelper::set_collators(collators);
}

fn update<T: Config>(p: u32, v: Fixed) -> ModelUpdate<T::MaxParams> {
	ModelUpdate {
		params: ModelParams::Inline(BoundedVec::truncate_from(alloc::vec![v; p as usize])),
		samples: T::MinSamplesFloor::get().max(100),
		accuracy: Permill::from_percent(50),
		loss: FIXED_ONE,
		held_out: T::MinSamplesFloor::get().max(100),
	}
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn publish_task(p: Linear<2, { T::MaxParams::get() }>) {
		let publisher = T::BenchmarkHelper::institution(0);
		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), spec::<T>(p, T::MinParticipantsFloor::get()));
		assert_eq!(GlobalModel::<T>::get(0).map(|m| m.len()), Some(p));
	}

	#[benchmark]
	fn join_task() {
		let task = task_with::<T>(2, 0);
		let who = T::BenchmarkHelper::institution(1);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), task);
		assert!(Participants::<T>::contains_key(task, who));
	}

	/// The last participant's update, which also closes the round and takes
	/// its committee from the largest collator set.
	#[benchmark]
	fn submit_update(p: Linear<2, { T::MaxParams::get() }>) {
		seat_collators::<T>();
		let n = T::MinParticipantsFloor::get().max(2);
		let task = task_with::<T>(p, n);
		for i in 0..n - 1 {
			FlTask::<T>::submit_update(
				RawOrigin::Signed(T::BenchmarkHelper::institution(i)).into(),
				task,
				0,
				update::<T>(p, 1),
			)
			.expect("participant submits");
		}
		let last = T::BenchmarkHelper::institution(n - 1);
		#[extrinsic_call]
		_(RawOrigin::Signed(last), task, 0, update::<T>(p, 2));
		assert!(matches!(Rounds::<T>::get(task, 0).map(|r| r.phase), Some(RoundPhase::Aggregating { .. })));
	}

	/// The adopting aggregate of a round with `n` updates (at least the
	/// quorum floor), all flagged, after the other required aggregators
	/// voted the same. Proof size is measured: an update's bound is the
	/// largest model, far above what a round reads.
	#[benchmark(pov_mode = Measured)]
	fn submit_aggregate(
		p: Linear<2, { T::MaxParams::get() }>,
		n: Linear<{ T::MinParticipantsFloor::get() }, { T::MaxParticipants::get() }>,
	) {
		// The round closes with a committee as large as it may be.
		seat_collators::<T>();
		let task = task_with::<T>(p, n);
		let mut outliers = alloc::vec::Vec::new();
		for i in 0..n {
			let who = T::BenchmarkHelper::institution(i);
			FlTask::<T>::submit_update(RawOrigin::Signed(who.clone()).into(), task, 0, update::<T>(p, i as Fixed))
				.expect("participant submits");
			outliers.push(who);
		}
		outliers.sort();
		let outliers = BoundedVec::truncate_from(outliers);
		let (required, committee) = Committees::<T>::get((task, 0)).expect("the round closed with a committee");
		// The required members vote the same model; the last of them adopts.
		// (A member voting another inline model before that would split the
		// committee: the runtime's settlement, `settle_dispute`, is weighed
		// on its own.)
		let params = ModelParams::Inline(BoundedVec::truncate_from(alloc::vec![7; p as usize]));
		for who in committee.iter().take(required as usize).skip(1) {
			FlTask::<T>::submit_aggregate(
				RawOrigin::Signed(who.clone()).into(),
				task,
				0,
				params.clone(),
				outliers.clone(),
				n,
			)
			.expect("another member votes the same");
		}
		let aggregator = committee.first().cloned().expect("a committee");
		#[extrinsic_call]
		_(RawOrigin::Signed(aggregator), task, 0, params, outliers, n);
		assert!(matches!(Rounds::<T>::get(task, 0).map(|r| r.phase), Some(RoundPhase::Adopted { .. })));
	}

	/// A vote that splits the committee of a round with `n` updates of `p`
	/// parameters: the runtime aggregates the round itself under a trimmed
	/// mean (a sort of every column, then a mean: the costliest rule) and
	/// adopts the result. The last update is far from the others: it is
	/// flagged, so the round is aggregated a second time without it.
	#[benchmark(pov_mode = Measured)]
	fn settle_dispute(
		p: Linear<2, { T::MaxParams::get() }>,
		n: Linear<{ T::MinParticipantsFloor::get() }, { T::MaxParticipants::get() }>,
	) {
		seat_collators::<T>();
		let id = NextTaskId::<T>::get();
		let publisher = T::BenchmarkHelper::institution(0);
		let spec = TaskSpec { rule: AggregationRule::TrimmedMean { trim: Permill::from_percent(10) }, ..spec::<T>(p, n) };
		FlTask::<T>::publish_task(RawOrigin::Signed(publisher).into(), spec).expect("benchmark publisher publishes");
		for i in 0..n {
			let who = T::BenchmarkHelper::institution(i);
			FlTask::<T>::join_task(RawOrigin::Signed(who.clone()).into(), id).expect("benchmark institutions may join");
			let v = if i + 1 == n { 1_000 * FIXED_ONE } else { i as Fixed * FIXED_ONE / 8 };
			FlTask::<T>::submit_update(RawOrigin::Signed(who).into(), id, 0, update::<T>(p, v))
				.expect("participant submits");
		}
		let (_, committee) = Committees::<T>::get((id, 0)).expect("the round closed with a committee");
		let none = BoundedVec::new();
		let wrong = |v: Fixed| ModelParams::Inline(BoundedVec::truncate_from(alloc::vec![v; p as usize]));
		let first = committee.first().cloned().expect("a committee");
		FlTask::<T>::submit_aggregate(RawOrigin::Signed(first).into(), id, 0, wrong(-1), none.clone(), n)
			.expect("a member votes");
		let second = committee.get(1).cloned().expect("a committee of two or more");
		#[extrinsic_call]
		submit_aggregate(RawOrigin::Signed(second), id, 0, wrong(-2), none, n);
		assert!(matches!(Rounds::<T>::get(id, 0).map(|r| r.phase), Some(RoundPhase::Adopted { .. })));
	}

	#[benchmark]
	fn cancel_task() {
		let task = task_with::<T>(2, 1);
		#[extrinsic_call]
		_(RawOrigin::Root, task);
		assert_eq!(Tasks::<T>::get(task).map(|t| t.status), Some(TaskStatus::Failed(FailureReason::Cancelled)));
	}

	/// A store URL of the largest length, replacing one already registered.
	#[benchmark]
	fn register_store() {
		let who = T::BenchmarkHelper::institution(0);
		let longest = <MaxStoreUrl as Get<u32>>::get() as usize;
		let mut url = b"https://models.hospital.example/".to_vec();
		url.resize(longest, b'a');
		let url: BoundedVec<u8, MaxStoreUrl> = BoundedVec::truncate_from(url);
		FlTask::<T>::register_store(
			RawOrigin::Signed(who.clone()).into(),
			BoundedVec::truncate_from(b"https://old.hospital.example".to_vec()),
		)
		.expect("an institution registers a store");
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), url.clone());
		assert_eq!(ModelStores::<T>::get(who), Some(url));
	}

	/// `t` running tasks whose rounds reach their deadline with their quorum
	/// but without every participant's update: each closes, reading its
	/// evaluations and the collators for its committee (costlier than
	/// extending a round under quorum).
	#[benchmark]
	fn on_initialize(t: Linear<0, { T::MaxActiveTasks::get() }>) {
		seat_collators::<T>();
		let quorum = T::MinParticipantsFloor::get();
		let publisher = T::BenchmarkHelper::institution(0);
		for _ in 0..t {
			let task = NextTaskId::<T>::get();
			FlTask::<T>::publish_task(RawOrigin::Signed(publisher.clone()).into(), spec::<T>(2, quorum))
				.expect("benchmark publisher is an institution");
			for i in 0..=quorum {
				let who = T::BenchmarkHelper::institution(i);
				FlTask::<T>::join_task(RawOrigin::Signed(who).into(), task).expect("benchmark institutions may join");
			}
			for i in 0..quorum {
				let who = T::BenchmarkHelper::institution(i);
				FlTask::<T>::submit_update(RawOrigin::Signed(who).into(), task, 0, update::<T>(2, 1))
					.expect("participant submits");
			}
		}
		let at = frame_system::Pallet::<T>::block_number().saturating_add(T::MinRoundBlocks::get().into());
		#[block]
		{
			FlTask::<T>::on_initialize(at);
		}
		for task in 0..t {
			assert!(matches!(Rounds::<T>::get(task, 0).map(|r| r.phase), Some(RoundPhase::Aggregating { .. })));
		}
	}

	impl_benchmark_test_suite!(FlTask, crate::mock::new_bench_ext(), crate::mock::Test);
}
