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
use pallet_fl_task::{
	chunk_bytes, chunk_digest, chunk_from_bytes,
	store::{self as paths, hex},
	Fixed, ModelRef, StoredManifest, STORE_CHUNK,
};
use sp_core::H256;
use std::{
	net::SocketAddr,
	path::{Path, PathBuf},
	sync::{Arc, OnceLock},
	time::Duration,
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

/// Sends one request and returns the status code and body.
fn request(method: Method, url: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
	let client = client()?;
	let request = Request::builder()
		.method(method)
		.uri(url)
		.body(Full::new(Bytes::copy_from_slice(body)))
		.map_err(|e| format!("{url}: {e}"))?;
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
	match request(Method::GET, url, &[])? {
		(200, body) => Ok(body),
		(code, _) => Err(format!("GET {url}: HTTP {code}")),
	}
}

fn put(url: &str, body: &[u8]) -> Result<(), String> {
	match request(Method::PUT, url, body)? {
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

/// Uploads a model to the store at `store` (chunks, then the manifest) and
/// returns its reference.
pub fn upload(store: &str, params: &[Fixed]) -> Result<ModelRef, String> {
	let mut chunks = Vec::new();
	for chunk in params.chunks(STORE_CHUNK as usize) {
		let digest = chunk_digest(chunk);
		put(&chunk_url(store, &digest), &chunk_bytes(chunk))?;
		chunks.push(digest);
	}
	let manifest = StoredManifest { params: params.len() as u32, chunks };
	let digest = manifest.digest();
	put(&manifest_url(store, &digest), &manifest.encode())?;
	let store = store.trim_end_matches('/').as_bytes().to_vec().try_into().map_err(|_| "store URL too long")?;
	Ok(ModelRef { digest, params: params.len() as u32, store })
}

/// Downloads a model by reference, checking the manifest and every chunk.
pub fn download(model: &ModelRef) -> Result<Vec<Fixed>, String> {
	let store = String::from_utf8(model.store.to_vec()).map_err(|_| "store URL is not UTF-8")?;
	let bytes = get(&manifest_url(&store, &model.digest))?;
	let manifest = StoredManifest::decode(&mut &bytes[..]).map_err(|e| format!("manifest: {e}"))?;
	if manifest.digest() != model.digest || manifest.params != model.params {
		return Err(format!("{store}: the manifest does not match digest {:?}", model.digest));
	}
	let mut params = Vec::with_capacity(model.params as usize);
	for digest in &manifest.chunks {
		let chunk = chunk_from_bytes(&get(&chunk_url(&store, digest))?).ok_or("chunk of a partial parameter")?;
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

/// Serves a model store from `dir` on `listen` until the process ends.
pub fn serve(listen: &str, dir: &Path) -> Result<(), String> {
	runtime().block_on(async {
		let addr = start(listen, dir, Limits::default()).await?;
		println!("{}", serde_json::json!({ "store": format!("http://{addr}"), "dir": dir.display().to_string() }));
		std::future::pending::<()>().await;
		Ok(())
	})
}

/// Starts a store on `listen` serving `dir` within `limits`; returns the
/// bound address. It serves until the runtime ends.
pub async fn start(listen: &str, dir: &Path, limits: Limits) -> Result<SocketAddr, String> {
	for kind in ["models", "chunks"] {
		std::fs::create_dir_all(dir.join(kind)).map_err(|e| format!("{}: {e}", dir.display()))?;
	}
	let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("{listen}: {e}"))?;
	let addr = listener.local_addr().map_err(|e| e.to_string())?;
	let dir = Arc::new(dir.to_path_buf());
	let max_body = limits.max_body;
	serve::accept(listener, limits.connections, move || {
		let dir = dir.clone();
		hyper::service::service_fn(move |request| {
			let dir = dir.clone();
			async move { Ok::<_, std::convert::Infallible>(handle(request, dir, max_body).await) }
		})
	});
	Ok(addr)
}

/// Answers one request: reads its body (up to `max_body`), then answers
/// from `dir` off the async threads.
async fn handle(request: Request<hyper::body::Incoming>, dir: Arc<PathBuf>, max_body: usize) -> Response<Full<Bytes>> {
	let method = request.method().clone();
	let path = request.uri().path().to_string();
	let (code, body) = match Limited::new(request.into_body(), max_body).collect().await {
		Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
			(413, format!("a body is at most {max_body} bytes").into_bytes())
		},
		Err(_) => (400, b"the body could not be read".to_vec()),
		Ok(body) => {
			let body = body.to_bytes();
			tokio::task::spawn_blocking(move || respond(&method, &path, &body, &dir))
				.await
				.unwrap_or((500, b"the store failed".to_vec()))
		},
	};
	let mut response = Response::new(Full::new(Bytes::from(body)));
	*response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
	response
}

/// The status and body answering `method` on `path` with `body`.
fn respond(method: &Method, path: &str, body: &[u8], dir: &Path) -> (u16, Vec<u8>) {
	if path == "/health" {
		return (200, b"ok".to_vec());
	}
	let Some((kind, name)) = path.trim_start_matches('/').split_once('/') else {
		return (404, b"not found".to_vec());
	};
	if kind != "models" && kind != "chunks" {
		return (404, b"not found".to_vec());
	}
	let Some(digest) = parse_digest(name) else { return (400, b"the name is not 0x and 64 hex digits".to_vec()) };
	let file = dir.join(kind).join(hex(&digest));
	match *method {
		Method::GET => match std::fs::read(&file) {
			Ok(bytes) => (200, bytes),
			Err(_) => (404, b"not found".to_vec()),
		},
		Method::PUT | Method::POST => {
			let valid = match kind {
				"chunks" => body.len() % 8 == 0,
				_ => StoredManifest::decode(&mut &body[..]).is_ok(),
			};
			if !valid || <sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(body) != digest {
				return (422, b"the body does not match the digest in the path".to_vec());
			}
			match write_atomically(&file, body) {
				Ok(()) => (201, Vec::new()),
				Err(e) => (500, e.into_bytes()),
			}
		},
		_ => (405, b"GET or PUT".to_vec()),
	}
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

	/// A store on a free port serving a fresh directory within `limits`.
	fn start_store_with(limits: Limits) -> (String, tempdir::Dir) {
		let dir = tempdir::Dir::new();
		let addr = runtime().block_on(start("127.0.0.1:0", &dir.0, limits)).unwrap();
		(format!("http://{addr}"), dir)
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
		let r = upload(&url, &params).unwrap();
		assert_eq!(r.params as usize, params.len());
		assert_eq!(r.digest, pallet_fl_task::stored_model_digest(&params));
		assert_eq!(download(&r).unwrap(), params);
	}

	#[test]
	fn a_store_refuses_what_does_not_match_its_name_and_readers_check_digests() {
		let (url, dir) = start_store();
		let chunk = chunk_bytes(&[1, 2, 3]);
		let wrong = chunk_digest(&[1, 2, 4]);
		assert!(put(&chunk_url(&url, &wrong), &chunk).unwrap_err().contains("HTTP 422"));
		assert!(put(&format!("{url}/chunks/0x12"), &chunk).unwrap_err().contains("HTTP 400"));
		assert!(get(&format!("{url}/other/x")).unwrap_err().contains("HTTP 404"));
		assert_eq!(get(&format!("{url}/health")).unwrap(), b"ok");
		// A chunk altered on the store's disk is caught by the reader.
		let r = upload(&url, &[5, 6, 7]).unwrap();
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
		let err = put(&chunk_url(&url, &digest), &chunk_bytes(&params)).unwrap_err();
		assert!(err.contains("HTTP 413"), "{err}");
		assert!(!dir.0.join("chunks").join(hex(&digest)).exists());
		// Within the limit the same store takes it.
		let small: Vec<Fixed> = (0..100).collect();
		put(&chunk_url(&url, &chunk_digest(&small)), &chunk_bytes(&small)).unwrap();
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
