//! The institution's record gateway: JSON-RPC 2.0 over HTTP.
//!
//! `ehr_getRecord { record, accessor, purpose, block, signature }` returns the
//! record's ciphertext to `accessor` if
//! 1. `signature` is `accessor`'s sr25519 signature of
//!    `medchain-ehr-get:<record>:<accessor SS58>:<block>` (raw, or wrapped in
//!    `<Bytes>…</Bytes>` as browser wallets sign),
//! 2. `block` is at most [`FRESHNESS`] blocks behind the best block (a
//!    captured request cannot be replayed later),
//! 3. the chain lets `accessor` read the record now: its patient, its
//!    issuing institution, or a grantee with a usable grant covering it
//!    (`ProxyReencryptApi_readable_under`: not revoked, not expired, not
//!    disputed and acknowledged by its threshold of proxies; an
//!    emergency grant only after the glass was broken for this record),
//! 4. the stored ciphertext still matches the digest on chain, and
//! 5. the read is logged on chain first: `log_access` signed by the
//!    gateway's institution, included in a block.
//!
//! Any failed check refuses with a JSON-RPC error and serves nothing.

use medchain_chain_client::{hex, unhex, Node};
use medchain_record_store::RecordStore;
use medchain_runtime::{AccountId, Runtime, RuntimeCall};
use pallet_ehr_index::{AccessPurpose, Records};
use serde_json::{json, Value};
use sp_core::{crypto::Ss58Codec, sr25519, Pair};
use std::{
	io::{BufRead, BufReader, Read, Write},
	net::{TcpListener, TcpStream},
	sync::Arc,
	time::Duration,
};

/// How many blocks old a signed request may be.
pub const FRESHNESS: u32 = 20;

struct Gateway {
	node: Node,
	operator: sr25519::Pair,
	/// Serialises the operator's submissions: each takes the next nonce the
	/// pool reports, so two at once would collide. Waiting for inclusion is
	/// done outside it.
	submitting: std::sync::Mutex<()>,
	store: RecordStore,
	runtime: tokio::runtime::Handle,
}

/// Serves until killed.
pub fn serve(o: &super::ServeArgs, store: RecordStore, runtime: tokio::runtime::Handle) -> Result<(), String> {
	let listen = o.listen.as_str();
	let operator = o.signer.signer()?;
	let gateway = Arc::new(Gateway {
		node: o.node.node(),
		operator,
		submitting: std::sync::Mutex::new(()),
		store,
		runtime,
	});
	let listener = TcpListener::bind(listen).map_err(|e| format!("{listen}: {e}"))?;
	eprintln!("[gateway] serving ehr_getRecord on http://{listen}");
	for stream in listener.incoming() {
		let Ok(stream) = stream else { continue };
		let gateway = gateway.clone();
		std::thread::spawn(move || {
			if let Err(e) = gateway.connection(stream) {
				eprintln!("[gateway] connection error: {e}");
			}
		});
	}
	Ok(())
}

impl Gateway {
	fn connection(&self, stream: TcpStream) -> std::io::Result<()> {
		stream.set_read_timeout(Some(Duration::from_secs(30)))?;
		let mut reader = BufReader::new(stream.try_clone()?);
		let mut length = 0usize;
		let mut line = String::new();
		loop {
			line.clear();
			if reader.read_line(&mut line)? == 0 {
				return Ok(());
			}
			let l = line.trim_end();
			if l.is_empty() {
				break;
			}
			if let Some((k, v)) = l.split_once(':') {
				if k.eq_ignore_ascii_case("content-length") {
					length = v.trim().parse().unwrap_or(0);
				}
			}
		}
		let mut body = vec![0u8; length.min(1 << 20)];
		reader.read_exact(&mut body)?;
		let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
		let id = request.get("id").cloned().unwrap_or(Value::Null);
		let response = match self.dispatch(&request) {
			Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
			Err((code, message)) => {
				eprintln!("[gateway] refused: {message}");
				json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
			},
		};
		let text = response.to_string();
		let mut out = stream;
		write!(
			out,
			"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
			text.len(),
			text
		)
	}

	fn dispatch(&self, request: &Value) -> Result<Value, (i64, String)> {
		match request.get("method").and_then(Value::as_str) {
			Some("ehr_getRecord") => self.get_record(&request["params"]),
			Some(other) => Err((-32601, format!("unknown method `{other}`"))),
			None => Err((-32600, "not a JSON-RPC request".into())),
		}
	}

	fn get_record(&self, p: &Value) -> Result<Value, (i64, String)> {
		let bad = |m: &str| (-32602, m.to_string());
		let refused = |m: String| (1, m);
		let unavailable = |m: String| (2, m);
		let record_id = p["record"].as_u64().ok_or_else(|| bad("`record` must be a number"))?;
		let accessor_text = p["accessor"].as_str().ok_or_else(|| bad("`accessor` must be an SS58 address"))?;
		let accessor = AccountId::from_ss58check(accessor_text).map_err(|_| bad("`accessor` is not an SS58 address"))?;
		let block = p["block"].as_u64().ok_or_else(|| bad("`block` must be a block number"))? as u32;
		let purpose = purpose(p["purpose"].as_str().unwrap_or("PatientView")).ok_or_else(|| bad("unknown `purpose`"))?;
		let signature = unhex(p["signature"].as_str().unwrap_or_default()).map_err(|_| bad("`signature` is not hex"))?;
		let signature =
			sr25519::Signature::try_from(&signature[..]).map_err(|_| bad("`signature` is not 64 bytes"))?;

		// 1. The signature.
		let message = format!("medchain-ehr-get:{record_id}:{accessor_text}:{block}");
		let wrapped = format!("<Bytes>{message}</Bytes>");
		let public = sr25519::Public::from_raw(accessor.clone().into());
		if !sr25519::Pair::verify(&signature, message.as_bytes(), &public) &&
			!sr25519::Pair::verify(&signature, wrapped.as_bytes(), &public)
		{
			return Err(refused("the signature does not prove the accessor's account".into()));
		}
		// 2. Freshness.
		let best = self.best_block().map_err(unavailable)?;
		if block > best || best - block > FRESHNESS {
			return Err(refused(format!("request signed for block {block}, best is {best}: sign a fresh one")));
		}
		// 3. Permission, as the chain says now.
		let record: pallet_ehr_index::Record<Runtime> = self
			.node
			.storage(&Records::<Runtime>::hashed_key_for(record_id))
			.map_err(|e| unavailable(e.to_string()))?
			.ok_or_else(|| refused(format!("record {record_id} is not on chain")))?;
		if accessor != record.patient && accessor != record.issuer {
			let grant: Option<u64> = self
				.node
				.runtime_call("ProxyReencryptApi_readable_under", &(accessor.clone(), record_id))
				.map_err(|e| unavailable(e.to_string()))?;
			if grant.is_none() {
				return Err(refused(format!("{accessor_text} may not read record {record_id}")));
			}
		}
		let pointer = record.pointer.clone().ok_or_else(|| refused(format!("record {record_id} was erased")))?;
		// 4. The content, checked against the chain's digest.
		let ciphertext = self
			.runtime
			.block_on(self.store.get(pointer.object_id, &record.digest.digest))
			.map_err(|e| unavailable(e.to_string()))?;
		// 5. The audit entry, before anything is served.
		self.log_access(record_id, &accessor, purpose).map_err(unavailable)?;
		eprintln!("[gateway] record {record_id} served to {accessor_text} ({purpose:?})");
		Ok(json!({
			"record": record_id,
			"ciphertext": hex(&ciphertext),
			"digest": hex(&record.digest.digest),
		}))
	}

	fn best_block(&self) -> Result<u32, String> {
		let header = self.node.call("chain_getHeader", json!([])).map_err(|e| e.to_string())?;
		let number = header["number"].as_str().ok_or("no block number")?;
		u32::from_str_radix(number.trim_start_matches("0x"), 16).map_err(|e| e.to_string())
	}

	/// Logs the read on chain and waits until this very transaction is in a
	/// block and succeeded. The operator account may also sign elsewhere (its
	/// node's offchain workers): a transaction that lost its nonce to another
	/// is submitted again, up to three times.
	fn log_access(&self, record_id: u64, accessor: &AccountId, purpose: AccessPurpose) -> Result<(), String> {
		for _ in 0..3 {
			let call = RuntimeCall::EhrIndex(pallet_ehr_index::Call::log_access {
				record_id,
				accessor: accessor.clone(),
				purpose,
			});
			let (nonce, hash, start) = {
				let _turn = self.submitting.lock().map_err(|_| "gateway state poisoned".to_string())?;
				let start = self.node.best_number().map_err(|e| e.to_string())?;
				let (nonce, hash) = self.node.submit_with_hash(&self.operator, call).map_err(|e| e.to_string())?;
				(nonce, hash, start)
			};
			let operator = AccountId::from(self.operator.public());
			match self.node.watch(&hash, start, Duration::from_secs(30), Some((&operator, nonce))) {
				Ok(true) => return Ok(()),
				Ok(false) => {
					return Err("the chain refused the access log entry (is the gateway an active institution?)".into())
				},
				Err(e) => eprintln!("[gateway] access log entry not in a block ({e}); submitting again"),
			}
		}
		Err("the access log entry did not reach the chain; nothing served".into())
	}
}

fn purpose(name: &str) -> Option<AccessPurpose> {
	Some(match name {
		"Treatment" => AccessPurpose::Treatment,
		"PatientView" => AccessPurpose::PatientView,
		"Insurance" => AccessPurpose::Insurance,
		"Research" => AccessPurpose::Research,
		"Audit" => AccessPurpose::Audit,
		"Emergency" => AccessPurpose::Emergency,
		_ => return None,
	})
}
