//! Federated rounds run on one machine with the runtime's own aggregation
//! code (`pallet_fl_task::aggregate_round` with the Medchain runtime's
//! aggregator): a dry run for choosing a rule before publishing a task, and
//! the ground for the robustness tests.

use crate::{data::Dataset, model::Model, privacy};
use rand::{rngs::StdRng, SeedableRng};
use medchain_runtime::Runtime;
use pallet_fl_task::{from_fixed, to_fixed, Admission, AggregationRule, ModelUpdate, PARAM_ABS_CEILING};
use sp_runtime::Permill;

type MaxParams = <Runtime as pallet_fl_task::Config>::MaxParams;
type Aggregator = <Runtime as pallet_fl_task::Config>::Aggregator;

/// One simulated institution.
pub struct Participant {
	/// Rows it trains on.
	pub train: Dataset,
	/// Rows it reports its local validation accuracy on.
	pub validation: Dataset,
	/// Factor its submitted parameters are multiplied by (1.0: honest).
	pub poison: f64,
	/// Its credit score (the weight factor under credit-weighted FedAvg).
	pub credit: u32,
}

/// Local training settings, as a task's hints give them.
#[derive(Clone, Copy, Debug)]
pub struct Hints {
	/// Passes over the local rows per round.
	pub epochs: u32,
	/// Gradient-descent step.
	pub lr: f64,
	/// Mini-batch size (0: full batch).
	pub batch: usize,
}

/// What one round produced.
#[derive(Clone, Debug)]
pub struct RoundOutcome {
	/// Accuracy of the new global model on the test rows.
	pub accuracy: f64,
	/// Its mean log loss on the test rows.
	pub loss: f64,
	/// Indices of the participants flagged as outliers.
	pub outliers: Vec<usize>,
	/// The new global model.
	pub model: Vec<f64>,
}

/// Runs `rounds` rounds from `init`; each participant trains on its rows
/// (and, with `noise`, clips and noises its update as a task with
/// differential privacy asks, from the seeded generator), the updates are
/// aggregated in fixed point exactly as the offchain workers do, and the
/// global model is scored on `test`.
#[allow(clippy::too_many_arguments)]
pub fn simulate(
	model: Model,
	rule: &AggregationRule,
	init: &[f64],
	participants: &[Participant],
	rounds: u32,
	hints: Hints,
	noise: Option<(privacy::Noise, u64)>,
	test: &Dataset,
) -> Result<Vec<RoundOutcome>, String> {
	let mut rng = StdRng::seed_from_u64(noise.map(|(_, seed)| seed).unwrap_or(0));
	let mut global: Vec<i64> = init.iter().map(|p| to_fixed(*p)).collect();
	let mut outcomes = Vec::with_capacity(rounds as usize);
	for _ in 0..rounds {
		let start: Vec<f64> = global.iter().map(|p| from_fixed(*p)).collect();
		let updates = participants
			.iter()
			.enumerate()
			.map(|(i, p)| {
				let mut params = model.train(&start, &p.train, hints.epochs, hints.lr, hints.batch);
				let (accuracy, loss) = model.evaluate(&params, &p.validation);
				if let Some((n, _)) = noise {
					params = privacy::privatize(n, &start, &params, &mut rng);
				}
				let update = ModelUpdate::<MaxParams> {
					params: pallet_fl_task::ModelParams::Inline(
						params
							.iter()
							.map(|v| to_fixed(v * p.poison))
							.collect::<Vec<_>>()
							.try_into()
							.map_err(|_| "the model is larger than the chain keeps inline".to_string())?,
					),
					samples: p.train.len() as u32,
					accuracy: Permill::from_float(accuracy),
					loss: to_fixed(loss),
					held_out: p.validation.len() as u32,
				};
				Ok((i, update))
			})
			.collect::<Result<Vec<_>, String>>()?;
		let admission = Admission { max_abs: PARAM_ABS_CEILING, quorum: 1 };
		let (params, outliers) = pallet_fl_task::aggregate_round::<Aggregator, _, _>(rule, admission, &global, updates, |i| participants[*i].credit)
			.map_err(|e| format!("cannot aggregate: {e:?}"))?;
		global = params;
		let model_now: Vec<f64> = global.iter().map(|p| from_fixed(*p)).collect();
		let (accuracy, loss) = model.evaluate(&model_now, test);
		outcomes.push(RoundOutcome { accuracy, loss, outliers, model: model_now });
	}
	Ok(outcomes)
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{data, model::local_split};
	use std::path::Path;

	/// The four non-IID hospitals and the test set of the shipped data set.
	fn hospitals(poisoner: Option<(usize, f64)>) -> (Vec<Participant>, Dataset) {
		let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/wdbc.csv");
		let data = data::load_csv(&path).expect("tests/data/wdbc.csv is in the repository");
		let (shares, test) = data::split_non_iid(&data, 0.2, 7);
		let participants = shares
			.iter()
			.enumerate()
			.map(|(i, share)| {
				let (train, validation) = local_split(share);
				let poison = match poisoner {
					Some((who, factor)) if who == i => factor,
					_ => 1.0,
				};
				Participant { train, validation, poison, credit: 600 }
			})
			.collect();
		(participants, test)
	}

	const HINTS: Hints = Hints { epochs: 10, lr: 0.5, batch: 0 };
	const ROUNDS: u32 = 10;

	fn run(rule: &AggregationRule, poisoner: Option<(usize, f64)>) -> Vec<RoundOutcome> {
		let (participants, test) = hospitals(poisoner);
		let model = Model::Logistic { features: test.features() };
		simulate(model, rule, &model.initial(0), &participants, ROUNDS, HINTS, None, &test).expect("rounds aggregate")
	}

	fn norm(v: &[f64]) -> f64 {
		v.iter().map(|x| x * x).sum::<f64>().sqrt()
	}

	#[test]
	fn robust_rules_shrug_off_an_update_scaled_a_thousandfold() {
		let robust = [AggregationRule::Median, AggregationRule::TrimmedMean { trim: Permill::from_percent(25) }];
		for rule in &robust {
			let clean = run(rule, None);
			let poisoned = run(rule, Some((3, 1000.0)));
			let (a, b) = (clean.last().unwrap().accuracy, poisoned.last().unwrap().accuracy);
			assert!(a > 0.9, "{rule:?}: the clean federation learns ({a})");
			assert!((a - b).abs() <= 0.01, "{rule:?}: clean {a:.4} vs poisoned {b:.4}: more than 1 point apart");
			// Flagged every round, so it loses credit every round on chain.
			for (round, outcome) in poisoned.iter().enumerate() {
				assert_eq!(outcome.outliers, vec![3], "{rule:?}: round {round}");
			}
			assert!(clean.iter().all(|o| !o.outliers.contains(&3)), "{rule:?}: the honest hospital is not flagged");
		}
	}

	#[test]
	fn plain_fedavg_drops_the_poisoner_it_flags() {
		let (participants, test) = hospitals(None);
		let (poisoned_participants, _) = hospitals(Some((3, 1000.0)));
		let model = Model::Logistic { features: test.features() };
		let rule = AggregationRule::FedAvg;
		let once = |ps: &[Participant], rounds| simulate(model, &rule, &model.initial(0), ps, rounds, HINTS, None, &test);
		let p = once(&poisoned_participants, 1).unwrap().pop().unwrap();
		assert_eq!(p.outliers, vec![3], "the scaled update is flagged");
		// ... and left out: the model is the mean of the other three.
		let honest = once(&participants[..3], 1).unwrap().pop().unwrap();
		assert_eq!(p.model, honest.model, "the poisoner does not reach the mean");
		let all = once(&participants, 1).unwrap().pop().unwrap();
		assert!(norm(&p.model) < 2.0 * norm(&all.model), "{} vs {}", norm(&p.model), norm(&all.model));
	}

	#[test]
	fn a_federated_perceptron_learns_the_data() {
		let (participants, test) = hospitals(None);
		let model = Model::Mlp { features: test.features(), hidden: 8 };
		let out = simulate(
			model,
			&AggregationRule::FedAvg,
			&model.initial(1),
			&participants,
			ROUNDS,
			Hints { epochs: 10, lr: 0.3, batch: 16 },
			None,
			&test,
		)
		.unwrap();
		let last = out.last().unwrap();
		let untrained = model.evaluate(&model.initial(1), &test);
		assert!(last.accuracy > 0.94, "federated perceptron accuracy {}", last.accuracy);
		assert!(last.loss < untrained.1 / 3.0, "loss falls from {} to {}", untrained.1, last.loss);
	}
}
