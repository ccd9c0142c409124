//! A JSON-RPC client for a Medchain node over a few persistent WebSocket
//! connections (`jsonrpsee`'s ws client): storage reads, runtime API calls,
//! key listing, and mortal extrinsics signed with the runtime's own types,
//! followed to finalization. Used by `medchain-fl-client` and
//! `medchain-record`.
//!
//! The API is blocking: each call runs on the client's own Tokio runtime, so
//! it may be used from plain threads and from inside another runtime alike.
//!
//! Values decode with the types this binary was built with, and must use
//! every byte: a value in another layout (a tool older or newer than the
//! chain's runtime) is an error, never a misread. A review service reading a
//! record one byte off would otherwise reject good records and cost their
//! issuer credit.

pub mod cli;
pub mod events;
pub mod serve;

pub use events::Dispatch;

use codec::{Decode, DecodeAll, Encode};
use jsonrpsee::{
	core::client::{ClientT, Error as ClientError, SubscriptionClientT},
	ws_client::{PingConfig, WsClient, WsClientBuilder},
};
use medchain_runtime::{Runtime, RuntimeCall, UncheckedExtrinsic};
use serde_json::{json, Value};
use sp_core::{crypto::Ss58Codec, sr25519, Pair, H256};
use sp_runtime::{generic::Era, AccountId32, MultiAddress, MultiSignature};
use std::{
	future::Future,
	sync::{Arc, Condvar, Mutex, OnceLock},
	time::{Duration, Instant},
};

/// Blocks a signed transaction stays valid for (its mortal era): about six
/// minutes at 6 s blocks. A transaction not in a block by then never will be.
pub const MORTAL_PERIOD: u64 = 64;

/// How many times a transaction the pool refused outright, for a reason a
/// fresh signature cures ([`sign_again_cures`]), is signed again.
pub const SIGN_AGAIN: u32 = 10;

/// Whether the pool refused a transaction for a reason that signing it
/// again cures: it has not imported the block the era is dated by yet, or
/// another transaction of the same account took its nonce (`1014`, same
/// priority) or the nonce went stale (`1010`, outdated): the account's
/// other clients (its node's offchain workers, another gateway thread) sign
/// too. Such a transaction never entered the pool, so signing it again
/// cannot get it included twice.
pub fn sign_again_cures(error: &str) -> bool {
	error.contains("ancient birth block") ||
		error.contains("\"code\":1014") ||
		error.contains("Transaction is outdated") ||
		error.contains("Priority is too low")
}

/// Waits a little longer after each refused attempt, so that competing
/// signers of one account spread out.
fn back_off(attempt: u32) {
	std::thread::sleep(Duration::from_millis(200 + 150 * u64::from(attempt)));
}

/// Largest JSON-RPC message either way: a block of 5 MiB is 10 MiB in hex.
const MAX_MESSAGE: u32 = 32 * 1024 * 1024;

/// Errors talking to the node.
#[derive(Debug)]
pub enum RpcError {
	/// The node could not be reached, or the connection broke.
	Transport(String),
	/// The node answered with a JSON-RPC error (its JSON error object).
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

impl From<ClientError> for RpcError {
	fn from(e: ClientError) -> Self {
		match e {
			ClientError::Call(e) => RpcError::Node(serde_json::to_string(&e).unwrap_or_else(|_| e.to_string())),
			ClientError::ParseError(e) => RpcError::Decode(e.to_string()),
			other => RpcError::Transport(other.to_string()),
		}
	}
}

/// A transaction handed to the node: who sent it with which nonce, its
/// hash, and the last block of its mortal era.
#[derive(Clone, Debug)]
pub struct Sent {
	/// The nonce it uses.
	pub nonce: u32,
	/// Its hash (`blake2_256` of its encoding).
	pub hash: H256,
	/// The first block of its era.
	pub birth: u32,
	/// The first block in which it is no longer valid.
	pub death: u32,
}

/// What became of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
	/// In a finalized block: it can no longer be undone. `dispatch` is how
	/// it dispatched, read from the block's events with the metadata of the
	/// runtime that made the block (`None`: the node could not say).
	Finalized { block: H256, dispatch: Option<Dispatch> },
	/// In a block of the best chain, not yet finalized when the wait ended.
	InBlock { block: H256, dispatch: Option<Dispatch> },
	/// It never will be in a block: the pool refused it, another transaction
	/// took its place, or its era ended without it.
	Dead(String),
	/// Not known yet (the wait ended, or the node went away): it may still
	/// be included up to block `death`, and not after.
	Unknown { death: u32, why: String },
}

impl Outcome {
	/// Whether it is in a block and dispatched without error.
	pub fn succeeded(&self) -> bool {
		matches!(
			self,
			Outcome::Finalized { dispatch: Some(Dispatch::Success), .. } |
				Outcome::InBlock { dispatch: Some(Dispatch::Success), .. }
		)
	}
}

/// The Tokio runtime the tools' clients and servers run on (two worker
/// threads, its own timer and I/O driver).
pub fn runtime() -> &'static tokio::runtime::Runtime {
	static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
	RUNTIME.get_or_init(|| {
		tokio::runtime::Builder::new_multi_thread()
			.worker_threads(2)
			.thread_name("medchain-io")
			.enable_all()
			.build()
			.expect("the OS gives a process a thread and a timer")
	})
}

/// Runs `future` on the client runtime and waits for it, from any thread
/// (inside another Tokio runtime too: the future never runs on the caller's).
fn block_on<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
	let (tx, rx) = std::sync::mpsc::sync_channel(1);
	runtime().spawn(async move {
		let _ = tx.send(future.await);
	});
	rx.recv().expect("the client runtime lives as long as the process")
}

/// Most WebSocket connections a [`Node`] keeps open; beyond, calls share
/// them. Few: a node serves 100 connections by default (a consortium node
/// 64, and its RPC proxy 8 per client address), for every tool and wallet,
/// and a gateway holds three clients.
const MAX_CONNECTIONS: usize = 2;

/// A [`Node`]'s connections.
#[derive(Default)]
struct Connections {
	/// Every open connection, with the calls it carries now.
	open: Vec<(Arc<WsClient>, usize)>,
	/// Connections being opened.
	connecting: usize,
}

impl Connections {
	/// The open connection carrying the fewest calls, taken for one more.
	fn least_busy(&mut self) -> Option<Arc<WsClient>> {
		let (client, calls) = self.open.iter_mut().min_by_key(|(_, calls)| *calls)?;
		*calls += 1;
		Some(client.clone())
	}
}

/// A connection taken for a call, given back when dropped.
struct Lease<'a> {
	node: &'a Node,
	client: Arc<WsClient>,
}

impl Drop for Lease<'_> {
	fn drop(&mut self) {
		self.node.give_back(&self.client);
	}
}

/// A node endpoint and its connections: each call takes one carrying no
/// other call, opening one if fewer than [`MAX_CONNECTIONS`] are open,
/// else the least busy (a broken one is replaced). One WebSocket carrying
/// calls from two threads at once held each answer back until the other
/// thread's next call (up to 44 ms per call against a dev node, measured;
/// none with one connection each).
pub struct Node {
	url: String,
	connections: Mutex<Connections>,
	/// Signalled when a connection opens or an attempt ends.
	opened: Condvar,
	/// The event types of the runtime last read, by its spec version.
	event_types: Mutex<Option<(u64, Arc<events::EventTypes>)>>,
}

impl Node {
	/// Takes `ws://host:port`, `http://host:port` (the node serves both on
	/// one port; WebSocket is used), `wss://`/`https://`, or `host:port`.
	pub fn new(url: &str) -> Self {
		let url = url.trim_end_matches('/');
		let url = if let Some(rest) = url.strip_prefix("http://") {
			format!("ws://{rest}")
		} else if let Some(rest) = url.strip_prefix("https://") {
			format!("wss://{rest}")
		} else if url.starts_with("ws://") || url.starts_with("wss://") {
			url.to_string()
		} else {
			format!("ws://{url}")
		};
		Node { url, connections: Mutex::default(), opened: Condvar::new(), event_types: Mutex::new(None) }
	}

	/// The URL the client connects to.
	pub fn url(&self) -> &str {
		&self.url
	}

	/// A connection for one call: one carrying no other call, else a new
	/// one (at most [`MAX_CONNECTIONS`] open or opening), else the least
	/// busy. With none open and the most being opened, waits for them.
	fn client(&self) -> Result<Lease<'_>, RpcError> {
		let poisoned = || RpcError::Transport("client state poisoned".into());
		let mut c = self.connections.lock().map_err(|_| poisoned())?;
		loop {
			c.open.retain(|(client, _)| client.is_connected());
			if c.open.iter().any(|(_, calls)| *calls == 0) || c.open.len() + c.connecting >= MAX_CONNECTIONS {
				if let Some(client) = c.least_busy() {
					return Ok(Lease { node: self, client });
				}
			}
			if c.open.len() + c.connecting < MAX_CONNECTIONS {
				break;
			}
			// Every connection is being opened: wait for one (an attempt
			// ends within the connection timeout).
			c = self.opened.wait(c).map_err(|_| poisoned())?;
		}
		c.connecting += 1;
		drop(c);
		let connected = self.connect();
		let mut c = self.connections.lock().map_err(|_| poisoned())?;
		c.connecting -= 1;
		self.opened.notify_all();
		match connected {
			Ok(client) => {
				c.open.push((client.clone(), 1));
				Ok(Lease { node: self, client })
			},
			// Refused (the node's connection limit, say): share one.
			Err(e) => c.least_busy().map(|client| Lease { node: self, client }).ok_or(e),
		}
	}

	/// Ends a call on `client`.
	fn give_back(&self, client: &Arc<WsClient>) {
		if let Ok(mut c) = self.connections.lock() {
			if let Some((_, calls)) = c.open.iter_mut().find(|(open, _)| Arc::ptr_eq(open, client)) {
				*calls = calls.saturating_sub(1);
			}
		}
	}

	/// A new connection to the node.
	fn connect(&self) -> Result<Arc<WsClient>, RpcError> {
		let url = self.url.clone();
		let client = block_on(async move {
			WsClientBuilder::default()
				.max_request_size(MAX_MESSAGE)
				.max_response_size(MAX_MESSAGE)
				.request_timeout(Duration::from_secs(60))
				.connection_timeout(Duration::from_secs(10))
				// A connection left idle behind a proxy is kept alive.
				.enable_ws_ping(PingConfig::new())
				.build(&url)
				.await
		})
		.map_err(|e| RpcError::Transport(format!("{}: {e}", self.url)))?;
		Ok(Arc::new(client))
	}

	/// Calls `method` with `params` (a JSON array, or `null` for none). A
	/// read that fails because the connection broke is sent once more on a
	/// new connection; a submission is not (it may have reached the node).
	pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
		let params = match params {
			Value::Array(items) => items,
			Value::Null => Vec::new(),
			other => vec![other],
		};
		let resend = !method.starts_with("author_submit");
		let mut attempt = 0;
		loop {
			let lease = self.client()?;
			let client = lease.client.clone();
			let (m, p) = (method.to_string(), params.clone());
			match block_on(async move { client.request::<Value, _>(&m, p).await }) {
				Ok(v) => return Ok(v),
				Err(e @ (ClientError::Transport(_) | ClientError::RestartNeeded(_))) if resend && attempt == 0 => {
					let _ = e;
					attempt += 1;
				},
				Err(e) => return Err(e.into()),
			}
		}
	}

	/// Reads and decodes a storage value; `None` if absent, an error if it
	/// does not decode with every byte used.
	pub fn storage<T: Decode>(&self, key: &[u8]) -> Result<Option<T>, RpcError> {
		let v = self.call("state_getStorage", json!([hex(key)]))?;
		match v.as_str() {
			None => Ok(None),
			Some(h) => {
				let bytes = unhex(h)?;
				decode_exact(&bytes, "storage value").map(Some)
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
				decode_exact(&bytes, "storage value").map(Some)
			},
		}
	}

	/// Calls runtime API `method` (for example
	/// `ProxyReencryptApi_readable_under`) with SCALE-encoded `args` at the
	/// best block and decodes its answer.
	pub fn runtime_call<R: Decode>(&self, method: &str, args: &impl Encode) -> Result<R, RpcError> {
		self.runtime_call_at(method, args, None)
	}

	/// As [`Node::runtime_call`], at block `at` (0x hex hash; the best block
	/// if `None`).
	pub fn runtime_call_at<R: Decode>(&self, method: &str, args: &impl Encode, at: Option<&str>) -> Result<R, RpcError> {
		let v = self.call("state_call", json!([method, hex(&args.encode()), at]))?;
		let bytes = unhex(v.as_str().ok_or_else(|| RpcError::Decode(format!("{method}: no result")))?)?;
		decode_exact(&bytes, method)
	}

	/// The finalized head: its hash and number.
	pub fn finalized_head(&self) -> Result<(H256, u32), RpcError> {
		let head = parse_hash(&self.call("chain_getFinalizedHead", json!([]))?)?;
		Ok((head, self.number_of(&head)?))
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

	/// Signs `call` as `signer` and submits it to the pool without following
	/// it; returns the nonce it used.
	pub fn submit(&self, signer: &sr25519::Pair, call: RuntimeCall) -> Result<u32, RpcError> {
		self.submit_with_hash(signer, call).map(|(nonce, _)| nonce)
	}

	/// As [`Node::submit`], also returning the transaction's hash.
	/// A transaction the pool refused for a reason a fresh signature cures
	/// ([`sign_again_cures`]) is signed and submitted again, up to
	/// [`SIGN_AGAIN`] times.
	pub fn submit_with_hash(&self, signer: &sr25519::Pair, call: RuntimeCall) -> Result<(u32, H256), RpcError> {
		let mut attempt = 0;
		loop {
			let (xt, sent) = self.sign(signer, call.clone())?;
			match self.call("author_submitExtrinsic", json!([hex(&xt)])) {
				Err(RpcError::Node(e)) if sign_again_cures(&e) && attempt < SIGN_AGAIN => attempt += 1,
				other => return Ok((sent.nonce, parse_hash(&other?)?)),
			}
			back_off(attempt);
		}
	}

	/// Signs `call` as `signer` with the account's next nonce and a mortal
	/// era of [`MORTAL_PERIOD`] blocks from the best block; returns the
	/// encoded extrinsic and what identifies it.
	pub fn sign(&self, signer: &sr25519::Pair, call: RuntimeCall) -> Result<(Vec<u8>, Sent), RpcError> {
		let account = AccountId32::from(signer.public());
		let genesis: H256 = parse_hash(&self.call("chain_getBlockHash", json!([0]))?)?;
		let version = self.call("state_getRuntimeVersion", json!([]))?;
		let spec = version["specVersion"].as_u64().ok_or_else(|| RpcError::Decode("specVersion".into()))? as u32;
		let tx = version["transactionVersion"].as_u64().ok_or_else(|| RpcError::Decode("txVersion".into()))? as u32;
		let nonce = self
			.call("system_accountNextIndex", json!([account.to_ss58check()]))?
			.as_u64()
			.ok_or_else(|| RpcError::Decode("nonce".into()))? as u32;
		// The era is dated a block before the best one: the pool validates
		// against the block it last processed, which may trail the best
		// block the RPC reports; an era born after it is refused as from an
		// "ancient birth block".
		let current = self.best_number()?.saturating_sub(1);
		let era = Era::mortal(MORTAL_PERIOD, current.into());
		let birth = era.birth(current.into()) as u32;
		let death = era.death(current.into()) as u32;
		let birth_hash: H256 = parse_hash(&self.call("chain_getBlockHash", json!([birth]))?)?;
		let ext = medchain_runtime::tx_extension(era, nonce);
		let implicit = ((), spec, tx, genesis, birth_hash, (), (), (), None::<[u8; 32]>);
		let payload = sp_runtime::generic::SignedPayload::from_raw(call, ext, implicit);
		let signature = payload.using_encoded(|bytes| signer.sign(bytes));
		let (call, ext, _) = payload.deconstruct();
		let xt = UncheckedExtrinsic::new_signed(call, MultiAddress::Id(account), MultiSignature::Sr25519(signature), ext)
			.encode();
		let hash = H256(sp_crypto_hashing::blake2_256(&xt));
		Ok((xt, Sent { nonce, hash, birth, death }))
	}

	/// Signs `call` (as [`Node::sign`]), submits it and follows it for up to
	/// `wait`: to a finalized block, to its death, or to the end of the wait.
	/// Only a transaction the node refused outright is an `Err`; everything
	/// after it left for the node is an [`Outcome`]: a connection that breaks
	/// after the submission leaves the outcome [`Outcome::Unknown`] unless
	/// the chain, read again within the wait, settles it.
	pub fn send(&self, signer: &sr25519::Pair, call: RuntimeCall, wait: Duration) -> Result<(Sent, Outcome), RpcError> {
		self.send_with(signer, call, wait, |_| {})
	}

	/// As [`Node::send`], calling `signed` with each signed transaction just
	/// before it goes out (to say so, or to note its era). A transaction
	/// the pool refuses outright for a reason a fresh signature cures
	/// ([`sign_again_cures`]) is signed and sent again (up to [`SIGN_AGAIN`]
	/// times).
	pub fn send_with(
		&self,
		signer: &sr25519::Pair,
		call: RuntimeCall,
		wait: Duration,
		signed: impl Fn(&Sent),
	) -> Result<(Sent, Outcome), RpcError> {
		self.send_inner(signer, call, wait, signed, None)
	}

	/// As [`Node::send`], for callers that sign as one account from several
	/// threads: `turn` is held from reading the nonce until the node took
	/// the transaction into its pool (so the next signer reads the nonce
	/// after it), not while the transaction is followed.
	pub fn send_in_turn(
		&self,
		signer: &sr25519::Pair,
		call: RuntimeCall,
		wait: Duration,
		turn: &Mutex<()>,
	) -> Result<(Sent, Outcome), RpcError> {
		self.send_inner(signer, call, wait, |_| {}, Some(turn))
	}

	fn send_inner(
		&self,
		signer: &sr25519::Pair,
		call: RuntimeCall,
		wait: Duration,
		signed: impl Fn(&Sent),
		turn: Option<&Mutex<()>>,
	) -> Result<(Sent, Outcome), RpcError> {
		let who = AccountId32::from(signer.public());
		// One wait over every attempt: a caller's deadline holds.
		let deadline = Instant::now() + wait;
		let mut attempt = 0;
		loop {
			let guard = match turn {
				Some(turn) => Some(turn.lock().map_err(|_| RpcError::Transport("signer state poisoned".into()))?),
				None => None,
			};
			let (xt, sent) = self.sign(signer, call.clone())?;
			signed(&sent);
			let mut guard = guard;
			let mut submitted = move || drop(guard.take());
			let left = deadline.saturating_duration_since(Instant::now());
			match self.send_signed_then(&who, &xt, &sent, left, &mut submitted) {
				Err(RpcError::Node(e)) if sign_again_cures(&e) && attempt < SIGN_AGAIN => {
					attempt += 1;
					back_off(attempt);
					// Refused, so nothing of it is pending: give up once the
					// wait is spent rather than submit past it.
					if Instant::now() >= deadline {
						return Err(RpcError::Node(e));
					}
				},
				other => return other.map(|outcome| (sent, outcome)),
			}
		}
	}

	/// As [`Node::send`], for an extrinsic `xt` already signed by `who` with
	/// [`Node::sign`].
	pub fn send_signed(&self, who: &AccountId32, xt: &[u8], sent: &Sent, wait: Duration) -> Result<Outcome, RpcError> {
		self.send_signed_then(who, xt, sent, wait, &mut || {})
	}

	/// As [`Node::send_signed`], calling `submitted` once the node answered
	/// the submission (took it into its pool, or refused it) or the wait
	/// ended without an answer.
	fn send_signed_then(
		&self,
		who: &AccountId32,
		xt: &[u8],
		sent: &Sent,
		wait: Duration,
		submitted: &mut dyn FnMut(),
	) -> Result<Outcome, RpcError> {
		let deadline = Instant::now() + wait;
		let followed = self.follow(xt, deadline, submitted);
		submitted();
		let outcome = match followed {
			Err(RpcError::Node(refused)) => return Err(RpcError::Node(refused)),
			Ok(Some(outcome)) => outcome,
			// The subscription ended without a verdict (the node restarted,
			// say, or dropped it from its pool): read the chain.
			Ok(None) | Err(_) => self.settle(who, sent, deadline),
		};
		Ok(outcome)
	}

	/// Submits `xt` with `author_submitAndWatchExtrinsic` and follows its
	/// status until finalized or dead; `Some(InBlock)` if it is in a block
	/// when `deadline` comes, `None` if it is not, or the subscription ended
	/// without a verdict. Calls `submitted` when the node answered the
	/// submission.
	fn follow(&self, xt: &[u8], deadline: Instant, submitted: &mut dyn FnMut()) -> Result<Option<Outcome>, RpcError> {
		enum Update {
			Subscribed,
			Status(Result<Value, RpcError>),
		}
		let lease = self.client()?;
		let client = lease.client.clone();
		let xt = hex(xt);
		let param = vec![Value::String(xt.clone())];
		let (tx, rx) = std::sync::mpsc::sync_channel::<Update>(64);
		let remaining = deadline.saturating_duration_since(Instant::now());
		runtime().spawn(async move {
			let stop = tokio::time::Instant::now() + remaining;
			let subscribe = client.subscribe::<Value, _>("author_submitAndWatchExtrinsic", param, "author_unwatchExtrinsic");
			let mut sub = match tokio::time::timeout_at(stop, subscribe).await {
				Ok(Ok(sub)) => sub,
				Ok(Err(e)) => {
					let _ = tx.send(Update::Status(Err(e.into())));
					return;
				},
				// No answer in time (a frozen node): the chain decides.
				Err(_) => return,
			};
			if tx.send(Update::Subscribed).is_err() {
				return;
			}
			while let Ok(Some(status)) = tokio::time::timeout_at(stop, sub.next()).await {
				let status = status.map_err(|e| RpcError::Decode(e.to_string()));
				if tx.send(Update::Status(status)).is_err() {
					return;
				}
			}
		});
		let mut in_block: Option<H256> = None;
		while let Ok(update) = rx.recv() {
			let status = match update {
				Update::Subscribed => {
					submitted();
					continue;
				},
				Update::Status(status) => status?,
			};
			if let Some(block) = status.get("inBlock") {
				in_block = Some(parse_hash(block)?);
			} else if status.get("retracted").is_some() {
				in_block = None;
			} else if let Some(block) = status.get("finalized") {
				let block = parse_hash(block)?;
				return Ok(Some(Outcome::Finalized { block, dispatch: self.dispatched(&block, &xt).ok().flatten() }));
			} else if status.get("usurped").is_some() ||
				matches!(status.as_str(), Some("invalid" | "dropped")) ||
				status.get("finalityTimeout").is_some()
			{
				// Only this node's pool gave up on it: copies gossiped to
				// other nodes, or a fork, may still include it. The finalized
				// chain decides (`settle`).
				break;
			}
		}
		match in_block {
			Some(block) if Instant::now() >= deadline => {
				Ok(Some(Outcome::InBlock { block, dispatch: self.dispatched(&block, &xt).ok().flatten() }))
			},
			// Not in a block yet (the wait ended) or no verdict: the chain decides.
			_ => Ok(None),
		}
	}

	/// Reads the chain until `deadline` to settle what became of `sent`: in a
	/// block (the account's nonce moved past it and a block since its birth
	/// holds it), dead (its era ended without it, or another transaction
	/// used its nonce), or still unknown.
	fn settle(&self, who: &AccountId32, sent: &Sent, deadline: Instant) -> Outcome {
		let mut why = String::from("no verdict within the wait");
		while Instant::now() < deadline {
			match self.settled(who, sent) {
				Ok(Some(outcome)) => return outcome,
				Ok(None) => {},
				Err(e) => why = e.to_string(),
			}
			std::thread::sleep(Duration::from_millis(500));
		}
		Outcome::Unknown { death: sent.death, why }
	}

	/// A verdict only the finalized chain can give: found in a finalized
	/// block, or dead (its nonce used by another transaction in the
	/// finalized chain, or its era over at the finalized head).
	fn settled(&self, who: &AccountId32, sent: &Sent) -> Result<Option<Outcome>, RpcError> {
		let head = parse_hash(&self.call("chain_getFinalizedHead", json!([]))?)?;
		let finalized = self.number_of(&head)?;
		let key = frame_system::Account::<Runtime>::hashed_key_for(who);
		// Decoded whole: values must use every byte (`decode_exact`).
		let info: Option<AccountInfoOf> = self.storage_at(&key, Some(&hex(head.as_bytes())))?;
		let nonce = info.map(|i| i.nonce);
		if nonce.is_some_and(|n| n > sent.nonce) {
			// Blocks up to the finalized head are the finalized chain's.
			for number in sent.birth..=finalized.min(sent.death) {
				let hash = parse_hash(&self.call("chain_getBlockHash", json!([number]))?)?;
				let block = self.call("chain_getBlock", json!([hex(hash.as_bytes())]))?;
				let xts = block["block"]["extrinsics"].as_array().cloned().unwrap_or_default();
				for xt in xts {
					let bytes = unhex(xt.as_str().unwrap_or_default())?;
					if H256(sp_crypto_hashing::blake2_256(&bytes)) == sent.hash {
						let dispatch = self.dispatched(&hash, &hex(&bytes)).ok().flatten();
						return Ok(Some(Outcome::Finalized { block: hash, dispatch }));
					}
				}
			}
			return Ok(Some(Outcome::Dead("another transaction used its nonce in the finalized chain".into())));
		}
		if finalized >= sent.death {
			return Ok(Some(Outcome::Dead(format!("its era ended at block {} without it (finalized)", sent.death))));
		}
		Ok(None)
	}

	/// How the extrinsic `xt` (hex) in block `block` dispatched, read with
	/// the metadata of the runtime at that block; `None` if the block does
	/// not hold it or its events say nothing of it.
	fn dispatched(&self, block: &H256, xt: &str) -> Result<Option<Dispatch>, RpcError> {
		let at = hex(block.as_bytes());
		let body = self.call("chain_getBlock", json!([at]))?;
		let xts = body["block"]["extrinsics"].as_array().cloned().unwrap_or_default();
		let Some(index) = xts.iter().position(|x| x.as_str() == Some(xt)) else { return Ok(None) };
		let events = match self.call("state_getStorage", json!([hex(&events_key()), at]))?.as_str() {
			Some(h) => unhex(h)?,
			None => return Ok(None),
		};
		// The runtime that executed the block is the one in its parent's
		// state: a block that enacts an upgrade already holds the new code,
		// but its events were written by the old one.
		let parent = self.call("chain_getHeader", json!([at]))?;
		let parent = parent["parentHash"].as_str().ok_or_else(|| RpcError::Decode("parent hash".into()))?;
		self.event_types(parent)?.dispatch_of(&events, index as u32).map_err(RpcError::Decode)
	}

	/// The event types of the runtime in the state of block `at` (hex hash),
	/// read from its metadata once per runtime version.
	fn event_types(&self, at: &str) -> Result<Arc<events::EventTypes>, RpcError> {
		let version = self.call("state_getRuntimeVersion", json!([at]))?;
		let spec = version["specVersion"].as_u64().ok_or_else(|| RpcError::Decode("specVersion".into()))?;
		let mut slot = self.event_types.lock().map_err(|_| RpcError::Transport("client state poisoned".into()))?;
		if let Some((_, types)) = slot.as_ref().filter(|(cached, _)| *cached == spec) {
			return Ok(types.clone());
		}
		let metadata = self.call("state_getMetadata", json!([at]))?;
		let metadata = unhex(metadata.as_str().ok_or_else(|| RpcError::Decode("metadata".into()))?)?;
		let types = Arc::new(events::EventTypes::from_metadata(&metadata).map_err(RpcError::Decode)?);
		*slot = Some((spec, types.clone()));
		Ok(types)
	}

	/// The number of block `hash`.
	fn number_of(&self, hash: &H256) -> Result<u32, RpcError> {
		header_number(&self.call("chain_getHeader", json!([hex(hash.as_bytes())]))?)
	}

	/// Wakes at each new best block the node announces
	/// (`chain_subscribeNewHeads`), on a connection of its own (a
	/// subscription sharing one with calls would hold their answers back):
	/// the receiver holds at most one wake-up not yet taken (the follower
	/// reads the best block itself), and is disconnected once the
	/// subscription or its connection ends.
	pub fn new_heads(&self) -> Result<std::sync::mpsc::Receiver<()>, RpcError> {
		use std::sync::mpsc::TrySendError;
		let client = self.connect()?;
		let subscribed = block_on(async move {
			let sub = client
				.subscribe::<Value, _>("chain_subscribeNewHeads", Vec::<Value>::new(), "chain_unsubscribeNewHeads")
				.await;
			sub.map(|sub| (client, sub))
		})?;
		let (tx, rx) = std::sync::mpsc::sync_channel(1);
		runtime().spawn(async move {
			// The connection lives as long as the subscription.
			let (_client, mut sub) = subscribed;
			while let Some(Ok(_)) = sub.next().await {
				if let Err(TrySendError::Disconnected(())) = tx.try_send(()) {
					return;
				}
			}
		});
		Ok(rx)
	}

	/// The best block's hash.
	pub fn best_hash(&self) -> Result<H256, RpcError> {
		parse_hash(&self.call("chain_getBlockHash", json!([]))?)
	}

	/// Block `hash`'s number and its parent's hash.
	pub fn header_of(&self, hash: &H256) -> Result<(u32, H256), RpcError> {
		let header = self.call("chain_getHeader", json!([hex(hash.as_bytes())]))?;
		Ok((header_number(&header)?, parse_hash(&header["parentHash"])?))
	}

	/// The best block's number.
	pub fn best_number(&self) -> Result<u32, RpcError> {
		header_number(&self.call("chain_getHeader", json!([]))?)
	}
}

/// `0x`-prefixed lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
	format!("0x{}", ::hex::encode(bytes))
}

/// Parses hex, with or without `0x`.
pub fn unhex(s: &str) -> Result<Vec<u8>, RpcError> {
	::hex::decode(s.trim_start_matches("0x")).map_err(|e| RpcError::Decode(e.to_string()))
}

/// An account's `frame_system::Account` value in the runtime.
type AccountInfoOf =
	frame_system::AccountInfo<<Runtime as frame_system::Config>::Nonce, <Runtime as frame_system::Config>::AccountData>;

/// Decodes `bytes` as `T` using every byte: a value in another layout (from a
/// runtime older or newer than this binary's) is an error, not a misread.
fn decode_exact<T: Decode>(bytes: &[u8], what: &str) -> Result<T, RpcError> {
	T::decode_all(&mut &bytes[..]).map_err(|e| RpcError::Decode(format!("{what}: {e} (is this tool as new as the chain's runtime?)")))
}

/// Storage key of `System::Events`.
pub fn events_key() -> Vec<u8> {
	[sp_crypto_hashing::twox_128(b"System"), sp_crypto_hashing::twox_128(b"Events")].concat()
}

/// The number in a JSON header (`"number": "0x…"`).
fn header_number(header: &Value) -> Result<u32, RpcError> {
	let number = header["number"].as_str().ok_or_else(|| RpcError::Decode("block number".into()))?;
	u32::from_str_radix(number.trim_start_matches("0x"), 16).map_err(|e| RpcError::Decode(e.to_string()))
}

fn parse_hash(v: &Value) -> Result<H256, RpcError> {
	let bytes = unhex(v.as_str().ok_or_else(|| RpcError::Decode("hash".into()))?)?;
	if bytes.len() != 32 {
		return Err(RpcError::Decode("hash length".into()));
	}
	Ok(H256::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
	use super::*;
	use medchain_runtime::Runtime;

	#[test]
	fn calls_at_once_take_their_own_connections_up_to_the_limit() {
		use jsonrpsee::server::{ConnectionId, RpcModule, Server};
		// A server that says which of its connections carried each call,
		// after holding it a while (so that the calls overlap).
		let (port, server) = runtime().block_on(async {
			let server = Server::builder().build("127.0.0.1:0").await.expect("a free port");
			let port = server.local_addr().expect("bound").port();
			let mut module = RpcModule::new(());
			module
				.register_async_method("connection", |_, _, extensions| async move {
					tokio::time::sleep(Duration::from_millis(300)).await;
					extensions.get::<ConnectionId>().map(|c| c.0).unwrap_or(usize::MAX)
				})
				.expect("one method");
			(port, server.start(module))
		});
		let node = Arc::new(Node::new(&format!("127.0.0.1:{port}")));
		let calls: Vec<_> = (0..4)
			.map(|_| {
				let node = node.clone();
				std::thread::spawn(move || node.call("connection", Value::Null).expect("answered").as_u64())
			})
			.collect();
		let used: std::collections::BTreeSet<_> = calls.into_iter().map(|c| c.join().expect("no panic")).collect();
		assert_eq!(used.len(), MAX_CONNECTIONS, "four calls at once on {used:?}: the most connections, shared beyond");
		// Later calls, one at a time, reuse them.
		for _ in 0..3 {
			assert!(used.contains(&node.call("connection", Value::Null).expect("answered").as_u64()));
		}
		server.stop().expect("running");
	}
	#[test]
	fn new_heads_wake_the_follower_until_the_node_goes_away() {
		use jsonrpsee::server::{RpcModule, Server, SubscriptionMessage};
		// A node that announces three heads on a subscription.
		let (port, server) = runtime().block_on(async {
			let server = Server::builder().build("127.0.0.1:0").await.expect("a free port");
			let port = server.local_addr().expect("bound").port();
			let mut module = RpcModule::new(());
			module
				.register_subscription(
					"chain_subscribeNewHeads",
					"chain_newHead",
					"chain_unsubscribeNewHeads",
					|_, pending, _, _| async move {
						let sink = pending.accept().await?;
						for number in 1..=3 {
							sink.send(SubscriptionMessage::from_json(&json!({ "number": number }))?).await?;
							tokio::time::sleep(Duration::from_millis(50)).await;
						}
						jsonrpsee::core::SubscriptionResult::Ok(())
					},
				)
				.expect("one subscription");
			(port, server.start(module))
		});
		let heads = Node::new(&format!("127.0.0.1:{port}")).new_heads().expect("subscribed");
		heads.recv_timeout(Duration::from_secs(10)).expect("woken by the first head");
		std::thread::sleep(Duration::from_millis(500));
		// The two later heads, one wake-up: the follower reads the best
		// block itself.
		assert_eq!(heads.try_iter().count(), 1);
		// The node goes away: the follower is told, not left waiting.
		server.stop().expect("running");
		assert_eq!(heads.recv_timeout(Duration::from_secs(10)), Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
	}

	use pallet_ehr_index::{migrations::v2::RecordV1, ContentDigest, DigestAlgorithm, Record, RecordKind, RecordStatus};

	/// A record of `kind` as storage versions 0 and 1 kept it.
	fn old_record(kind: RecordKind) -> RecordV1<Runtime> {
		RecordV1 {
			patient: [1; 32].into(),
			issuer: [2; 32].into(),
			kind,
			digest: ContentDigest { algorithm: DigestAlgorithm::Sm3, digest: [3; 32] },
			pointer: Some(pallet_ehr_index::StorePointer {
				store_id: b"hospital".to_vec().try_into().unwrap(),
				collection: b"records".to_vec().try_into().unwrap(),
				object_id: [8; 12],
			}),
			size: 10,
			capsule_hash: H256::repeat_byte(4),
			published_at: 5,
			timestamp: 6,
			version: 1,
			previous: None,
			chain_hash: H256::repeat_byte(7),
			status: RecordStatus::Confirmed,
			confirmations: 2,
			rejections: 0,
			deadline: 9,
		}
	}

	#[test]
	fn an_accounts_nonce_is_read_from_its_whole_account_info() {
		// Whether a transaction is dead is judged by its account's nonce in
		// the finalized state: read as the whole `AccountInfo` (a read of
		// its first four bytes alone is refused, every byte must be used).
		let info = AccountInfoOf { nonce: 7, ..Default::default() };
		let bytes = info.encode();
		assert_eq!(decode_exact::<AccountInfoOf>(&bytes, "account").map(|i| i.nonce).ok(), Some(7));
		assert!(decode_exact::<u32>(&bytes, "account").is_err());
	}

	#[test]
	fn a_record_in_another_layout_is_an_error_not_a_misread() {
		// A tool built for storage version 2 reading a version-1 chain: the
		// old kind byte is read as an option tag, and everything after it
		// shifts, which leaves a byte over or fails outright.
		for kind in [RecordKind::LabResult, RecordKind::Imaging, RecordKind::Billing, RecordKind::Other] {
			assert!(decode_exact::<Record<Runtime>>(&old_record(kind).encode(), "record").is_err(), "{kind:?}");
		}
		// The one exception: `Diagnosis` is encoded as 0, as `None` is, so
		// such a record reads as one without a kind, every other field in
		// place (nothing is misread but the kind, shown as unknown).
		let old = old_record(RecordKind::Diagnosis);
		let read = decode_exact::<Record<Runtime>>(&old.encode(), "record").expect("same length");
		assert_eq!((read.kind, read.digest, read.size, read.deadline), (None, old.digest, old.size, old.deadline));
		// A tool built for version 1 reading a version-2 chain: every record
		// with a kind is one byte longer, an error. (An erased record, with
		// no kind, reads as `Diagnosis` with size 0.)
		for kind in [RecordKind::Diagnosis, RecordKind::LabResult, RecordKind::Imaging, RecordKind::Other] {
			let new = old_record(kind).upgrade().encode();
			assert!(decode_exact::<RecordV1<Runtime>>(&new, "record").is_err(), "{kind:?}");
		}
		assert!(decode_exact::<u32>(&[1, 0, 0, 0, 0], "u32").is_err(), "a trailing byte");
		assert_eq!(decode_exact::<u32>(&[1, 0, 0, 0], "u32").unwrap(), 1);
	}
}
