//! Types of the federated-learning pallet: task specifications, rounds, model
//! updates and the fixed-point number format of model parameters.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{traits::Get, BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::Permill;

/// Identifier of a learning task.
pub type TaskId = u32;

/// Index of a round within a task, from 0.
pub type RoundIndex = u32;

/// A model parameter (or a loss) in fixed point: the real value times
/// [`FIXED_ONE`]. Every aggregator works on these integers, so honest
/// aggregators compute bit-identical models on any machine.
pub type Fixed = i64;

/// Fractional bits of [`Fixed`].
pub const FIXED_FRAC_BITS: u32 = 24;

/// The value 1.0 in [`Fixed`].
pub const FIXED_ONE: Fixed = 1 << FIXED_FRAC_BITS;

/// Converts a real number to [`Fixed`], rounding to nearest (off-chain use).
#[cfg(feature = "std")]
pub fn to_fixed(x: f64) -> Fixed {
	(x * FIXED_ONE as f64).round() as Fixed
}

/// Converts [`Fixed`] to a real number (off-chain use).
#[cfg(feature = "std")]
pub fn from_fixed(x: Fixed) -> f64 {
	x as f64 / FIXED_ONE as f64
}

/// The model a task trains. Parameters are laid out flat, row-major.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum ModelKind {
	/// Binary logistic regression: `features` weights, then the bias.
	LogisticRegression {
		/// Number of input features.
		features: u32,
	},
	/// A one-hidden-layer perceptron with ReLU and a sigmoid output:
	/// `features × hidden` input weights, `hidden` hidden biases, `hidden`
	/// output weights, then the output bias.
	Mlp {
		/// Number of input features.
		features: u32,
		/// Width of the hidden layer.
		hidden: u32,
	},
}

impl ModelKind {
	/// Number of parameters of this model, or `None` if it overflows or a
	/// dimension is zero.
	pub fn parameter_count(&self) -> Option<u32> {
		match *self {
			ModelKind::LogisticRegression { features } if features > 0 => features.checked_add(1),
			ModelKind::Mlp { features, hidden } if features > 0 && hidden > 0 => features
				.checked_mul(hidden)?
				.checked_add(hidden.checked_mul(2)?)?
				.checked_add(1),
			_ => None,
		}
	}
}

/// How the updates of a round become the next global model.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum AggregationRule {
	/// Federated averaging: the mean of the updates weighted by sample count.
	FedAvg,
	/// FedAvg after clipping each update's change to the global model to an
	/// L2 norm of at most `max_norm` (fixed point).
	ClippedFedAvg {
		/// Largest L2 norm of an update's change, in [`Fixed`].
		max_norm: Fixed,
	},
	/// Coordinate-wise median of the updates.
	Median,
	/// Coordinate-wise mean after dropping the `trim` fraction of lowest and
	/// of highest values.
	TrimmedMean {
		/// Fraction dropped at each end; below one half.
		trim: Permill,
	},
	/// FedAvg with each update weighted by its sample count times its
	/// submitter's credit score when the update was submitted.
	CreditWeightedFedAvg,
}

/// What the task publisher suggests to the participants' local training.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct TrainingHints {
	/// Local epochs per round.
	pub epochs: u16,
	/// Learning rate, in [`Fixed`].
	pub learning_rate: Fixed,
	/// Mini-batch size; 0 means full batch.
	pub batch_size: u32,
}

/// What a publisher asks for when publishing a task.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound,
	DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParams))]
#[codec(mel_bound())]
pub struct TaskSpec<MaxParams: Get<u32>> {
	/// The model trained.
	pub model: ModelKind,
	/// The initial global model.
	pub initial_model: BoundedVec<Fixed, MaxParams>,
	/// Suggested local training.
	pub hints: TrainingHints,
	/// The task finishes once the sample-weighted validation accuracy the
	/// participants report for a round reaches this.
	pub target_accuracy: Permill,
	/// The task finishes after this many rounds at most.
	pub max_rounds: u32,
	/// Fewest updates a round needs to be aggregated (the quorum).
	pub min_participants: u32,
	/// Blocks a round collects updates for.
	pub round_blocks: u32,
	/// How updates are aggregated.
	pub rule: AggregationRule,
	/// Distinct aggregators that must submit the same model digest before it
	/// is adopted.
	pub aggregators_required: u32,
}

/// Where a task stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum TaskStatus {
	/// Rounds are running.
	Running,
	/// The task is over; `reached_target` tells whether the target accuracy
	/// was reached (otherwise the rounds ran out).
	Finished {
		/// The reported accuracy reached the target.
		reached_target: bool,
	},
	/// The task stopped without a result.
	Failed(FailureReason),
}

/// Why a task failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum FailureReason {
	/// A round stayed under the quorum after all its extensions.
	QuorumNotReached,
	/// Aggregators did not agree on a model in time.
	AggregationTimedOut,
	/// The publisher (or governance) cancelled it.
	Cancelled,
}

/// A learning task as stored.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
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
	/// The current (or, once over, the last) round.
	pub round: RoundIndex,
	/// Institutions that joined.
	pub participants: u32,
	/// BLAKE2-256 of the SCALE-encoded current global model.
	pub model_digest: H256,
}

/// Where a round stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum RoundPhase<BlockNumber> {
	/// Participants submit updates until the deadline.
	Collecting,
	/// Closed; aggregators compute and submit the next model.
	Aggregating {
		/// Block the round closed in.
		since: BlockNumber,
	},
	/// A model was adopted.
	Adopted {
		/// Digest of the adopted aggregate (model and flagged outliers).
		digest: H256,
	},
	/// The round ended without a model (the task failed).
	Abandoned,
}

/// A round of a task.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Round<BlockNumber> {
	/// Where it stands.
	pub phase: RoundPhase<BlockNumber>,
	/// Block by which updates must be in.
	pub deadline: BlockNumber,
	/// Times the deadline was extended for lack of quorum.
	pub extensions: u8,
	/// Updates submitted.
	pub submitted: u32,
	/// Total samples behind the submitted updates.
	pub samples: u64,
	/// Sample-weighted mean of the validation accuracy the participants
	/// reported (updated with each update).
	pub accuracy: Permill,
	/// Sample-weighted mean of the reported validation loss, in [`Fixed`].
	pub loss: Fixed,
	/// Updates flagged as outliers by the adopted aggregate.
	pub outliers: u32,
}

/// A participant's local update for one round.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound,
	DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParams))]
#[codec(mel_bound())]
pub struct ModelUpdate<MaxParams: Get<u32>> {
	/// The locally trained parameters, in [`Fixed`].
	pub params: BoundedVec<Fixed, MaxParams>,
	/// Local training samples behind them.
	pub samples: u32,
	/// Accuracy on the participant's local validation data.
	pub accuracy: Permill,
	/// Loss on the participant's local validation data, in [`Fixed`].
	pub loss: Fixed,
}

/// A model proposed by aggregators for a round, with its supporters.
#[derive(Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound)]
#[scale_info(skip_type_params(MaxParams, MaxParticipants))]
#[codec(mel_bound(AccountId: MaxEncodedLen))]
pub struct Proposal<AccountId, MaxParams: Get<u32>, MaxParticipants: Get<u32>>
where
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
{
	/// The proposed global model.
	pub params: BoundedVec<Fixed, MaxParams>,
	/// Participants whose updates the proposal flags as outliers.
	pub outliers: BoundedVec<AccountId, MaxParticipants>,
	/// Aggregators that submitted this digest.
	pub votes: u32,
}

/// BLAKE2-256 digest that aggregators agree on: the task, the round, the new
/// model and the flagged outliers.
pub fn aggregate_digest<AccountId: Encode>(
	task: TaskId,
	round: RoundIndex,
	params: &[Fixed],
	outliers: &[AccountId],
) -> H256 {
	H256(sp_io::hashing::blake2_256(&(task, round, params, outliers).encode()))
}

/// BLAKE2-256 digest of a model's parameters.
pub fn model_digest(params: &[Fixed]) -> H256 {
	H256(sp_io::hashing::blake2_256(&params.encode()))
}
