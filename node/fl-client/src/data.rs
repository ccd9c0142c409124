//! Tabular data: CSV files with numeric features and a 0/1 label in the last
//! column, and the non-IID split of a data set across hospitals.

use ndarray::{Array1, Array2, Axis};
use std::{fs, path::Path};

/// Rows of features with their labels.
#[derive(Clone, Debug)]
pub struct Dataset {
	/// Features, one row per sample.
	pub x: Array2<f64>,
	/// Labels, 0.0 or 1.0.
	pub y: Array1<f64>,
}

impl Dataset {
	/// Number of samples.
	pub fn len(&self) -> usize {
		self.y.len()
	}

	/// Number of features.
	pub fn features(&self) -> usize {
		self.x.ncols()
	}

	/// The rows at `idx`, in that order.
	pub fn select(&self, idx: &[usize]) -> Dataset {
		Dataset { x: self.x.select(Axis(0), idx), y: self.y.select(Axis(0), idx) }
	}

	/// Concatenates data sets with the same features.
	pub fn concat(parts: &[Dataset]) -> Result<Dataset, String> {
		let xs: Vec<_> = parts.iter().map(|d| d.x.view()).collect();
		let ys: Vec<_> = parts.iter().map(|d| d.y.view()).collect();
		Ok(Dataset {
			x: ndarray::concatenate(Axis(0), &xs).map_err(|e| e.to_string())?,
			y: ndarray::concatenate(Axis(0), &ys).map_err(|e| e.to_string())?,
		})
	}
}

/// Loads a CSV: numeric columns, label last. A first line that is not all
/// numbers of the same width (a header) is skipped.
pub fn load_csv(path: &Path) -> Result<Dataset, String> {
	let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
	let mut rows: Vec<Vec<f64>> = Vec::new();
	for (n, line) in text.lines().enumerate() {
		if line.trim().is_empty() {
			continue;
		}
		let parsed: Result<Vec<f64>, _> = line.split(',').map(|v| v.trim().parse::<f64>()).collect();
		match parsed {
			Ok(row) if rows.first().map_or(true, |r| r.len() == row.len()) && row.len() >= 2 => rows.push(row),
			_ if n == 0 => continue,
			_ => return Err(format!("{}:{}: not a row of numbers like the others", path.display(), n + 1)),
		}
	}
	// The scikit-learn copy's first line is `569,30,malignant,benign`.
	if rows.len() > 1 && rows[0].len() != rows[1].len() {
		rows.remove(0);
	}
	let width = rows.first().ok_or_else(|| format!("{}: no rows", path.display()))?.len();
	let features = width - 1;
	let mut x = Array2::<f64>::zeros((rows.len(), features));
	let mut y = Array1::<f64>::zeros(rows.len());
	for (i, row) in rows.iter().enumerate() {
		if row.len() != width {
			return Err(format!("{}: row {} has {} columns, not {width}", path.display(), i + 1, row.len()));
		}
		for j in 0..features {
			x[[i, j]] = row[j];
		}
		let label = row[features];
		if label != 0.0 && label != 1.0 {
			return Err(format!("{}: row {}: label {label} is not 0 or 1", path.display(), i + 1));
		}
		y[i] = label;
	}
	Ok(Dataset { x, y })
}

/// Writes a CSV with a header `f0,...,label`.
pub fn save_csv(path: &Path, d: &Dataset) -> Result<(), String> {
	let mut out = String::new();
	let header: Vec<String> = (0..d.features()).map(|j| format!("f{j}")).collect();
	out.push_str(&header.join(","));
	out.push_str(",label\n");
	for (row, label) in d.x.axis_iter(Axis(0)).zip(d.y.iter()) {
		let cells: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
		out.push_str(&cells.join(","));
		out.push_str(&format!(",{}\n", *label as u8));
	}
	fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

/// A small deterministic generator (xorshift64*), so splits are repeatable.
pub struct Rng(u64);

impl Rng {
	/// Seeds the generator (0 is replaced by a constant).
	pub fn new(seed: u64) -> Self {
		Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
	}

	/// The next value.
	pub fn next(&mut self) -> u64 {
		self.0 ^= self.0 >> 12;
		self.0 ^= self.0 << 25;
		self.0 ^= self.0 >> 27;
		self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
	}

	/// Fisher–Yates shuffle.
	pub fn shuffle<T>(&mut self, v: &mut [T]) {
		for i in (1..v.len()).rev() {
			let j = (self.next() % (i as u64 + 1)) as usize;
			v.swap(i, j);
		}
	}
}

/// Shares of each class's training rows per hospital: label skew and quantity
/// skew, so no two hospitals see the same distribution.
const SHARES: [[f64; 4]; 2] = [[0.10, 0.20, 0.30, 0.40], [0.55, 0.25, 0.15, 0.05]];

/// Splits `data` into a held-out test set (`test_fraction` of the rows) and
/// four non-IID hospital shares of the rest. Features are standardized with
/// the training rows' mean and deviation: the preprocessing the consortium
/// agrees on before training, published with the task.
pub fn split_non_iid(data: &Dataset, test_fraction: f64, seed: u64) -> (Vec<Dataset>, Dataset) {
	let mut rng = Rng::new(seed);
	let mut idx: Vec<usize> = (0..data.len()).collect();
	rng.shuffle(&mut idx);
	let n_test = ((data.len() as f64) * test_fraction).round() as usize;
	let (test_idx, train_idx) = idx.split_at(n_test);
	let mut train = data.select(train_idx);
	let mut test = data.select(test_idx);
	standardize(&mut train, &mut test);

	let mut hospitals: Vec<Vec<usize>> = vec![Vec::new(); 4];
	for (class, shares) in SHARES.iter().enumerate() {
		let rows: Vec<usize> = (0..train.len()).filter(|i| train.y[*i] as usize == class).collect();
		let mut start = 0;
		for (h, share) in shares.iter().enumerate() {
			let end = if h == 3 { rows.len() } else { start + (rows.len() as f64 * share).round() as usize };
			hospitals[h].extend_from_slice(&rows[start..end.min(rows.len())]);
			start = end.min(rows.len());
		}
	}
	let parts = hospitals
		.iter_mut()
		.map(|rows| {
			rng.shuffle(rows);
			train.select(rows)
		})
		.collect();
	(parts, test)
}

fn standardize(train: &mut Dataset, test: &mut Dataset) {
	let mean = train.x.mean_axis(Axis(0)).expect("training rows");
	let std = train.x.std_axis(Axis(0), 0.0).mapv(|s| if s > 0.0 { s } else { 1.0 });
	for d in [train, test] {
		for mut row in d.x.axis_iter_mut(Axis(0)) {
			row -= &mean;
			row /= &std;
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn toy(n: usize) -> Dataset {
		let x = Array2::from_shape_fn((n, 2), |(i, j)| (i * 3 + j) as f64);
		let y = Array1::from_shape_fn(n, |i| (i % 3 == 0) as u8 as f64);
		Dataset { x, y }
	}

	#[test]
	fn split_is_repeatable_disjoint_and_skewed() {
		let d = toy(300);
		let (a, test_a) = split_non_iid(&d, 0.2, 7);
		let (b, _) = split_non_iid(&d, 0.2, 7);
		assert_eq!(test_a.len(), 60);
		assert_eq!(a.iter().map(Dataset::len).sum::<usize>(), 240);
		for (x, y) in a.iter().zip(&b) {
			assert_eq!(x.x, y.x);
		}
		let positive = |d: &Dataset| d.y.sum() / d.len() as f64;
		assert!(positive(&a[0]) > 0.5 && positive(&a[3]) < 0.2, "label skew");
	}

	#[test]
	fn csv_round_trip_and_header() {
		let dir = std::env::temp_dir().join(format!("fl-client-{}", std::process::id()));
		std::fs::create_dir_all(&dir).unwrap();
		let p = dir.join("d.csv");
		save_csv(&p, &toy(5)).unwrap();
		let back = load_csv(&p).unwrap();
		assert_eq!(back.len(), 5);
		assert_eq!(back.features(), 2);
		std::fs::write(&p, "3,2,a,b\n1,2,0\n3,4,1\n5,6,1\n").unwrap();
		assert_eq!(load_csv(&p).unwrap().len(), 3);
		std::fs::write(&p, "1,2,0\n3,4,2\n").unwrap();
		assert!(load_csv(&p).unwrap_err().contains("not 0 or 1"));
		std::fs::write(&p, "1,2,0\n3,x,1\n").unwrap();
		assert!(load_csv(&p).unwrap_err().contains("not a row of numbers"));
	}
}
