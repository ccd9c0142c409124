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
//! (`422`), so a store only ever holds what its names promise. Plain HTTP
//! only: put a TLS-terminating proxy in front of a store reached across
//! sites (offchain workers speak `https://` too).

use codec::{Decode, Encode};
use pallet_fl_task::{
	chunk_bytes, chunk_digest, chunk_from_bytes,
	store::{self as paths, hex},
	Fixed, ModelRef, StoredManifest, STORE_CHUNK,
};
use sp_core::H256;
use std::{
	io::{BufRead, BufReader, Read, Write},
	net::{TcpListener, TcpStream, ToSocketAddrs},
	path::{Path, PathBuf},
	time::Duration,
};

/// Largest body a store accepts: a manifest of the largest model, or a chunk.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// An HTTP message head and body, as read off a connection.
struct Message {
	/// The request line or status line.
	start: String,
	body: Vec<u8>,
}

/// Reads one HTTP/1.1 message: start line, headers, and a body framed by
/// `Content-Length` or chunked transfer coding (or, for a response, the end
/// of the connection).
fn read_message(reader: &mut impl BufRead, is_response: bool) -> Result<Message, String> {
	let mut start = String::new();
	reader.read_line(&mut start).map_err(|e| e.to_string())?;
	if start.is_empty() {
		return Err("connection closed".into());
	}
	let mut length = None;
	let mut chunked = false;
	loop {
		let mut line = String::new();
		reader.read_line(&mut line).map_err(|e| e.to_string())?;
		let line = line.trim_end();
		if line.is_empty() {
			break;
		}
		let Some((name, value)) = line.split_once(':') else { continue };
		let value = value.trim();
		match name.trim().to_ascii_lowercase().as_str() {
			"content-length" => length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?),
			"transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
			_ => {},
		}
	}
	let mut body = Vec::new();
	if chunked {
		loop {
			let mut size = String::new();
			reader.read_line(&mut size).map_err(|e| e.to_string())?;
			let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
				.map_err(|_| "bad chunk size")?;
			if body.len() + size > MAX_BODY {
				return Err("body too large".into());
			}
			let at = body.len();
			body.resize(at + size, 0);
			reader.read_exact(&mut body[at..]).map_err(|e| e.to_string())?;
			let mut crlf = String::new();
			reader.read_line(&mut crlf).map_err(|e| e.to_string())?;
			if size == 0 {
				break;
			}
		}
	} else if let Some(n) = length {
		if n > MAX_BODY {
			return Err("body too large".into());
		}
		body.resize(n, 0);
		reader.read_exact(&mut body).map_err(|e| e.to_string())?;
	} else if is_response {
		reader.take(MAX_BODY as u64).read_to_end(&mut body).map_err(|e| e.to_string())?;
	}
	Ok(Message { start: start.trim_end().to_string(), body })
}

/// Splits `http://host:port/base` into the address and the path prefix.
fn split_url(url: &str) -> Result<(String, String), String> {
	let rest = url
		.strip_prefix("http://")
		.ok_or_else(|| format!("{url}: this client reaches stores over http:// only"))?;
	let (host, path) = match rest.find('/') {
		Some(i) => (&rest[..i], &rest[i..]),
		None => (rest, ""),
	};
	let host = if host.contains(':') { host.to_string() } else { format!("{host}:80") };
	Ok((host, path.trim_end_matches('/').to_string()))
}

/// Sends one request and returns the status code and body.
fn request(method: &str, url: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
	let (host, path) = split_url(url)?;
	let addr = host.to_socket_addrs().map_err(|e| format!("{host}: {e}"))?.next().ok_or("no address")?;
	let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| format!("{url}: {e}"))?;
	stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
	let head = format!(
		"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
		body.len()
	);
	stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body)).map_err(|e| format!("{url}: {e}"))?;
	let response = read_message(&mut BufReader::new(stream), true).map_err(|e| format!("{url}: {e}"))?;
	let code = response
		.start
		.split_whitespace()
		.nth(1)
		.and_then(|c| c.parse().ok())
		.ok_or_else(|| format!("{url}: bad status line `{}`", response.start))?;
	Ok((code, response.body))
}

fn get(url: &str) -> Result<Vec<u8>, String> {
	match request("GET", url, &[])? {
		(200, body) => Ok(body),
		(code, _) => Err(format!("GET {url}: HTTP {code}")),
	}
}

fn put(url: &str, body: &[u8]) -> Result<(), String> {
	match request("PUT", url, body)? {
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
	for kind in ["models", "chunks"] {
		std::fs::create_dir_all(dir.join(kind)).map_err(|e| format!("{}: {e}", dir.display()))?;
	}
	let listener = TcpListener::bind(listen).map_err(|e| format!("{listen}: {e}"))?;
	let addr = listener.local_addr().map_err(|e| e.to_string())?;
	println!("{}", serde_json::json!({ "store": format!("http://{addr}"), "dir": dir.display().to_string() }));
	for stream in listener.incoming() {
		let Ok(stream) = stream else { continue };
		let dir = dir.to_path_buf();
		std::thread::spawn(move || {
			let _ = handle(stream, &dir);
		});
	}
	Ok(())
}

/// Answers the requests of one connection.
fn handle(stream: TcpStream, dir: &Path) -> Result<(), String> {
	stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
	let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
	let mut reader = BufReader::new(stream);
	loop {
		let request = match read_message(&mut reader, false) {
			Ok(r) => r,
			Err(_) => return Ok(()),
		};
		let (code, body) = respond(&request, dir);
		let reason = match code {
			200 => "OK",
			201 => "Created",
			400 => "Bad Request",
			404 => "Not Found",
			405 => "Method Not Allowed",
			422 => "Unprocessable Content",
			_ => "Error",
		};
		let head = format!(
			"HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
			body.len()
		);
		writer.write_all(head.as_bytes()).and_then(|_| writer.write_all(&body)).map_err(|e| e.to_string())?;
	}
}

/// The status and body answering `request`.
fn respond(request: &Message, dir: &Path) -> (u16, Vec<u8>) {
	let mut parts = request.start.split_whitespace();
	let (Some(method), Some(path)) = (parts.next(), parts.next()) else { return (400, b"bad request".to_vec()) };
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
	match method {
		"GET" => match std::fs::read(&file) {
			Ok(bytes) => (200, bytes),
			Err(_) => (404, b"not found".to_vec()),
		},
		"PUT" | "POST" => {
			let valid = match kind {
				"chunks" => request.body.len() % 8 == 0,
				_ => StoredManifest::decode(&mut &request.body[..]).is_ok(),
			};
			if !valid || <sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(&request.body) != digest {
				return (422, b"the body does not match the digest in the path".to_vec());
			}
			match write_atomically(&file, &request.body) {
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

	fn start_store() -> (String, tempdir::Dir) {
		let dir = tempdir::Dir::new();
		let listener = TcpListener::bind("127.0.0.1:0").unwrap();
		let url = format!("http://{}", listener.local_addr().unwrap());
		let path = dir.0.clone();
		std::thread::spawn(move || {
			for stream in listener.incoming().flatten() {
				let path = path.clone();
				std::thread::spawn(move || handle(stream, &path));
			}
		});
		for kind in ["models", "chunks"] {
			std::fs::create_dir_all(dir.0.join(kind)).unwrap();
		}
		(url, dir)
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
	fn chunked_request_bodies_are_read() {
		let raw = b"PUT /chunks/0x00 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
		let m = read_message(&mut &raw[..], false).unwrap();
		assert_eq!(m.body, b"abcde");
		assert!(split_url("https://x").is_err());
		assert_eq!(split_url("http://h:1/a/").unwrap(), ("h:1".into(), "/a".into()));
	}
}
