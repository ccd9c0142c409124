//! Differential privacy of a participant's update, as a task asks for it
//! ([`DifferentialPrivacy`]): the change to the global model is clipped to
//! an L2 norm of `clip_norm` and every parameter gets Gaussian noise of
//! standard deviation `z × clip_norm`, before the update leaves the hospital.

use pallet_fl_task::{from_fixed, DifferentialPrivacy};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Clipping and noise in real numbers.
#[derive(Clone, Copy, Debug)]
pub struct Noise {
	/// L2 norm the change is clipped to.
	pub clip: f64,
	/// Standard deviation of the noise on each parameter.
	pub sigma: f64,
}

impl From<&DifferentialPrivacy> for Noise {
	fn from(dp: &DifferentialPrivacy) -> Self {
		let clip = from_fixed(dp.clip_norm);
		Noise { clip, sigma: clip * f64::from(dp.noise_multiplier) / 1000.0 }
	}
}

/// The update to send instead of `local`: `global` plus `local − global`
/// clipped to `noise.clip` and with `N(0, σ²)` added to every parameter.
pub fn privatize<R: Rng>(noise: Noise, global: &[f64], local: &[f64], rng: &mut R) -> Vec<f64> {
	let norm = global.iter().zip(local).map(|(g, l)| (l - g) * (l - g)).sum::<f64>().sqrt();
	let scale = if norm > noise.clip { noise.clip / norm } else { 1.0 };
	// σ > 0: the chain refuses a clip norm or multiplier of zero.
	let gaussian = Normal::new(0.0, noise.sigma).expect("σ is finite and positive");
	global.iter().zip(local).map(|(g, l)| g + (l - g) * scale + gaussian.sample(rng)).collect()
}

/// What the client prints about a task's privacy after `rounds` updates.
pub fn describe(dp: &DifferentialPrivacy, rounds: u32) -> String {
	let eps = |r: u32| f64::from(dp.epsilon_milli(r)) / 1000.0;
	format!(
		"ε {:.3} this round, {:.3} spent over {rounds} update(s) (δ = 1e-{}; clip {}, z = {})",
		eps(1),
		eps(rounds),
		dp.delta_exponent,
		from_fixed(dp.clip_norm),
		f64::from(dp.noise_multiplier) / 1000.0
	)
}

#[cfg(test)]
mod tests {
	use super::*;
	use rand::{rngs::StdRng, SeedableRng};

	fn norm(v: &[f64]) -> f64 {
		v.iter().map(|x| x * x).sum::<f64>().sqrt()
	}

	#[test]
	fn a_large_change_is_clipped_before_the_noise() {
		let mut rng = StdRng::seed_from_u64(1);
		let global = vec![1.0; 4];
		let local = vec![101.0; 4];
		// Noise almost nothing: the change shrinks to norm 2 along its
		// direction.
		let sent = privatize(Noise { clip: 2.0, sigma: 1e-9 }, &global, &local, &mut rng);
		let change: Vec<f64> = sent.iter().zip(&global).map(|(s, g)| s - g).collect();
		assert!((norm(&change) - 2.0).abs() < 1e-6, "{change:?}");
		assert!(change.iter().all(|c| (c - 1.0).abs() < 1e-6));
		// A change within the clip norm passes unscaled.
		let small = vec![1.5; 4];
		let sent = privatize(Noise { clip: 2.0, sigma: 1e-9 }, &global, &small, &mut rng);
		assert!(sent.iter().all(|s| (s - 1.5).abs() < 1e-6));
	}

	#[test]
	fn the_noise_has_the_tasks_standard_deviation() {
		let dp = DifferentialPrivacy {
			clip_norm: pallet_fl_task::to_fixed(0.5),
			noise_multiplier: 3_000,
			delta_exponent: 5,
		};
		let noise = Noise::from(&dp);
		assert!((noise.sigma - 1.5).abs() < 1e-6);
		let mut rng = StdRng::seed_from_u64(7);
		let zeros = vec![0.0; 100_000];
		let sent = privatize(noise, &zeros, &zeros, &mut rng);
		let mean = sent.iter().sum::<f64>() / sent.len() as f64;
		let sd = (sent.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / sent.len() as f64).sqrt();
		assert!(mean.abs() < 0.02, "mean {mean}");
		assert!((sd - 1.5).abs() < 0.02, "standard deviation {sd}");
	}

	#[test]
	fn the_update_sent_is_not_the_trained_one() {
		let dp = DifferentialPrivacy { clip_norm: pallet_fl_task::to_fixed(1.0), noise_multiplier: 1_000, delta_exponent: 5 };
		let mut rng = rand::rngs::OsRng;
		let global = vec![0.0; 31];
		let local: Vec<f64> = (0..31).map(|i| i as f64 / 100.0).collect();
		let a = privatize(Noise::from(&dp), &global, &local, &mut rng);
		let b = privatize(Noise::from(&dp), &global, &local, &mut rng);
		assert_ne!(a, local);
		assert_ne!(a, b, "fresh noise each time");
		assert!(describe(&dp, 3).contains("δ = 1e-5"));
	}
}
