//! Aggregation of a round's updates in fixed point.
//!
//! All arithmetic is on integers ([`Fixed`] values, `i128` accumulators) with
//! checked operations, so every honest aggregator, native or Wasm, computes
//! the same bits. Parameters are processed in column chunks of
//! [`CHUNK`] with `ndarray`, so the working set is `participants × CHUNK`
//! whatever the model size.

use crate::types::{AggregationRule, Fixed};
use alloc::vec::Vec;
use core::marker::PhantomData;
use frame_support::traits::Get;
use ndarray::{Array1, Array2, ArrayView1, Axis};

/// Parameters processed per chunk.
pub const CHUNK: usize = 1024;

/// One participant's update as the aggregator sees it.
#[derive(Clone, Copy, Debug)]
pub struct UpdateView<'a> {
	/// Parameters, in [`Fixed`].
	pub params: &'a [Fixed],
	/// Samples behind them (the FedAvg weight).
	pub samples: u32,
	/// The submitter's credit (a weight factor under
	/// [`AggregationRule::CreditWeightedFedAvg`], ignored otherwise).
	pub credit: u32,
}

/// The result of aggregating a round.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Aggregated {
	/// The new global model.
	pub params: Vec<Fixed>,
	/// Indices (into the input) of the updates flagged as outliers.
	pub outliers: Vec<usize>,
}

/// Why a round could not be aggregated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AggregationError {
	/// No updates.
	NoUpdates,
	/// An update's length differs from the global model's.
	LengthMismatch,
	/// The rule's parameter is unusable (e.g. trimming everything).
	InvalidRule,
	/// An intermediate value overflowed.
	Overflow,
}

/// An aggregation algorithm. The pallet only compares digests; the offchain
/// worker and off-chain tools call this.
pub trait Aggregate {
	/// Aggregates `updates` to a new model from the current `global` model.
	fn aggregate(
		rule: &AggregationRule,
		global: &[Fixed],
		updates: &[UpdateView],
	) -> Result<Aggregated, AggregationError>;
}

/// The default aggregator: the rules of [`AggregationRule`] in fixed point
/// with `ndarray`; an update whose squared distance to the aggregate exceeds
/// `OutlierFactor²` times the median squared distance (with at least three
/// updates) is flagged as an outlier.
pub struct FixedPointAggregator<OutlierFactor = frame_support::traits::ConstU32<3>>(
	PhantomData<OutlierFactor>,
);

impl<F: Get<u32>> Aggregate for FixedPointAggregator<F> {
	fn aggregate(
		rule: &AggregationRule,
		global: &[Fixed],
		updates: &[UpdateView],
	) -> Result<Aggregated, AggregationError> {
		if updates.is_empty() {
			return Err(AggregationError::NoUpdates);
		}
		let len = global.len();
		if updates.iter().any(|u| u.params.len() != len) {
			return Err(AggregationError::LengthMismatch);
		}
		let scales = match rule {
			AggregationRule::ClippedFedAvg { max_norm } => Some(clip_scales(global, updates, *max_norm)?),
			_ => None,
		};
		let mut params = Vec::with_capacity(len);
		let mut start = 0;
		while start < len {
			let width = CHUNK.min(len - start);
			let chunk = load_chunk(global, updates, start, width, scales.as_deref())?;
			let out = match rule {
				AggregationRule::FedAvg | AggregationRule::ClippedFedAvg { .. } =>
					weighted_mean(&chunk, updates, |u| u.samples as i128)?,
				AggregationRule::CreditWeightedFedAvg =>
					weighted_mean(&chunk, updates, |u| u.samples as i128 * u.credit as i128)?,
				AggregationRule::Median => map_columns(&chunk, median)?,
				AggregationRule::TrimmedMean { trim } => {
					let n = updates.len();
					let cut = trim.mul_floor(n as u32) as usize;
					if trim.deconstruct() >= 500_000 || n <= 2 * cut {
						return Err(AggregationError::InvalidRule);
					}
					map_columns(&chunk, |column| trimmed_mean(column, cut))?
				},
			};
			params.extend(out.iter().copied());
			start += width;
		}
		let outliers = flag_outliers(&params, updates, F::get())?;
		Ok(Aggregated { params, outliers })
	}
}

/// Rows are updates, columns parameters `start..start + width`. With clip
/// scales, each row is `global + (update - global) × num / den`.
fn load_chunk(
	global: &[Fixed],
	updates: &[UpdateView],
	start: usize,
	width: usize,
	scales: Option<&[(u128, u128)]>,
) -> Result<Array2<i128>, AggregationError> {
	let mut chunk = Array2::<i128>::zeros((updates.len(), width));
	for (i, (mut row, update)) in chunk.axis_iter_mut(Axis(0)).zip(updates).enumerate() {
		for (j, cell) in row.iter_mut().enumerate() {
			let value = update.params[start + j] as i128;
			*cell = match scales.map(|s| s[i]) {
				Some((num, den)) if num < den => {
					let base = global[start + j] as i128;
					let delta = value - base;
					let scaled = delta
						.checked_mul(num as i128)
						.ok_or(AggregationError::Overflow)?
						.checked_div(den as i128)
						.ok_or(AggregationError::Overflow)?;
					base + scaled
				},
				_ => value,
			};
		}
	}
	Ok(chunk)
}

/// Per update, `(num, den)` so that `delta × num / den` has an L2 norm of at
/// most `max_norm`; `(1, 1)` for updates already within it.
fn clip_scales(
	global: &[Fixed],
	updates: &[UpdateView],
	max_norm: Fixed,
) -> Result<Vec<(u128, u128)>, AggregationError> {
	if max_norm <= 0 {
		return Err(AggregationError::InvalidRule);
	}
	updates
		.iter()
		.map(|u| {
			let norm = isqrt(squared_distance(u.params, global)?);
			Ok(if norm > max_norm as u128 { (max_norm as u128, norm) } else { (1, 1) })
		})
		.collect()
}

/// Mean of each column, each update (row) weighted by `weight`
/// (non-negative; a zero total is [`AggregationError::NoUpdates`]).
fn weighted_mean(
	chunk: &Array2<i128>,
	updates: &[UpdateView],
	weight: impl Fn(&UpdateView) -> i128,
) -> Result<Array1<Fixed>, AggregationError> {
	let total: i128 = updates.iter().map(&weight).sum();
	if total == 0 {
		return Err(AggregationError::NoUpdates);
	}
	let mut acc = Array1::<i128>::zeros(chunk.ncols());
	for (row, update) in chunk.axis_iter(Axis(0)).zip(updates) {
		let weight = weight(update);
		for (a, v) in acc.iter_mut().zip(row.iter()) {
			*a = v.checked_mul(weight).and_then(|x| a.checked_add(x)).ok_or(AggregationError::Overflow)?;
		}
	}
	acc.iter().map(|a| narrow(a / total)).collect::<Result<Vec<_>, _>>().map(Array1::from)
}

/// Applies `f` to each column (sorted ascending) of the chunk.
fn map_columns(
	chunk: &Array2<i128>,
	f: impl Fn(&[i128]) -> i128,
) -> Result<Array1<Fixed>, AggregationError> {
	let mut column = Vec::with_capacity(chunk.nrows());
	let mut out = Vec::with_capacity(chunk.ncols());
	for col in chunk.axis_iter(Axis(1)) {
		column.clear();
		column.extend(col.iter().copied());
		column.sort_unstable();
		out.push(narrow(f(&column))?);
	}
	Ok(Array1::from(out))
}

/// Median of a sorted, non-empty slice (mean of the middle two if even).
fn median(sorted: &[i128]) -> i128 {
	let n = sorted.len();
	if n % 2 == 1 {
		sorted[n / 2]
	} else {
		(sorted[n / 2 - 1] + sorted[n / 2]) / 2
	}
}

/// Mean of a sorted slice without its `cut` lowest and `cut` highest values.
fn trimmed_mean(sorted: &[i128], cut: usize) -> i128 {
	let kept = &sorted[cut..sorted.len() - cut];
	kept.iter().sum::<i128>() / kept.len() as i128
}

/// Flags updates far from the aggregate (see [`FixedPointAggregator`]).
fn flag_outliers(
	aggregate: &[Fixed],
	updates: &[UpdateView],
	factor: u32,
) -> Result<Vec<usize>, AggregationError> {
	if updates.len() < 3 {
		return Ok(Vec::new());
	}
	let distances =
		updates.iter().map(|u| squared_distance(u.params, aggregate)).collect::<Result<Vec<_>, _>>()?;
	let mut sorted = distances.clone();
	sorted.sort_unstable();
	let median = sorted[sorted.len() / 2].max(1);
	let limit = median.saturating_mul((factor as u128).saturating_mul(factor as u128));
	Ok(distances.iter().enumerate().filter(|(_, d)| **d > limit).map(|(i, _)| i).collect())
}

/// Squared L2 distance between two parameter vectors (in `Fixed²` units).
fn squared_distance(a: &[Fixed], b: &[Fixed]) -> Result<u128, AggregationError> {
	let mut sum: u128 = 0;
	let mut start = 0;
	while start < a.len() {
		let end = (start + CHUNK).min(a.len());
		let diff = ArrayView1::from(&a[start..end]).mapv(|x| x as i128) -
			ArrayView1::from(&b[start..end]).mapv(|x| x as i128);
		for d in diff.iter() {
			let sq = (d.unsigned_abs()).checked_mul(d.unsigned_abs()).ok_or(AggregationError::Overflow)?;
			sum = sum.checked_add(sq).ok_or(AggregationError::Overflow)?;
		}
		start = end;
	}
	Ok(sum)
}

/// Integer square root (floor).
pub fn isqrt(n: u128) -> u128 {
	if n < 2 {
		return n;
	}
	let mut x = 1u128 << ((128 - n.leading_zeros()).div_ceil(2));
	loop {
		let y = (x + n / x) / 2;
		if y >= x {
			return x;
		}
		x = y;
	}
}

fn narrow(v: i128) -> Result<Fixed, AggregationError> {
	Fixed::try_from(v).map_err(|_| AggregationError::Overflow)
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::types::FIXED_ONE;
	use sp_runtime::Permill;

	type Agg = FixedPointAggregator;

	fn view(params: &[Fixed], samples: u32) -> UpdateView<'_> {
		UpdateView { params, samples, credit: 0 }
	}

	#[test]
	fn credit_weighted_fedavg_weights_by_samples_times_credit() {
		let a = [0, 10 * FIXED_ONE];
		let b = [4 * FIXED_ONE, 0];
		let rule = AggregationRule::CreditWeightedFedAvg;
		let views = [UpdateView { params: &a, samples: 1, credit: 900 }, UpdateView { params: &b, samples: 1, credit: 300 }];
		let out = Agg::aggregate(&rule, &[0, 0], &views).unwrap();
		// Weights 900 : 300 = 3 : 1.
		assert_eq!(out.params, vec![FIXED_ONE, 10 * FIXED_ONE * 3 / 4]);
		// Plain FedAvg ignores credit.
		let plain = Agg::aggregate(&AggregationRule::FedAvg, &[0, 0], &views).unwrap();
		assert_eq!(plain.params, vec![2 * FIXED_ONE, 5 * FIXED_ONE]);
		// Nobody with credit: no weight at all.
		let broke = [UpdateView { credit: 0, ..views[0] }, UpdateView { credit: 0, ..views[1] }];
		assert_eq!(Agg::aggregate(&rule, &[0, 0], &broke), Err(AggregationError::NoUpdates));
	}

	#[test]
	fn fedavg_weights_by_samples() {
		let a = [0, 10 * FIXED_ONE];
		let b = [4 * FIXED_ONE, 0];
		let out = Agg::aggregate(&AggregationRule::FedAvg, &[0, 0], &[view(&a, 1), view(&b, 3)]).unwrap();
		assert_eq!(out.params, vec![3 * FIXED_ONE, 10 * FIXED_ONE / 4]);
		assert!(out.outliers.is_empty());
	}

	#[test]
	fn median_and_trimmed_mean_resist_a_poisoned_update() {
		let honest: Vec<[Fixed; 1]> = vec![[10], [11], [12], [13]];
		let poisoned = [1_000_000_000_000];
		let mut views: Vec<_> = honest.iter().map(|p| view(p, 1)).collect();
		views.push(view(&poisoned, 1));
		let median = Agg::aggregate(&AggregationRule::Median, &[0], &views).unwrap();
		assert_eq!(median.params, vec![12]);
		assert_eq!(median.outliers, vec![4]);
		let trimmed =
			Agg::aggregate(&AggregationRule::TrimmedMean { trim: Permill::from_percent(20) }, &[0], &views)
				.unwrap();
		assert_eq!(trimmed.params, vec![12]);
		let mean = Agg::aggregate(&AggregationRule::FedAvg, &[0], &views).unwrap();
		assert!(mean.params[0] > 1_000_000);
	}

	#[test]
	fn clipping_bounds_each_change() {
		let global = [0, 0];
		let big = [30 * FIXED_ONE, 40 * FIXED_ONE]; // norm 50
		let out = Agg::aggregate(
			&AggregationRule::ClippedFedAvg { max_norm: 5 * FIXED_ONE },
			&global,
			&[view(&big, 1)],
		)
		.unwrap();
		assert_eq!(out.params, vec![3 * FIXED_ONE, 4 * FIXED_ONE]);
	}

	#[test]
	fn errors() {
		assert_eq!(Agg::aggregate(&AggregationRule::FedAvg, &[0], &[]), Err(AggregationError::NoUpdates));
		assert_eq!(
			Agg::aggregate(&AggregationRule::FedAvg, &[0], &[view(&[1, 2], 1)]),
			Err(AggregationError::LengthMismatch)
		);
		assert_eq!(
			Agg::aggregate(&AggregationRule::TrimmedMean { trim: Permill::from_percent(50) }, &[0], &[view(&[1], 1)]),
			Err(AggregationError::InvalidRule)
		);
		assert_eq!(
			Agg::aggregate(&AggregationRule::ClippedFedAvg { max_norm: 0 }, &[0], &[view(&[1], 1)]),
			Err(AggregationError::InvalidRule)
		);
		let huge = [Fixed::MAX, Fixed::MAX];
		assert_eq!(
			Agg::aggregate(
				&AggregationRule::ClippedFedAvg { max_norm: FIXED_ONE },
				&[Fixed::MIN, Fixed::MIN],
				&[view(&huge, 1)]
			),
			Err(AggregationError::Overflow)
		);
		assert_eq!(
			Agg::aggregate(&AggregationRule::FedAvg, &[0], &[view(&[1], 0)]),
			Err(AggregationError::NoUpdates)
		);
	}

	#[test]
	fn chunked_equals_unchunked_and_is_deterministic() {
		let n = CHUNK * 2 + 17;
		let updates: Vec<Vec<Fixed>> = (0..5)
			.map(|k| (0..n).map(|j| ((j as i64 * 7919 + k * 104_729) % 65_536 - 32_768) * 97).collect())
			.collect();
		let views: Vec<_> = updates.iter().enumerate().map(|(k, p)| view(p, 10 + k as u32)).collect();
		let global = vec![0; n];
		let a = Agg::aggregate(&AggregationRule::FedAvg, &global, &views).unwrap();
		let b = Agg::aggregate(&AggregationRule::FedAvg, &global, &views).unwrap();
		assert_eq!(a, b);
		for j in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 16] {
			let total: i128 = views.iter().map(|v| v.params[j] as i128 * v.samples as i128).sum();
			let weights: i128 = views.iter().map(|v| v.samples as i128).sum();
			assert_eq!(a.params[j] as i128, total / weights);
		}
	}

	#[test]
	fn isqrt_is_floor() {
		for n in [0u128, 1, 2, 3, 4, 15, 16, 17, 1 << 100, u128::MAX] {
			let r = isqrt(n);
			assert!(r * r <= n);
			assert!((r + 1).checked_mul(r + 1).map_or(true, |s| s > n));
		}
	}
}
