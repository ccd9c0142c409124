//! Cost of the offchain aggregation: `FixedPointAggregator` (the code the
//! offchain workers run, here compiled natively) on K updates of d
//! parameters, with time and peak heap. Writes the same updates to a file so
//! `scripts/bench-aggregate.py` can time NumPy's weighted average on them in
//! the same run.
//!
//! Then streams the same aggregation as the offchain worker does for models
//! kept in model stores: updates read from the file one 64 Ki-parameter
//! store chunk per update at a time, the result cut into chunks and hashed
//! as they are written; its peak heap is what a 10 M-parameter round needs of
//! the Wasm heap.
//!
//! ```text
//! cargo run --release -p pallet-fl-task --example aggregate_cost -- K D OUT_DIR [REPEAT]
//! ```
//! Prints one JSON line per rule and way (`"streamed":false|true`).

use pallet_fl_task::{
	chunk_digest, stored_model_digest, Aggregate, AggregationError, AggregationRule, FixedPointAggregator, Model,
	ModelSource, StoredManifest, UpdateView, UpdateWeight, FIXED_ONE, STORE_CHUNK,
};
use sp_runtime::Permill;
use std::{
	alloc::{GlobalAlloc, Layout, System},
	io::{Read, Seek, SeekFrom, Write},
	sync::atomic::{AtomicUsize, Ordering},
	time::Instant,
};

/// The system allocator, counting live and peak bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
	unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
		let p = unsafe { System.alloc(layout) };
		if !p.is_null() {
			let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
			PEAK.fetch_max(now, Ordering::Relaxed);
		}
		p
	}

	unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
		unsafe { System.dealloc(p, layout) };
		LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
	}
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// xorshift64*: repeatable pseudo-random data.
struct Rng(u64);

impl Rng {
	fn next(&mut self) -> u64 {
		self.0 ^= self.0 >> 12;
		self.0 ^= self.0 << 25;
		self.0 ^= self.0 >> 27;
		self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
	}

	/// Roughly normal, mean 0, deviation 1 (sum of four uniforms).
	fn normal(&mut self) -> f64 {
		let u: f64 = (0..4).map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64).sum();
		(u - 2.0) * 3f64.sqrt()
	}
}

fn arg(args: &[String], i: usize, name: &str) -> usize {
	args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
		eprintln!("usage: aggregate_cost K D OUT_DIR [REPEAT]  ({name} missing or not a number)");
		std::process::exit(2)
	})
}

fn main() {
	let args: Vec<String> = std::env::args().skip(1).collect();
	let (k, d) = (arg(&args, 0, "K"), arg(&args, 1, "D"));
	let out = std::path::PathBuf::from(args.get(2).cloned().unwrap_or_else(|| ".".into()));
	let repeat = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3usize);

	// A global model and K updates near it, as after a round of training.
	let mut rng = Rng(0x5EED);
	let global: Vec<i64> = (0..d).map(|_| (rng.normal() * FIXED_ONE as f64) as i64).collect();
	let updates: Vec<Vec<i64>> = (0..k)
		.map(|_| global.iter().map(|g| g + (rng.normal() * 0.05 * FIXED_ONE as f64) as i64).collect())
		.collect();
	let samples: Vec<u32> = (0..k).map(|_| 50 + (rng.next() % 450) as u32).collect();
	write_inputs(&out, &updates, &samples);

	let views: Vec<UpdateView> =
		updates.iter().zip(&samples).map(|(p, s)| UpdateView { params: p, samples: *s, credit: 1 }).collect();
	let input_bytes = k * d * 8;
	let rules = [
		("fedavg", AggregationRule::FedAvg),
		("median", AggregationRule::Median),
		("trimmed-mean", AggregationRule::TrimmedMean { trim: Permill::from_percent(20) }),
	];
	for (name, rule) in rules {
		let mut best = f64::MAX;
		let mut extra_peak = 0;
		let mut result = Vec::new();
		for _ in 0..repeat {
			let before = LIVE.load(Ordering::Relaxed);
			PEAK.store(before, Ordering::Relaxed);
			let t0 = Instant::now();
			let aggregated = FixedPointAggregator::<frame_support::traits::ConstU32<3>>::aggregate(&rule, &global, &views)
				.expect("the benchmark's updates aggregate");
			best = best.min(t0.elapsed().as_secs_f64());
			extra_peak = extra_peak.max(PEAK.load(Ordering::Relaxed) - before);
			result = aggregated.params;
		}
		if name == "fedavg" {
			write_i64(&out.join("fedavg.bin"), &result);
		}
		report(name, false, k, d, best, input_bytes, extra_peak);

		// Streamed from the file as from model stores, written chunk by chunk.
		let weights: Vec<UpdateWeight> = samples.iter().map(|s| UpdateWeight { samples: *s, credit: 1 }).collect();
		let mut best = f64::MAX;
		let mut extra_peak = 0;
		for _ in 0..repeat {
			let before = LIVE.load(Ordering::Relaxed);
			PEAK.store(before, Ordering::Relaxed);
			let t0 = Instant::now();
			let mut source = FileSource::open(&out.join("updates.bin"), k, d);
			let mut writer = HashingWriter { buffer: Vec::new(), chunks: Vec::new(), params: 0 };
			FixedPointAggregator::<frame_support::traits::ConstU32<3>>::aggregate_stream(
				&rule,
				d,
				&weights,
				&mut source,
				&mut |window| {
					writer.push(window);
					Ok(())
				},
			)
			.expect("the benchmark's updates aggregate");
			let digest = writer.finish();
			best = best.min(t0.elapsed().as_secs_f64());
			extra_peak = extra_peak.max(PEAK.load(Ordering::Relaxed) - before);
			assert_eq!(digest, stored_model_digest(&result), "{name}: streamed and in-memory models differ");
		}
		report(name, true, k, d, best, input_bytes, extra_peak);
	}
}

fn report(name: &str, streamed: bool, k: usize, d: usize, seconds: f64, input_bytes: usize, extra_peak: usize) {
	println!(
		"{}",
		serde_like(&[
			("rule", format!("\"{name}\"")),
			("streamed", streamed.to_string()),
			("k", k.to_string()),
			("d", d.to_string()),
			("seconds", format!("{seconds:.4}")),
			("input_mib", format!("{:.1}", input_bytes as f64 / (1 << 20) as f64)),
			("peak_extra_heap_mib", format!("{:.2}", extra_peak as f64 / (1 << 20) as f64)),
		])
	);
}

/// Updates read from `updates.bin` one store chunk per update at a time, as
/// the offchain worker reads them from model stores.
struct FileSource {
	file: std::fs::File,
	d: usize,
	cached: Vec<Option<(usize, Vec<i64>)>>,
}

impl FileSource {
	fn open(path: &std::path::Path, k: usize, d: usize) -> Self {
		Self { file: std::fs::File::open(path).expect("updates.bin was written"), d, cached: vec![None; k] }
	}
}

impl ModelSource for FileSource {
	fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[i64], AggregationError> {
		let Model::Update(i) = model else { return Err(AggregationError::Unavailable) };
		let size = STORE_CHUNK as usize;
		let index = start / size;
		if self.cached[i].as_ref().map(|(c, _)| *c) != Some(index) {
			self.cached[i] = None;
			let len = size.min(self.d - index * size);
			let mut bytes = vec![0u8; len * 8];
			self.file
				.seek(SeekFrom::Start(((i * self.d + index * size) * 8) as u64))
				.and_then(|_| self.file.read_exact(&mut bytes))
				.map_err(|_| AggregationError::Unavailable)?;
			let chunk = bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
			self.cached[i] = Some((index, chunk));
		}
		let (_, chunk) = self.cached[i].as_ref().ok_or(AggregationError::Unavailable)?;
		let offset = start - index * size;
		chunk.get(offset..offset + width).ok_or(AggregationError::LengthMismatch)
	}
}

/// Cuts the aggregate into store chunks and hashes them, as the offchain
/// worker does before uploading each.
struct HashingWriter {
	buffer: Vec<i64>,
	chunks: Vec<sp_core::H256>,
	params: u32,
}

impl HashingWriter {
	fn push(&mut self, window: &[i64]) {
		self.params += window.len() as u32;
		self.buffer.extend_from_slice(window);
		if self.buffer.len() >= STORE_CHUNK as usize {
			self.chunks.push(chunk_digest(&self.buffer));
			self.buffer.clear();
		}
	}

	fn finish(mut self) -> sp_core::H256 {
		if !self.buffer.is_empty() {
			self.chunks.push(chunk_digest(&self.buffer));
		}
		StoredManifest { params: self.params, chunks: self.chunks }.digest()
	}
}

/// `{"a":1,...}` without a JSON dependency.
fn serde_like(fields: &[(&str, String)]) -> String {
	let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
	format!("{{{}}}", body.join(","))
}

fn write_i64(path: &std::path::Path, values: &[i64]) {
	let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("the output dir is writable"));
	for v in values {
		f.write_all(&v.to_le_bytes()).expect("write");
	}
}

/// `updates.bin`: K × D little-endian i64 (fixed point, 24 fractional
/// bits); `samples.bin`: K little-endian u32.
fn write_inputs(out: &std::path::Path, updates: &[Vec<i64>], samples: &[u32]) {
	std::fs::create_dir_all(out).expect("the output dir can be created");
	let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("updates.bin")).expect("writable"));
	for u in updates {
		for v in u {
			f.write_all(&v.to_le_bytes()).expect("write");
		}
	}
	let s: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
	std::fs::write(out.join("samples.bin"), s).expect("write");
}
