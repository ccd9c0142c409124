//! A minimal JSON-RPC client for a Medchain node (HTTP on the node's RPC
//! port) that reads storage and submits signed extrinsics built from the
//! runtime's own types. Used by `medchain-fl-client` and `medchain-record`.

pub mod cli;

use codec::{Decode, Encode};
use medchain_runtime::{Runtime, RuntimeCall, TxExtension, UncheckedExtrinsic};
use serde_json::{json, Value};
use sp_core::{crypto::Ss58Codec, sr25519, Pair, H256};
use sp_runtime::{generic::Era, AccountId32, MultiAddress, MultiSignature};
use std::{
	io::{Read, Write},
	net::TcpStream,
	time::Duration,
};

/// Errors talking to the node.
#[derive(Debug)]
pub enum RpcError {
	/// The node could not be reached or answered garbage.
	Transport(String),
	/// The node answered with a JSON-RPC error.
	Node(String),
	/// A value could not be decoded.
	Decode(String),
}

impl std::fmt::Display for RpcError {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		match self {
			RpcError::Transport(e) => write!(f, "cannot reach the node: {e}"),
			RpcError::Node(e) => write!(f, "the node refused: {e}"),
			RpcError::Decode(e) => write!(f, "cannot decode: {e}"),
		}
	}
}

/// A node endpoint, `host:port`.
pub struct Node {
	addr: String,
}

impl Node {
	/// Parses `http://host:port` or `ws://host:port` (the node serves both on
	/// one port) or `host:port`.
	pub fn new(url: &str) -> Self {
		let addr = url
			.trim_start_matches("http://")
			.trim_start_matches("ws://")
			.trim_end_matches('/')
			.to_string();
		Node { addr }
	}

	/// Calls `method` with `params`.
	pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
		let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
		let mut stream =
			TcpStream::connect(&self.addr).map_err(|e| RpcError::Transport(format!("{}: {e}", self.addr)))?;
		stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
		let request = format!(
			"POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
			self.addr,
			body.len(),
			body
		);
		stream.write_all(request.as_bytes()).map_err(|e| RpcError::Transport(e.to_string()))?;
		let mut response = Vec::new();
		stream.read_to_end(&mut response).map_err(|e| RpcError::Transport(e.to_string()))?;
		let text = String::from_utf8_lossy(&response);
		let (head, body) =
			text.split_once("\r\n\r\n").ok_or_else(|| RpcError::Transport("no HTTP body".into()))?;
		let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
			dechunk(body)
		} else {
			body.to_string()
		};
		let value: Value = serde_json::from_str(&body).map_err(|e| RpcError::Transport(format!("{e}: {body}")))?;
		if let Some(err) = value.get("error") {
			return Err(RpcError::Node(err.to_string()));
		}
		Ok(value.get("result").cloned().unwrap_or(Value::Null))
	}

	/// Reads and decodes a storage value; `None` if absent.
	pub fn storage<T: Decode>(&self, key: &[u8]) -> Result<Option<T>, RpcError> {
		let v = self.call("state_getStorage", json!([hex(key)]))?;
		match v.as_str() {
			None => Ok(None),
			Some(h) => {
				let bytes = unhex(h)?;
				T::decode(&mut &bytes[..]).map(Some).map_err(|e| RpcError::Decode(e.to_string()))
			},
		}
	}

	/// Reads and decodes a storage value at block `at` (best block if `None`).
	pub fn storage_at<T: Decode>(&self, key: &[u8], at: Option<&str>) -> Result<Option<T>, RpcError> {
		let v = self.call("state_getStorage", json!([hex(key), at]))?;
		match v.as_str() {
			None => Ok(None),
			Some(h) => {
				let bytes = unhex(h)?;
				T::decode(&mut &bytes[..]).map(Some).map_err(|e| RpcError::Decode(e.to_string()))
			},
		}
	}

	/// Calls runtime API `method` (for example
	/// `ProxyReencryptApi_readable_under`) with SCALE-encoded `args` at the
	/// best block and decodes its answer.
	pub fn runtime_call<R: Decode>(&self, method: &str, args: &impl Encode) -> Result<R, RpcError> {
		let v = self.call("state_call", json!([method, hex(&args.encode())]))?;
		let bytes = unhex(v.as_str().ok_or_else(|| RpcError::Decode(format!("{method}: no result")))?)?;
		R::decode(&mut &bytes[..]).map_err(|e| RpcError::Decode(format!("{method}: {e}")))
	}

	/// Every storage key under `prefix` at block `at`.
	pub fn keys(&self, prefix: &[u8], at: Option<&str>) -> Result<Vec<Vec<u8>>, RpcError> {
		let mut out = Vec::new();
		let mut start: Option<String> = None;
		loop {
			let page = self.call("state_getKeysPaged", json!([hex(prefix), 1000, start, at]))?;
			let page = page.as_array().ok_or_else(|| RpcError::Decode("keys".into()))?;
			for k in page {
				out.push(unhex(k.as_str().unwrap_or_default())?);
			}
			if page.len() < 1000 {
				return Ok(out);
			}
			start = page.last().and_then(|k| k.as_str()).map(str::to_string);
		}
	}

	/// Signs `call` as `signer` and submits it to the pool; returns the nonce
	/// it used (see [`Node::included`]).
	pub fn submit(&self, signer: &sr25519::Pair, call: RuntimeCall) -> Result<u32, RpcError> {
		self.submit_with_hash(signer, call).map(|(nonce, _)| nonce)
	}

	/// As [`Node::submit`], also returning the transaction's hash.
	pub fn submit_with_hash(&self, signer: &sr25519::Pair, call: RuntimeCall) -> Result<(u32, H256), RpcError> {
		let account = AccountId32::from(signer.public());
		let genesis: H256 = parse_hash(&self.call("chain_getBlockHash", json!([0]))?)?;
		let version = self.call("state_getRuntimeVersion", json!([]))?;
		let spec = version["specVersion"].as_u64().ok_or_else(|| RpcError::Decode("specVersion".into()))? as u32;
		let tx = version["transactionVersion"].as_u64().ok_or_else(|| RpcError::Decode("txVersion".into()))? as u32;
		let nonce = self
			.call("system_accountNextIndex", json!([account.to_ss58check()]))?
			.as_u64()
			.ok_or_else(|| RpcError::Decode("nonce".into()))? as u32;
		let ext: TxExtension = cumulus_pallet_weight_reclaim::StorageWeightReclaim::new((
			frame_system::CheckNonZeroSender::<Runtime>::new(),
			frame_system::CheckSpecVersion::<Runtime>::new(),
			frame_system::CheckTxVersion::<Runtime>::new(),
			frame_system::CheckGenesis::<Runtime>::new(),
			frame_system::CheckEra::<Runtime>::from(Era::Immortal),
			frame_system::CheckNonce::<Runtime>::from(nonce),
			frame_system::CheckWeight::<Runtime>::new(),
			pallet_transaction_payment::ChargeTransactionPayment::<Runtime>::from(0),
			frame_metadata_hash_extension::CheckMetadataHash::<Runtime>::new(false),
		));
		let implicit = ((), spec, tx, genesis, genesis, (), (), (), None::<[u8; 32]>);
		let payload = sp_runtime::generic::SignedPayload::from_raw(call, ext, implicit);
		let signature = payload.using_encoded(|bytes| signer.sign(bytes));
		let (call, ext, _) = payload.deconstruct();
		let xt = UncheckedExtrinsic::new_signed(call, MultiAddress::Id(account), MultiSignature::Sr25519(signature), ext);
		let hash = parse_hash(&self.call("author_submitExtrinsic", json!([hex(&xt.encode())]))?)?;
		Ok((nonce, hash))
	}

	/// Signs and submits `call` like [`Node::submit`] and waits until that
	/// very transaction is in a block: returns whether it succeeded. A
	/// transaction the pool dropped (say, because another signer of the same
	/// account took its nonce) is an error, not a success; so is a timeout.
	pub fn submit_and_watch(
		&self,
		signer: &sr25519::Pair,
		call: RuntimeCall,
		timeout: Duration,
	) -> Result<bool, RpcError> {
		let start = self.best_number()?;
		let (nonce, hash) = self.submit_with_hash(signer, call)?;
		self.watch(&hash, start, timeout, Some((&AccountId32::from(signer.public()), nonce)))
	}

	/// The best block's number.
	pub fn best_number(&self) -> Result<u32, RpcError> {
		let header = self.call("chain_getHeader", json!([]))?;
		let number = header["number"].as_str().ok_or_else(|| RpcError::Decode("block number".into()))?;
		u32::from_str_radix(number.trim_start_matches("0x"), 16).map_err(|e| RpcError::Decode(e.to_string()))
	}

	/// Waits for the extrinsic with hash `xt_hash` in the blocks after
	/// `start`; returns whether it succeeded (`System.ExtrinsicSuccess`).
	/// With `sender` (its account and nonce), a transaction whose nonce was
	/// used by another one is reported as dropped at once.
	pub fn watch(
		&self,
		xt_hash: &H256,
		start: u32,
		timeout: Duration,
		sender: Option<(&AccountId32, u32)>,
	) -> Result<bool, RpcError> {
		let deadline = std::time::Instant::now() + timeout;
		let mut next = start.saturating_add(1);
		loop {
			// Read before scanning, so a nonce used up is seen in the scan.
			let nonce_used = match sender {
				Some((who, nonce)) => self.included(who, nonce)?,
				None => false,
			};
			while next <= self.best_number()? {
				let hash = self.call("chain_getBlockHash", json!([next]))?;
				let block = self.call("chain_getBlock", json!([hash]))?;
				let xts = block["block"]["extrinsics"].as_array().cloned().unwrap_or_default();
				for (index, xt) in xts.iter().enumerate() {
					let bytes = unhex(xt.as_str().unwrap_or_default())?;
					if H256(sp_crypto_hashing::blake2_256(&bytes)) != *xt_hash {
						continue;
					}
					let events: Vec<frame_system::EventRecord<medchain_runtime::RuntimeEvent, H256>> = self
						.storage_at(&events_key(), hash.as_str())?
						.unwrap_or_default();
					return Ok(events.iter().any(|e| {
						e.phase == frame_system::Phase::ApplyExtrinsic(index as u32) &&
							matches!(
								e.event,
								medchain_runtime::RuntimeEvent::System(frame_system::Event::ExtrinsicSuccess { .. })
							)
					}));
				}
				next += 1;
			}
			if nonce_used {
				return Err(RpcError::Node("the transaction was dropped: another one used its nonce".into()));
			}
			if std::time::Instant::now() > deadline {
				return Err(RpcError::Node("the transaction did not reach a block in time".into()));
			}
			std::thread::sleep(Duration::from_millis(200));
		}
	}

	/// Whether a transaction `who` sent with `nonce` is in a block (the
	/// account's on-chain nonce moved past it), whatever its outcome.
	pub fn included(&self, who: &AccountId32, nonce: u32) -> Result<bool, RpcError> {
		let key = frame_system::Account::<Runtime>::hashed_key_for(who);
		// `AccountInfo` starts with the nonce; the rest is not needed here.
		let on_chain: Option<u32> = self.storage(&key)?;
		Ok(on_chain.is_some_and(|n| n > nonce))
	}
}

fn dechunk(body: &str) -> String {
	let mut out = String::new();
	let mut rest = body;
	while let Some((size, tail)) = rest.split_once("\r\n") {
		let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
		if n == 0 || tail.len() < n {
			break;
		}
		out.push_str(&tail[..n]);
		rest = tail[n..].trim_start_matches("\r\n");
	}
	out
}

/// `0x`-prefixed lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
	let mut s = String::with_capacity(2 + bytes.len() * 2);
	s.push_str("0x");
	for b in bytes {
		s.push_str(&format!("{b:02x}"));
	}
	s
}

/// Parses `0x`-prefixed hex.
pub fn unhex(s: &str) -> Result<Vec<u8>, RpcError> {
	let s = s.trim_start_matches("0x");
	(0..s.len())
		.step_by(2)
		.map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
		.collect::<Result<_, _>>()
		.map_err(|e| RpcError::Decode(e.to_string()))
}

/// Storage key of `System::Events`.
fn events_key() -> Vec<u8> {
	[sp_crypto_hashing::twox_128(b"System"), sp_crypto_hashing::twox_128(b"Events")].concat()
}

fn parse_hash(v: &Value) -> Result<H256, RpcError> {
	let bytes = unhex(v.as_str().ok_or_else(|| RpcError::Decode("hash".into()))?)?;
	if bytes.len() != 32 {
		return Err(RpcError::Decode("hash length".into()));
	}
	Ok(H256::from_slice(&bytes))
}
