//! The models a participant trains locally with ndarray (and the centralized
//! baseline): logistic regression and a one-hidden-layer perceptron, both
//! binary classifiers trained on the log loss with (mini-)batch gradient
//! descent. Parameter layouts are those of `pallet_fl_task::ModelKind`.

use crate::data::{Dataset, Rng};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

/// Parameters laid out as the chain expects them.
pub type Params = Vec<f64>;

/// A model the client can train.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Model {
	/// `features` weights, then the bias.
	Logistic { features: usize },
	/// Hidden layer with `tanh`, sigmoid output. Parameters: input weights
	/// (`features × hidden`, row-major: feature `i`, unit `j` at
	/// `i × hidden + j`), hidden biases, output weights, output bias.
	Mlp { features: usize, hidden: usize },
}

impl Model {
	/// Number of parameters.
	pub fn parameter_count(&self) -> usize {
		match *self {
			Model::Logistic { features } => features + 1,
			Model::Mlp { features, hidden } => features * hidden + 2 * hidden + 1,
		}
	}

	/// Number of input features.
	pub fn features(&self) -> usize {
		match *self {
			Model::Logistic { features } | Model::Mlp { features, .. } => features,
		}
	}

	/// Starting parameters: zeros for logistic regression; for the
	/// perceptron, uniform weights in ±1/√fan-in from `seed` (zeros would
	/// leave every hidden unit identical forever) and zero biases.
	pub fn initial(&self, seed: u64) -> Params {
		match *self {
			Model::Logistic { features } => vec![0.0; features + 1],
			Model::Mlp { features, hidden } => {
				let mut rng = Rng::new(seed);
				let mut uniform = |fan_in: usize| {
					let unit = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
					(2.0 * unit - 1.0) / (fan_in as f64).sqrt()
				};
				let mut p = Vec::with_capacity(self.parameter_count());
				p.extend((0..features * hidden).map(|_| uniform(features)));
				p.extend(std::iter::repeat(0.0).take(hidden));
				p.extend((0..hidden).map(|_| uniform(hidden)));
				p.push(0.0);
				p
			},
		}
	}

	/// Trains from `init` with `epochs` passes of (mini-)batch gradient
	/// descent on the log loss; `batch` 0 means full batch.
	pub fn train(&self, init: &[f64], d: &Dataset, epochs: u32, lr: f64, batch: usize) -> Params {
		let mut params = init.to_vec();
		let n = d.len();
		let batch = if batch == 0 || batch > n { n } else { batch };
		for _ in 0..epochs {
			let mut start = 0;
			while start < n {
				let end = (start + batch).min(n);
				let x = d.x.slice(ndarray::s![start..end, ..]);
				let y = d.y.slice(ndarray::s![start..end]);
				let grad = self.gradient(&params, x, y);
				for (p, g) in params.iter_mut().zip(grad) {
					*p -= lr * g;
				}
				start = end;
			}
		}
		params
	}

	/// Predicted probabilities of class 1.
	pub fn predict(&self, params: &[f64], x: ArrayView2<f64>) -> Array1<f64> {
		match *self {
			Model::Logistic { .. } => {
				let (w, b) = params.split_at(params.len() - 1);
				(x.dot(&ArrayView1::from(w)) + b[0]).mapv(sigmoid)
			},
			Model::Mlp { .. } => self.mlp_forward(params, x).1,
		}
	}

	/// Accuracy and mean log loss of `params` on `d`.
	pub fn evaluate(&self, params: &[f64], d: &Dataset) -> (f64, f64) {
		let p = self.predict(params, d.x.view());
		let correct = p.iter().zip(d.y.iter()).filter(|(p, y)| (**p >= 0.5) == (**y >= 0.5)).count();
		let eps = 1e-12;
		let loss = p
			.iter()
			.zip(d.y.iter())
			.map(|(p, y)| -(y * (p + eps).ln() + (1.0 - y) * (1.0 - p + eps).ln()))
			.sum::<f64>() /
			d.len() as f64;
		(correct as f64 / d.len() as f64, loss)
	}

	/// Gradient of the mean log loss over the rows of `x`, in parameter order.
	fn gradient(&self, params: &[f64], x: ArrayView2<f64>, y: ArrayView1<f64>) -> Vec<f64> {
		let m = x.nrows() as f64;
		match *self {
			Model::Logistic { .. } => {
				let err = self.predict(params, x) - y;
				let mut grad = (x.t().dot(&err) / m).to_vec();
				grad.push(err.sum() / m);
				grad
			},
			Model::Mlp { features, hidden } => {
				let (_, _, w2, _) = mlp_parts(params, features, hidden);
				let (h, p) = self.mlp_forward(params, x);
				let err = p - y;
				// Back through tanh: dL/dz1 = err ⊗ w2 ⊙ (1 − h²).
				let mut delta = err.view().insert_axis(Axis(1)).dot(&w2.insert_axis(Axis(0)));
				delta.zip_mut_with(&h, |d, h| *d *= 1.0 - h * h);
				let grad_w1 = x.t().dot(&delta) / m;
				let grad_b1 = delta.sum_axis(Axis(0)) / m;
				let grad_w2 = h.t().dot(&err) / m;
				let mut grad = Vec::with_capacity(params.len());
				grad.extend(grad_w1.iter());
				grad.extend(grad_b1.iter());
				grad.extend(grad_w2.iter());
				grad.push(err.sum() / m);
				grad
			},
		}
	}

	/// Hidden activations and output probabilities of the perceptron.
	fn mlp_forward(&self, params: &[f64], x: ArrayView2<f64>) -> (Array2<f64>, Array1<f64>) {
		let Model::Mlp { features, hidden } = *self else {
			unreachable!("mlp_forward is called for perceptrons only")
		};
		let (w1, b1, w2, b2) = mlp_parts(params, features, hidden);
		let h = (x.dot(&w1) + &b1).mapv(f64::tanh);
		let p = (h.dot(&w2) + b2).mapv(sigmoid);
		(h, p)
	}
}

/// The perceptron's parameter blocks as views: input weights, hidden biases,
/// output weights, output bias.
fn mlp_parts(params: &[f64], features: usize, hidden: usize) -> (ArrayView2<'_, f64>, ArrayView1<'_, f64>, ArrayView1<'_, f64>, f64) {
	let (w1, rest) = params.split_at(features * hidden);
	let (b1, rest) = rest.split_at(hidden);
	let (w2, b2) = rest.split_at(hidden);
	let w1 = ArrayView2::from_shape((features, hidden), w1).expect("the slice has features × hidden values");
	(w1, ArrayView1::from(b1), ArrayView1::from(w2), b2[0])
}

fn sigmoid(z: f64) -> f64 {
	1.0 / (1.0 + (-z).exp())
}

/// Splits a participant's rows into training (first 80 %) and local
/// validation (last 20 %).
pub fn local_split(d: &Dataset) -> (Dataset, Dataset) {
	let n_val = (d.len() / 5).max(1);
	let cut = d.len() - n_val;
	let idx: Vec<usize> = (0..d.len()).collect();
	(d.select(&idx[..cut]), d.select(&idx[cut..]))
}

#[cfg(test)]
mod tests {
	use super::*;
	use ndarray::{Array1, Array2};

	fn line() -> Dataset {
		let x = Array2::from_shape_fn((200, 2), |(i, j)| if j == 0 { i as f64 / 100.0 - 1.0 } else { 0.3 });
		let y = Array1::from_shape_fn(200, |i| (i >= 100) as u8 as f64);
		Dataset { x, y }
	}

	/// Class 1 inside a ring, class 0 outside: no line separates them.
	fn ring() -> Dataset {
		let mut rng = Rng::new(11);
		let mut unit = || (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
		let pts: Vec<(f64, f64)> = (0..400).map(|_| (unit() * 2.0, unit() * 2.0)).collect();
		let x = Array2::from_shape_fn((pts.len(), 2), |(i, j)| if j == 0 { pts[i].0 } else { pts[i].1 });
		let y = Array1::from_iter(pts.iter().map(|(a, b)| ((a * a + b * b) < 1.2) as u8 as f64));
		Dataset { x, y }
	}

	#[test]
	fn logistic_regression_learns_a_separable_problem() {
		let d = line();
		let m = Model::Logistic { features: 2 };
		let init = m.initial(0);
		let before = m.evaluate(&init, &d);
		let p = m.train(&init, &d, 300, 1.0, 0);
		let after = m.evaluate(&p, &d);
		assert!(after.0 > 0.97, "accuracy {after:?}");
		assert!(after.1 < before.1, "loss falls: {before:?} → {after:?}");
		let minibatch = m.train(&init, &d, 50, 0.5, 16);
		assert!(m.evaluate(&minibatch, &d).0 > 0.95);
	}

	#[test]
	fn the_perceptron_learns_what_a_line_cannot() {
		let d = ring();
		let lr = Model::Logistic { features: 2 };
		let linear = lr.evaluate(&lr.train(&lr.initial(0), &d, 500, 0.5, 0), &d).0;
		let mlp = Model::Mlp { features: 2, hidden: 8 };
		let init = mlp.initial(3);
		assert_eq!(init.len(), mlp.parameter_count());
		assert_eq!(init.len(), 2 * 8 + 2 * 8 + 1);
		let p = mlp.train(&init, &d, 400, 0.5, 32);
		let (accuracy, loss) = mlp.evaluate(&p, &d);
		assert!(accuracy > 0.9, "perceptron accuracy {accuracy}");
		assert!(linear < 0.75, "a line cannot separate a ring: {linear}");
		assert!(loss < mlp.evaluate(&init, &d).1, "loss falls");
	}

	#[test]
	fn perceptron_gradient_matches_finite_differences() {
		let d = ring();
		let mlp = Model::Mlp { features: 2, hidden: 3 };
		let params = mlp.initial(5);
		let rows = d.select(&(0..40).collect::<Vec<_>>());
		let grad = mlp.gradient(&params, rows.x.view(), rows.y.view());
		let h = 1e-6;
		for i in 0..params.len() {
			let mut up = params.clone();
			up[i] += h;
			let mut down = params.clone();
			down[i] -= h;
			let numeric = (mlp.evaluate(&up, &rows).1 - mlp.evaluate(&down, &rows).1) / (2.0 * h);
			assert!((numeric - grad[i]).abs() < 1e-5, "parameter {i}: analytic {} numeric {numeric}", grad[i]);
		}
	}

	#[test]
	fn initial_perceptrons_are_repeatable_per_seed() {
		let mlp = Model::Mlp { features: 4, hidden: 5 };
		assert_eq!(mlp.initial(9), mlp.initial(9));
		assert_ne!(mlp.initial(9), mlp.initial(10));
		assert!(mlp.initial(9).iter().all(|v| v.abs() <= 0.5));
	}
}
