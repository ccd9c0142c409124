//! Model stores as offchain workers use them: reading stored models chunk by
//! chunk over HTTP (checking every digest) and writing an aggregate.
//!
//! A model store is content-addressed (see [`ModelRef`]):
//! `GET|PUT {store}/models/0x{model digest}` is a model's SCALE-encoded
//! [`StoredManifest`], `GET|PUT {store}/chunks/0x{chunk digest}` a chunk's
//! bytes ([`chunk_bytes`]). Participants' updates are sealed: kept under
//! `{store}/sealed/…` and read only with a signed [`SealedReadAuth`] of a
//! member of the round's committee, the answer encrypted to a one-time key
//! of the reader's ([`SealedReader`]). A node's own store, where its offchain worker
//! writes aggregates, is the URL under [`STORE_URL_KEY`] in its persistent
//! offchain storage (set with the `offchain_localStorageSet` RPC, or
//! `medchain-fl-client aggregator-store`).

use crate::{
	aggregate::{AggregationError, Model, ModelSource, CHUNK},
	types::{
		chunk_bytes, chunk_digest, chunk_from_bytes, Fixed, MaxStoreUrl, ModelRef, SealedAnswer, SealedReadAuth,
		StoredManifest, UploadAuth, SEALED_READER_LABEL, SEALED_READ_HEADER, STORE_CHUNK, STORE_UPLOAD_HEADER,
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
	hex_bytes(digest.as_bytes())
}

/// `0x` and the lower-case hex digits of `bytes`.
pub fn hex_bytes(bytes: &[u8]) -> String {
	const DIGITS: &[u8; 16] = b"0123456789abcdef";
	let mut out = String::with_capacity(2 + 2 * bytes.len());
	out.push_str("0x");
	for b in bytes {
		out.push(DIGITS[(b >> 4) as usize] as char);
		out.push(DIGITS[(b & 15) as usize] as char);
	}
	out
}

/// `{store}{path}0x{digest}`.
fn url_of(store: &[u8], path: &str, digest: &H256) -> String {
	let mut url = String::from_utf8_lossy(store).into_owned();
	url.push_str(path);
	url.push_str(&hex(digest));
	url
}

/// URL of a model's manifest in `store`.
pub fn manifest_url(store: &[u8], digest: &H256) -> String {
	url_of(store, "/models/", digest)
}

/// URL of a chunk in `store`.
pub fn chunk_url(store: &[u8], digest: &H256) -> String {
	url_of(store, "/chunks/", digest)
}

/// URL of a sealed update's manifest in `store`.
pub fn sealed_manifest_url(store: &[u8], digest: &H256) -> String {
	url_of(store, "/sealed/models/", digest)
}

/// URL of a chunk of a sealed update in `store`.
pub fn sealed_chunk_url(store: &[u8], digest: &H256) -> String {
	url_of(store, "/sealed/chunks/", digest)
}

/// The value of the [`SEALED_READ_HEADER`] carrying `auth`.
pub fn sealed_read_header<AccountId: Encode>(auth: &SealedReadAuth<AccountId>) -> String {
	hex_bytes(&auth.encode())
}

/// Bytes a sealed answer adds to what it carries: the SCALE lengths, the
/// capsule (98 bytes), the nonce and the tag, with room to spare.
pub const SEALED_OVERHEAD: usize = 1024;

/// A committee member's one-time key for reading sealed updates: derived
/// from the node's entropy for one aggregation, kept in memory only.
pub struct SealedReader {
	secret: medchain_umbral::SecretKey,
	public: [u8; medchain_umbral::PUBLIC_KEY_LEN],
}

impl SealedReader {
	/// The key derived from `seed` ([`SEALED_READER_LABEL`]).
	pub fn from_seed(seed: &[u8; 32]) -> Option<Self> {
		let secret = medchain_umbral::secret_key(seed, SEALED_READER_LABEL).ok()?;
		let public = medchain_umbral::public_key_bytes(&secret.public_key());
		Some(Self { secret, public })
	}

	/// The public key a store encrypts its answers to.
	pub fn public(&self) -> [u8; medchain_umbral::PUBLIC_KEY_LEN] {
		self.public
	}

	/// The bytes a [`SealedAnswer`] carries, if it was encrypted to this key
	/// and not altered.
	pub fn open(&self, answer: &[u8]) -> Result<Vec<u8>, AggregationError> {
		let answer = SealedAnswer::decode(&mut &answer[..]).map_err(|_| AggregationError::Unavailable)?;
		medchain_umbral::decrypt_original(&self.secret, &answer.capsule, &answer.ciphertext)
			.map_err(|_| AggregationError::Unavailable)
	}
}

/// An update to read from its store: its reference and the value of the
/// [`SEALED_READ_HEADER`] that authorises the read.
#[derive(Clone, Debug)]
pub struct SealedRef {
	/// The update.
	pub model: ModelRef,
	/// The signed read, as [`sealed_read_header`] gives it.
	pub authorization: String,
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

/// Body of a `200 OK` answer to `GET url` (with the sealed-read header
/// `authorization`, if any), read up to `cap` bytes: a longer (or endless)
/// body is [`AggregationError::Unavailable`], so a store cannot exhaust an
/// aggregator's memory.
///
/// A store that answers `429` or `5xx`, or does not answer, is
/// [`AggregationError::Busy`] while `patient` (the read is tried again at a
/// later block), and unavailable after.
fn http_get(url: &str, authorization: Option<&str>, cap: usize, patient: bool) -> Result<Vec<u8>, AggregationError> {
	let busy = if patient { AggregationError::Busy } else { AggregationError::Unavailable };
	let deadline = deadline();
	let mut request = Request::get(url).deadline(deadline);
	if let Some(value) = authorization {
		request = request.add_header(SEALED_READ_HEADER, value);
	}
	let pending = request.send().map_err(|_| busy)?;
	let response = pending.try_wait(deadline).map_err(|_| busy)?.map_err(|_| busy)?;
	if response.code == 429 || response.code >= 500 {
		return Err(busy);
	}
	if response.code != 200 {
		return Err(AggregationError::Unavailable);
	}
	let mut body = response.body();
	body.deadline(deadline);
	let bytes: Vec<u8> = body.by_ref().take(cap.saturating_add(1)).collect();
	if bytes.len() > cap {
		return Err(AggregationError::Unavailable);
	}
	if body.error().is_some() {
		// Cut off mid-body (a restart, the deadline): as no answer.
		return Err(busy);
	}
	Ok(bytes)
}

/// `PUT url` with `body` and the upload header `authorization`; any 2xx
/// answer is success.
fn http_put(url: &str, body: Vec<u8>, authorization: &str) -> Result<(), AggregationError> {
	let deadline = deadline();
	let pending = Request::post(url, alloc::vec![body])
		.method(Method::Put)
		.add_header("Content-Type", "application/octet-stream")
		.add_header(STORE_UPLOAD_HEADER, authorization)
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
/// [`AggregationError::Unavailable`]. A sealed model is read from the
/// sealed paths with its signed read, and each answer opened with the
/// reader's key.
struct StoredModel {
	reference: Option<ModelRef>,
	authorization: Option<String>,
	/// Whether a busy store is waited for (see [`http_get`]).
	patient: bool,
	manifest: Option<StoredManifest>,
	cached: Option<(usize, Vec<Fixed>)>,
}

impl StoredModel {
	fn public(reference: ModelRef) -> Self {
		Self { reference: Some(reference), authorization: None, patient: true, manifest: None, cached: None }
	}

	fn sealed(sealed: Option<SealedRef>, patient: bool) -> Self {
		let (reference, authorization) = match sealed {
			Some(SealedRef { model, authorization }) => (Some(model), Some(authorization)),
			None => (None, None),
		};
		Self { reference, authorization, patient, manifest: None, cached: None }
	}

	/// The bytes at the manifest's (`chunk == None`) or a chunk's address,
	/// at most `cap` of them, opened with `reader` if the model is sealed.
	fn fetch(
		&self,
		chunk: Option<&H256>,
		cap: usize,
		reader: &SealedReader,
	) -> Result<Vec<u8>, AggregationError> {
		let r = self.reference.as_ref().ok_or(AggregationError::Unavailable)?;
		match (&self.authorization, chunk) {
			(None, None) => http_get(&manifest_url(&r.store, &r.digest), None, cap, self.patient),
			(None, Some(digest)) => http_get(&chunk_url(&r.store, digest), None, cap, self.patient),
			(Some(auth), chunk) => {
				let url = match chunk {
					None => sealed_manifest_url(&r.store, &r.digest),
					Some(digest) => sealed_chunk_url(&r.store, digest),
				};
				let answer = http_get(&url, Some(auth), cap.saturating_add(SEALED_OVERHEAD), self.patient)?;
				let bytes = reader.open(&answer)?;
				if bytes.len() > cap {
					return Err(AggregationError::Unavailable);
				}
				Ok(bytes)
			},
		}
	}

	/// Fetches the manifest and checks it against the reference.
	fn manifest(&mut self, reader: &SealedReader) -> Result<&StoredManifest, AggregationError> {
		if self.manifest.is_none() {
			let r = self.reference.as_ref().ok_or(AggregationError::Unavailable)?;
			let bytes = self.fetch(None, MAX_MANIFEST_BYTES, reader)?;
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
	fn window(&mut self, start: usize, width: usize, reader: &SealedReader) -> Result<&[Fixed], AggregationError> {
		let size = STORE_CHUNK as usize;
		let index = start / size;
		if self.cached.as_ref().map(|(i, _)| *i) != Some(index) {
			// Drop the previous chunk before fetching the next.
			self.cached = None;
			let digest =
				*self.manifest(reader)?.chunks.get(index).ok_or(AggregationError::LengthMismatch)?;
			let params = self.reference.as_ref().ok_or(AggregationError::Unavailable)?.params as usize;
			let bytes = self.fetch(Some(&digest), MAX_CHUNK_BYTES, reader)?;
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

/// A [`ModelSource`] over stored models, holding one chunk per model: the
/// public global model, and the sealed updates.
pub struct StoreSource {
	global: StoredModel,
	updates: Vec<StoredModel>,
	reader: SealedReader,
}

impl StoreSource {
	/// Reads the global model and the sealed updates (in aggregation order,
	/// each opened with `reader`) from their stores; an update given as
	/// `None` may not be fetched and reads as unavailable. While `patient`,
	/// an update whose store is busy stops the attempt
	/// ([`AggregationError::Busy`]) instead of being left out.
	pub fn new(global: ModelRef, updates: Vec<Option<SealedRef>>, reader: SealedReader, patient: bool) -> Self {
		Self {
			global: StoredModel::public(global),
			updates: updates.into_iter().map(|u| StoredModel::sealed(u, patient)).collect(),
			reader,
		}
	}
}

impl ModelSource for StoreSource {
	fn read(&mut self, model: Model, start: usize, width: usize) -> Result<&[Fixed], AggregationError> {
		let model = match model {
			Model::Global => &mut self.global,
			Model::Update(i) => self.updates.get_mut(i).ok_or(AggregationError::LengthMismatch)?,
		};
		model.window(start, width, &self.reader)
	}
}

/// Signs a payload with one of the node's aggregator keys: `(public key,
/// signature)`, `None` without a key to sign with.
pub type SignFn<'a> = &'a dyn Fn(&[u8]) -> Option<(Vec<u8>, Vec<u8>)>;

/// The value of the [`STORE_UPLOAD_HEADER`] for uploading an aggregate (a
/// public model) under `digest`, signed with `sign`.
pub fn upload_header(digest: &H256, sign: SignFn) -> Result<String, AggregationError> {
	let (signer, signature) = sign(&UploadAuth::signing_payload(digest, false)).ok_or(AggregationError::StoreFailed)?;
	Ok(hex_bytes(&UploadAuth { digest: *digest, sealed: false, signer, signature }.encode()))
}

/// Writes a model to a store as it is produced, chunk by chunk, each
/// upload signed.
pub struct StoreWriter<'a> {
	store: BoundedVec<u8, MaxStoreUrl>,
	sign: SignFn<'a>,
	buffer: Vec<Fixed>,
	chunks: Vec<H256>,
	params: u32,
}

impl<'a> StoreWriter<'a> {
	/// Starts writing a model to `store`, signing uploads with `sign`.
	pub fn new(store: BoundedVec<u8, MaxStoreUrl>, sign: SignFn<'a>) -> Self {
		Self { store, sign, buffer: Vec::with_capacity(CHUNK), chunks: Vec::new(), params: 0 }
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
		let auth = upload_header(&digest, self.sign)?;
		http_put(&chunk_url(&self.store, &digest), chunk_bytes(&self.buffer), &auth)?;
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
		let auth = upload_header(&digest, self.sign)?;
		http_put(&manifest_url(&self.store, &digest), manifest.encode(), &auth)?;
		Ok(ModelRef { digest, params: self.params, store: self.store })
	}
}
