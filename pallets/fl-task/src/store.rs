//! Model stores as offchain workers use them: reading stored models chunk by
//! chunk over HTTP (checking every digest) and writing an aggregate.
//!
//! A model store is content-addressed (see [`ModelRef`]):
//! `GET|PUT {store}/models/0x{model digest}` is a model's SCALE-encoded
//! [`StoredManifest`], `GET|PUT {store}/chunks/0x{chunk digest}` a chunk's
//! bytes ([`chunk_bytes`]). A node's own store, where its offchain worker
//! writes aggregates, is the URL under [`STORE_URL_KEY`] in its persistent
//! offchain storage (set with the `offchain_localStorageSet` RPC, or
//! `medchain-fl-client aggregator-store`).

use crate::{
	aggregate::{AggregationError, Model, ModelSource, CHUNK},
	types::{
		chunk_bytes, chunk_digest, chunk_from_bytes, Fixed, MaxStoreUrl, ModelRef, StoredManifest, STORE_CHUNK,
	},
};
use alloc::{string::String, vec::Vec};
use codec::{Decode, Encode};
use frame_support::BoundedVec;
use sp_core::H256;
use sp_runtime::offchain::{
	http::{Method, Request},
	Duration, StorageKind,
};

/// Key, in a node's persistent offchain storage, of the base URL of the
/// model store its offchain worker writes aggregates to.
pub const STORE_URL_KEY: &[u8] = b"medchain/fl-task/model-store";

/// How long one HTTP request to a model store may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(60_000);

/// The model store this node writes to, if configured and well formed.
pub fn local_store() -> Option<BoundedVec<u8, MaxStoreUrl>> {
	let url = sp_io::offchain::local_storage_get(StorageKind::PERSISTENT, STORE_URL_KEY)?;
	let url: BoundedVec<u8, MaxStoreUrl> = url.try_into().ok()?;
	crate::types::is_store_url(&url).then_some(url)
}

/// `0x` and the lower-case hex digits of `digest`.
pub fn hex(digest: &H256) -> String {
	const DIGITS: &[u8; 16] = b"0123456789abcdef";
	let mut out = String::with_capacity(66);
	out.push_str("0x");
	for b in digest.as_bytes() {
		out.push(DIGITS[(b >> 4) as usize] as char);
		out.push(DIGITS[(b & 15) as usize] as char);
	}
	out
}

/// URL of a model's manifest in `store`.
pub fn manifest_url(store: &[u8], digest: &H256) -> String {
	let mut url = String::from_utf8_lossy(store).into_owned();
	url.push_str("/models/");
	url.push_str(&hex(digest));
	url
}

/// URL of a chunk in `store`.
pub fn chunk_url(store: &[u8], digest: &H256) -> String {
	let mut url = String::from_utf8_lossy(store).into_owned();
	url.push_str("/chunks/");
	url.push_str(&hex(digest));
	url
}

fn deadline() -> sp_runtime::offchain::Timestamp {
	sp_io::offchain::timestamp().add(REQUEST_TIMEOUT)
}

/// Most bytes read of a manifest: the parameter count, a compact length and
/// the chunk digests of the largest model a store may hold (16 Mi
/// parameters, 256 chunks), with room to spare.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// Most bytes read of a chunk: [`STORE_CHUNK`] parameters of 8 bytes.
pub const MAX_CHUNK_BYTES: usize = STORE_CHUNK as usize * 8;

/// Body of a `200 OK` answer to `GET url`, read up to `cap` bytes: a longer
/// (or endless) body is [`AggregationError::Unavailable`], so a store
/// cannot exhaust an aggregator's memory.
fn http_get(url: &str, cap: usize) -> Result<Vec<u8>, AggregationError> {
	let deadline = deadline();
	let pending = Request::get(url).deadline(deadline).send().map_err(|_| AggregationError::Unavailable)?;
	let response = pending
		.try_wait(deadline)
		.map_err(|_| AggregationError::Unavailable)?
		.map_err(|_| AggregationError::Unavailable)?;
	if response.code != 200 {
		return Err(AggregationError::Unavailable);
	}
	let mut body = response.body();
	body.deadline(deadline);
	let bytes: Vec<u8> = body.by_ref().take(cap.saturating_add(1)).collect();
	if body.error().is_some() || bytes.len() > cap {
		return Err(AggregationError::Unavailable);
	}
	Ok(bytes)
}

/// `PUT url` with `body`; any 2xx answer is success.
fn http_put(url: &str, body: Vec<u8>) -> Result<(), AggregationError> {
	let deadline = deadline();
	let pending = Request::post(url, alloc::vec![body])
		.method(Method::Put)
		.add_header("Content-Type", "application/octet-stream")
		.deadline(deadline)
		.send()
		.map_err(|_| AggregationError::StoreFailed)?;
	let response = pending
		.try_wait(deadline)
		.map_err(|_| AggregationError::StoreFailed)?
		.map_err(|_| AggregationError::StoreFailed)?;
	if (200..300).contains(&response.code) {
		Ok(())
	} else {
		Err(AggregationError::StoreFailed)
	}
}

/// A stored model being read: its checked manifest and the chunk last read.
/// Without a reference (a store that may not be fetched), every read is
/// [`AggregationError::Unavailable`].
struct StoredModel {
	reference: Option<ModelRef>,
	manifest: Option<StoredManifest>,
	cached: Option<(usize, Vec<Fixed>)>,
}

impl StoredModel {
	fn new(reference: Option<ModelRef>) -> Self {
		Self { reference, manifest: None, cached: None }
	}

	/// Fetches the manifest and checks it against the reference.
	fn manifest(&mut self) -> Result<&StoredManifest, AggregationError> {
		if self.manifest.is_none() {
			let r = self.reference.as_ref().ok_or(AggregationError::Unavailable)?;
			let bytes = http_get(&manifest_url(&r.store, &r.digest), MAX_MANIFEST_BYTES)?;
			let manifest =
				StoredManifest::decode(&mut &bytes[..]).map_err(|_| AggregationError::Unavailable)?;
			if manifest.digest() != r.digest ||
				manifest.params != r.params ||
				manifest.chunks.len() as u32 != StoredManifest::chunk_count(r.params)
			{
				return Err(AggregationError::Unavailable);
			}
			self.manifest = Some(manifest);
		}
		self.manifest.as_ref().ok_or(AggregationError::Unavailable)
	}

	/// Parameters `start..start + width`, within one chunk.
	fn window(&mut self, start: usize, width: usize) -> Result<&[Fixed], AggregationError> {
		let size = STORE_CHUNK as usize;
		let index = start / size;
		if self.cached.as_ref().map(|(i, _)| *i) != Some(index) {
			// Drop the previous chunk before fetching the next.
			self.cached = None;
			let digest = *self.manifest()?.chunks.get(index).ok_or(AggregationError::LengthMismatch)?;
			let r = self.reference.as_ref().ok_or(AggregationError::Unavailable)?;
			let params = r.params as usize;
			let bytes = http_get(&chunk_url(&r.store, &digest), MAX_CHUNK_BYTES)?;
			let chunk = chunk_from_bytes(&bytes).ok_or(AggregationError::Unavailable)?;
			let expected = size.min(params.saturating_sub(index * size));
			if chunk.len() != expected || chunk_digest(&chunk) != digest {
				return Err(AggregationError::Unavailable);
			}
			self.cached = Some((index, chunk));
		}
		let (_, chunk) = self.cached.as_ref().ok_or(AggregationError::Unavailable)?;
		let offset = start - index * size;
		chunk.get(offset..offset.saturating_add(width)).ok_or(AggregationError::LengthMismatch)
	}
}

/// A [`ModelSource`] over stored models, holding one chunk per model.
pub struct StoreSource {
	global: StoredModel,
	updates: Vec<StoredModel>,
}

impl StoreSource {
	/// Reads the global model and the updates (in aggregation order) from
	/// their stores; an update given as `None` may not be fetched and reads
	/// as unavailable.
	pub fn new(global: ModelRef, updates: Vec<Option<ModelRef>>) -> Self {
		Self {
			global: StoredModel::new(Some(global)),
			updates: updates.into_iter().map(StoredModel::new).collect(),
		}
	}
}

impl ModelSource for StoreSource {
	fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[Fixed], AggregationError> {
		let model = match model {
			Model::Global => &mut self.global,
			Model::Update(i) => self.updates.get_mut(i).ok_or(AggregationError::LengthMismatch)?,
		};
		model.window(start, width)
	}
}

/// Writes a model to a store as it is produced, chunk by chunk.
pub struct StoreWriter {
	store: BoundedVec<u8, MaxStoreUrl>,
	buffer: Vec<Fixed>,
	chunks: Vec<H256>,
	params: u32,
}

impl StoreWriter {
	/// Starts writing a model to `store`.
	pub fn new(store: BoundedVec<u8, MaxStoreUrl>) -> Self {
		Self { store, buffer: Vec::with_capacity(CHUNK), chunks: Vec::new(), params: 0 }
	}

	/// Appends parameters; each full chunk is uploaded.
	pub fn push(&mut self, window: &[Fixed]) -> Result<(), AggregationError> {
		self.params = self.params.checked_add(window.len() as u32).ok_or(AggregationError::Overflow)?;
		self.buffer.extend_from_slice(window);
		if self.buffer.len() >= STORE_CHUNK as usize {
			self.flush()?;
		}
		Ok(())
	}

	fn flush(&mut self) -> Result<(), AggregationError> {
		let digest = chunk_digest(&self.buffer);
		http_put(&chunk_url(&self.store, &digest), chunk_bytes(&self.buffer))?;
		self.chunks.push(digest);
		self.buffer.clear();
		Ok(())
	}

	/// Uploads the last chunk and the manifest; the model's reference.
	pub fn finish(mut self) -> Result<ModelRef, AggregationError> {
		if !self.buffer.is_empty() {
			self.flush()?;
		}
		let manifest = StoredManifest { params: self.params, chunks: core::mem::take(&mut self.chunks) };
		let digest = manifest.digest();
		http_put(&manifest_url(&self.store, &digest), manifest.encode())?;
		Ok(ModelRef { digest, params: self.params, store: self.store })
	}
}
