//! Logistic regression trained with ndarray: the local training of a
//! participant and the centralized baseline.

use crate::data::Dataset;
use ndarray::Array1;

/// Parameters laid out as the chain expects: the weights, then the bias.
pub type Params = Vec<f64>;

fn sigmoid(z: f64) -> f64 {
	1.0 / (1.0 + (-z).exp())
}

fn split_params(p: &[f64]) -> (Array1<f64>, f64) {
	let (w, b) = p.split_at(p.len() - 1);
	(Array1::from(w.to_vec()), b[0])
}

/// Trains from `init` with `epochs` passes of (mini-)batch gradient descent
/// on the log loss; `batch` 0 means full batch.
pub fn train(init: &[f64], d: &Dataset, epochs: u32, lr: f64, batch: usize) -> Params {
	let (mut w, mut b) = split_params(init);
	let n = d.len();
	let batch = if batch == 0 || batch > n { n } else { batch };
	for _ in 0..epochs {
		let mut start = 0;
		while start < n {
			let end = (start + batch).min(n);
			let x = d.x.slice(ndarray::s![start..end, ..]);
			let y = d.y.slice(ndarray::s![start..end]);
			let p = (x.dot(&w) + b).mapv(sigmoid);
			let err = &p - &y;
			let m = (end - start) as f64;
			let grad_w = x.t().dot(&err) / m;
			let grad_b = err.sum() / m;
			w.scaled_add(-lr, &grad_w);
			b -= lr * grad_b;
			start = end;
		}
	}
	let mut out = w.to_vec();
	out.push(b);
	out
}

/// Accuracy and mean log loss of `params` on `d`.
pub fn evaluate(params: &[f64], d: &Dataset) -> (f64, f64) {
	let (w, b) = split_params(params);
	let p = (d.x.dot(&w) + b).mapv(sigmoid);
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

	#[test]
	fn learns_a_separable_problem() {
		let x = Array2::from_shape_fn((200, 2), |(i, j)| if j == 0 { i as f64 / 100.0 - 1.0 } else { 0.3 });
		let y = Array1::from_shape_fn(200, |i| (i >= 100) as u8 as f64);
		let d = Dataset { x, y };
		let before = evaluate(&[0.0, 0.0, 0.0], &d);
		let p = train(&[0.0, 0.0, 0.0], &d, 300, 1.0, 0);
		let after = evaluate(&p, &d);
		assert!(after.0 > 0.97, "accuracy {after:?}");
		assert!(after.1 < before.1, "loss falls: {before:?} → {after:?}");
		let minibatch = train(&[0.0, 0.0, 0.0], &d, 50, 0.5, 16);
		assert!(evaluate(&minibatch, &d).0 > 0.95);
	}
}
