//! Model stores: the content-addressed HTTP store models too large for the
//! chain live in (`medchain-fl-client store`), and the client side that
//! uploads and downloads models (checking every digest).
//!
//! ```text
//! GET|PUT /models/0x{model digest}   SCALE-encoded StoredManifest
//! GET|PUT /chunks/0x{chunk digest}   a chunk: 8 little-endian bytes per parameter
//! GET     /health                    200 "ok"
//! ```
//! A `PUT` whose body does not hash to the digest in its path is refused
//! (`422`), so a store only ever holds what its names promise.
//!
//! Participants' updates are *sealed*:
//!
//! ```text
//! PUT /sealed/models/0x{digest}, /sealed/chunks/0x{digest}   as above, kept apart
//! GET /sealed/models/0x{digest}, /sealed/chunks/0x{digest}   X-Medchain-Sealed-Read: 0x{SealedReadAuth}
//! ```
//! The plain paths never serve them. A sealed read is answered only when
//! its signature holds (`401` otherwise) and a [`ReadPolicy`] allows it
//! (`403`): on a chain, [`ChainPolicy`] — the signer sits on the round's
//! committee and the model is the named participant's update of the round,
//! both in the state of the block the read names; a chunk is served only as
//! part of the model the read names. The answer is a
//! [`SealedAnswer`](pallet_fl_task::SealedAnswer): the bytes encrypted to
//! the read's one-time key, so a replayed read gives its replayer nothing.
//!
//! Both sides are `hyper` 1: the server within [`Limits`] (body size, `413`
//! beyond it; time for the headers and for the whole connection, so a slow
//! client is cut off; connections at once), the client through
//! `hyper-rustls`, so it reaches stores over `https://` (the system's root
//! certificates) as well as `http://`, as offchain workers do.

use codec::{Decode, Encode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Bytes, Method, Request, Response, StatusCode};
use hyper_util::{
	client::legacy::{connect::HttpConnector, Client},
	rt::TokioExecutor,
};
use medchain_chain_client::{
	runtime,
	serve::{self, ConnectionLimits},
};
use medchain_chain_client::Node;
use medchain_runtime::{AccountId, Runtime};
use pallet_fl_task::{
	chunk_bytes, chunk_digest, chunk_from_bytes,
	store::{self as paths, hex, SealedReader},
	Fixed, ModelParams, ModelRef, SealedAnswer, SealedRead, SealedReadAuth, StoredManifest, UploadAuth,
	SEALED_READ_HEADER, STORE_CHUNK, STORE_UPLOAD_HEADER,
};
use sp_core::{sr25519, Pair as _, H256};
use std::{
	collections::HashMap,
	net::SocketAddr,
	path::{Path, PathBuf},
	sync::{Arc, Mutex, OnceLock},
	time::{Duration, Instant},
};

/// Largest body a store accepts or a client reads: a manifest of the
/// largest model, or a chunk.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Longest a client waits for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What one client may cost a store.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
	/// Largest request body; a larger one is answered `413`.
	pub max_body: usize,
	/// Connections, header and connection time.
	pub connections: ConnectionLimits,
}

impl Default for Limits {
	fn default() -> Self {
		Limits {
			max_body: MAX_BODY,
			connections: ConnectionLimits { connection_timeout: REQUEST_TIMEOUT, ..ConnectionLimits::default() },
		}
	}
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One pooled client for every store, `http://` and `https://`.
fn client() -> Result<&'static HttpsClient, String> {
	static CLIENT: OnceLock<HttpsClient> = OnceLock::new();
	if let Some(client) = CLIENT.get() {
		return Ok(client);
	}
	let connector = hyper_rustls::HttpsConnectorBuilder::new()
		.with_native_roots()
		.map_err(|e| format!("the system's root certificates: {e}"))?
		.https_or_http()
		.enable_http1()
		.build();
	let _guard = runtime().enter();
	Ok(CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build(connector)))
}

/// Sends one request (with a header, if any: a sealed read's or an
/// upload's) and returns the status code and body.
fn request(method: Method, url: &str, body: &[u8], header: Option<(&str, &str)>) -> Result<(u16, Vec<u8>), String> {
	let client = client()?;
	let mut builder = Request::builder().method(method).uri(url);
	if let Some((name, value)) = header {
		builder = builder.header(name, value);
	}
	let request = builder.body(Full::new(Bytes::copy_from_slice(body))).map_err(|e| format!("{url}: {e}"))?;
	let url = url.to_string();
	runtime().block_on(async move {
		let exchange = async {
			let response = client.request(request).await.map_err(|e| format!("{url}: {e}"))?;
			let status = response.status().as_u16();
			let body = Limited::new(response.into_body(), MAX_BODY)
				.collect()
				.await
				.map_err(|e| format!("{url}: {e}"))?
				.to_bytes();
			Ok::<_, String>((status, body.to_vec()))
		};
		tokio::time::timeout(REQUEST_TIMEOUT, exchange)
			.await
			.map_err(|_| format!("{url}: no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
	})
}

fn get(url: &str) -> Result<Vec<u8>, String> {
	get_with(url, None)
}

fn get_with(url: &str, auth: Option<&str>) -> Result<Vec<u8>, String> {
	match request(Method::GET, url, &[], auth.map(|a| (SEALED_READ_HEADER, a)))? {
		(200, body) => Ok(body),
		(code, _) => Err(format!("GET {url}: HTTP {code}")),
	}
}

/// The value of the upload header for `digest`, signed by `uploader`.
fn upload_header(digest: &H256, sealed: bool, uploader: &sr25519::Pair) -> String {
	let signature = uploader.sign(&UploadAuth::signing_payload(digest, sealed)).0.to_vec();
	let auth = UploadAuth { digest: *digest, sealed, signer: uploader.public().0.to_vec(), signature };
	paths::hex_bytes(&auth.encode())
}

/// `PUT url` of `body` under `digest` (a sealed path or not), signed by
/// `uploader`.
fn put(url: &str, digest: &H256, body: &[u8], sealed: bool, uploader: &sr25519::Pair) -> Result<(), String> {
	let header = upload_header(digest, sealed, uploader);
	match request(Method::PUT, url, body, Some((STORE_UPLOAD_HEADER, &header)))? {
		(200..=299, _) => Ok(()),
		(code, body) => Err(format!("PUT {url}: HTTP {code} {}", String::from_utf8_lossy(&body))),
	}
}

fn manifest_url(store: &str, digest: &H256) -> String {
	paths::manifest_url(store.trim_end_matches('/').as_bytes(), digest)
}

fn chunk_url(store: &str, digest: &H256) -> String {
	paths::chunk_url(store.trim_end_matches('/').as_bytes(), digest)
}

fn sealed_manifest_url(store: &str, digest: &H256) -> String {
	paths::sealed_manifest_url(store.trim_end_matches('/').as_bytes(), digest)
}

fn sealed_chunk_url(store: &str, digest: &H256) -> String {
	paths::sealed_chunk_url(store.trim_end_matches('/').as_bytes(), digest)
}

/// Who may read a model: anyone (a global model), or, for a participant's
/// update, only its round's committee.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Visibility {
	/// Served on the plain paths to anyone.
	Public,
	/// Served on the sealed paths to signed committee reads only.
	Sealed,
}

/// Uploads a model to the store at `store` (chunks, then the manifest) as
/// `uploader` and returns its reference.
pub fn upload(store: &str, params: &[Fixed], visibility: Visibility, uploader: &sr25519::Pair) -> Result<ModelRef, String> {
	let sealed = visibility == Visibility::Sealed;
	let (manifest_at, chunk_at): (fn(&str, &H256) -> String, fn(&str, &H256) -> String) = match visibility {
		Visibility::Public => (manifest_url, chunk_url),
		Visibility::Sealed => (sealed_manifest_url, sealed_chunk_url),
	};
	let mut chunks = Vec::new();
	for chunk in params.chunks(STORE_CHUNK as usize) {
		let digest = chunk_digest(chunk);
		put(&chunk_at(store, &digest), &digest, &chunk_bytes(chunk), sealed, uploader)?;
		chunks.push(digest);
	}
	let manifest = StoredManifest { params: params.len() as u32, chunks };
	let digest = manifest.digest();
	put(&manifest_at(store, &digest), &digest, &manifest.encode(), sealed, uploader)?;
	let store = store.trim_end_matches('/').as_bytes().to_vec().try_into().map_err(|_| "store URL too long")?;
	Ok(ModelRef { digest, params: params.len() as u32, store })
}

/// Downloads a public model by reference, checking the manifest and every
/// chunk.
pub fn download(model: &ModelRef) -> Result<Vec<Fixed>, String> {
	fetch_model(model, |store, chunk| match chunk {
		None => get(&manifest_url(store, &model.digest)),
		Some(digest) => get(&chunk_url(store, digest)),
	})
}

/// Downloads a sealed update as a member of its round's committee: each
/// read carries `auth` (whose one-time key is `reader`'s) and is opened
/// with `reader`.
pub fn download_sealed(model: &ModelRef, auth: &SealedReadAuth<AccountId>, reader: &SealedReader) -> Result<Vec<Fixed>, String> {
	let header = paths::sealed_read_header(auth);
	fetch_model(model, |store, chunk| {
		let url = match chunk {
			None => sealed_manifest_url(store, &model.digest),
			Some(digest) => sealed_chunk_url(store, digest),
		};
		let answer = get_with(&url, Some(&header))?;
		reader.open(&answer).map_err(|_| format!("{url}: the answer does not open with this read's key"))
	})
}

/// Reads a model through `fetch` (the manifest for `None`, else a chunk by
/// digest), checking the manifest and every chunk.
fn fetch_model(model: &ModelRef, fetch: impl Fn(&str, Option<&H256>) -> Result<Vec<u8>, String>) -> Result<Vec<Fixed>, String> {
	let store = String::from_utf8(model.store.to_vec()).map_err(|_| "store URL is not UTF-8")?;
	let bytes = fetch(&store, None)?;
	let manifest = StoredManifest::decode(&mut &bytes[..]).map_err(|e| format!("manifest: {e}"))?;
	if manifest.digest() != model.digest || manifest.params != model.params {
		return Err(format!("{store}: the manifest does not match digest {:?}", model.digest));
	}
	let mut params = Vec::with_capacity(model.params as usize);
	for digest in &manifest.chunks {
		let chunk = chunk_from_bytes(&fetch(&store, Some(digest))?).ok_or("chunk of a partial parameter")?;
		if chunk_digest(&chunk) != *digest {
			return Err(format!("{store}: chunk {digest:?} does not match its digest"));
		}
		params.extend(chunk);
	}
	if params.len() != model.params as usize {
		return Err(format!("{store}: the model has {} parameters, not {}", params.len(), model.params));
	}
	Ok(params)
}

/// Why a policy did not allow a request: the HTTP status (`403` refused,
/// `503` it could not be decided now, e.g. the node lacks the block) and
/// the reason.
pub type Refusal = (u16, String);

/// Decides who may read sealed models and who may upload.
pub trait AccessPolicy: Send + Sync + 'static {
	/// `Ok` if `read`, signed by `signer` (signature already checked), may
	/// be answered.
	fn allows_read(&self, read: &SealedRead<AccountId>, signer: &AccountId) -> Result<(), Refusal>;
	/// `Ok` if `signer` (signature already checked) may upload.
	fn allows_upload(&self, signer: &AccountId) -> Result<(), Refusal>;
}

/// How old a block a sealed read may name, in blocks behind the best: a
/// round aggregates within its timeout (600 blocks by default), and a
/// member that left the committee since cannot keep reading for ever.
pub const MAX_READ_AGE: u32 = 600;

/// The chain decides. A read: the signer sits on the round's committee
/// and the read model is the named participant's update of the round, in
/// the state of the block the read names, which must be on the node's best
/// chain and at most [`MAX_READ_AGE`] blocks old (`503` while the node has
/// not imported it or has it above its finalized block on another branch;
/// also when the node no longer keeps its state). An upload: the signer is an active institution at the
/// best block. Allowed answers are remembered for a while, so a model's
/// chunks cost one check.
pub struct ChainPolicy {
	node: Node,
	seen: Mutex<HashMap<(AccountId, Vec<u8>), Instant>>,
}

/// How long a [`ChainPolicy`] remembers an allowed read.
const ALLOWED_FOR: Duration = Duration::from_secs(600);

/// Most allowed reads a [`ChainPolicy`] remembers.
const MOST_REMEMBERED: usize = 4096;

impl ChainPolicy {
	/// Checks reads against the chain through `node`.
	pub fn new(node: Node) -> Self {
		ChainPolicy { node, seen: Mutex::new(HashMap::new()) }
	}

	fn check(&self, read: &SealedRead<AccountId>, signer: &AccountId) -> Result<(), Refusal> {
		let at = format!("{:?}", read.at);
		let q = |e: medchain_chain_client::RpcError| (503, format!("the node: {e}"));
		let refused = |why: String| (403, why);
		// The named block: known, on the best chain, recent.
		let header = self.node.call("chain_getHeader", serde_json::json!([at])).map_err(q)?;
		let number = header["number"]
			.as_str()
			.and_then(|n| u32::from_str_radix(n.trim_start_matches("0x"), 16).ok())
			.ok_or_else(|| (503, format!("the node has no block {at} yet")))?;
		let canonical = self.node.call("chain_getBlockHash", serde_json::json!([number])).map_err(q)?;
		if canonical.as_str() != Some(at.as_str()) {
			// Above the finalized block the node's best chain may still
			// become the one that holds `at`: ask again later.
			let finalized = self.node.call("chain_getFinalizedHead", serde_json::json!([])).map_err(q)?;
			let finalized = self.node.call("chain_getHeader", serde_json::json!([finalized])).map_err(q)?;
			let finalized = finalized["number"]
				.as_str()
				.and_then(|n| u32::from_str_radix(n.trim_start_matches("0x"), 16).ok())
				.unwrap_or(0);
			if number > finalized {
				return Err((503, format!("block {at} is not on the node's best chain yet")));
			}
			return Err(refused(format!("block {at} is not on the finalized chain")));
		}
		let best = self.node.best_number().map_err(q)?;
		if best.saturating_sub(number) > MAX_READ_AGE {
			return Err(refused(format!("block {at} is more than {MAX_READ_AGE} blocks old")));
		}
		let committee: Option<(u32, Vec<AccountId>)> = self
			.node
			.storage_at(&pallet_fl_task::Committees::<Runtime>::hashed_key_for((read.task, read.round)), Some(&at))
			.map_err(q)?;
		if !committee.is_some_and(|(_, members)| members.contains(signer)) {
			return Err(refused(format!(
				"{signer} is not on the committee of task {} round {} at {at}",
				read.task, read.round
			)));
		}
		let key = pallet_fl_task::Updates::<Runtime>::hashed_key_for((read.task, read.round), &read.participant);
		let update: Option<pallet_fl_task::ModelUpdate<crate::MaxParams>> =
			self.node.storage_at(&key, Some(&at)).map_err(q)?;
		match update.map(|u| u.params) {
			Some(ModelParams::Stored(r)) if r.digest == read.model => Ok(()),
			_ => Err(refused(format!(
				"{:?} is not an update of task {} round {} at {at}",
				read.model, read.task, read.round
			))),
		}
	}
}

impl ChainPolicy {
	/// `check`, or an allowed answer to the same question remembered from
	/// the last [`ALLOWED_FOR`] (an upload's for a minute).
	fn remembered(&self, key: (AccountId, Vec<u8>), check: impl FnOnce() -> Result<(), Refusal>) -> Result<(), Refusal> {
		let poisoned = || (500, "the store's state is poisoned".to_string());
		let now = Instant::now();
		let valid_for = if key.1.is_empty() { Duration::from_secs(60) } else { ALLOWED_FOR };
		if self.seen.lock().map_err(|_| poisoned())?.get(&key).is_some_and(|at| now.duration_since(*at) < valid_for) {
			return Ok(());
		}
		check()?;
		let mut seen = self.seen.lock().map_err(|_| poisoned())?;
		if seen.len() >= MOST_REMEMBERED {
			seen.clear();
		}
		seen.insert(key, now);
		Ok(())
	}
}

impl AccessPolicy for ChainPolicy {
	fn allows_read(&self, read: &SealedRead<AccountId>, signer: &AccountId) -> Result<(), Refusal> {
		self.remembered((signer.clone(), read.encode()), || self.check(read, signer))
	}

	fn allows_upload(&self, signer: &AccountId) -> Result<(), Refusal> {
		self.remembered((signer.clone(), Vec::new()), || {
			let key = pallet_reputation::Institutions::<Runtime>::hashed_key_for(signer);
			let institution: Option<pallet_reputation::Institution<Runtime>> =
				self.node.storage(&key).map_err(|e| (503, format!("the node: {e}")))?;
			match institution {
				Some(i) if i.status == pallet_reputation::InstitutionStatus::Active => Ok(()),
				_ => Err((403, format!("{signer} is not an active institution of the consortium"))),
			}
		})
	}
}

/// Serves a model store from `dir` on `listen` until the process ends,
/// at most `max_per_client` connections to one IP address; sealed reads
/// and uploads are checked against the chain through `node`.
pub fn serve(listen: &str, dir: &Path, node: Node, max_per_client: usize) -> Result<(), String> {
	runtime().block_on(async {
		let mut limits = Limits::default();
		limits.connections.max_per_client = max_per_client;
		let addr = start(listen, dir, limits, Arc::new(ChainPolicy::new(node))).await?;
		println!("{}", serde_json::json!({ "store": format!("http://{addr}"), "dir": dir.display().to_string() }));
		std::future::pending::<()>().await;
		Ok(())
	})
}

/// Starts a store on `listen` serving `dir` within `limits`, answering
/// sealed reads that `policy` allows; returns the bound address. It serves
/// until the runtime ends.
pub async fn start(listen: &str, dir: &Path, limits: Limits, policy: Arc<dyn AccessPolicy>) -> Result<SocketAddr, String> {
	for kind in ["models", "chunks", "sealed/models", "sealed/chunks", "sealed/owners"] {
		std::fs::create_dir_all(dir.join(kind)).map_err(|e| format!("{}: {e}", dir.display()))?;
	}
	let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("{listen}: {e}"))?;
	let addr = listener.local_addr().map_err(|e| e.to_string())?;
	let dir = Arc::new(dir.to_path_buf());
	let max_body = limits.max_body;
	serve::accept(listener, limits.connections, move || {
		let dir = dir.clone();
		let policy = policy.clone();
		hyper::service::service_fn(move |request| {
			let dir = dir.clone();
			let policy = policy.clone();
			async move { Ok::<_, std::convert::Infallible>(handle(request, dir, policy, max_body).await) }
		})
	});
	Ok(addr)
}

/// Answers one request: reads its body (up to `max_body`), then answers
/// from `dir` off the async threads.
async fn handle(
	request: Request<hyper::body::Incoming>,
	dir: Arc<PathBuf>,
	policy: Arc<dyn AccessPolicy>,
	max_body: usize,
) -> Response<Full<Bytes>> {
	let method = request.method().clone();
	let path = request.uri().path().to_string();
	let auth = request.headers().get(SEALED_READ_HEADER).map(|v| v.as_bytes().to_vec());
	let upload = request.headers().get(STORE_UPLOAD_HEADER).map(|v| v.as_bytes().to_vec());
	let reply = |code: u16, body: Vec<u8>| {
		let mut response = Response::new(Full::new(Bytes::from(body)));
		*response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
		response
	};
	// An upload's signature is checked before its body is read.
	let mut uploader = None;
	if matches!(method, Method::PUT | Method::POST) {
		if let Ok((sealed, _, digest)) = parse_name(&path) {
			let policy = policy.clone();
			let checked = tokio::task::spawn_blocking(move || check_upload(upload.as_deref(), policy.as_ref(), &digest, sealed));
			match checked.await {
				Ok(Ok(who)) => uploader = Some(who),
				Ok(Err((code, reason))) => return reply(code, reason.into_bytes()),
				Err(_) => return reply(500, b"the store failed".to_vec()),
			}
		}
	}
	let (code, body) = match Limited::new(request.into_body(), max_body).collect().await {
		Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
			(413, format!("a body is at most {max_body} bytes").into_bytes())
		},
		Err(_) => (400, b"the body could not be read".to_vec()),
		Ok(body) => {
			let body = body.to_bytes();
			tokio::task::spawn_blocking(move || {
				let request = StoreRequest {
					method: &method,
					path: &path,
					body: &body,
					auth: auth.as_deref(),
					uploader,
				};
				respond(request, &dir, policy.as_ref())
			})
			.await
			.unwrap_or((500, b"the store failed".to_vec()))
		},
	};
	reply(code, body)
}

/// The parts of a model's path: sealed or not, `models` or `chunks`, the
/// digest; else the status and reason to answer with.
fn parse_name(path: &str) -> Result<(bool, &'static str, H256), (u16, &'static str)> {
	let path = path.trim_start_matches('/');
	let (sealed, path) = match path.strip_prefix("sealed/") {
		Some(rest) => (true, rest),
		None => (false, path),
	};
	let (kind, name) = path.split_once('/').ok_or((404, "not found"))?;
	let kind = match kind {
		"models" => "models",
		"chunks" => "chunks",
		_ => return Err((404, "not found")),
	};
	let digest = parse_digest(name).ok_or((400, "the name is not 0x and 64 hex digits"))?;
	Ok((sealed, kind, digest))
}

/// One request, its body read.
struct StoreRequest<'a> {
	method: &'a Method,
	path: &'a str,
	body: &'a [u8],
	/// The sealed-read header's value.
	auth: Option<&'a [u8]>,
	/// Who signed the upload (checked before its body was read).
	uploader: Option<AccountId>,
}

/// The status and body answering `request`.
fn respond(request: StoreRequest, dir: &Path, policy: &dyn AccessPolicy) -> (u16, Vec<u8>) {
	let StoreRequest { method, path, body, auth, uploader } = request;
	if path == "/health" {
		return (200, b"ok".to_vec());
	}
	let (sealed, kind, digest) = match parse_name(path) {
		Ok(parts) => parts,
		Err((code, reason)) => return (code, reason.as_bytes().to_vec()),
	};
	let root = if sealed { dir.join("sealed") } else { dir.to_path_buf() };
	let file = root.join(kind).join(hex(&digest));
	match *method {
		Method::GET if sealed => match sealed_read(auth, policy, &root, kind, &digest) {
			Ok(answer) => (200, answer),
			Err((code, reason)) => (code, reason.into_bytes()),
		},
		Method::GET => match std::fs::read(&file) {
			Ok(bytes) => (200, bytes),
			Err(_) => (404, b"not found".to_vec()),
		},
		Method::PUT | Method::POST => {
			let valid = match kind {
				"chunks" => body.len() % 8 == 0,
				_ => StoredManifest::decode(&mut &body[..]).is_ok(),
			};
			let Some(uploader) = uploader else { return (401, b"the upload is not signed".to_vec()) };
			if !valid || <sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(body) != digest {
				return (422, b"the body does not match the digest in the path".to_vec());
			}
			if let Err(e) = write_atomically(&file, body) {
				return (500, e.into_bytes());
			}
			// A sealed model is read only as its uploaders' update.
			if sealed && kind == "models" {
				if let Err(e) = add_owner(&root, &digest, &uploader) {
					return (500, e.into_bytes());
				}
			}
			(201, Vec::new())
		},
		_ => (405, b"GET or PUT".to_vec()),
	}
}

/// Decodes a signed header's value: `0x` and hex digits of a SCALE `T`.
fn signed_header<T: Decode>(value: &[u8]) -> Option<T> {
	let bytes = std::str::from_utf8(value)
		.ok()
		.filter(|h| h.starts_with("0x"))
		.and_then(|h| medchain_chain_client::unhex(h).ok())?;
	T::decode(&mut &bytes[..]).ok()
}

/// The sr25519 signer of `payload`, if `signer` and `signature` are one and
/// hold.
fn verified_signer(signer: &[u8], signature: &[u8], payload: &[u8]) -> Option<AccountId> {
	let signer = sr25519::Public::try_from(signer).ok()?;
	let signature = sr25519::Signature::try_from(signature).ok()?;
	sr25519::Pair::verify(&signature, payload, &signer).then(|| AccountId::from(signer))
}

/// Checks an upload under `digest`: signed (`401`) by someone `policy`
/// allows (`403`).
/// Checks an upload under `digest` (to the sealed paths or not): signed
/// (`401`) by someone `policy` allows (`403`); the signer.
fn check_upload(
	upload: Option<&[u8]>,
	policy: &dyn AccessPolicy,
	digest: &H256,
	sealed: bool,
) -> Result<AccountId, Refusal> {
	let unauthorised = |why: &str| (401, format!("an upload is signed with {STORE_UPLOAD_HEADER}: {why}"));
	let auth: UploadAuth = signed_header(upload.ok_or_else(|| unauthorised("none sent"))?)
		.ok_or_else(|| unauthorised("not 0x and the hex digits of an UploadAuth"))?;
	if auth.digest != *digest || auth.sealed != sealed {
		return Err(unauthorised("it signs another name or other paths"));
	}
	let signer = verified_signer(&auth.signer, &auth.signature, &UploadAuth::signing_payload(digest, sealed))
		.ok_or_else(|| unauthorised("the signature does not hold"))?;
	policy.allows_upload(&signer)?;
	Ok(signer)
}

/// File listing who uploaded a sealed model (one hex account per line).
fn owners_file(root: &Path, model: &H256) -> PathBuf {
	root.join("owners").join(hex(model))
}

/// Records `who` as an uploader of the sealed model `model`.
fn add_owner(root: &Path, model: &H256, who: &AccountId) -> Result<(), String> {
	let file = owners_file(root, model);
	let line = format!("{}\n", medchain_chain_client::hex(who.as_ref()));
	let known = std::fs::read_to_string(&file).unwrap_or_default();
	if known.lines().any(|l| format!("{l}\n") == line) {
		return Ok(());
	}
	use std::io::Write;
	std::fs::OpenOptions::new()
		.create(true)
		.append(true)
		.open(&file)
		.and_then(|mut f| f.write_all(line.as_bytes()))
		.map_err(|e| e.to_string())
}

/// Whether `who` uploaded the sealed model `model`.
fn is_owner(root: &Path, model: &H256, who: &AccountId) -> bool {
	let line = medchain_chain_client::hex(who.as_ref());
	std::fs::read_to_string(owners_file(root, model)).is_ok_and(|known| known.lines().any(|l| l == line))
}

/// Answers a sealed read of `kind`/`digest` under `root`: checks the
/// signed read (`401`) and the policy (`403`), that the bytes belong to the
/// model the read names (`403`), and encrypts them to the read's key.
fn sealed_read(
	auth: Option<&[u8]>,
	policy: &dyn AccessPolicy,
	root: &Path,
	kind: &str,
	digest: &H256,
) -> Result<Vec<u8>, (u16, String)> {
	let unauthorised = |why: &str| (401, format!("a sealed model is read with a signed {SEALED_READ_HEADER}: {why}"));
	let auth: SealedReadAuth<AccountId> = signed_header(auth.ok_or_else(|| unauthorised("none sent"))?)
		.ok_or_else(|| unauthorised("not 0x and the hex digits of a SealedReadAuth"))?;
	let signer = verified_signer(&auth.signer, &auth.signature, &auth.read.signing_payload())
		.ok_or_else(|| unauthorised("the signature does not hold"))?;
	let read = &auth.read;
	policy.allows_read(read, &signer)?;
	// The update the chain names must be the one its participant uploaded
	// here: a digest copied into another account's update opens nothing.
	if !is_owner(root, &read.model, &read.participant) {
		return Err((403, format!("{} did not upload model {:?} here", read.participant, read.model)));
	}
	let manifest_file = root.join("models").join(hex(&read.model));
	let not_found = || (404, "not found".to_string());
	let plain = if kind == "models" {
		if *digest != read.model {
			return Err((403, format!("the read is for model {:?}", read.model)));
		}
		std::fs::read(&manifest_file).map_err(|_| not_found())?
	} else {
		let manifest = std::fs::read(&manifest_file).map_err(|_| not_found())?;
		let manifest = StoredManifest::decode(&mut &manifest[..]).map_err(|_| not_found())?;
		if !manifest.chunks.contains(digest) {
			return Err((403, format!("the chunk is not part of model {:?}", read.model)));
		}
		std::fs::read(root.join("chunks").join(hex(digest))).map_err(|_| not_found())?
	};
	let reader = medchain_umbral::public_key(&read.reader).map_err(|_| (400, "the reader key is not a key".to_string()))?;
	let (capsule, ciphertext) = medchain_umbral::encrypt(&mut rand::rngs::OsRng, &reader, &plain)
		.map_err(|_| (500, "encryption failed".to_string()))?;
	Ok(SealedAnswer { capsule, ciphertext }.encode())
}

fn parse_digest(name: &str) -> Option<H256> {
	let digits = name.strip_prefix("0x")?;
	if digits.len() != 64 {
		return None;
	}
	let mut out = [0u8; 32];
	for (i, byte) in out.iter_mut().enumerate() {
		*byte = u8::from_str_radix(digits.get(2 * i..2 * i + 2)?, 16).ok()?;
	}
	Some(H256(out))
}

/// Writes `bytes` to `file` through a temporary file, so readers never see
/// half a chunk.
fn write_atomically(file: &PathBuf, bytes: &[u8]) -> Result<(), String> {
	if file.exists() {
		return Ok(());
	}
	let tmp = file.with_extension(format!("tmp-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
	std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, file)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
	use super::*;
	use std::io::{Read, Write};

	/// A committee of the given accounts: allows their reads of any model.
	struct Committee(Vec<AccountId>);

	/// The committee reads; its members are also the consortium, who may
	/// upload.
	impl AccessPolicy for Committee {
		fn allows_read(&self, _read: &SealedRead<AccountId>, signer: &AccountId) -> Result<(), Refusal> {
			self.allows_upload(signer)
		}

		fn allows_upload(&self, signer: &AccountId) -> Result<(), Refusal> {
			if self.0.contains(signer) {
				Ok(())
			} else {
				Err((403, format!("{signer} is not on the committee")))
			}
		}
	}

	fn alice() -> sr25519::Pair {
		sr25519::Pair::from_string("//Alice", None).unwrap()
	}

	/// A store on a free port serving a fresh directory within `limits`;
	/// Alice is the committee.
	fn start_store_with(limits: Limits) -> (String, tempdir::Dir) {
		let dir = tempdir::Dir::new();
		let committee = Arc::new(Committee(vec![AccountId::from(alice().public())]));
		let addr = runtime().block_on(start("127.0.0.1:0", &dir.0, limits, committee)).unwrap();
		(format!("http://{addr}"), dir)
	}

	/// A one-time reader key and `signer`'s signed read of `model` (as
	/// Alice's update) with it.
	fn signed_read(signer: &sr25519::Pair, model: &ModelRef) -> (SealedReadAuth<AccountId>, SealedReader) {
		let reader = SealedReader::from_seed(&rand::random()).unwrap();
		let read = SealedRead {
			at: H256::repeat_byte(1),
			task: 0,
			round: 0,
			participant: AccountId::from(alice().public()),
			model: model.digest,
			reader: reader.public(),
		};
		let signature = signer.sign(&read.signing_payload()).0.to_vec();
		(SealedReadAuth { signer: signer.public().0.to_vec(), signature, read }, reader)
	}

	#[test]
	fn an_upload_without_a_valid_signature_is_refused_with_401_and_not_stored() {
		let (url, dir) = start_store();
		let params: Vec<Fixed> = vec![1, 2, 3];
		let digest = chunk_digest(&params);
		let body = chunk_bytes(&params);
		let stored = || dir.0.join("chunks").join(hex(&digest)).exists();
		let send = |header: Option<&str>| request(Method::PUT, &chunk_url(&url, &digest), &body, header.map(|h| (STORE_UPLOAD_HEADER, h)));
		assert_eq!(send(None).unwrap().0, 401);
		assert_eq!(send(Some("0xzz")).unwrap().0, 401);
		// Alice's signature for another name.
		let other = upload_header(&chunk_digest(&[9]), false, &alice());
		assert_eq!(send(Some(&other)).unwrap().0, 401);
		// Alice's key with a signature that is not hers over this name.
		let mut forged: UploadAuth = signed_header(upload_header(&digest, false, &alice()).as_bytes()).unwrap();
		forged.signature[0] ^= 1;
		assert_eq!(send(Some(&paths::hex_bytes(&forged.encode()))).unwrap().0, 401);
		assert!(!stored());
		// Signed by her, it is stored; the same request again changes nothing.
		// Alice's upload to the sealed paths, replayed to the public ones.
		let sealed = upload_header(&digest, true, &alice());
		assert_eq!(send(Some(&sealed)).unwrap().0, 401);
		assert!(!stored());
		let signed = upload_header(&digest, false, &alice());
		assert_eq!(send(Some(&signed)).unwrap().0, 201);
		assert_eq!(send(Some(&signed)).unwrap().0, 201);
		assert_eq!(get(&chunk_url(&url, &digest)).unwrap(), body);
	}

	#[test]
	fn an_upload_signed_by_someone_outside_the_consortium_is_refused_with_403() {
		let (url, dir) = start_store();
		let eve = sr25519::Pair::from_string("//Eve", None).unwrap();
		let err = upload(&url, &[1, 2, 3], Visibility::Public, &eve).unwrap_err();
		assert!(err.contains("HTTP 403"), "{err}");
		let err = upload(&url, &[1, 2, 3], Visibility::Sealed, &eve).unwrap_err();
		assert!(err.contains("HTTP 403"), "{err}");
		assert!(!dir.0.join("chunks").join(hex(&chunk_digest(&[1, 2, 3]))).exists());
		assert!(!dir.0.join("sealed/chunks").join(hex(&chunk_digest(&[1, 2, 3]))).exists());
	}

	#[test]
	fn a_sealed_update_is_never_served_on_the_plain_paths() {
		let (url, _dir) = start_store();
		let params: Vec<Fixed> = (0..100).collect();
		let r = upload(&url, &params, Visibility::Sealed, &alice()).unwrap();
		assert!(get(&manifest_url(&url, &r.digest)).unwrap_err().contains("HTTP 404"));
		assert!(get(&chunk_url(&url, &chunk_digest(&params))).unwrap_err().contains("HTTP 404"));
		assert!(download(&r).unwrap_err().contains("HTTP 404"));
		// A public model is not served on the sealed paths either.
		let public = upload(&url, &[1, 2, 3], Visibility::Public, &alice()).unwrap();
		let (auth, reader) = signed_read(&alice(), &public);
		let err = download_sealed(&public, &auth, &reader).unwrap_err();
		assert!(err.contains("HTTP 403"), "{err}");
	}

	#[test]
	fn a_committee_member_reads_a_sealed_update_encrypted_to_its_own_key() {
		let (url, _dir) = start_store();
		let params: Vec<Fixed> = (0..(STORE_CHUNK as i64 + 5)).map(|i| i * 3 - 1).collect();
		let r = upload(&url, &params, Visibility::Sealed, &alice()).unwrap();
		let (auth, reader) = signed_read(&alice(), &r);
		assert_eq!(download_sealed(&r, &auth, &reader).unwrap(), params);
		// On the wire, the chunk is ciphertext: a replayed read gives its
		// replayer bytes it cannot open.
		let header = paths::sealed_read_header(&auth);
		let first = &params[..STORE_CHUNK as usize];
		let answer = get_with(&sealed_chunk_url(&url, &chunk_digest(first)), Some(&header)).unwrap();
		let plain = chunk_bytes(first);
		assert!(!answer.windows(64).any(|w| plain.windows(64).next() == Some(w)));
		let eavesdropper = SealedReader::from_seed(&[7; 32]).unwrap();
		assert!(eavesdropper.open(&answer).is_err());
		assert_eq!(reader.open(&answer).unwrap(), plain);
	}

	#[test]
	fn a_sealed_read_without_a_valid_signature_is_refused_with_401() {
		let (url, _dir) = start_store();
		let r = upload(&url, &[1, 2, 3, 4], Visibility::Sealed, &alice()).unwrap();
		let manifest = sealed_manifest_url(&url, &r.digest);
		assert!(get(&manifest).unwrap_err().contains("HTTP 401"));
		assert!(get_with(&manifest, Some("0xzz")).unwrap_err().contains("HTTP 401"));
		assert!(get_with(&manifest, Some("0x00")).unwrap_err().contains("HTTP 401"));
		// Alice's signature over another read (another one-time key).
		let (mut auth, _) = signed_read(&alice(), &r);
		auth.read.reader = SealedReader::from_seed(&[7; 32]).unwrap().public();
		let err = get_with(&manifest, Some(&paths::sealed_read_header(&auth))).unwrap_err();
		assert!(err.contains("HTTP 401"), "{err}");
	}

	#[test]
	fn a_signed_read_by_someone_off_the_committee_is_refused_with_403() {
		let (url, _dir) = start_store();
		let r = upload(&url, &[1, 2, 3, 4], Visibility::Sealed, &alice()).unwrap();
		let eve = sr25519::Pair::from_string("//Eve", None).unwrap();
		let (auth, reader) = signed_read(&eve, &r);
		let err = download_sealed(&r, &auth, &reader).unwrap_err();
		assert!(err.contains("HTTP 403"), "{err}");
	}

	#[test]
	fn a_digest_copied_into_another_accounts_update_opens_nothing() {
		// Alice uploaded the update; a committee member's read that names
		// another participant for its digest (the digest is public on chain)
		// is refused.
		let (url, _dir) = start_store();
		let r = upload(&url, &[1, 2, 3, 4], Visibility::Sealed, &alice()).unwrap();
		let (mut auth, reader) = signed_read(&alice(), &r);
		auth.read.participant = AccountId::from([4; 32]);
		auth.signature = alice().sign(&auth.read.signing_payload()).0.to_vec();
		let err = download_sealed(&r, &auth, &reader).unwrap_err();
		assert!(err.contains("HTTP 403"), "{err}");
	}

	#[test]
	fn a_read_of_one_update_cannot_fetch_another_updates_chunks() {
		let (url, _dir) = start_store();
		let mine = upload(&url, &[1, 2, 3, 4], Visibility::Sealed, &alice()).unwrap();
		let theirs: Vec<Fixed> = vec![9, 9, 9, 9];
		upload(&url, &theirs, Visibility::Sealed, &alice()).unwrap();
		let (auth, _) = signed_read(&alice(), &mine);
		let header = paths::sealed_read_header(&auth);
		let err = get_with(&sealed_chunk_url(&url, &chunk_digest(&theirs)), Some(&header)).unwrap_err();
		assert!(err.contains("HTTP 403"), "{err}");
		let other_manifest = sealed_manifest_url(&url, &stored_manifest_digest(&theirs));
		assert!(get_with(&other_manifest, Some(&header)).unwrap_err().contains("HTTP 403"));
	}

	fn stored_manifest_digest(params: &[Fixed]) -> H256 {
		pallet_fl_task::stored_model_digest(params)
	}

	fn start_store() -> (String, tempdir::Dir) {
		start_store_with(Limits::default())
	}

	mod tempdir {
		pub struct Dir(pub std::path::PathBuf);
		impl Dir {
			pub fn new() -> Self {
				let p = std::env::temp_dir().join(format!(
					"medchain-store-test-{}-{:?}",
					std::process::id(),
					std::time::SystemTime::now()
				));
				std::fs::create_dir_all(&p).unwrap();
				Dir(p)
			}
		}
		impl Drop for Dir {
			fn drop(&mut self) {
				let _ = std::fs::remove_dir_all(&self.0);
			}
		}
	}

	#[test]
	fn upload_download_round_trip_across_chunks() {
		let (url, _dir) = start_store();
		let params: Vec<Fixed> = (0..(2 * STORE_CHUNK as i64 + 3)).map(|i| i * 31 - 7).collect();
		let r = upload(&url, &params, Visibility::Public, &alice()).unwrap();
		assert_eq!(r.params as usize, params.len());
		assert_eq!(r.digest, pallet_fl_task::stored_model_digest(&params));
		assert_eq!(download(&r).unwrap(), params);
	}

	#[test]
	fn a_store_refuses_what_does_not_match_its_name_and_readers_check_digests() {
		let (url, dir) = start_store();
		let chunk = chunk_bytes(&[1, 2, 3]);
		let wrong = chunk_digest(&[1, 2, 4]);
		assert!(put(&chunk_url(&url, &wrong), &wrong, &chunk, false, &alice()).unwrap_err().contains("HTTP 422"));
		assert!(put(&format!("{url}/chunks/0x12"), &wrong, &chunk, false, &alice()).unwrap_err().contains("HTTP 400"));
		assert!(get(&format!("{url}/other/x")).unwrap_err().contains("HTTP 404"));
		assert_eq!(get(&format!("{url}/health")).unwrap(), b"ok");
		// A chunk altered on the store's disk is caught by the reader.
		let r = upload(&url, &[5, 6, 7], Visibility::Public, &alice()).unwrap();
		let digest = chunk_digest(&[5, 6, 7]);
		std::fs::write(dir.0.join("chunks").join(hex(&digest)), chunk_bytes(&[5, 6, 8])).unwrap();
		assert!(download(&r).unwrap_err().contains("does not match"));
		// A reference whose digest the store does not hold.
		let missing = ModelRef { digest: H256::repeat_byte(9), ..r };
		assert!(download(&missing).unwrap_err().contains("HTTP 404"));
	}

	#[test]
	fn an_oversized_upload_is_refused_with_413_and_not_stored() {
		let (url, dir) = start_store_with(Limits { max_body: 1024, ..Limits::default() });
		let params: Vec<Fixed> = (0..200).collect();
		let digest = chunk_digest(&params);
		let err = put(&chunk_url(&url, &digest), &digest, &chunk_bytes(&params), false, &alice()).unwrap_err();
		assert!(err.contains("HTTP 413"), "{err}");
		assert!(!dir.0.join("chunks").join(hex(&digest)).exists());
		// Within the limit the same store takes it.
		let small: Vec<Fixed> = (0..100).collect();
		put(&chunk_url(&url, &chunk_digest(&small)), &chunk_digest(&small), &chunk_bytes(&small), false, &alice()).unwrap();
	}

	/// Sends `raw` and waits for the store to close the connection (the
	/// socket gives up after 10 s, which fails the caller's `expect`).
	fn stall(url: &str, raw: &[u8]) -> std::io::Result<String> {
		let mut stream = std::net::TcpStream::connect(url.trim_start_matches("http://"))?;
		stream.set_read_timeout(Some(Duration::from_secs(10)))?;
		stream.write_all(raw)?;
		let mut answer = Vec::new();
		stream.read_to_end(&mut answer)?;
		Ok(String::from_utf8_lossy(&answer).into_owned())
	}

	#[test]
	fn slow_clients_are_cut_off() {
		let limits = Limits {
			connections: ConnectionLimits {
				header_timeout: Duration::from_secs(1),
				connection_timeout: Duration::from_secs(2),
				..ConnectionLimits::default()
			},
			..Limits::default()
		};
		let (url, _dir) = start_store_with(limits);
		// Headers never finished.
		let answer = stall(&url, b"PUT /chunks/0x00 HTTP/1.1\r\nHost: s\r\n").expect("the store hung up");
		assert!(!answer.contains("201"), "{answer}");
		// A body promised and never sent.
		let answer = stall(&url, b"PUT /chunks/0x00 HTTP/1.1\r\nHost: s\r\nContent-Length: 800\r\n\r\n12345678")
			.expect("the store hung up");
		assert!(!answer.contains("201"), "{answer}");
	}

	#[test]
	fn the_client_speaks_https() {
		// Nothing listens there: the client tries a TLS connection and fails
		// to connect, rather than refusing the scheme.
		let err = get("https://127.0.0.1:9/health").unwrap_err();
		assert!(err.contains("127.0.0.1:9"), "{err}");
		assert!(!err.contains("http:// only"), "{err}");
		let err = get("ftp://127.0.0.1:9/health").unwrap_err();
		assert!(!err.is_empty());
	}
}
