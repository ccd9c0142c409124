//! The institution's record gateway: JSON-RPC 2.0 over HTTP.
//!
//! `ehr_getRecord { record, accessor, purpose, block, signature, grant?, asks?, salt? }`
//! returns the record's ciphertext to `accessor` if
//! 1. `signature` is `accessor`'s sr25519 signature of
//!    `medchain-ehr-get:v2:<genesis hash>:<gateway SS58>:<record>:<accessor
//!    SS58>:<purpose>:<block>` ([`request_message`]; raw, or wrapped in
//!    `<Bytes>…</Bytes>` as browser wallets sign): a request signed for
//!    another chain, gateway, record or purpose proves nothing here; or,
//!    when the grantee asks several servers at once with one signature
//!    (`asks`, `salt` and `grant` given), its signature of
//!    [`bundle_message`], one of whose asks is this gateway's for
//!    `ehr_getRecord` with `salt` ([`ask`]),
//! 2. `block` is at most [`FRESHNESS`] blocks behind the best block, and
//!    the same signed request (for a request to several servers: its ask of
//!    this server) was not served before (a captured request cannot be
//!    replayed, now or later),
//! 3. the record is this gateway's institution's, and the chain lets
//!    `accessor` read it now: its patient, its issuing institution, or a
//!    grantee with a usable grant covering it, for the grant's purpose, once
//!    validators confirmed the record
//!    (`ProxyReencryptApi_readable_under`: not revoked, not expired, not
//!    disputed and acknowledged by its threshold of proxies; an
//!    emergency grant only after the glass was broken for this record),
//! 4. the stored ciphertext still matches the digest on chain, and
//! 5. the read is logged on chain first: `log_access` signed by the
//!    gateway's institution and naming the grant, which the runtime checks
//!    again at the block that holds it, in a finalized block.
//!
//! With `--instant` (the instant path) step 5 comes after the read: the
//! gateway also checks the read against the chain at the finalized head
//! (what the runtime will check the entry against), writes it to its journal
//! in MongoDB (a journaled write, while the store is read, for at most
//! [`STORE_WAIT`]; a read the store does not answer in time is marked
//! withheld) and serves at once; a background submitter
//! logs journaled reads on chain in batches (`log_reads`, naming that block)
//! and marks them once final, and after a crash logs what was left pending
//! (see [`medchain_record_store::journal`]).
//!
//! On the instant path the read is checked through [`ReadChecks`]: the
//! chain's answers at the best block and the finalized head are kept until a
//! block that could change them, so a read costs one RPC to the node (the
//! best block's hash) while nothing changes; the answer is checked once more
//! against the best block after the journal write, so nothing leaves once
//! the node imported a revocation.
//!
//! With `--proxy-seed-file` (and `--instant`) the gateway also serves its
//! institution's proxy's capsule fragments straight to grantees
//! (`pre_reencrypt`, the instant key path: see [`proxy`]).
//!
//! `ehr_getForReview { record, validator, block, signature }` returns a
//! *pending* record's ciphertext, as stored and unchecked, to a validator
//! institution that reviews it (`medchain-record verify`) if `signature` is
//! the validator's over [`review_message`] (this chain, this gateway, the
//! record, the validator, the block), the request is fresh and new (as
//! above), the record is this gateway's institution's and still `Pending`,
//! and `validator` is an active validator institution other than the issuer.
//! Nothing but ciphertext leaves (never a key), and it is not an access log
//! entry: the validator's vote is on chain. A document the store does not
//! hold is answered with code 3, so that a validator tells a missing
//! document from a gateway that is down.
//!
//! Any failed check refuses with a JSON-RPC error and serves nothing; what
//! failed inside (the store's or node's error) is logged, not returned.
//!
//! The server is `jsonrpsee`'s, on connections served by `hyper` within
//! [`Limits`]: request body size (`413` beyond it), time to send the
//! headers and to finish the connection (slow clients are cut off), and
//! connections at once.

use jsonrpsee::{
	server::{stop_channel, Methods, RpcModule, Server, ServerHandle},
	types::ErrorObjectOwned,
};
use medchain_chain_client::{
	hex,
	serve::{self, ConnectionLimits},
	unhex, Dispatch, Node, Outcome, RpcError,
};
use medchain_record_store::{
	journal::{self, JournaledRead},
	RecordStore,
};
use crate::checks::{CheckError, ReadChecks, ReadKey};

mod proxy;
use medchain_runtime::{AccountId, Runtime, RuntimeCall};
use pallet_ehr_index::{AccessPurpose, Records};
use serde_json::{json, Value};
use sp_core::{crypto::Ss58Codec, sr25519, Pair};
use std::{
	collections::BTreeMap,
	net::SocketAddr,
	sync::{Arc, Mutex},
	time::Duration,
};

/// How many blocks old a signed request may be.
pub const FRESHNESS: u32 = 20;

/// What one client may cost the gateway.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
	/// Largest request body; a larger one is answered `413`.
	pub max_request: u32,
	/// Largest response body (a 15 MiB record is 30 MiB in hex).
	pub max_response: u32,
	/// Connections, header and connection time. The connection time (120 s
	/// by default) is longer than the worst honest request, which waits at
	/// most [`LOG_WAIT`] for its access log entry.
	pub connections: ConnectionLimits,
}

impl Default for Limits {
	fn default() -> Self {
		Limits { max_request: 16 * 1024, max_response: 40 * 1024 * 1024, connections: ConnectionLimits::default() }
	}
}

struct Gateway {
	node: Node,
	operator: sr25519::Pair,
	/// The chain's genesis hash (0x hex), which signed requests name.
	genesis: String,
	/// Serialises the operator's submissions: each takes the next nonce the
	/// pool reports, so two at once would collide. Waiting for finality is
	/// done outside it.
	submitting: Arc<Mutex<()>>,
	/// The journal of served reads, on the instant path (`--instant`).
	journal: Option<journal::Journal>,
	/// The instant path's cached read checks (`--instant`).
	checks: Option<Arc<ReadChecks>>,
	/// How old the view of the chain a request's first check uses may be
	/// (twice the watch interval, at least a second).
	view_age: Duration,
	/// The proxy this gateway's institution runs, if it serves key
	/// fragments (`--proxy-seed-file`).
	proxy: Option<proxy::Proxy>,
	store: RecordStore,
	runtime: tokio::runtime::Handle,
	/// Signatures of requests already served, by the block they were signed
	/// for: a request seen once is refused again while it is fresh, so a
	/// captured request cannot be replayed (older ones fail the freshness
	/// check anyway and are forgotten).
	seen: Mutex<Seen>,
	/// Review fetches served per (validator, record): each validator gets a
	/// pending record [`MAX_REVIEW_FETCHES`] times, so an active validator
	/// cannot make the gateway read and send a record over and over.
	reviews: ReviewAllowance,
}

/// Review fetches per (validator, record). A fetch takes its slot before the
/// store is read and gives it back if the read fails, under one lock, so
/// parallel fetches cannot all pass the check before any of them counts.
#[derive(Default)]
struct ReviewAllowance(Mutex<BTreeMap<(AccountId, u64), u8>>);

impl ReviewAllowance {
	/// Takes one of the pair's [`MAX_REVIEW_FETCHES`] slots; `false` when
	/// they are used.
	fn reserve(&self, key: &(AccountId, u64)) -> Result<bool, (i32, String)> {
		let mut sent = self.0.lock().map_err(|_| unavailable("gateway state poisoned".into()))?;
		if sent.get(key).copied().unwrap_or(0) >= MAX_REVIEW_FETCHES {
			return Ok(false);
		}
		if sent.len() >= MAX_REVIEW_PAIRS && !sent.contains_key(key) {
			sent.clear();
		}
		*sent.entry(key.clone()).or_insert(0) += 1;
		Ok(true)
	}

	/// Gives back a slot whose fetch sent nothing.
	fn release(&self, key: &(AccountId, u64)) {
		if let Ok(mut sent) = self.0.lock() {
			if let Some(n) = sent.get_mut(key) {
				*n = n.saturating_sub(1);
				if *n == 0 {
					sent.remove(key);
				}
			}
		}
	}
}

/// How often one validator may fetch one pending record for review (a
/// validator whose first fetch was cut off may ask again).
pub const MAX_REVIEW_FETCHES: u8 = 4;

/// `ehr_getForReview`'s answer when the store holds no document at the
/// record's pointer: the record is missing.
pub const NOT_IN_STORE: i32 = 3;

/// `ehr_getForReview`'s answer when the validator used its fetches of the
/// record: the validator's own doing, not the issuer's.
pub const QUOTA_USED: i32 = 4;

/// Most (validator, record) pairs counted at once; beyond, the counts start
/// over (a memory bound, not a limit honest validators meet).
const MAX_REVIEW_PAIRS: usize = 100_000;

/// Serves until killed.
pub fn serve(o: &super::ServeArgs, store: RecordStore, runtime: tokio::runtime::Handle) -> Result<(), String> {
	let node = o.node.node();
	let genesis = genesis_of(&node)?;
	let submitting = Arc::new(Mutex::new(()));
	let operator = o.signer.signer()?;
	let checks = o.instant.then(|| Arc::new(ReadChecks::new(o.node.node(), AccountId::from(operator.public()))));
	let proxy = match (&o.proxy_seed_file, o.instant) {
		(Some(file), true) => Some(proxy::Proxy::load(file, &node, &AccountId::from(operator.public()))?),
		(Some(_), false) => return Err("--proxy-seed-file needs --instant (fragments are journaled)".into()),
		(None, _) => None,
	};
	let journal = if o.instant {
		let journal = store.journal();
		runtime.block_on(journal.prepare()).map_err(|e| format!("the journal: {e}"))?;
		// Reads journaled before a restart and not logged yet take their
		// share of the blocks they name.
		if let Some(checks) = &checks {
			let pending = runtime.block_on(journal.unlogged(i64::MAX, Duration::ZERO)).map_err(|e| format!("the journal: {e}"))?;
			let counted = pending.iter().filter_map(|r| Some((r.checked_at, AccountId::from_ss58check(&r.accessor).ok()?)));
			checks.count_journaled(counted).map_err(|e| format!("{e:?}"))?;
		}
		let submitter = Submitter {
			node: o.node.node(),
			operator: o.signer.signer()?,
			journal: journal.clone(),
			submitting: submitting.clone(),
			runtime: runtime.clone(),
		};
		let interval = Duration::from_millis(o.log_interval_ms);
		std::thread::spawn(move || submitter.run(interval));
		Some(journal)
	} else {
		None
	};
	let gateway = Gateway {
		node,
		operator,
		genesis,
		submitting,
		journal,
		checks,
		view_age: Duration::from_millis(o.watch_interval_ms.saturating_mul(2)).max(Duration::from_secs(1)),
		proxy,
		store,
		runtime: runtime.clone(),
		seen: Mutex::new(Seen::default()),
		reviews: ReviewAllowance::default(),
	};
	let gateway = Arc::new(gateway);
	if gateway.checks.is_some() {
		let watched = gateway.clone();
		let interval = Duration::from_millis(o.watch_interval_ms);
		let follow_heads = o.follow_heads;
		std::thread::spawn(move || watched.watch(interval, follow_heads));
	}
	let mut module = RpcModule::from_arc(gateway);
	register(&mut module, "ehr_getRecord", "request refused", Gateway::get_record)?;
	register(&mut module, "ehr_getForReview", "review request refused", Gateway::get_for_review)?;
	register(&mut module, "pre_reencrypt", "fragment request refused", Gateway::pre_reencrypt)?;
	runtime.block_on(async {
		let limits = Limits { connections: o.connections.limits(), ..Limits::default() };
		let (addr, handle) = listen(&o.listen, module.into(), limits).await?;
		tracing::info!("serving ehr_getRecord, ehr_getForReview and pre_reencrypt on http://{addr}");
		handle.stopped().await;
		Ok(())
	})
}

/// Registers `method`, answered by `handle`. A refusal's message names the
/// reader and the record (medical metadata), so the log keeps only that a
/// request was refused (`refusal`), and its code.
fn register(
	module: &mut RpcModule<Gateway>,
	method: &'static str,
	refusal: &'static str,
	handle: fn(&Gateway, &Value) -> Result<Value, (i32, String)>,
) -> Result<(), String> {
	module
		.register_blocking_method(method, move |params, gateway, _| {
			let started = std::time::Instant::now();
			let p: Value = params.parse().map_err(|_| error(-32602, "params must be a JSON object".into()))?;
			let answer = handle(&gateway, &p);
			tracing::debug!(method, handled_us = started.elapsed().as_micros() as u64, "answered");
			answer.map_err(|(code, message)| {
				tracing::warn!(code, "{refusal}");
				error(code, message)
			})
		})
		.map(|_| ())
		.map_err(|e| e.to_string())
}

/// The chain's genesis hash (0x hex), which signed requests name.
pub fn genesis_of(node: &Node) -> Result<String, String> {
	Ok(node
		.call("chain_getBlockHash", json!([0]))
		.map_err(|e| format!("cannot read the chain's genesis: {e}"))?
		.as_str()
		.ok_or("the node has no genesis block")?
		.to_string())
}

fn error(code: i32, message: String) -> ErrorObjectOwned {
	ErrorObjectOwned::owned(code, message, None::<()>)
}

/// Serves `methods` as JSON-RPC over HTTP on `listen` (`jsonrpsee`'s server
/// on connections `hyper` serves with `limits`); returns the bound address.
pub async fn listen(listen: &str, methods: Methods, limits: Limits) -> Result<(SocketAddr, ServerHandle), String> {
	let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("{listen}: {e}"))?;
	let addr = listener.local_addr().map_err(|e| e.to_string())?;
	let builder = Server::builder()
		.max_request_body_size(limits.max_request)
		.max_response_body_size(limits.max_response)
		.max_connections(limits.connections.max_connections as u32)
		.http_only()
		.to_service_builder();
	let (stop, handle) = stop_channel();
	serve::accept(listener, limits.connections, move || {
		hyper_util::service::TowerToHyperService::new(builder.clone().build(methods.clone(), stop.clone()))
	});
	Ok((addr, handle))
}

impl Gateway {
	/// Follows the chain on the instant path: takes in each new best block
	/// (its events, which end the answers and grants they touch) and drops
	/// the key fragments of grants that ended, without waiting for the
	/// next request: with `follow_heads`, at each new best block the node
	/// announces (so that requests seldom take a new block in themselves),
	/// and every `interval` whatever the announcements.
	fn watch(&self, interval: Duration, follow_heads: bool) {
		use std::sync::mpsc::RecvTimeoutError;
		let Some(checks) = &self.checks else { return };
		// The announcements, and since when they are followed.
		let mut heads: Option<(std::sync::mpsc::Receiver<()>, std::time::Instant)> = None;
		loop {
			match &heads {
				_ if !follow_heads => std::thread::sleep(interval),
				Some((announced, since)) => match announced.recv_timeout(interval) {
					Ok(()) | Err(RecvTimeoutError::Timeout) => {},
					Err(RecvTimeoutError::Disconnected) => {
						// Followed again at the next turn, at most once an
						// interval (a node that ends every subscription at
						// once is not asked again and again).
						std::thread::sleep(interval.saturating_sub(since.elapsed()));
						heads = None;
					},
				},
				None => match self.node.new_heads() {
					Ok(announced) => heads = Some((announced, std::time::Instant::now())),
					Err(e) => {
						tracing::debug!("following new blocks: {e}");
						std::thread::sleep(interval);
					},
				},
			}
			let best = checks.best();
			if let Err(e) = &best {
				tracing::debug!("watching the chain: {e:?}");
			}
			let ended = checks.take_ended();
			if let Some(proxy) = &self.proxy {
				proxy.forget(&ended, best.ok().map(|(_, n)| n));
			}
		}
	}

	fn get_record(&self, p: &Value) -> Result<Value, (i32, String)> {
		// The connection's clock runs from here on (the request is read):
		// the access log entry must be final well before it ends.
		let log_deadline = std::time::Instant::now() + LOG_WAIT;
		let r = ReadRequest::parse(p)?;
		// 1–2. Signed over this chain, this gateway, the record, the
		// accessor, the purpose and the block (or, asking several servers
		// at once, the grant and this server's ask); fresh; used once.
		let me = self.operator_address();
		let (message, ask) = match asked(p, "ehr_getRecord", &me)? {
			None => (request_message(&self.genesis, &me, r.record, &r.accessor_text, &r.purpose_name, r.block), None),
			Some((asks, ask)) => {
				let grant = r.grant.ok_or_else(|| bad("a request to several servers names its `grant`"))?;
				(bundle_message(&self.genesis, grant, r.record, &r.accessor_text, &r.purpose_name, r.block, &asks), Some(ask))
			},
		};
		if let (Some(checks), Some(journal)) = (&self.checks, &self.journal) {
			return self.get_record_instant(checks, journal, p, &r, (&message, ask.as_ref()), log_deadline);
		}
		let best = self.node.best_number().map_err(|e| unavailable(e.to_string()))?;
		let record = self.checked_request(p, &r.accessor, r.block, (&message, ask.as_ref()), r.record, best)?;
		// 3. Permission, as the chain says now (the access log entry is
		// checked again by the runtime at the block that holds it).
		let grant = match self.reader_grant(&r, &record)? {
			Some(grant) => {
				self.ensure_allowed_now(&r, grant)?;
				Some(grant)
			},
			None => None,
		};
		let pointer = record.pointer.clone().ok_or_else(|| refused(format!("record {} was erased", r.record)))?;
		// 4. The content, checked against the chain's digest.
		let ciphertext = self
			.runtime
			.block_on(self.store.get(pointer.object_id, &record.digest.digest))
			.map_err(|e| unavailable(e.to_string()))?;
		// 5. The audit entry, final before anything is served.
		self.log_first(&r, grant, log_deadline)?;
		// Who read which record is on chain (the access log), not in this log.
		tracing::info!(purpose = ?r.purpose, "record served");
		Ok(json!({
			"record": r.record,
			"ciphertext": hex(&ciphertext),
			"digest": hex(&record.digest.digest),
		}))
	}

	/// `ehr_getRecord` on the instant path: the read checked at the best
	/// block and at the finalized head (remembered by `checks` until a block
	/// that could change the answer), journaled, served at once; logged on
	/// chain by the submitter. A break-glass read is logged first: each is
	/// reviewed, and its grant can be declined between serving and logging.
	fn get_record_instant(
		&self,
		checks: &ReadChecks,
		journal: &journal::Journal,
		p: &Value,
		r: &ReadRequest,
		(message, ask): (&str, Option<&[u8; 32]>),
		log_deadline: std::time::Instant,
	) -> Result<Value, (i32, String)> {
		let started = std::time::Instant::now();
		// The view as it stands (no call to the node): a grantee's read is
		// checked again against the node's best block before it leaves.
		let (_, best) = checks.known_best(r.block, self.view_age).map_err(check_error)?;
		let read_id = self.signed_once(p, &r.accessor, r.block, message, best, ask)?;
		// The index entry as the view holds it (read once per record, until
		// an event changes it).
		let mut record = self.held_here(r.record, checks.record(r.record).map_err(check_error)?)?;
		let grant = self.reader_grant(r, &record)?;
		if grant.is_none() {
			// No last check follows the patient's or the issuer's own read:
			// it is checked against the node's best block now.
			let (_, best) = checks.best().map_err(check_error)?;
			fresh(r.block, best)?;
			record = self.held_here(r.record, checks.record(r.record).map_err(check_error)?)?;
		}
		let pointer = record.pointer.clone().ok_or_else(|| refused(format!("record {} was erased", r.record)))?;
		// Break-glass reads, and reads under a grant whose patient requires
		// audit first, are logged before they are served.
		let log_first = match grant {
			Some(g) => {
				let found = checks.grant(g).map_err(check_error)?.ok_or_else(|| refused(format!("no grant {g}")))?;
				found.emergency || checks.audit_first(g).map_err(check_error)?
			},
			None => false,
		};
		let checked_at = match grant {
			_ if log_first => None,
			None => Some(checks.finalized(&r.accessor).map_err(check_error)?),
			Some(grant) => Some(
				checks
					.allowed(&ReadKey { accessor: r.accessor.clone(), record: r.record, grant, purpose: r.purpose })
					.map_err(check_error)?,
			),
		};
		if log_first {
			if let Some(grant) = grant {
				self.ensure_allowed_now(r, grant)?;
			}
		}
		let checked = started.elapsed();
		let Some(checked_at) = checked_at else {
			// Logged on chain before it is served, so the request is judged
			// fresh against the node's best block, not the view's.
			let (_, best) = checks.best().map_err(check_error)?;
			fresh(r.block, best)?;
			let ciphertext = self
				.runtime
				.block_on(self.store.get(pointer.object_id, &record.digest.digest))
				.map_err(|e| unavailable(e.to_string()))?;
			self.log_first(r, grant, log_deadline)?;
			tracing::info!(purpose = ?r.purpose, "record served (logged first: break-glass or audit first)");
			return Ok(json!({
				"record": r.record,
				"ciphertext": hex(&ciphertext),
				"digest": hex(&record.digest.digest),
			}));
		};
		// Journaled before anything leaves; logged on chain by the submitter.
		let read = JournaledRead {
			read: read_id,
			record: r.record,
			accessor: r.accessor_text.clone(),
			purpose: r.purpose_name.clone(),
			grant,
			checked_at,
			served: journal::Served::Record,
		};
		// The store read and the journal write at once: nothing leaves before
		// both are done, and a read whose ciphertext the store cannot give is
		// withheld (journaled, never logged as served).
		let journaled = std::time::Instant::now();
		let (ciphertext, fresh) = self.runtime.block_on(async {
			futures::join!(
				tokio::time::timeout(STORE_WAIT, self.store.get(pointer.object_id, &record.digest.digest)),
				journal.append(&read)
			)
		});
		journal_fresh(fresh)?;
		let ciphertext = match ciphertext {
			Ok(Ok(ciphertext)) => ciphertext,
			Ok(Err(e)) => {
				self.withhold(journal, &read, STORE_FAILED);
				return Err(unavailable(e.to_string()));
			},
			Err(_) => {
				self.withhold(journal, &read, STORE_LATE);
				return Err(unavailable(format!("the store did not answer within {STORE_WAIT:?}")));
			},
		};
		let last = std::time::Instant::now();
		if let Some(grant) = grant {
			let key = ReadKey { accessor: r.accessor.clone(), record: r.record, grant, purpose: r.purpose };
			if self.still_allowed(checks, journal, (&key, r.block), &read, journaled)? == LastCheck::AuditFirstNow {
				// The patient required audit first since the first check: the
				// journaled read is withheld, and the read logged on chain,
				// final, before the ciphertext leaves.
				self.ensure_allowed_now(r, grant)?;
				self.log_first(r, Some(grant), log_deadline)?;
				tracing::info!(purpose = ?r.purpose, "record served (logged first: audit first required meanwhile)");
				return Ok(json!({
					"record": r.record,
					"ciphertext": hex(&ciphertext),
					"digest": hex(&record.digest.digest),
				}));
			}
		}
		tracing::info!(
			purpose = ?r.purpose,
			check_us = checked.as_micros() as u64,
			store_and_journal_us = (last - journaled).as_micros() as u64,
			last_check_us = last.elapsed().as_micros() as u64,
			"record served (journaled)"
		);
		Ok(json!({
			"record": r.record,
			"ciphertext": hex(&ciphertext),
			"digest": hex(&record.digest.digest),
			"checked_at": checked_at,
		}))
	}

	/// Writes `read` to the journal before anything is served; a read
	/// journaled before is the same signed request, served already (a
	/// replay across a restart, which forgot the requests it had seen).
	fn journal_once(&self, journal: &journal::Journal, read: &JournaledRead) -> Result<(), (i32, String)> {
		journal_fresh(self.runtime.block_on(journal.append(read)))
	}

	/// Marks a journaled read that was not served withheld (for the reason
	/// `why`), so the submitter never logs it as served; a read already
	/// logged stays logged (the trail then holds a read that was not
	/// served, never the other way round). `true` once marked.
	fn withhold(&self, journal: &journal::Journal, read: &JournaledRead, why: &str) -> bool {
		match self.runtime.block_on(journal.withhold(&read.read, why)) {
			Ok(true) => true,
			Ok(false) => {
				tracing::warn!("a read to withhold was already taken by the submitter: it is logged as served");
				false
			},
			Err(e) => {
				tracing::error!("the journal: {e}: a withheld read stays pending");
				false
			},
		}
	}

	/// The last check before a journaled answer leaves, against the best
	/// block as it is now (the first check may have used an older view):
	/// a revocation the node imported while the read was fetched and
	/// journaled stops it, as do a request (signed at block `signed_at`)
	/// grown older than [`FRESHNESS`] blocks and finality lagging. A read
	/// stopped here is marked withheld in the journal (never logged as
	/// served). A read whose patient required audit first since the first
	/// check is withheld too, and [`LastCheck::AuditFirstNow`] returned:
	/// it may be served only once logged on chain.
	fn still_allowed(
		&self,
		checks: &ReadChecks,
		journal: &journal::Journal,
		(key, signed_at): (&ReadKey, u32),
		read: &JournaledRead,
		journaled: std::time::Instant,
	) -> Result<LastCheck, (i32, String)> {
		// Each failure with the reason the journal keeps.
		let again = checks.best().map_err(|e| (e, "not checked again in time")).and_then(|(_, best)| {
			if best.saturating_sub(signed_at) > FRESHNESS {
				let stale = format!("request signed for block {signed_at}, best is {best}: sign a fresh one");
				return Err((CheckError::Refused(stale), "the request grew too old"));
			}
			checks.keeping_up().map_err(|e| (e, "finality lagged"))?;
			checks.still(key).map_err(|e| match e {
				CheckError::Refused(_) => (e, "not allowed any more"),
				CheckError::Unavailable(_) => (e, "not checked again in time"),
			})?;
			checks.audit_first(key.grant).map_err(|e| (e, "not checked again in time"))
		});
		// Past half the submitter's settling time, the entry might be logged
		// before this answer is decided: withheld.
		let again = match again {
			Ok(_) if journaled.elapsed() > SETTLE / 2 => Err((
				CheckError::Unavailable("the last check took too long: nothing served".into()),
				"not checked again in time",
			)),
			other => other,
		};
		match again {
			Ok(false) => Ok(LastCheck::Serve),
			// Served only if the journal no longer holds it pending (else the
			// submitter would log a read served first under audit first).
			Ok(true) if self.withhold(journal, read, AUDIT_FIRST_NOW) => Ok(LastCheck::AuditFirstNow),
			Ok(true) => Err(unavailable("a journaled read could not be withheld".into())),
			Err((e, why)) => {
				self.withhold(journal, read, why);
				Err(check_error(e))
			},
		}
	}

	/// The grant a reader other than the record's patient and issuer reads
	/// under: the one it names (it may hold several that cover the record,
	/// for different purposes), or the first usable one the chain finds.
	/// `None` for the patient and the issuer.
	fn reader_grant(
		&self,
		r: &ReadRequest,
		record: &pallet_ehr_index::Record<Runtime>,
	) -> Result<Option<u64>, (i32, String)> {
		if r.accessor == record.patient || r.accessor == record.issuer {
			return Ok(None);
		}
		if let Some(grant) = r.grant {
			return Ok(Some(grant));
		}
		let grant: Option<u64> = self
			.node
			.runtime_call("ProxyReencryptApi_readable_under", &(r.accessor.clone(), r.record))
			.map_err(|e| unavailable(e.to_string()))?;
		grant.map(Some).ok_or_else(|| refused(format!("{} may not read record {}", r.accessor_text, r.record)))
	}

	/// The chain's read rule itself (`ProxyReencryptApi_purpose_of_read`,
	/// what `log_access` applies) at the best block, before anything is
	/// fetched or logged: the reader's grant, usable, this patient's,
	/// covering the confirmed record, for this purpose, and for an emergency
	/// grant the glass broken for this record.
	fn ensure_allowed_now(&self, r: &ReadRequest, grant: u64) -> Result<(), (i32, String)> {
		let granted: Option<AccessPurpose> = self
			.node
			.runtime_call("ProxyReencryptApi_purpose_of_read", &(r.accessor.clone(), r.record, grant))
			.map_err(|e| unavailable(e.to_string()))?;
		match granted {
			None => Err(refused(format!("grant {grant} does not let {} read record {} now", r.accessor_text, r.record))),
			Some(granted) if granted != r.purpose => {
				Err(refused(format!("grant {grant} is for {granted:?}, not {}", r.purpose_name)))
			},
			Some(_) => Ok(()),
		}
	}

	/// Logs the read on chain, final, before it is served; then, for a read
	/// under a grant, checks the grant again at the node's best block. Its
	/// entry takes seconds to become final (on a parachain, the relay
	/// chain's finality): a revocation imported meanwhile stops the read,
	/// which stays logged (the trail then holds a read that was not served,
	/// never the other way round).
	fn log_first(&self, r: &ReadRequest, grant: Option<u64>, deadline: std::time::Instant) -> Result<(), (i32, String)> {
		self.log_access(r.record, &r.accessor, r.purpose, grant, deadline).map_err(|e| match e {
			LogError::Refused(why) => refused(format!("the chain refused the access log entry: {why}")),
			LogError::Unavailable(why) => unavailable(why),
		})?;
		match grant {
			Some(grant) => self.ensure_allowed_now(r, grant),
			None => Ok(()),
		}
	}

	/// The checks every signed request passes first: `p.signature` is
	/// `signer`'s over `message` (raw or wrapped), `block` is at most
	/// [`FRESHNESS`] blocks behind the best block, the request (its `ask` of
	/// this server, for a request to several) was not used before, and
	/// record `record_id` is on chain and this gateway's institution's.
	/// Returns the record.
	fn checked_request(
		&self,
		p: &Value,
		signer: &AccountId,
		block: u32,
		(message, ask): (&str, Option<&[u8; 32]>),
		record_id: u64,
		best: u32,
	) -> Result<pallet_ehr_index::Record<Runtime>, (i32, String)> {
		self.signed_once(p, signer, block, message, best, ask)?;
		let record: Option<pallet_ehr_index::Record<Runtime>> = self
			.node
			.storage(&Records::<Runtime>::hashed_key_for(record_id))
			.map_err(|e| unavailable(e.to_string()))?;
		self.held_here(record_id, record)
	}

	/// Record `record_id`'s index entry, once it exists and this gateway's
	/// institution issued it.
	fn held_here(
		&self,
		record_id: u64,
		record: Option<pallet_ehr_index::Record<Runtime>>,
	) -> Result<pallet_ehr_index::Record<Runtime>, (i32, String)> {
		let record = record.ok_or_else(|| refused(format!("record {record_id} is not on chain")))?;
		if record.issuer != AccountId::from(self.operator.public()) {
			return Err(refused(format!("record {record_id} is held by another institution's gateway")));
		}
		Ok(record)
	}

	/// A request's read id ([`read_id`]), once its signature is `signer`'s
	/// over `message` (raw or wrapped), `block` is at most [`FRESHNESS`]
	/// blocks behind `best`, and the request (the `ask` of it made of this
	/// server, for a request to several) was not used before.
	fn signed_once(
		&self,
		p: &Value,
		signer: &AccountId,
		block: u32,
		message: &str,
		best: u32,
		ask: Option<&[u8; 32]>,
	) -> Result<[u8; 32], (i32, String)> {
		let signature = unhex(p["signature"].as_str().unwrap_or_default()).map_err(|_| bad("`signature` is not hex"))?;
		let raw: [u8; 64] = signature[..].try_into().map_err(|_| bad("`signature` is not 64 bytes"))?;
		if !signature_proves(message, &raw, signer) {
			return Err(refused("the signature does not prove the signer's account for this chain, gateway and request".into()));
		}
		fresh(block, best)?;
		// Once only: a replayed request is refused while it is fresh.
		let read = read_id(&raw, ask);
		let mut seen = self.seen.lock().map_err(|_| unavailable("gateway state poisoned".into()))?;
		if !first_use(&mut seen, best, block, read) {
			return Err(refused("this signed request was already used: sign a new one".into()));
		}
		Ok(read)
	}

	/// `ehr_getForReview`: a pending record's stored ciphertext, unchecked,
	/// for a validator institution that reviews it.
	fn get_for_review(&self, p: &Value) -> Result<Value, (i32, String)> {
		let record_id = p["record"].as_u64().ok_or_else(|| bad("`record` must be a number"))?;
		let validator_text = p["validator"].as_str().ok_or_else(|| bad("`validator` must be an SS58 address"))?;
		let validator =
			AccountId::from_ss58check(validator_text).map_err(|_| bad("`validator` is not an SS58 address"))?;
		let block = block_number(p)?;
		let message = review_message(&self.genesis, &self.operator_address(), record_id, validator_text, block);
		let best = self.node.best_number().map_err(|e| unavailable(e.to_string()))?;
		let record = self.checked_request(p, &validator, block, (&message, None), record_id, best)?;
		if record.status != pallet_ehr_index::RecordStatus::Pending {
			return Err(refused(format!("record {record_id} is not under review")));
		}
		let institution: Option<pallet_reputation::Institution<Runtime>> = self
			.node
			.storage(&pallet_reputation::Institutions::<Runtime>::hashed_key_for(&validator))
			.map_err(|e| unavailable(e.to_string()))?;
		let is_validator = institution.is_some_and(|i| i.acts_as(medchain_primitives::Role::Validator));
		if !is_validator || validator == record.issuer {
			return Err(refused(format!("{validator_text} does not review record {record_id}")));
		}
		let pointer = record.pointer.ok_or_else(|| refused(format!("record {record_id} was erased")))?;
		// A pointer into another store is not this gateway's to judge: "not
		// here" from it would read as "missing" to the validator.
		if !self.store.holds(&pointer.store_id, &pointer.collection) {
			return Err(refused(format!("record {record_id} is kept in another store than this gateway's")));
		}
		let key = (validator, record_id);
		if !self.reviews.reserve(&key)? {
			return Err((
				QUOTA_USED,
				format!("record {record_id} was sent to this validator {MAX_REVIEW_FETCHES} times already"),
			));
		}
		// Only what was read counts against the validator's allowance.
		let ciphertext = match self.runtime.block_on(self.store.get_unchecked(pointer.object_id)) {
			Ok(bytes) => bytes,
			Err(e) => {
				self.reviews.release(&key);
				return Err(match e {
					medchain_record_store::StoreError::NotFound => {
						(NOT_IN_STORE, format!("record {record_id}: the store holds no document at its pointer"))
					},
					e => unavailable(e.to_string()),
				})
			},
		};
		tracing::info!("record sent for review");
		Ok(json!({ "record": record_id, "ciphertext": hex(&ciphertext) }))
	}

	/// The gateway's institution account, SS58.
	fn operator_address(&self) -> String {
		AccountId::from(self.operator.public()).to_ss58check()
	}

	/// Logs the read on chain and waits until this very transaction is in a
	/// finalized block and succeeded: a read is served only once its entry
	/// can no longer be undone by a fork, and only if the runtime let it in
	/// (the grant still usable at that block: a revocation that landed first
	/// stops it). The entry is submitted again only when it is known dead
	/// (its era ended unincluded, or its nonce went to another transaction
	/// in the finalized chain), so a read is never logged twice; an outcome
	/// still unknown when the wait ends serves nothing.
	fn log_access(
		&self,
		record_id: u64,
		accessor: &AccountId,
		purpose: AccessPurpose,
		grant: Option<u64>,
		deadline: std::time::Instant,
	) -> Result<(), LogError> {
		let call = RuntimeCall::EhrIndex(pallet_ehr_index::Call::log_access {
			record_id,
			accessor: accessor.clone(),
			purpose,
			grant,
		});
		for _ in 0..3 {
			let wait = deadline.saturating_duration_since(std::time::Instant::now());
			if wait.is_zero() {
				break;
			}
			let (_, outcome) =
				self.node.send_in_turn(&self.operator, call.clone(), wait, &self.submitting).map_err(|e| match e {
					// Lost nonce races past every retry: try again later.
					RpcError::Node(why) if medchain_chain_client::sign_again_cures(&why) => {
						LogError::Unavailable(why)
					},
					// The pool's own words (fees, validity) go to the log only.
					RpcError::Node(why) => {
						tracing::warn!("the node refused the access log entry: {why}");
						LogError::Refused("the node refused the transaction".into())
					},
					other => LogError::Unavailable(other.to_string()),
				})?;
			match outcome {
				Outcome::Finalized { dispatch: Some(Dispatch::Success), .. } => return Ok(()),
				Outcome::Finalized { dispatch: Some(Dispatch::Failed(why)), .. } => return Err(LogError::Refused(why)),
				Outcome::Dead(why) => tracing::warn!("access log entry dead ({why}); submitting again"),
				other => {
					return Err(LogError::Unavailable(format!("access log entry not final: {other:?}; nothing served")))
				},
			}
		}
		Err(LogError::Unavailable("the access log entry did not reach the chain; nothing served".into()))
	}
}

/// Logs the journal's pending reads on chain, in batches, in the background.
struct Submitter {
	node: Node,
	operator: sr25519::Pair,
	journal: journal::Journal,
	/// Shared with the gateway's own submissions (one nonce at a time).
	submitting: Arc<Mutex<()>>,
	runtime: tokio::runtime::Handle,
}

/// Most reads one `log_reads` carries (the runtime's `MaxReadsPerLog`).
pub const MAX_READS_PER_LOG: i64 = 32;

/// How long the instant path waits for the store while its journal entry
/// is written: well inside [`SETTLE`], so that a read the store does not
/// give is withheld long before the submitter could log it.
const STORE_WAIT: Duration = Duration::from_millis(2_500);

/// Why a journaled read was withheld when the store failed to give its
/// ciphertext.
const STORE_FAILED: &str = "the store did not give the ciphertext";

/// Why a journaled read was withheld when the store gave no answer within
/// [`STORE_WAIT`].
const STORE_LATE: &str = "the store did not answer in time";

/// How long a journaled read waits before the submitter logs it: longer
/// than its server may take from the journal write to the answer (the
/// write itself under load, then one more check against the best block; a
/// server past half of it withholds the read), so a read withheld then is
/// never logged.
const SETTLE: Duration = Duration::from_secs(10);

/// How long the submitter waits for one batch to be final.
const SUBMIT_WAIT: Duration = Duration::from_secs(60);

impl Submitter {
	/// Every `interval`, logs what is pending; never returns.
	fn run(self, interval: Duration) {
		loop {
			std::thread::sleep(interval);
			if let Err(e) = self.submit_pending() {
				tracing::warn!("journal: {e}; trying again");
			}
		}
	}

	/// Takes up to [`MAX_READS_PER_LOG`] reads from the journal (no server
	/// withholds them after that), logs them in one transaction and marks
	/// them logged once final. If the chain refuses the batch (all or
	/// nothing), each read is tried alone, and one refused alone is marked
	/// refused (an alarm: it was served). Anything not known to be final
	/// stays taken and is submitted again later: the runtime logs a read
	/// once.
	fn submit_pending(&self) -> Result<(), String> {
		let pending = self.runtime.block_on(self.journal.take(MAX_READS_PER_LOG, SETTLE)).map_err(|e| e.to_string())?;
		if pending.is_empty() {
			return Ok(());
		}
		let (good, bad): (Vec<_>, Vec<_>) = pending.into_iter().map(|r| (entry_of(&r), r)).partition(|(e, _)| e.is_some());
		if !bad.is_empty() {
			let ids: Vec<[u8; 32]> = bad.iter().map(|(_, r)| r.read).collect();
			tracing::warn!(count = ids.len(), "journal entries that do not parse: marked refused");
			self.mark(&ids, journal::state::REFUSED, "unreadable journal entry")?;
		}
		let batch: Vec<(pallet_ehr_index::ReadEntry<AccountId, u32>, [u8; 32])> =
			good.into_iter().filter_map(|(e, r)| e.map(|e| (e, r.read))).collect();
		match self.log(batch.iter().map(|(e, _)| e.clone()).collect())? {
			Some(Ok(block)) => self.mark(&batch.iter().map(|(_, id)| *id).collect::<Vec<_>>(), journal::state::LOGGED, &block),
			Some(Err(why)) if batch.len() > 1 => {
				tracing::warn!("the chain refused a batch of reads ({why}); logging them one by one");
				for (entry, id) in batch {
					match self.log(vec![entry])? {
						Some(Ok(block)) => self.mark(&[id], journal::state::LOGGED, &block)?,
						Some(Err(why)) => self.refused(id, &why)?,
						None => {},
					}
				}
				Ok(())
			},
			Some(Err(why)) => batch.iter().try_for_each(|(_, id)| self.refused(*id, &why)),
			None => Ok(()),
		}
	}

	/// Submits `entries`; `Some(Ok(block))` once final and logged,
	/// `Some(Err(why))` once final and refused, `None` if not known (yet).
	fn log(&self, entries: Vec<pallet_ehr_index::ReadEntry<AccountId, u32>>) -> Result<Option<Result<String, String>>, String> {
		let call = RuntimeCall::EhrIndex(pallet_ehr_index::Call::log_reads {
			entries: entries.try_into().map_err(|_| "too many reads for one call")?,
		});
		let outcome = match self.node.send_in_turn(&self.operator, call, SUBMIT_WAIT, &self.submitting) {
			Ok((_, outcome)) => outcome,
			Err(e) => {
				tracing::warn!("journal: the node did not take the batch: {e}");
				return Ok(None);
			},
		};
		Ok(match outcome {
			Outcome::Finalized { block, dispatch: Some(Dispatch::Success) } => Some(Ok(hex(block.as_bytes()))),
			Outcome::Finalized { dispatch: Some(Dispatch::Failed(why)), .. } => Some(Err(why)),
			_ => None,
		})
	}

	fn mark(&self, ids: &[[u8; 32]], state: &str, detail: &str) -> Result<(), String> {
		self.runtime.block_on(self.journal.mark(ids, state, detail)).map_err(|e| e.to_string())
	}

	fn refused(&self, id: [u8; 32], why: &str) -> Result<(), String> {
		// The reader and the record are in the journal; the log says only
		// that a served read could not be logged.
		tracing::error!("a served read was refused by the chain ({why}): see the journal");
		self.mark(&[id], journal::state::REFUSED, why)
	}
}

/// The journal's reason for a read withheld at the last check because the
/// patient required audit first since the first check: at a gateway it is
/// then served only once logged on chain first.
const AUDIT_FIRST_NOW: &str = "the patient requires audit first now";

/// What the last check before a journaled answer leaves decided.
#[derive(Debug, PartialEq, Eq)]
enum LastCheck {
	/// Still allowed: the journaled answer leaves.
	Serve,
	/// Allowed, but the patient required audit first since the first
	/// check: the journaled read was withheld; only a read logged on chain
	/// first may be served.
	AuditFirstNow,
}

/// Refuses a request signed at block `block` once `best` is more than
/// [`FRESHNESS`] blocks past it, or before it.
fn fresh(block: u32, best: u32) -> Result<(), (i32, String)> {
	if block > best || best - block > FRESHNESS {
		return Err(refused(format!("request signed for block {block}, best is {best}: sign a fresh one")));
	}
	Ok(())
}

/// A journal append's outcome as the reader is answered: a read journaled
/// before is the same signed request, served already (a replay across a
/// restart, which forgot the requests it had seen).
fn journal_fresh<E: std::fmt::Display>(appended: Result<bool, E>) -> Result<(), (i32, String)> {
	match appended {
		Ok(true) => Ok(()),
		Ok(false) => Err(refused("this signed request was already used: sign a new one".into())),
		Err(e) => Err(unavailable(format!("the journal: {e}; nothing served"))),
	}
}

/// The chain's entry for a journaled read, if it parses.
fn entry_of(r: &JournaledRead) -> Option<pallet_ehr_index::ReadEntry<AccountId, u32>> {
	Some(pallet_ehr_index::ReadEntry {
		read: sp_core::H256(r.read),
		record_id: r.record,
		accessor: AccountId::from_ss58check(&r.accessor).ok()?,
		purpose: purpose(&r.purpose)?,
		grant: r.grant,
		checked_at: r.checked_at,
		served: match r.served {
			journal::Served::Record => pallet_ehr_index::Served::Record,
			journal::Served::KeyFragment => pallet_ehr_index::Served::KeyFragment,
		},
	})
}

/// A read's id: `blake2_256(signature)` for a request to this server
/// alone; `blake2_256(signature ‖ blake2_256(ask))`, `ask` this server's
/// [`ask`], for a request to several servers at once (one signature, one
/// read per ask).
fn read_id(signature: &[u8; 64], ask: Option<&[u8; 32]>) -> [u8; 32] {
	let mut signed = signature.to_vec();
	if let Some(ask) = ask {
		signed.extend_from_slice(ask);
	}
	blake2_256(&signed)
}

/// BLAKE2-256 of `bytes`.
fn blake2_256(bytes: &[u8]) -> [u8; 32] {
	medchain_record_store::Digests::digest(&medchain_record_store::DigestAlgorithm::Blake2_256, bytes)
}

/// What `ehr_getRecord` asks for.
struct ReadRequest {
	record: u64,
	accessor_text: String,
	accessor: AccountId,
	block: u32,
	purpose_name: String,
	purpose: AccessPurpose,
	/// The grant the reader names, if it names one.
	grant: Option<u64>,
}

impl ReadRequest {
	fn parse(p: &Value) -> Result<Self, (i32, String)> {
		let accessor_text = p["accessor"].as_str().ok_or_else(|| bad("`accessor` must be an SS58 address"))?;
		let purpose_name = p["purpose"].as_str().unwrap_or("PatientView");
		Ok(ReadRequest {
			record: p["record"].as_u64().ok_or_else(|| bad("`record` must be a number"))?,
			accessor: AccountId::from_ss58check(accessor_text).map_err(|_| bad("`accessor` is not an SS58 address"))?,
			accessor_text: accessor_text.to_string(),
			block: block_number(p)?,
			purpose: purpose(purpose_name).ok_or_else(|| bad("unknown `purpose`"))?,
			purpose_name: purpose_name.to_string(),
			grant: match &p["grant"] {
				Value::Null => None,
				named => Some(named.as_u64().ok_or_else(|| bad("`grant` must be a grant id"))?),
			},
		})
	}
}

/// A read check's failure as the gateway answers it.
fn check_error(e: CheckError) -> (i32, String) {
	match e {
		CheckError::Refused(why) => refused(why),
		CheckError::Unavailable(why) => unavailable(why),
	}
}

/// How long the gateway waits, over all its attempts, for its access log
/// entry to be final: less than a connection may last, so no read is logged
/// after its reader was cut off.
pub const LOG_WAIT: Duration = Duration::from_secs(90);

/// Why an access log entry is not on chain.
enum LogError {
	/// The node or the runtime refused it: the read is not allowed.
	Refused(String),
	/// Its fate is not known (yet): nothing is served, the caller may retry.
	Unavailable(String),
}

/// The message an accessor signs to read `record` through the gateway of
/// `gateway` (SS58) on the chain with genesis hash `genesis` (0x hex), for
/// `purpose`, at `block`: a signature for one chain, gateway, record or
/// purpose proves nothing for another.
pub fn request_message(genesis: &str, gateway: &str, record: u64, accessor: &str, purpose: &str, block: u32) -> String {
	format!("medchain-ehr-get:v2:{genesis}:{gateway}:{record}:{accessor}:{purpose}:{block}")
}

/// Most servers one signed request may ask at once: the record's gateway
/// and a grant's proxies.
pub const MAX_ASKS: usize = 16;

/// The message a grantee `accessor` (SS58) signs once to ask several
/// servers at once on the instant path, for `record` under `grant`, for
/// `purpose`, at `block`, on the chain with genesis hash `genesis`: the
/// record's gateway for its ciphertext and each of the grant's proxies for
/// a key fragment. `asks` are the servers' [`ask`]s, in the grantee's order,
/// each naming its method and server in clear (what a wallet shows). Each
/// server is sent the list and only its own salt: it proves that it was
/// asked, and cannot pass the request on as another server's (it would
/// have to name that server's salt).
pub fn bundle_message(
	genesis: &str,
	grant: u64,
	record: u64,
	accessor: &str,
	purpose: &str,
	block: u32,
	asks: &[String],
) -> String {
	format!("medchain-instant:v1:{genesis}:{grant}:{record}:{accessor}:{purpose}:{block}:{}", asks.join(","))
}

/// One server's part of a request to several: `<method>@<server
/// SS58>#<digest>`, the digest BLAKE2-256 (0x hex) of
/// `<method>:<server SS58>:<salt>`, the salt 16 random bytes in lowercase
/// 0x hex, a new one for each ask.
pub fn ask(method: &str, server: &str, salt: &str) -> String {
	format!("{method}@{server}#{}", hex(&blake2_256(format!("{method}:{server}:{salt}").as_bytes())))
}

/// Longest ask accepted: a method, an SS58 address and a digest.
const MAX_ASK_LEN: usize = 160;

/// A request to several servers as this server (`me`, SS58) reads it for
/// `method`: the asks the grantee signed and this server's own, or `None`
/// for a request to this server alone (it carries no `asks`).
fn asked(p: &Value, method: &str, me: &str) -> Result<Option<(Vec<String>, [u8; 32])>, (i32, String)> {
	let Some(list) = p.get("asks").filter(|a| !a.is_null()) else {
		return Ok(None);
	};
	let is_hex = |s: &str, bytes: usize| {
		s.len() == 2 + 2 * bytes &&
			s.starts_with("0x") &&
			s[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
	};
	// `<method>@<SS58>#<0x digest>`: nothing that could split the signed
	// list differently (no `,`), and a digest of the right length.
	let well_formed = |a: &str| {
		a.len() <= MAX_ASK_LEN &&
			a.split_once('#').is_some_and(|(to, digest)| {
				is_hex(digest, 32) &&
					to.split_once('@').is_some_and(|(m, server)| {
						!m.is_empty() &&
							m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') &&
							!server.is_empty() && server.bytes().all(|b| b.is_ascii_alphanumeric())
					})
			})
	};
	let asks: Vec<String> = list
		.as_array()
		.filter(|a| (1..=MAX_ASKS).contains(&a.len()))
		.ok_or_else(|| bad("`asks` must list 1 to 16 servers' asks"))?
		.iter()
		.map(|a| a.as_str().filter(|a| well_formed(a)).map(str::to_string))
		.collect::<Option<_>>()
		.ok_or_else(|| bad("each of `asks` must be `<method>@<server SS58>#<32 bytes of lowercase 0x hex>`"))?;
	let salt =
		p["salt"].as_str().filter(|s| is_hex(s, 16)).ok_or_else(|| bad("`salt` must be 16 bytes of lowercase 0x hex"))?;
	let own = ask(method, me, salt);
	if !asks.contains(&own) {
		return Err(refused(format!("this request does not ask this server ({me}) for {method}")));
	}
	Ok(Some((asks, blake2_256(own.as_bytes()))))
}

/// The message a validator institution `validator` (SS58) signs to review
/// pending record `record` at the gateway of `gateway` (SS58) on the chain
/// with genesis hash `genesis`, at `block`.
pub fn review_message(genesis: &str, gateway: &str, record: u64, validator: &str, block: u32) -> String {
	format!("medchain-ehr-review:v1:{genesis}:{gateway}:{record}:{validator}:{block}")
}

/// Whether `signature` is `accessor`'s sr25519 signature of `message`, raw
/// or wrapped in `<Bytes>…</Bytes>` as browser wallets sign.
fn signature_proves(message: &str, signature: &[u8; 64], accessor: &AccountId) -> bool {
	let signature = sr25519::Signature::from_raw(*signature);
	let public = sr25519::Public::from_raw(accessor.clone().into());
	let wrapped = format!("<Bytes>{message}</Bytes>");
	sr25519::Pair::verify(&signature, message.as_bytes(), &public) ||
		sr25519::Pair::verify(&signature, wrapped.as_bytes(), &public)
}

/// Requests already served (their read ids), by the block they were signed
/// for, and the highest best block any request was checked against.
#[derive(Default)]
struct Seen {
	high: u32,
	requests: BTreeMap<(u32, [u8; 32]), ()>,
}

/// Records the request signed for `block` with read id `read`; whether it is
/// new and still fresh. Freshness is judged against the highest best block
/// seen so far, not the caller's (which may be older): a request older than
/// [`FRESHNESS`] blocks behind it is refused, and only such requests are
/// forgotten, so no forgotten request can come back.
fn first_use(seen: &mut Seen, best: u32, block: u32, read: [u8; 32]) -> bool {
	seen.high = seen.high.max(best);
	let oldest = seen.high.saturating_sub(FRESHNESS);
	if block < oldest {
		return false;
	}
	seen.requests = seen.requests.split_off(&(oldest, [0u8; 32]));
	seen.requests.insert((block, read), ()).is_none()
}

/// A malformed request (JSON-RPC "invalid params").
fn bad(message: &str) -> (i32, String) {
	(-32602, message.to_string())
}

/// A request the chain or the gateway's rules do not allow.
fn refused(message: String) -> (i32, String) {
	(1, message)
}

/// The store or the node failed: what went wrong inside (addresses, driver
/// state) is logged here, not handed to the caller.
fn unavailable(inside: String) -> (i32, String) {
	tracing::error!("store or node unavailable: {inside}");
	(2, "the record store or its chain node is unavailable; try again later".to_string())
}

/// The request's `block`: a block number (u32), or a clear error.
fn block_number(p: &Value) -> Result<u32, (i32, String)> {
	p["block"]
		.as_u64()
		.and_then(|b| u32::try_from(b).ok())
		.ok_or_else(|| bad("`block` must be a block number"))
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

#[cfg(test)]
mod tests {
	use super::*;
	use std::{
		io::{Read, Write},
		net::TcpStream,
	};

	fn limits() -> Limits {
		Limits {
			max_request: 1024,
			max_response: 1 << 20,
			connections: ConnectionLimits {
				max_connections: 4,
				max_per_client: 4,
				header_timeout: Duration::from_secs(1),
				connection_timeout: Duration::from_secs(3),
			},
		}
	}

	/// A server with the gateway's limits and one method, `echo`.
	async fn echo_server() -> SocketAddr {
		let mut module = RpcModule::new(());
		module
			.register_method("echo", |params, _, _| params.parse::<Value>().map_err(|_| error(-32602, "bad".into())))
			.expect("one method");
		let (addr, handle) = listen("127.0.0.1:0", module.into(), limits()).await.expect("a free port");
		// Serves until the test's runtime ends.
		std::mem::forget(handle);
		addr
	}

	/// Sends `request` raw and reads until the server closes the connection
	/// (the socket gives up after 10 s, which fails the caller's checks).
	fn exchange(addr: SocketAddr, request: &[u8], then_stall: bool) -> std::io::Result<String> {
		let mut stream = TcpStream::connect(addr)?;
		stream.set_read_timeout(Some(Duration::from_secs(10)))?;
		stream.write_all(request)?;
		if !then_stall {
			stream.flush()?;
		}
		let mut response = Vec::new();
		stream.read_to_end(&mut response)?;
		Ok(String::from_utf8_lossy(&response).into_owned())
	}

	fn post(body: &str) -> Vec<u8> {
		format!(
			"POST / HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
			body.len()
		)
		.into_bytes()
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn an_honest_request_is_answered() {
		let addr = echo_server().await;
		let body = r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"record":7}}"#;
		let response = tokio::task::spawn_blocking(move || exchange(addr, &post(body), false)).await.unwrap().unwrap();
		assert!(response.starts_with("HTTP/1.1 200"), "{response}");
		assert!(response.contains(r#""result":{"record":7}"#), "{response}");
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn an_oversized_body_is_refused_with_413() {
		let addr = echo_server().await;
		let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"echo","params":["{}"]}}"#, "x".repeat(4096));
		let response = tokio::task::spawn_blocking(move || exchange(addr, &post(&body), false)).await.unwrap().unwrap();
		assert!(response.starts_with("HTTP/1.1 413"), "{response}");
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn a_client_that_never_finishes_its_headers_is_cut_off() {
		let addr = echo_server().await;
		let partial = b"POST / HTTP/1.1\r\nHost: gateway\r\n".to_vec();
		// `read_to_end` returns once the server closes; a server that waited
		// for ever would leave the socket's 10 s timeout to fail it.
		let response = tokio::task::spawn_blocking(move || exchange(addr, &partial, true)).await.unwrap();
		let response = response.expect("the server closed the connection");
		assert!(!response.contains("200 OK"), "{response}");
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn a_client_trickling_its_body_is_cut_off() {
		let addr = echo_server().await;
		// Headers promise 100 bytes; 10 come, then nothing.
		let mut request = post(&"y".repeat(100));
		request.truncate(request.len() - 90);
		let response = tokio::task::spawn_blocking(move || exchange(addr, &request, true)).await.unwrap();
		let response = response.expect("the server closed the connection");
		assert!(!response.contains("200 OK"), "{response}");
	}

	#[test]
	fn a_request_signed_for_another_gateway_chain_or_purpose_proves_nothing() {
		let doctor = sr25519::Pair::from_string("//Eve", None).expect("dev key");
		let who = AccountId::from(doctor.public());
		let me = who.to_ss58check();
		let genesis = "0x0101";
		let signed = request_message(genesis, "gateway-a", 7, &me, "Treatment", 100);
		let signature = doctor.sign(signed.as_bytes()).0;
		assert!(signature_proves(&signed, &signature, &who));
		// A browser wallet's wrapping is accepted too.
		let wrapped = doctor.sign(format!("<Bytes>{signed}</Bytes>").as_bytes()).0;
		assert!(signature_proves(&signed, &wrapped, &who));
		for other in [
			request_message(genesis, "gateway-b", 7, &me, "Treatment", 100),
			request_message("0x0202", "gateway-a", 7, &me, "Treatment", 100),
			request_message(genesis, "gateway-a", 8, &me, "Treatment", 100),
			request_message(genesis, "gateway-a", 7, &me, "Research", 100),
			request_message(genesis, "gateway-a", 7, &me, "Treatment", 101),
			format!("medchain-ehr-get:7:{me}:100"),
		] {
			assert!(!signature_proves(&other, &signature, &who), "{other}");
		}
		let stranger = AccountId::from(sr25519::Pair::from_string("//Ferdie", None).expect("dev key").public());
		assert!(!signature_proves(&signed, &signature, &stranger));
	}

	#[test]
	fn the_gateway_gives_up_on_its_log_entry_before_the_connection_ends() {
		// Otherwise an entry could land after the reader was cut off: a read
		// on chain that nobody received.
		assert!(LOG_WAIT < Limits::default().connections.connection_timeout);
	}

	#[test]
	fn parallel_review_fetches_cannot_exceed_the_allowance() {
		let allowance = std::sync::Arc::new(ReviewAllowance::default());
		let key = (AccountId::from([7; 32]), 3u64);
		let granted: usize = (0..16)
			.map(|_| {
				let (allowance, key) = (allowance.clone(), key.clone());
				std::thread::spawn(move || allowance.reserve(&key).unwrap())
			})
			.collect::<Vec<_>>()
			.into_iter()
			.map(|t| t.join().unwrap() as usize)
			.sum();
		assert_eq!(granted, MAX_REVIEW_FETCHES as usize, "16 fetches at once");
		// A fetch whose read failed gives its slot back; another record or
		// validator has its own slots.
		allowance.release(&key);
		assert!(allowance.reserve(&key).unwrap());
		assert!(!allowance.reserve(&key).unwrap());
		assert!(allowance.reserve(&(AccountId::from([7; 32]), 4)).unwrap());
		assert!(allowance.reserve(&(AccountId::from([8; 32]), 3)).unwrap());
	}

	#[test]
	fn a_server_cannot_pass_a_request_to_several_servers_on_as_another_servers() {
		let doctor = sr25519::Pair::from_string("//Eve", None).expect("dev key");
		let who = AccountId::from(doctor.public());
		let me = who.to_ss58check();
		let (gateway_salt, proxy_salt) = (format!("0x{}", "1f".repeat(16)), format!("0x{}", "a2".repeat(16)));
		let (gateway, proxy) = (AccountId::from([1; 32]).to_ss58check(), AccountId::from([2; 32]).to_ss58check());
		let (gateway, proxy) = (gateway.as_str(), proxy.as_str());
		let asks = vec![ask("ehr_getRecord", gateway, &gateway_salt), ask("pre_reencrypt", proxy, &proxy_salt)];
		// What the wallet shows: each server and what it is asked for.
		assert!(asks[0].starts_with(&format!("ehr_getRecord@{gateway}#0x")));
		let sent = |salt: &str| json!({ "asks": asks, "salt": salt });
		// Each server finds its own ask.
		let (listed, gateway_ask) = asked(&sent(&gateway_salt), "ehr_getRecord", gateway).unwrap().unwrap();
		assert_eq!(listed, asks);
		assert_eq!(gateway_ask, blake2_256(asks[0].as_bytes()));
		let (_, proxy_ask) = asked(&sent(&proxy_salt), "pre_reencrypt", proxy).unwrap().unwrap();
		// The proxy passes the grantee's request on to the gateway, with the
		// salt it was sent: not an ask of the gateway, for the record or for
		// a key fragment of the gateway's own proxy.
		let refusal = refused(String::new()).0;
		assert_eq!(asked(&sent(&proxy_salt), "ehr_getRecord", gateway).unwrap_err().0, refusal);
		assert_eq!(asked(&sent(&proxy_salt), "pre_reencrypt", gateway).unwrap_err().0, refusal);
		// The gateway's ask is for the record, not for a key fragment.
		assert_eq!(asked(&sent(&gateway_salt), "pre_reencrypt", gateway).unwrap_err().0, refusal);
		// A request to this server alone carries no asks.
		assert!(asked(&json!({ "record": 7 }), "ehr_getRecord", gateway).unwrap().is_none());
		// The signature covers every ask, the grant, record, purpose, block
		// and chain: a list with an ask dropped or swapped proves nothing.
		let signed = bundle_message("0x01", 3, 7, &me, "Treatment", 100, &asks);
		let signature = doctor.sign(signed.as_bytes()).0;
		assert!(signature_proves(&signed, &signature, &who));
		let swapped = vec![asks[1].clone(), asks[0].clone()];
		for other in [
			bundle_message("0x01", 3, 7, &me, "Treatment", 100, &asks[..1]),
			bundle_message("0x01", 3, 7, &me, "Treatment", 100, &swapped),
			bundle_message("0x02", 3, 7, &me, "Treatment", 100, &asks),
			bundle_message("0x01", 4, 7, &me, "Treatment", 100, &asks),
			bundle_message("0x01", 3, 8, &me, "Treatment", 100, &asks),
			bundle_message("0x01", 3, 7, &me, "Research", 100, &asks),
			bundle_message("0x01", 3, 7, &me, "Treatment", 101, &asks),
			request_message("0x01", gateway, 7, &me, "Treatment", 100),
		] {
			assert!(!signature_proves(&other, &signature, &who), "{other}");
		}
		// One signature, one read per ask: the gateway's and the proxy's
		// reads of it have their own ids, neither that of a request to one
		// server.
		let ids = [read_id(&signature, Some(&gateway_ask)), read_id(&signature, Some(&proxy_ask)), read_id(&signature, None)];
		assert!(ids[0] != ids[1] && ids[0] != ids[2] && ids[1] != ids[2]);
		// Malformed or oversized lists and salts are refused as bad input.
		let invalid = bad("").0;
		let many = vec![asks[0].clone(); MAX_ASKS + 1];
		for p in [
			json!({ "asks": [], "salt": gateway_salt }),
			json!({ "asks": many, "salt": gateway_salt }),
			json!({ "asks": "0x00", "salt": gateway_salt }),
			json!({ "asks": [asks[0].replace("#0x", "#0X")], "salt": gateway_salt }),
			json!({ "asks": [&asks[0][..asks[0].len() - 2]], "salt": gateway_salt }),
			json!({ "asks": [format!("{},{}", asks[0], asks[1])], "salt": gateway_salt }),
			// Well formed but too long: only the length refuses it.
			json!({ "asks": [format!("x@{}#0x{}", "a".repeat(MAX_ASK_LEN), "0".repeat(64))], "salt": gateway_salt }),
			json!({ "asks": [asks[0].replace('@', ":")], "salt": gateway_salt }),
			json!({ "asks": asks, "salt": "0x1f1f" }),
			json!({ "asks": asks }),
		] {
			assert_eq!(asked(&p, "ehr_getRecord", gateway).unwrap_err().0, invalid, "{p}");
		}
	}

	#[test]
	fn an_ask_is_byte_for_byte_what_the_grantees_client_sends() {
		// Pinned in tests/e2e/instant-client.test.mjs too (`ASK_VECTOR`).
		let proxy = sr25519::Pair::from_string("//A", None).expect("dev key");
		let proxy = AccountId::from(proxy.public()).to_ss58check();
		assert_eq!(
			ask("pre_reencrypt", &proxy, &format!("0x{}", "1f".repeat(16))),
			"pre_reencrypt@5HKahGmFjQDV7wseA3J33646dc71WRvoJ72KSHPAN1kCYqki\
			 #0xda788f3ab6df3f8be8cc110367d114837f35927a836936d5de627acdd3f6592c"
		);
	}

	#[test]
	fn a_request_is_fresh_from_its_block_for_freshness_blocks_and_never_before() {
		assert!(fresh(100, 100).is_ok());
		assert!(fresh(100, 100 + FRESHNESS).is_ok());
		assert!(fresh(100, 100 + FRESHNESS + 1).unwrap_err().1.contains("sign a fresh one"));
		assert!(fresh(101, 100).unwrap_err().1.contains("request signed for block 101, best is 100"));
	}

	#[test]
	fn a_replayed_request_is_refused_while_it_is_fresh() {
		let mut seen = Seen::default();
		assert!(first_use(&mut seen, 100, 95, [1; 32]));
		assert!(!first_use(&mut seen, 101, 95, [1; 32]), "the same signed request again");
		assert!(first_use(&mut seen, 101, 95, [2; 32]), "a new signature for the same read is fine");
		// Once the request is older than the freshness window it is
		// forgotten; the freshness check refuses it by then.
		assert!(first_use(&mut seen, 95 + FRESHNESS + 1, 100, [3; 32]));
		assert!(!seen.requests.contains_key(&(95, [1; 32])));
		assert!(seen.requests.contains_key(&(100, [3; 32])));
		// A forgotten request replayed by a caller that read an older best
		// block (a slower request, a node behind) is still refused.
		assert!(!first_use(&mut seen, 101, 95, [1; 32]), "replay after pruning, judged by the highest best block");
	}
}
