//! Aggregation of a round's updates in fixed point.
//!
//! All arithmetic is on integers ([`Fixed`] values; `i64` sums where they
//! provably cannot overflow, checked `i128` sums otherwise; saturating
//! distances), so every honest aggregator, native or Wasm, computes the
//! same bits. [`aggregate_fail_soft`] is what aggregators run: an update
//! that cannot be read or breaks the task's bounds is left out and flagged,
//! and the round is aggregated from the rest. Parameters are processed in
//! windows of [`CHUNK`], each update read once per window into one
//! row-major buffer, so the working set is `participants × CHUNK` whatever
//! the model size.

use crate::types::{AggregationRule, Fixed};
use alloc::vec::Vec;
use core::marker::PhantomData;
use frame_support::traits::Get;

// A stored model's chunks are whole aggregation windows.
const _: () = assert!(crate::types::STORE_CHUNK as usize % CHUNK == 0);

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

/// What weighs an update, apart from its parameters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UpdateWeight {
	/// Samples behind the update (the FedAvg weight).
	pub samples: u32,
	/// The submitter's credit (see [`UpdateView::credit`]).
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
	/// A model could not be read: its store did not answer, or what it sent
	/// did not match the model's digest.
	Unavailable,
	/// The aggregate could not be written to the model store.
	StoreFailed,
	/// The `i`-th update (in the order given) could not be read, or holds a
	/// parameter beyond the task's `max_abs`. [`aggregate_fail_soft`] leaves
	/// it out and flags it.
	Rejected(usize),
	/// Fewer usable updates than the round's quorum.
	NoQuorum,
	/// A store was busy or its node could not check the read yet (`429`,
	/// `5xx`, no answer): try the round again later rather than leave the
	/// update out.
	Busy,
}

/// Which model a [`ModelSource`] read is of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Model {
	/// The current global model.
	Global,
	/// The `i`-th update, in the order the weights were given.
	Update(usize),
}

/// Where streaming aggregation reads models, one window of at most
/// [`CHUNK`] parameters at a time. Within a pass, windows come in ascending
/// order and start at multiples of [`CHUNK`]; a source may hold just one
/// chunk of each model at a time.
pub trait ModelSource {
	/// Parameters `start..start + width` of `model`.
	fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[Fixed], AggregationError>;
}

/// A [`ModelSource`] over models in memory.
pub struct SliceSource<'a> {
	/// The global model.
	pub global: &'a [Fixed],
	/// The updates.
	pub updates: Vec<&'a [Fixed]>,
}

impl ModelSource for SliceSource<'_> {
	fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[Fixed], AggregationError> {
		let params = match model {
			Model::Global => self.global,
			Model::Update(i) => *self.updates.get(i).ok_or(AggregationError::LengthMismatch)?,
		};
		params.get(start..start.saturating_add(width)).ok_or(AggregationError::LengthMismatch)
	}
}

/// Receives the aggregate, window by window, in order.
pub type ModelSink<'a> = dyn FnMut(&[Fixed]) -> Result<(), AggregationError> + 'a;

/// An aggregation algorithm. The pallet only compares digests; the offchain
/// worker and off-chain tools call this.
pub trait Aggregate {
	/// Aggregates, streaming: reads the global model and the updates (each
	/// of `len` parameters, weighted by `weights`) from `source` window by
	/// window, hands the new model to `sink` in order, and returns the indices
	/// of the updates flagged as outliers. Memory stays
	/// `updates × CHUNK` whatever `len` is.
	fn aggregate_stream(
		rule: &AggregationRule,
		len: usize,
		weights: &[UpdateWeight],
		source: &mut dyn ModelSource,
		sink: &mut ModelSink,
	) -> Result<Vec<usize>, AggregationError>;

	/// Aggregates `updates` to a new model from the current `global` model,
	/// in memory.
	fn aggregate(
		rule: &AggregationRule,
		global: &[Fixed],
		updates: &[UpdateView],
	) -> Result<Aggregated, AggregationError> {
		if updates.iter().any(|u| u.params.len() != global.len()) {
			return Err(AggregationError::LengthMismatch);
		}
		let weights: Vec<_> =
			updates.iter().map(|u| UpdateWeight { samples: u.samples, credit: u.credit }).collect();
		let mut source = SliceSource { global, updates: updates.iter().map(|u| u.params).collect() };
		let mut params = Vec::with_capacity(global.len());
		let outliers = Self::aggregate_stream(rule, global.len(), &weights, &mut source, &mut |window| {
			params.extend_from_slice(window);
			Ok(())
		})?;
		Ok(Aggregated { params, outliers })
	}
}

/// The default aggregator: the rules of [`AggregationRule`] in fixed point;
/// an update whose squared distance to the aggregate exceeds
/// `OutlierFactor²` times the median squared distance (with at least three
/// updates) is flagged as an outlier.
pub struct FixedPointAggregator<OutlierFactor = frame_support::traits::ConstU32<3>>(
	PhantomData<OutlierFactor>,
);

impl<F: Get<u32>> Aggregate for FixedPointAggregator<F> {
	fn aggregate_stream(
		rule: &AggregationRule,
		len: usize,
		weights: &[UpdateWeight],
		source: &mut dyn ModelSource,
		sink: &mut ModelSink,
	) -> Result<Vec<usize>, AggregationError> {
		let n = weights.len();
		if n == 0 {
			return Err(AggregationError::NoUpdates);
		}
		let cut = match rule {
			AggregationRule::ClippedFedAvg { max_norm } if *max_norm <= 0 =>
				return Err(AggregationError::InvalidRule),
			AggregationRule::TrimmedMean { trim } => {
				let cut = trim.mul_floor(n as u32) as usize;
				if trim.deconstruct() >= 500_000 || n <= 2 * cut {
					return Err(AggregationError::InvalidRule);
				}
				cut
			},
			_ => 0,
		};
		let scales = match rule {
			AggregationRule::ClippedFedAvg { max_norm } => Some(clip_scales(len, n, source, *max_norm)?),
			_ => None,
		};
		// FedAvg weights: samples, or samples × credit (under 2^64).
		let fedavg_weights: Vec<u64> = weights
			.iter()
			.map(|u| match rule {
				AggregationRule::CreditWeightedFedAvg => u64::from(u.samples) * u64::from(u.credit),
				_ => u64::from(u.samples),
			})
			.collect();
		// Squared distance of each update to the aggregate, for flagging.
		let mut distances = alloc::vec![0u128; n];
		// The window of every update, row-major: each read once.
		let mut rows: Vec<Fixed> = Vec::with_capacity(n * CHUNK.min(len));
		let mut start = 0;
		while start < len {
			let width = CHUNK.min(len - start);
			let most = load_rows(source, n, start, width, &mut rows)?;
			let out = match (rule, &scales) {
				(AggregationRule::ClippedFedAvg { .. }, Some(scales)) => {
					let clipped = clip_chunk(&rows, width, source, start, scales)?;
					weighted_mean(&clipped, width, &fedavg_weights, magnitude_bound(&clipped))?
				},
				(AggregationRule::Median, _) => map_columns(&rows, width, median)?,
				(AggregationRule::TrimmedMean { .. }, _) => map_columns(&rows, width, |column| trimmed_mean(column, cut))?,
				_ => weighted_mean(&rows, width, &fedavg_weights, most)?,
			};
			add_squared_distances(&rows, width, &out, most, &mut distances);
			sink(&out)?;
			start += width;
		}
		Ok(flag_outliers(&distances, F::get()))
	}
}

/// What aggregators accept of a round's updates.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Admission {
	/// Largest absolute parameter value of an update.
	pub max_abs: Fixed,
	/// Fewest usable updates the round needs (its quorum).
	pub quorum: usize,
}

/// A source over the updates `kept` (positions into the original order)
/// that names a failed or out-of-bounds update by its position in `kept`.
struct Guarded<'a> {
	inner: &'a mut dyn ModelSource,
	kept: &'a [usize],
	max_abs: u64,
}

impl ModelSource for Guarded<'_> {
	fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[Fixed], AggregationError> {
		let Model::Update(i) = model else { return self.inner.read(model, start, width) };
		let original = *self.kept.get(i).ok_or(AggregationError::LengthMismatch)?;
		let max_abs = self.max_abs;
		let params = match self.inner.read(Model::Update(original), start, width) {
			Ok(params) if params.len() == width => params,
			Err(AggregationError::Busy) => return Err(AggregationError::Busy),
			_ => return Err(AggregationError::Rejected(i)),
		};
		if params.iter().any(|v| v.unsigned_abs() > max_abs) {
			return Err(AggregationError::Rejected(i));
		}
		Ok(params)
	}
}

/// Aggregates a round as aggregators do, failing soft: an update that
/// cannot be read (its store withholds it, or sends what does not match
/// its digest), or holds a parameter beyond `admission.max_abs`, is left
/// out and the round is aggregated again from the rest, as long as
/// `admission.quorum` updates remain ([`AggregationError::NoQuorum`]
/// otherwise). Each attempt writes to a fresh sink from `begin`.
///
/// Flagged updates are then dropped under every rule: when the rule flags
/// outliers and the quorum holds without them, the round is aggregated once
/// more from the rest (a mean is no longer pulled by a poisoner it flagged;
/// a median barely moves). That second attempt's own outliers are not
/// flagged: one pass of flagging decides, so honest updates are not peeled
/// away one by one. Where dropping would break the quorum, or the second
/// attempt fails (a store that withholds on the second read, no weight
/// left), the first attempt's aggregate stands, flagged updates included;
/// a busy store ([`AggregationError::Busy`]) on either attempt stops it, to
/// be tried again.
///
/// Returns the sink of the aggregate that stands and the positions of the
/// flagged updates, ascending: the outliers of the rule and the updates
/// left out.
pub fn aggregate_fail_soft<A: Aggregate, W>(
	rule: &AggregationRule,
	len: usize,
	weights: &[UpdateWeight],
	admission: Admission,
	source: &mut dyn ModelSource,
	mut begin: impl FnMut() -> W,
	push: impl Fn(&mut W, &[Fixed]) -> Result<(), AggregationError>,
) -> Result<(W, Vec<usize>), AggregationError> {
	let quorum = admission.quorum.max(1);
	let max_abs = admission.max_abs.unsigned_abs();
	let mut kept: Vec<usize> = (0..weights.len()).collect();
	let mut left_out = Vec::new();
	let (first, outliers) = loop {
		if kept.len() < quorum {
			return Err(AggregationError::NoQuorum);
		}
		let kept_weights: Vec<_> = kept.iter().map(|i| weights[*i]).collect();
		let mut sink = begin();
		let mut guarded = Guarded { inner: &mut *source, kept: &kept, max_abs };
		match A::aggregate_stream(rule, len, &kept_weights, &mut guarded, &mut |w| push(&mut sink, w)) {
			Ok(outliers) => break (sink, outliers.into_iter().map(|i| kept[i]).collect::<Vec<_>>()),
			Err(AggregationError::Rejected(i)) if i < kept.len() => left_out.push(kept.remove(i)),
			Err(e) => return Err(e),
		}
	};
	let mut flagged: Vec<usize> = outliers.iter().chain(&left_out).copied().collect();
	flagged.sort_unstable();
	kept.retain(|i| !outliers.contains(i));
	if outliers.is_empty() || kept.len() < quorum {
		return Ok((first, flagged));
	}
	let kept_weights: Vec<_> = kept.iter().map(|i| weights[*i]).collect();
	let mut sink = begin();
	let mut guarded = Guarded { inner: &mut *source, kept: &kept, max_abs };
	match A::aggregate_stream(rule, len, &kept_weights, &mut guarded, &mut |w| push(&mut sink, w)) {
		Ok(_) => Ok((sink, flagged)),
		// A busy store is waited for, not answered with the first attempt
		// (other aggregators may get the second).
		Err(AggregationError::Busy) => Err(AggregationError::Busy),
		Err(_) => Ok((first, flagged)),
	}
}

/// Reads parameters `start..start + width` of each of the `n` updates into
/// `rows`, row after row (update after update); returns a bound on their
/// absolute values (see [`magnitude_bound`]), checked as they are copied.
fn load_rows(
	source: &mut dyn ModelSource,
	n: usize,
	start: usize,
	width: usize,
	rows: &mut Vec<Fixed>,
) -> Result<u64, AggregationError> {
	rows.clear();
	let mut outside = 0;
	for i in 0..n {
		let params = source.read(Model::Update(i), start, width)?;
		if params.len() != width {
			return Err(AggregationError::LengthMismatch);
		}
		rows.extend(params.iter().map(|v| {
			outside |= beyond_small(*v);
			*v
		}));
	}
	Ok(if outside == 0 { SMALL } else { largest_magnitude(rows) })
}

/// The bound under which sums of products are cheap: parameters in
/// `[−2^27, 2^27)` (−8.0 to 8.0, where trained models' parameters lie).
const SMALL: u64 = 1 << 27;

/// Zero exactly when `v` lies in `[−SMALL, SMALL)`: one add and one shift,
/// which vectorise (a comparison of 64-bit integers does not, on the
/// baseline x86-64).
fn beyond_small(v: Fixed) -> u64 {
	(v as u64).wrapping_add(SMALL) >> (SMALL.trailing_zeros() + 1)
}

/// The largest `|v|` of `values`.
fn largest_magnitude(values: &[Fixed]) -> u64 {
	values.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0)
}

/// A bound on every `|v|` of `values`: [`SMALL`] when all lie in
/// `[−SMALL, SMALL)`, else the largest.
fn magnitude_bound(values: &[Fixed]) -> u64 {
	if values.iter().fold(0, |outside, v| outside | beyond_small(*v)) == 0 {
		SMALL
	} else {
		largest_magnitude(values)
	}
}

/// Each row (of `width` parameters) as `global + (row - global) × num / den`
/// with its clip scale.
fn clip_chunk(
	rows: &[Fixed],
	width: usize,
	source: &mut dyn ModelSource,
	start: usize,
	scales: &[(u128, u128)],
) -> Result<Vec<Fixed>, AggregationError> {
	let global = source.read(Model::Global, start, width)?;
	if global.len() != width {
		return Err(AggregationError::LengthMismatch);
	}
	let mut chunk = rows.to_vec();
	for (row, (num, den)) in chunk.chunks_exact_mut(width).zip(scales) {
		if num >= den {
			continue;
		}
		for (cell, base) in row.iter_mut().zip(global) {
			let base = i128::from(*base);
			let scaled = (i128::from(*cell) - base)
				.checked_mul(*num as i128)
				.ok_or(AggregationError::Overflow)?
				.checked_div(*den as i128)
				.ok_or(AggregationError::Overflow)?;
			*cell = narrow(base + scaled)?;
		}
	}
	Ok(chunk)
}

/// Per update, `(num, den)` so that `delta × num / den` has an L2 norm of at
/// most `max_norm`; `(1, 1)` for updates already within it. A first pass
/// over the models.
fn clip_scales(
	len: usize,
	n: usize,
	source: &mut dyn ModelSource,
	max_norm: Fixed,
) -> Result<Vec<(u128, u128)>, AggregationError> {
	let mut norms = alloc::vec![0u128; n];
	let mut global = Vec::with_capacity(CHUNK);
	let mut start = 0;
	while start < len {
		let width = CHUNK.min(len - start);
		global.clear();
		global.extend_from_slice(source.read(Model::Global, start, width)?);
		for (i, norm) in norms.iter_mut().enumerate() {
			let update = source.read(Model::Update(i), start, width)?;
			*norm = norm.saturating_add(squared_distance(update, &global));
		}
		start += width;
	}
	Ok(norms
		.into_iter()
		.map(|sq| {
			let norm = isqrt(sq);
			if norm > max_norm as u128 {
				(max_norm as u128, norm)
			} else {
				(1, 1)
			}
		})
		.collect())
}

/// Mean of each column of `rows` (rows of `width` parameters), row `i`
/// weighted by `weights[i]` (a zero total is [`AggregationError::NoUpdates`]).
/// The quotient truncates toward zero.
///
/// When every `|value| × Σ weights` stays under 2^63 (the common case:
/// parameters far under their bound, sample counts in the thousands), the
/// sums are taken in `i64`, where they cannot overflow; otherwise in
/// checked `i128`. Both give the exact same integers. Every `|value|` in
/// `rows` is at most `most`.
fn weighted_mean(rows: &[Fixed], width: usize, weights: &[u64], most: u64) -> Result<Vec<Fixed>, AggregationError> {
	debug_assert!(rows.iter().all(|v| v.unsigned_abs() <= most));
	let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
	if total == 0 {
		return Err(AggregationError::NoUpdates);
	}
	if most <= SMALL && total < 1 << 35 && weights.iter().all(|w| *w < 1 << 32) {
		// Each value plus SMALL lies in [0, 2^28] and each weight under
		// 2^32: their product is one 32 × 32-bit multiply, and the sums,
		// at most 2^28 × total < 2^63, cannot wrap. Σ w·(v + SMALL) −
		// SMALL·Σ w = Σ w·v exactly.
		let mut acc = alloc::vec![0u64; width];
		for (row, w) in rows.chunks_exact(width).zip(weights) {
			let w = u64::from(*w as u32);
			for (a, v) in acc.iter_mut().zip(row) {
				let biased = u64::from((*v as i32 as u32).wrapping_add(SMALL as u32));
				*a = a.wrapping_add(biased * w);
			}
		}
		let offset = (SMALL as u128 * total) as i64;
		let divisor = Divisor::new(total as u64);
		return Ok(acc.into_iter().map(|a| divisor.divide(a as i64 - offset)).collect());
	}
	let small = total < 1 << 63 && u128::from(most).saturating_mul(total) < 1 << 63;
	if small {
		let mut acc = alloc::vec![0i64; width];
		for (row, w) in rows.chunks_exact(width).zip(weights) {
			// w ≤ total < 2^63, and every partial sum is at most
			// most × total < 2^63 in magnitude: no wrapping happens.
			let w = *w as i64;
			for (a, v) in acc.iter_mut().zip(row) {
				*a = a.wrapping_add(v.wrapping_mul(w));
			}
		}
		let divisor = Divisor::new(total as u64);
		return Ok(acc.into_iter().map(|a| divisor.divide(a)).collect());
	}
	let mut acc = alloc::vec![0i128; width];
	for (row, w) in rows.chunks_exact(width).zip(weights) {
		// |v| < 2^63 and w < 2^64: the product fits in i128.
		let w = i128::from(*w);
		for (a, v) in acc.iter_mut().zip(row) {
			*a = a.checked_add(i128::from(*v) * w).ok_or(AggregationError::Overflow)?;
		}
	}
	let total = total as i128;
	acc.into_iter().map(|a| narrow(a / total)).collect()
}

/// Division by one divisor, many times: a multiplication by its
/// reciprocal and at most two corrections instead of a hardware division
/// (which costs as much as the rest of a weighted mean). Exact: the same
/// quotients as `/`.
struct Divisor {
	divisor: u64,
	/// ⌊(2^64 − 1) / divisor⌋.
	reciprocal: u64,
}

impl Divisor {
	/// Dividing by `divisor` (at least 1).
	fn new(divisor: u64) -> Self {
		let divisor = divisor.max(1);
		Divisor { divisor, reciprocal: u64::MAX / divisor }
	}

	/// `n / divisor`, truncated toward zero, for `|n| < 2^63`.
	fn divide(&self, n: i64) -> i64 {
		let magnitude = n.unsigned_abs();
		// estimate ≤ magnitude / divisor, and at most 1 below it: the
		// reciprocal errs by under one unit in 2^64, times magnitude < 2^63.
		let mut quotient = ((u128::from(magnitude) * u128::from(self.reciprocal)) >> 64) as u64;
		let mut rest = magnitude - quotient * self.divisor;
		while rest >= self.divisor {
			quotient += 1;
			rest -= self.divisor;
		}
		if n < 0 {
			-(quotient as i64)
		} else {
			quotient as i64
		}
	}
}

/// Applies `f` to each column (sorted ascending) of `rows` (rows of `width`
/// parameters).
fn map_columns(rows: &[Fixed], width: usize, f: impl Fn(&[Fixed]) -> i128) -> Result<Vec<Fixed>, AggregationError> {
	let n = rows.len() / width.max(1);
	let mut column = Vec::with_capacity(n);
	let mut out = Vec::with_capacity(width);
	for j in 0..width {
		column.clear();
		column.extend((0..n).map(|i| rows[i * width + j]));
		column.sort_unstable();
		out.push(narrow(f(&column))?);
	}
	Ok(out)
}

/// Median of a sorted, non-empty slice (mean of the middle two if even).
fn median(sorted: &[Fixed]) -> i128 {
	let n = sorted.len();
	if n % 2 == 1 {
		i128::from(sorted[n / 2])
	} else {
		(i128::from(sorted[n / 2 - 1]) + i128::from(sorted[n / 2])) / 2
	}
}

/// Mean of a sorted slice without its `cut` lowest and `cut` highest values.
fn trimmed_mean(sorted: &[Fixed], cut: usize) -> i128 {
	let kept = &sorted[cut..sorted.len() - cut];
	kept.iter().map(|v| i128::from(*v)).sum::<i128>() / kept.len() as i128
}

/// Flags updates far from the aggregate (see [`FixedPointAggregator`]),
/// given each update's squared distance to it.
fn flag_outliers(distances: &[u128], factor: u32) -> Vec<usize> {
	if distances.len() < 3 {
		return Vec::new();
	}
	let mut sorted = distances.to_vec();
	sorted.sort_unstable();
	let median = sorted[sorted.len() / 2].max(1);
	let limit = median.saturating_mul((factor as u128).saturating_mul(factor as u128));
	distances.iter().enumerate().filter(|(_, d)| **d > limit).map(|(i, _)| i).collect()
}

/// Adds each row's squared distance to `out` (see [`squared_distance`]) to
/// its entry of `distances`; every `|value|` of `rows` is at most `most`.
///
/// Where every value of the rows and of `out` is at most [`SMALL`] (2^27)
/// in magnitude (parameters within ±8.0: the common case), each difference
/// is at most 2^28, its square at most 2^56, and blocks of 128 squares are
/// summed in `u64` (vectorised), which cannot wrap; otherwise every square
/// is added in saturating `u128`. Both give the exact same integers (a sum
/// of squares this small is far from saturation).
fn add_squared_distances(rows: &[Fixed], width: usize, out: &[Fixed], most: u64, distances: &mut [u128]) {
	let small = most.max(magnitude_bound(out)) <= SMALL;
	for (row, distance) in rows.chunks_exact(width).zip(distances.iter_mut()) {
		let d = if small { small_squared_distance(row, out) } else { squared_distance(row, out) };
		*distance = distance.saturating_add(d);
	}
}

/// [`squared_distance`] of vectors whose values are all at most [`SMALL`]
/// in magnitude.
fn small_squared_distance(a: &[Fixed], b: &[Fixed]) -> u128 {
	a.chunks(128).zip(b.chunks(128)).fold(0u128, |total, (a, b)| {
		let block: u64 = a
			.iter()
			.zip(b)
			.map(|(x, y)| {
				// |x − y| ≤ 2^28 fits an i32 (a 32-bit absolute value
				// vectorises where a 64-bit one does not), and its square is
				// one 32 × 32-bit multiply.
				let d = u64::from((x.wrapping_sub(*y) as i32).unsigned_abs());
				d * d
			})
			.fold(0u64, u64::wrapping_add);
		total.saturating_add(u128::from(block))
	})
}

/// Squared L2 distance between two parameter vectors (in `Fixed²` units),
/// saturating at `u128::MAX`: an update too far away to measure is as far
/// as can be, and is flagged, instead of failing the round.
fn squared_distance(a: &[Fixed], b: &[Fixed]) -> u128 {
	a.iter().zip(b).fold(0u128, |sum, (x, y)| {
		// |x − y| < 2^64, so its square fits in u128.
		let d = u128::from(x.abs_diff(*y));
		sum.saturating_add(d * d)
	})
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
		// Unbounded values with the largest weights overflow the `i128`
		// sums; aggregators bound values first (`aggregate_fail_soft`).
		let huge = [Fixed::MAX, Fixed::MAX];
		let heavy = UpdateView { params: &huge, samples: u32::MAX, credit: u32::MAX };
		assert_eq!(
			Agg::aggregate(&AggregationRule::CreditWeightedFedAvg, &[0, 0], &[heavy, heavy]),
			Err(AggregationError::Overflow)
		);
		assert_eq!(
			Agg::aggregate(&AggregationRule::FedAvg, &[0], &[view(&[1], 0)]),
			Err(AggregationError::NoUpdates)
		);
	}

	/// The exact weighted mean: `i128` sums, truncating division.
	fn reference_mean(rows: &[Vec<Fixed>], weights: &[u64]) -> Vec<Fixed> {
		let total: i128 = weights.iter().map(|w| *w as i128).sum();
		(0..rows[0].len())
			.map(|j| {
				let sum: i128 = rows.iter().zip(weights).map(|(r, w)| r[j] as i128 * *w as i128).sum();
				(sum / total) as Fixed
			})
			.collect()
	}

	/// A xorshift generator from `state` (not zero): test data, the same on
	/// every run.
	fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
		move || {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			state
		}
	}

	#[test]
	fn i64_sums_and_i128_sums_give_the_same_mean() {
		// Values and weights on both sides of the i64 bound (max |value| ×
		// Σ weights = 2^63), negative values included: the result is the
		// exact truncated mean either way.
		let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
		for (scale, weight) in [(1i64 << 24, 500u64), (1 << 40, 1 << 20), (1 << 40, 1 << 23), (1 << 40, 1 << 32), (i64::MAX / 4, 3)] {
			let width = 257;
			let rows: Vec<Vec<Fixed>> = (0..5)
				.map(|_| (0..width).map(|_| next() as i64 % scale).collect())
				.collect();
			let weights: Vec<u64> = (0..5).map(|_| 1 + next() % weight).collect();
			let flat = rows.concat();
			assert_eq!(weighted_mean(&flat, width, &weights, magnitude_bound(&flat)).unwrap(), reference_mean(&rows, &weights), "{scale} {weight}");
		}
	}

	#[test]
	fn division_by_reciprocal_gives_the_quotients_of_the_hardware() {
		let mut next = xorshift(0xD1B5_4A32_D192_ED03u64);
		let edges = [0i64, 1, -1, 2, -2, i64::MAX, -i64::MAX, i64::MAX - 1, 1 << 62, -(1 << 62)];
		for divisor in [1u64, 2, 3, 7, 10, 999, 1 << 31, (1 << 32) + 1, (1 << 35) - 1, (1 << 63) - 1, u64::MAX >> 1] {
			let d = Divisor::new(divisor);
			let random: Vec<i64> = (0..2000)
				.map(|_| {
					let n = (next() >> 1) as i64 >> (next() % 63);
					if next() % 2 == 0 { n } else { -n }
				})
				.collect();
			for n in edges.into_iter().chain(random) {
				assert_eq!(d.divide(n), n / divisor as i64, "{n} / {divisor}");
			}
		}
	}

	#[test]
	fn biased_u32_sums_give_the_same_mean() {
		// Values at and inside ±SMALL, weights up to the bound of the
		// 32-bit path and past it.
		let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
		for weight in [1u64, 500, (1 << 32) - 1, 1 << 33] {
			let width = 300;
			let mut rows: Vec<Vec<Fixed>> =
				(0..7).map(|_| (0..width).map(|_| next() as i64 % (SMALL as i64 + 1)).collect()).collect();
			rows[0][0] = SMALL as i64;
			rows[1][0] = -(SMALL as i64);
			let weights: Vec<u64> = (0..7).map(|_| 1 + next() % weight).collect();
			let flat = rows.concat();
			assert_eq!(magnitude_bound(&flat), SMALL);
			assert_eq!(weighted_mean(&flat, width, &weights, SMALL).unwrap(), reference_mean(&rows, &weights), "{weight}");
		}
		// The edge: eight rows all at +2^27 (or −2^27), every weight 2^32 − 1
		// (Σ = 2^35 − 8, the largest total the biased path takes).
		for v in [SMALL as i64, -(SMALL as i64)] {
			let rows = alloc::vec![alloc::vec![v; 3]; 8];
			let weights = alloc::vec![(1u64 << 32) - 1; 8];
			assert_eq!(weighted_mean(&rows.concat(), 3, &weights, SMALL).unwrap(), alloc::vec![v; 3]);
			assert_eq!(reference_mean(&rows, &weights), alloc::vec![v; 3]);
		}
	}

	#[test]
	fn u64_block_distances_and_u128_distances_are_the_same_integers() {
		// Values up to the small path's bound (2^27) on both signs, over
		// several 128-value blocks and a partial one; and the
		// bound itself, which takes the general path.
		let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
		let top = 1i64 << 27;
		for scale in [1i64 << 10, 1 << 24, top] {
			let width = 3 * 256 + 41;
			let mut rows: Vec<Fixed> = (0..4 * width).map(|_| next() as i64 % (scale + 1)).collect();
			let mut out: Vec<Fixed> = (0..width).map(|_| next() as i64 % (scale + 1)).collect();
			// The extremes: +max against −max, in a whole block.
			for j in 0..128 {
				rows[j] = top;
				out[j] = -top;
			}
			let mut fast = alloc::vec![0u128; 4];
			add_squared_distances(&rows, width, &out, top as u64, &mut fast);
			let slow: Vec<u128> = rows.chunks_exact(width).map(|row| squared_distance(row, &out)).collect();
			assert_eq!(fast, slow, "{scale}");
		}
		// Past 2^27 the general path is taken, with the same result.
		let rows = alloc::vec![(1i64 << 27) + 1; 300];
		let out = alloc::vec![-(1i64 << 27) - 1; 300];
		let mut d = alloc::vec![0u128; 1];
		add_squared_distances(&rows, 300, &out, magnitude_bound(&rows), &mut d);
		assert_eq!(d[0], 300 * ((1u128 << 28) + 2).pow(2));
		// The bound: SMALL exactly for values in [−2^27, 2^27), else the
		// largest magnitude.
		assert_eq!(magnitude_bound(&[-(1 << 27), (1 << 27) - 1, 0]), SMALL);
		assert_eq!(magnitude_bound(&[1 << 27]), 1 << 27);
		assert_eq!(magnitude_bound(&[-(1 << 27) - 1]), (1 << 27) + 1);
		assert_eq!(magnitude_bound(&[i64::MIN, 3]), 1 << 63);
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

	/// A source that computes each window on demand (as a store-backed
	/// source fetches it) and records the windows asked for.
	struct Generated {
		len: usize,
		window: Vec<Fixed>,
		reads: Vec<(Model, usize, usize)>,
		fail_at: Option<usize>,
	}

	fn generated(model: Model, j: usize) -> Fixed {
		let k = match model {
			Model::Global => 99,
			Model::Update(i) => i as i64,
		};
		let base = ((j as i64 * 7919 + k * 104_729) % 65_536 - 32_768) * 97;
		if k == 4 { base * 1000 } else { base }
	}

	impl ModelSource for Generated {
		fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[Fixed], AggregationError> {
			if self.fail_at == Some(start) {
				return Err(AggregationError::Unavailable);
			}
			assert_eq!(start % CHUNK, 0, "windows start at multiples of CHUNK");
			assert!(width <= CHUNK && start + width <= self.len);
			self.reads.push((model, start, width));
			self.window = (start..start + width).map(|j| generated(model, j)).collect();
			Ok(&self.window)
		}
	}

	#[test]
	fn streaming_equals_in_memory_for_every_rule() {
		let len = 3 * CHUNK + 5;
		let n = 5;
		let models: Vec<Vec<Fixed>> =
			(0..n).map(|i| (0..len).map(|j| generated(Model::Update(i), j)).collect()).collect();
		let global: Vec<Fixed> = (0..len).map(|j| generated(Model::Global, j)).collect();
		let views: Vec<_> =
			models.iter().enumerate().map(|(i, p)| UpdateView { params: p, samples: 3 + i as u32, credit: 7 }).collect();
		let weights: Vec<_> = views.iter().map(|v| UpdateWeight { samples: v.samples, credit: v.credit }).collect();
		for rule in [
			AggregationRule::FedAvg,
			AggregationRule::CreditWeightedFedAvg,
			AggregationRule::ClippedFedAvg { max_norm: 1_000 * FIXED_ONE },
			AggregationRule::Median,
			AggregationRule::TrimmedMean { trim: Permill::from_percent(20) },
		] {
			let whole = Agg::aggregate(&rule, &global, &views).unwrap();
			let mut source = Generated { len, window: Vec::new(), reads: Vec::new(), fail_at: None };
			let mut windows = Vec::new();
			let outliers = Agg::aggregate_stream(&rule, len, &weights, &mut source, &mut |w| {
				windows.push(w.to_vec());
				Ok(())
			})
			.unwrap();
			assert_eq!(windows.concat(), whole.params, "{rule:?}");
			assert_eq!(outliers, whole.outliers, "{rule:?}");
			assert!(windows.iter().all(|w| w.len() <= CHUNK));
			// The ×1000 update is flagged by the robust rules.
			if matches!(rule, AggregationRule::Median | AggregationRule::TrimmedMean { .. }) {
				assert_eq!(outliers, vec![4], "{rule:?}");
			}
			// One pass over the updates; clipping reads everything twice.
			let passes = if matches!(rule, AggregationRule::ClippedFedAvg { .. }) { 2 } else { 1 };
			let update_reads = source.reads.iter().filter(|r| matches!(r.0, Model::Update(_))).count();
			assert_eq!(update_reads, passes * n * len.div_ceil(CHUNK), "{rule:?}");
		}
	}

	#[test]
	fn streaming_errors_change_nothing_downstream() {
		let len = 2 * CHUNK;
		let weights = [UpdateWeight { samples: 1, credit: 1 }; 3];
		let mut source = Generated { len, window: Vec::new(), reads: Vec::new(), fail_at: Some(CHUNK) };
		let mut windows = 0;
		assert_eq!(
			Agg::aggregate_stream(&AggregationRule::FedAvg, len, &weights, &mut source, &mut |_| {
				windows += 1;
				Ok(())
			}),
			Err(AggregationError::Unavailable)
		);
		assert_eq!(windows, 1, "the stream stops at the failed window");
		let mut source = Generated { len, window: Vec::new(), reads: Vec::new(), fail_at: None };
		assert_eq!(
			Agg::aggregate_stream(&AggregationRule::FedAvg, len, &weights, &mut source, &mut |_| {
				Err(AggregationError::StoreFailed)
			}),
			Err(AggregationError::StoreFailed)
		);
		let mut short = SliceSource { global: &[0; 4], updates: vec![&[1, 2]] };
		assert_eq!(
			Agg::aggregate_stream(&AggregationRule::FedAvg, 4, &weights[..1], &mut short, &mut |_| Ok(())),
			Err(AggregationError::LengthMismatch)
		);
	}

	const RULES: [AggregationRule; 5] = [
		AggregationRule::FedAvg,
		AggregationRule::CreditWeightedFedAvg,
		AggregationRule::ClippedFedAvg { max_norm: 1_000 * FIXED_ONE },
		AggregationRule::Median,
		AggregationRule::TrimmedMean { trim: Permill::from_percent(20) },
	];

	/// Runs [`aggregate_fail_soft`] in memory.
	fn fail_soft(
		rule: &AggregationRule,
		global: &[Fixed],
		updates: &[Vec<Fixed>],
		admission: Admission,
	) -> Result<(Vec<Fixed>, Vec<usize>), AggregationError> {
		let weights = alloc::vec![UpdateWeight { samples: 10, credit: 500 }; updates.len()];
		let mut source = SliceSource { global, updates: updates.iter().map(|u| u.as_slice()).collect() };
		aggregate_fail_soft::<Agg, Vec<Fixed>>(rule, global.len(), &weights, admission, &mut source, Vec::new, |m, w| {
			m.extend_from_slice(w);
			Ok(())
		})
	}

	#[test]
	fn median_flags_an_update_of_i64_max_instead_of_overflowing() {
		let honest: Vec<[Fixed; 3]> = vec![[10, 20, 30], [11, 21, 31], [12, 22, 32]];
		let extreme = [Fixed::MAX, Fixed::MIN, Fixed::MAX];
		let mut views: Vec<_> = honest.iter().map(|p| view(p, 1)).collect();
		views.push(view(&extreme, 1));
		let out = Agg::aggregate(&AggregationRule::Median, &[0; 3], &views).unwrap();
		// The middle coordinate's extreme is low: its median is (20 + 21) / 2.
		assert_eq!(out.params, vec![11, 20, 31]);
		assert_eq!(out.outliers, vec![3]);
	}

	#[test]
	fn an_update_beyond_the_bound_cannot_fail_a_round_under_any_rule() {
		let honest: Vec<Vec<Fixed>> = (0..4).map(|k| (0..CHUNK + 3).map(|j| (j as i64 % 5 + k) * FIXED_ONE).collect()).collect();
		let global = alloc::vec![0; CHUNK + 3];
		let admission = Admission { max_abs: 100 * FIXED_ONE, quorum: 3 };
		for extreme in [Fixed::MAX, Fixed::MIN, 100 * FIXED_ONE + 1] {
			// The attacker's update is third in the canonical order, and
			// only its last window is out of bounds.
			let mut bad = honest[0].clone();
			*bad.last_mut().unwrap() = extreme;
			let mut updates = honest.clone();
			updates.insert(2, bad);
			for rule in RULES {
				let (model, flagged) = fail_soft(&rule, &global, &updates, admission).unwrap();
				let (expected, expected_flags) = fail_soft(&rule, &global, &honest, admission).unwrap();
				assert_eq!(model, expected, "{rule:?}: the honest result");
				let mut all: Vec<usize> = expected_flags.iter().map(|i| if *i >= 2 { i + 1 } else { *i }).collect();
				all.push(2);
				all.sort_unstable();
				assert_eq!(flagged, all, "{rule:?}");
			}
		}
	}

	#[test]
	fn a_poisoner_flagged_under_fedavg_is_dropped_from_the_mean() {
		let honest: Vec<Vec<Fixed>> = (0..4).map(|k| alloc::vec![(10 + k) * FIXED_ONE, (20 - k) * FIXED_ONE]).collect();
		let mut updates = honest.clone();
		updates.insert(1, honest[0].iter().map(|v| v * 1_000).collect());
		let admission = Admission { max_abs: 1_000_000 * FIXED_ONE, quorum: 3 };
		for rule in RULES {
			let (model, flagged) = fail_soft(&rule, &[0; 2], &updates, admission).unwrap();
			let (clean, clean_flags) = fail_soft(&rule, &[0; 2], &honest, admission).unwrap();
			assert!(clean_flags.is_empty(), "{rule:?}");
			assert_eq!(flagged, vec![1], "{rule:?}: the poisoner is flagged");
			assert_eq!(model, clean, "{rule:?}: and left out of the model");
		}
		// Without it the quorum would not hold: it stays in, flagged.
		let all = Admission { quorum: 5, ..admission };
		let (model, flagged) = fail_soft(&AggregationRule::FedAvg, &[0; 2], &updates, all).unwrap();
		assert_eq!(flagged, vec![1]);
		assert_ne!(model, fail_soft(&AggregationRule::FedAvg, &[0; 2], &honest, admission).unwrap().0);
	}

	/// Serves update `flaky` once per parameter window, then withholds it:
	/// a store that answers the first read and not the second.
	struct OnceSource<'a> {
		inner: SliceSource<'a>,
		flaky: usize,
		served: alloc::collections::BTreeSet<usize>,
		/// What a second read of the flaky update gets.
		second: AggregationError,
	}

	impl ModelSource for OnceSource<'_> {
		fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[Fixed], AggregationError> {
			if model == Model::Update(self.flaky) && !self.served.insert(start) {
				return Err(self.second);
			}
			self.inner.read(model, start, width)
		}
	}

	#[test]
	fn a_busy_store_stops_the_attempt_without_flagging_anyone() {
		/// Update 1's store answers "busy" (`429`, `5xx`, its node behind).
		struct Busy<'a>(SliceSource<'a>);
		impl ModelSource for Busy<'_> {
			fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[Fixed], AggregationError> {
				if model == Model::Update(1) {
					return Err(AggregationError::Busy);
				}
				self.0.read(model, start, width)
			}
		}
		let updates: Vec<Vec<Fixed>> = (0..4).map(|k| alloc::vec![(10 + k) * FIXED_ONE; 2]).collect();
		let weights = alloc::vec![UpdateWeight { samples: 10, credit: 500 }; updates.len()];
		let admission = Admission { max_abs: 1_000_000 * FIXED_ONE, quorum: 2 };
		let mut source = Busy(SliceSource { global: &[0; 2], updates: updates.iter().map(|u| u.as_slice()).collect() });
		let out = aggregate_fail_soft::<Agg, Vec<Fixed>>(&AggregationRule::FedAvg, 2, &weights, admission, &mut source, Vec::new, |m, w| {
			m.extend_from_slice(w);
			Ok(())
		});
		// Not "left out and flagged": the worker tries the round again later.
		assert_eq!(out.map(|(_, flagged)| flagged), Err(AggregationError::Busy));
	}

	#[test]
	fn a_store_that_withholds_on_the_second_read_cannot_fail_a_round_that_aggregated() {
		let honest: Vec<Vec<Fixed>> = (0..4).map(|k| alloc::vec![(10 + k) * FIXED_ONE; 2]).collect();
		let mut updates = honest.clone();
		updates.push(alloc::vec![10_000 * FIXED_ONE; 2]);
		let weights = alloc::vec![UpdateWeight { samples: 10, credit: 500 }; updates.len()];
		let admission = Admission { max_abs: 1_000_000 * FIXED_ONE, quorum: 4 };
		let first = fail_soft(&AggregationRule::FedAvg, &[0; 2], &updates, admission).unwrap();
		// Update 0 is honest and served only once: the second attempt (without
		// the flagged poisoner) cannot read it, so the first attempt stands.
		let mut source = OnceSource {
			inner: SliceSource { global: &[0; 2], updates: updates.iter().map(|u| u.as_slice()).collect() },
			flaky: 0,
			served: Default::default(),
			second: AggregationError::StoreFailed,
		};
		let out = aggregate_fail_soft::<Agg, Vec<Fixed>>(&AggregationRule::FedAvg, 2, &weights, admission, &mut source, Vec::new, |m, w| {
			m.extend_from_slice(w);
			Ok(())
		})
		.unwrap();
		assert_eq!(out.1, vec![4], "the poisoner is flagged");
		let with_poisoner: Vec<Fixed> = {
			let mut s = SliceSource { global: &[0; 2], updates: updates.iter().map(|u| u.as_slice()).collect() };
			let mut m = Vec::new();
			Agg::aggregate_stream(&AggregationRule::FedAvg, 2, &weights, &mut s, &mut |w| {
				m.extend_from_slice(w);
				Ok(())
			})
			.unwrap();
			m
		};
		assert_eq!(out.0, with_poisoner, "the first attempt's aggregate stands");
		assert_ne!(out.0, first.0, "where a second read succeeds, the poisoner is dropped");
		// A store only busy at the second read: the attempt stops (to be
		// tried again) instead of falling back to the first aggregate.
		let mut source = OnceSource {
			inner: SliceSource { global: &[0; 2], updates: updates.iter().map(|u| u.as_slice()).collect() },
			flaky: 0,
			served: Default::default(),
			second: AggregationError::Busy,
		};
		let out = aggregate_fail_soft::<Agg, Vec<Fixed>>(&AggregationRule::FedAvg, 2, &weights, admission, &mut source, Vec::new, |m, w| {
			m.extend_from_slice(w);
			Ok(())
		});
		assert_eq!(out.map(|(_, flagged)| flagged), Err(AggregationError::Busy));
	}

	#[test]
	fn updates_left_out_below_the_quorum_fail_the_attempt() {
		let ok = alloc::vec![FIXED_ONE; 4];
		let bad = alloc::vec![Fixed::MAX; 4];
		let admission = Admission { max_abs: 100 * FIXED_ONE, quorum: 2 };
		let (model, flagged) =
			fail_soft(&AggregationRule::FedAvg, &[0; 4], &[bad.clone(), ok.clone(), ok.clone()], admission).unwrap();
		assert_eq!((model, flagged), (ok.clone(), vec![0]));
		assert_eq!(
			fail_soft(&AggregationRule::FedAvg, &[0; 4], &[bad.clone(), ok.clone(), bad.clone()], admission),
			Err(AggregationError::NoQuorum)
		);
		// A short update is rejected too, not a round-wide length error.
		assert_eq!(
			fail_soft(&AggregationRule::FedAvg, &[0; 4], &[ok[..3].to_vec(), ok.clone(), ok.clone()], admission),
			Ok((ok.clone(), vec![0]))
		);
	}

	#[test]
	fn a_sink_that_fails_stops_fail_soft_aggregation() {
		let ok = alloc::vec![FIXED_ONE; 4];
		let weights = [UpdateWeight { samples: 1, credit: 1 }; 2];
		let mut source = SliceSource { global: &[0; 4], updates: alloc::vec![&ok[..], &ok[..]] };
		let admission = Admission { max_abs: 100 * FIXED_ONE, quorum: 1 };
		let out = aggregate_fail_soft::<Agg, ()>(&AggregationRule::FedAvg, 4, &weights, admission, &mut source, || (), |_, _| {
			Err(AggregationError::StoreFailed)
		});
		assert_eq!(out.map(|(_, f)| f), Err(AggregationError::StoreFailed));
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
