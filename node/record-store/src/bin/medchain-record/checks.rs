//! The instant path's view of the chain: whether the chain lets a reader
//! read a record under a grant, at the best block and at the finalized head,
//! remembered until a block that could change the answer.
//!
//! Asking the runtime twice per request (`ProxyReencryptApi_purpose_of_read`
//! at the best block and at the finalized head) costs milliseconds on a
//! release node and far more on a busy or debug one. A gateway or proxy on
//! the instant path asks once per (reader, record, grant, purpose) and keeps
//! the *allowed* answers (never a refusal) while nothing that could end them
//! happens. A request's first check uses the view as it stands, if the node
//! was asked for its best block within about a second (or twice the
//! gateway's `--watch-interval-ms`) and the view holds the block the request
//! was signed at; its last check, before anything leaves, reads the best
//! block's hash (one cheap RPC). If the best block moved on, it reads the
//! events of every new block and forgets everything it knew at the first
//! event not known to be harmless (a revocation, a decline, a dispute, an
//! erasure, a suspension, a runtime upgrade), at an event it cannot decode, at a block whose runtime
//! is not the one this tool was built with, or at a reorganisation. Grants
//! that end without an event (expiry) are kept only while the best block is
//! before their end, and an answer is asked again once it is
//! [`RECHECK_AFTER`] blocks old.
//!
//! Every change that turns an allowed read into a refused one is for good
//! (a revocation, a decline, a dispute, an erasure, an expiry), so a read
//! the chain allowed at finalized block `F` and allows at the best block is
//! allowed at every block between: the block an entry names (`checked_at`)
//! is the newest of them where this server has not yet used the runtime's
//! `MaxReadsPerCheckedBlock` (256 reads per server and block), so no read it
//! serves is refused for that when it is logged.
//!
//! The server itself must be an active institution at the best block
//! (`log_reads` refuses a suspended one's entries): a suspended server
//! serves nothing.

use medchain_chain_client::{hex, Node, RpcError};
use medchain_runtime::{AccountId, Runtime, RuntimeEvent};
use pallet_ehr_index::AccessPurpose;
use sp_core::H256;
use std::{
	collections::{BTreeMap, HashMap},
	sync::Mutex,
};

/// The runtime API the read checks ask.
const PURPOSE_OF_READ: &str = "ProxyReencryptApi_purpose_of_read";

/// Blocks after which an allowed answer is asked again.
pub const RECHECK_AFTER: u32 = 50;

/// How far back the view follows the chain block by block; a longer gap
/// (or a reorganisation) forgets everything.
const MAX_WALK: u32 = 32;

/// How far the finalized head may lag behind the best block for the
/// instant path to serve (a tenth of the runtime's `MaxLogDelay`, an hour).
pub const MAX_FINALITY_LAG: u32 = 60;

/// The runtime's `MaxReadsPerCheckedBlock`: reads one server may log as
/// checked at one block.
pub const MAX_READS_PER_CHECKED_BLOCK: u32 = 256;

/// Reads one reader may take of one block's [`MAX_READS_PER_CHECKED_BLOCK`]
/// at one server.
pub const MAX_READS_PER_READER: u32 = 32;

/// Most answers, grants and flags kept at once; beyond, they are forgotten
/// (a memory bound, not a limit honest readers meet).
const MAX_KEPT: usize = 100_000;

/// A read the chain was asked about.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReadKey {
	/// The reader.
	pub accessor: AccountId,
	/// The record.
	pub record: u64,
	/// The grant named.
	pub grant: u64,
	/// The purpose asked for.
	pub purpose: AccessPurpose,
}

impl std::hash::Hash for ReadKey {
	fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
		self.accessor.hash(state);
		self.record.hash(state);
		self.grant.hash(state);
		codec::Encode::encode(&self.purpose).hash(state);
	}
}

/// Why a read is not served.
#[derive(Debug)]
pub enum CheckError {
	/// The chain does not allow it (now, or at the finalized head yet).
	Refused(String),
	/// The node could not be asked, or finality lags: try again later.
	Unavailable(String),
}

impl From<RpcError> for CheckError {
	fn from(e: RpcError) -> Self {
		CheckError::Unavailable(e.to_string())
	}
}

/// What the view learned of grants that ended, for caches of their key
/// fragments.
#[derive(Debug, Default, PartialEq)]
pub struct Ended {
	/// Grants revoked, declined or disputed.
	pub grants: Vec<u64>,
	/// The view lost track (a reorganisation, a gap, an event it could not
	/// read, another runtime): drop everything.
	pub everything: bool,
}

/// The chain as the instant path last saw it.
#[derive(Default)]
struct View {
	/// The best block everything below holds at.
	best: Option<(H256, u32)>,
	/// The finalized head's number, as last read.
	finalized: u32,
	/// Allowed reads: the first finalized block they were allowed at, and
	/// the grant's end (the first block it no longer holds), if it has one.
	allowed: HashMap<ReadKey, (u32, Option<u32>)>,
	/// Grants read, as they stand at the best block.
	grants: HashMap<u64, pallet_proxy_reencrypt::Grant<Runtime>>,
	/// Index entries of records read, as they stand at the best block.
	records: HashMap<u64, pallet_ehr_index::Record<Runtime>>,
	/// Whether each grant's patient requires audit first, as read.
	audit_first: HashMap<u64, bool>,
	/// Whether the server is an active institution, as read.
	active: Option<bool>,
	/// Reads this server handed a `checked_at`, by that block.
	allotted: BTreeMap<u32, u32>,
	/// The same, by block and reader.
	allotted_to: BTreeMap<(u32, AccountId), u32>,
	/// What ended since last drained.
	ended: Ended,
	/// When the node was last asked for its best block.
	refreshed: Option<std::time::Instant>,
}

impl View {
	/// Forgets every answer and everything read.
	fn forget(&mut self) {
		self.allowed.clear();
		self.grants.clear();
		self.records.clear();
		self.audit_first.clear();
		self.active = None;
	}

	/// Takes in the events of the blocks up to `number`: grants ended,
	/// grants and records changed, and every answer forgotten at an event
	/// not known to be harmless.
	fn take_in(&mut self, events: &[RuntimeEvent], number: u32) {
		for e in events {
			if let Some(grant) = ended_grant(e) {
				self.ended.grants.push(grant);
			}
			if let Some(grant) = changed_grant(e) {
				self.grants.remove(&grant);
			}
			if let Some(record) = changed_record(e) {
				self.records.remove(&record);
			}
		}
		if let Some(e) = events.iter().find(|e| !harmless(e)) {
			tracing::debug!(event = event_name(e), "the instant path's answers forgotten at block {number}");
			self.forget();
		}
	}

	/// Forgets everything, key fragments kept elsewhere included.
	fn lose_track(&mut self) {
		self.forget();
		self.ended.everything = true;
	}

	/// The newest block in `from..=to` at which this server may still log a
	/// read, and `reader` may still take one of its
	/// [`MAX_READS_PER_READER`] there, taken for one: no reader can use up
	/// what the chain logs for everyone else.
	fn allot(&mut self, from: u32, to: u32, reader: &AccountId) -> Result<u32, CheckError> {
		let horizon = to.saturating_sub(RECHECK_AFTER + MAX_FINALITY_LAG);
		self.allotted = self.allotted.split_off(&horizon);
		self.allotted_to = self.allotted_to.split_off(&(horizon, AccountId::from([0; 32])));
		for at in (from..=to.max(from)).rev() {
			let n = self.allotted.get(&at).copied().unwrap_or(0);
			let mine = self.allotted_to.get(&(at, reader.clone())).copied().unwrap_or(0);
			if n < MAX_READS_PER_CHECKED_BLOCK && mine < MAX_READS_PER_READER {
				self.allotted.insert(at, n + 1);
				self.allotted_to.insert((at, reader.clone()), mine + 1);
				return Ok(at);
			}
		}
		Err(CheckError::Unavailable(format!(
			"no room left to log this read at any block since {from} (this server's or this reader's share): try again at the next block"
		)))
	}
}

/// What the view takes in when the best block moves.
struct Walk {
	/// Events of the new blocks, oldest first; `None` if a block's could not
	/// be read or its runtime is not this tool's.
	events: Option<Vec<RuntimeEvent>>,
	/// Whether the new best block descends from the old one.
	linked: bool,
}

/// The cached read checks of one gateway or proxy.
pub struct ReadChecks {
	node: Node,
	/// The server's institution account.
	server: AccountId,
	view: Mutex<View>,
}

impl ReadChecks {
	/// Checks for `server` against the node at `node`.
	pub fn new(node: Node, server: AccountId) -> Self {
		ReadChecks { node, server, view: Mutex::new(View::default()) }
	}

	/// The best block (hash, number), after taking in every block imported
	/// since the last call: what the next answers hold at. Never moves back
	/// to a lower block than the view holds (a request that read an older
	/// best block waits for no one and uses the newer view).
	pub fn best(&self) -> Result<(H256, u32), CheckError> {
		let asked = std::time::Instant::now();
		// Another request (or the watch) may move the view on while this one
		// reads the new blocks: the view it then holds counts only if it
		// reached the block the node named; else the blocks are read again.
		for _ in 0..3 {
			if let Some(best) = self.take_in_best()? {
				let mut view = self.lock()?;
				view.refreshed = Some(view.refreshed.map_or(asked, |r| r.max(asked)));
				return Ok(best);
			}
		}
		Err(CheckError::Unavailable("the chain moved on faster than it could be followed".into()))
	}

	/// The best block the view already holds, without asking the node, if
	/// it is at least block `at_least` (the block a request was signed at)
	/// and the node was asked for its best block within `max_age`; else the
	/// node's best block, as [`ReadChecks::best`]. For a request's first
	/// check only: the last check before anything leaves asks the node
	/// ([`ReadChecks::best`], then [`ReadChecks::still`],
	/// [`ReadChecks::audit_first`] and [`ReadChecks::keeping_up`]), so
	/// nothing a newer block changed is served.
	pub fn known_best(&self, at_least: u32, max_age: std::time::Duration) -> Result<(H256, u32), CheckError> {
		{
			let view = self.lock()?;
			if let (Some((hash, number)), Some(refreshed)) = (view.best, view.refreshed) {
				if number >= at_least && refreshed.elapsed() <= max_age {
					return Ok((hash, number));
				}
			}
		}
		self.best()
	}

	/// Refuses while the finalized head the view holds lags more than
	/// [`MAX_FINALITY_LAG`] blocks behind its best block.
	pub fn keeping_up(&self) -> Result<(), CheckError> {
		let view = self.lock()?;
		let (_, number) = view.best.ok_or_else(|| CheckError::Unavailable("no best block yet".into()))?;
		lagging(number, view.finalized)
	}

	/// One try of [`ReadChecks::best`], without noting when the node was
	/// asked: `None` if another request or the watch moved the view
	/// meanwhile to a block other than the one the node named.
	fn take_in_best(&self) -> Result<Option<(H256, u32)>, CheckError> {
		let best = self.node.best_hash()?;
		let old = {
			let view = self.lock()?;
			match view.best {
				Some((hash, number)) if hash == best => return Ok(Some((hash, number))),
				other => other,
			}
		};
		let (number, _) = self.node.header_of(&best)?;
		if let Some((hash, old_number)) = old {
			// A lower block: either a request that read the best block before
			// another moved the view on (it is an ancestor of the view's
			// block: the view stands), or a reorganisation to a shorter
			// fork (it is not: everything known is forgotten).
			if number < old_number {
				if self.ancestor_at(hash, old_number, number).is_ok_and(|a| a == best) {
					return Ok(Some((hash, old_number)));
				}
				let finalized = self.node.finalized_head()?.1;
				let mut view = self.lock()?;
				if view.best == old {
					view.lose_track();
					view.finalized = finalized;
					view.best = Some((best, number));
				}
				return Ok(holding(view.best, best));
			}
		}
		// The blocks are read outside the lock; what they say is taken in
		// only if no other request moved the view meanwhile.
		let walking = std::time::Instant::now();
		let walk = old.map(|(hash, n)| self.walk(hash, n, best, number));
		let finalized = self.node.finalized_head()?.1;
		tracing::debug!(block = number, took_us = walking.elapsed().as_micros() as u64, "the instant path's view moves on");
		let mut view = self.lock()?;
		if view.best != old {
			return Ok(holding(view.best, best));
		}
		if let Some(walk) = walk {
			match walk.events {
				Some(events) if walk.linked => view.take_in(&events, number),
				_ => view.lose_track(),
			}
		}
		view.finalized = finalized;
		view.best = Some((best, number));
		Ok(Some((best, number)))
	}

	/// The finalized block a read that the chain let `key.accessor` make
	/// (`key.record` under `key.grant` for `key.purpose`) is logged as
	/// checked at, once the best block and a finalized block both allow it;
	/// call [`ReadChecks::best`] first.
	pub fn allowed(&self, key: &ReadKey) -> Result<u32, CheckError> {
		let best = {
			let mut view = self.lock()?;
			let (hash, number) = view.best.ok_or_else(|| CheckError::Unavailable("no best block yet".into()))?;
			lagging(number, view.finalized)?;
			if let Some(&(since, end)) = view.allowed.get(key) {
				if end.is_none_or(|end| number < end) && number.saturating_sub(since) < RECHECK_AFTER {
					let to = view.finalized.max(since);
					return view.allot(since, to, &key.accessor);
				}
			}
			hash
		};
		self.ensure_active()?;
		self.ask_at(key, best)?;
		let (head, head_number) = self.node.finalized_head()?;
		let args = (key.accessor.clone(), key.record, key.grant);
		let then: Option<AccessPurpose> =
			self.node.runtime_call_at(PURPOSE_OF_READ, &args, Some(&hex(head.as_bytes())))?;
		if then != Some(key.purpose) {
			return Err(CheckError::Refused(format!(
				"grant {} is not usable at the finalized block {head_number} yet",
				key.grant
			)));
		}
		let end = self.grant(key.grant)?.and_then(|g| g.expires_at);
		let mut view = self.lock()?;
		// Kept only if the view did not move on meanwhile (another request
		// may have taken in a revocation since this one asked).
		if view.best.is_some_and(|(hash, _)| hash == best) {
			if view.allowed.len() >= MAX_KEPT {
				view.allowed.clear();
			}
			view.allowed.insert(key.clone(), (head_number, end));
		}
		view.finalized = view.finalized.max(head_number);
		view.allot(head_number, head_number, &key.accessor)
	}

	/// Whether a read about to be answered (its `checked_at` taken by
	/// [`ReadChecks::allowed`]) is still allowed at the best block, after
	/// [`ReadChecks::best`]: the last check before anything leaves. Takes no
	/// further slot.
	pub fn still(&self, key: &ReadKey) -> Result<(), CheckError> {
		let best = {
			let view = self.lock()?;
			let (hash, number) = view.best.ok_or_else(|| CheckError::Unavailable("no best block yet".into()))?;
			if let Some(&(_, end)) = view.allowed.get(key) {
				if end.is_none_or(|end| number < end) {
					return Ok(());
				}
			}
			hash
		};
		self.ensure_active()?;
		self.ask_at(key, best)
	}

	/// Whether the runtime at block `at` lets the read be made, for its purpose.
	fn ask_at(&self, key: &ReadKey, at: H256) -> Result<(), CheckError> {
		let args = (key.accessor.clone(), key.record, key.grant);
		let now: Option<AccessPurpose> = self.node.runtime_call_at(PURPOSE_OF_READ, &args, Some(&hex(at.as_bytes())))?;
		match now {
			Some(p) if p == key.purpose => Ok(()),
			Some(p) => Err(CheckError::Refused(format!("grant {} is for {p:?}, not {:?}", key.grant, key.purpose))),
			None => Err(CheckError::Refused(format!(
				"grant {} does not let this reader read record {} now",
				key.grant, key.record
			))),
		}
	}

	/// The finalized block a read by a record's patient or issuer is logged
	/// as checked at: the finalized head, while finality keeps up with the
	/// best block (within [`MAX_FINALITY_LAG`]) and this server may log one
	/// more read there. Call [`ReadChecks::best`] first.
	pub fn finalized(&self, reader: &AccountId) -> Result<u32, CheckError> {
		self.ensure_active()?;
		let mut view = self.lock()?;
		let (_, number) = view.best.ok_or_else(|| CheckError::Unavailable("no best block yet".into()))?;
		lagging(number, view.finalized)?;
		let at = view.finalized;
		view.allot(at, at, reader)
	}

	/// Counts reads journaled and not yet logged (after a restart) against
	/// the blocks they name, so that none is allotted beyond what the chain
	/// logs. One server process per institution key: two would each count
	/// only their own.
	pub fn count_journaled(&self, reads: impl IntoIterator<Item = (u32, AccountId)>) -> Result<(), CheckError> {
		let mut view = self.lock()?;
		for (at, reader) in reads {
			*view.allotted.entry(at).or_insert(0) += 1;
			*view.allotted_to.entry((at, reader)).or_insert(0) += 1;
		}
		Ok(())
	}

	/// Grant `id` as it stands at the best block (read once, until an event
	/// touches it). Call [`ReadChecks::best`] first.
	pub fn grant(&self, id: u64) -> Result<Option<pallet_proxy_reencrypt::Grant<Runtime>>, CheckError> {
		let key = pallet_proxy_reencrypt::Grants::<Runtime>::hashed_key_for(id);
		self.read_kept(id, &key, |view| &mut view.grants, |_| true)
	}

	/// Record `id`'s index entry as it stands at the best block (read once,
	/// until an event touches it, for a record this server issued). Call
	/// [`ReadChecks::best`] first.
	pub fn record(&self, id: u64) -> Result<Option<pallet_ehr_index::Record<Runtime>>, CheckError> {
		let key = pallet_ehr_index::Records::<Runtime>::hashed_key_for(id);
		// Another institution's records are not kept: anyone can name them.
		self.read_kept(id, &key, |view| &mut view.records, |r| r.issuer == self.server)
	}

	/// Entry `id` of the view's map `kept`, or else the value at storage
	/// `key` at the view's best block, then kept if it exists (ids anyone
	/// can name of nothing are not kept), `keep` allows it and the view did
	/// not move on meanwhile.
	fn read_kept<T: codec::Decode + Clone>(
		&self,
		id: u64,
		key: &[u8],
		kept: fn(&mut View) -> &mut HashMap<u64, T>,
		keep: impl Fn(&T) -> bool,
	) -> Result<Option<T>, CheckError> {
		let best = {
			let mut view = self.lock()?;
			if let Some(value) = kept(&mut view).get(&id) {
				return Ok(Some(value.clone()));
			}
			view.best.ok_or_else(|| CheckError::Unavailable("no best block yet".into()))?.0
		};
		let value: Option<T> = self.node.storage_at(key, Some(&hex(best.as_bytes())))?;
		let mut view = self.lock()?;
		if let Some(v) = value.as_ref().filter(|v| keep(v)) {
			if view.best.is_some_and(|(hash, _)| hash == best) {
				let map = kept(&mut view);
				if map.len() >= MAX_KEPT {
					map.clear();
				}
				map.insert(id, v.clone());
			}
		}
		Ok(value)
	}

	/// Whether existing grant `id`'s patient requires audit before anything
	/// is served under it (`proxyReencrypt.auditFirst`): then nothing is
	/// served on the instant path. Read once, until an event that could
	/// change it. Ask only for a grant [`ReadChecks::grant`] found.
	pub fn audit_first(&self, id: u64) -> Result<bool, CheckError> {
		let best = {
			let view = self.lock()?;
			if let Some(required) = view.audit_first.get(&id) {
				return Ok(*required);
			}
			view.best.ok_or_else(|| CheckError::Unavailable("no best block yet".into()))?.0
		};
		let key = pallet_proxy_reencrypt::AuditFirst::<Runtime>::hashed_key_for(id);
		let since: Option<u32> = self.node.storage_at(&key, Some(&hex(best.as_bytes())))?;
		let mut view = self.lock()?;
		if view.best.is_some_and(|(hash, _)| hash == best) {
			if view.audit_first.len() >= MAX_KEPT {
				view.audit_first.clear();
			}
			view.audit_first.insert(id, since.is_some());
		}
		Ok(since.is_some())
	}

	/// What ended since the last call (for caches of key fragments).
	pub fn take_ended(&self) -> Ended {
		self.view.lock().map(|mut v| std::mem::take(&mut v.ended)).unwrap_or_default()
	}

	/// Refuses unless the server is an active institution at the best
	/// block: a suspended one's entries would be refused by `log_reads`.
	fn ensure_active(&self) -> Result<(), CheckError> {
		let best = {
			let view = self.lock()?;
			match view.active {
				Some(true) => return Ok(()),
				Some(false) => return Err(suspended()),
				None => view.best.ok_or_else(|| CheckError::Unavailable("no best block yet".into()))?.0,
			}
		};
		let key = pallet_reputation::Institutions::<Runtime>::hashed_key_for(&self.server);
		let institution: Option<pallet_reputation::Institution<Runtime>> =
			self.node.storage_at(&key, Some(&hex(best.as_bytes())))?;
		let active = institution.is_some_and(|i| i.status == pallet_reputation::InstitutionStatus::Active);
		let mut view = self.lock()?;
		if view.best.is_some_and(|(hash, _)| hash == best) {
			view.active = Some(active);
		}
		if active {
			Ok(())
		} else {
			Err(suspended())
		}
	}

	fn lock(&self) -> Result<std::sync::MutexGuard<'_, View>, CheckError> {
		self.view.lock().map_err(|_| CheckError::Unavailable("read checks poisoned".into()))
	}

	/// Reads the blocks from `old` (number `old_number`) up to `best`
	/// (`number`): whether they link, and their events.
	fn walk(&self, old: H256, old_number: u32, best: H256, number: u32) -> Walk {
		let mut blocks = Vec::new();
		let mut at = best;
		let mut n = number;
		let linked = loop {
			if n <= old_number {
				break at == old && n == old_number;
			}
			if number - n >= MAX_WALK {
				break false;
			}
			blocks.push(at);
			match self.node.header_of(&at) {
				Ok((_, parent)) => at = parent,
				Err(_) => break false,
			}
			n -= 1;
		};
		if !linked {
			return Walk { events: None, linked };
		}
		let mut events = Vec::new();
		for block in blocks.iter().rev() {
			match self.events_at(block) {
				Ok(e) => events.extend(e),
				Err(e) => {
					tracing::warn!("the instant path's view lost track of the chain: {e}");
					return Walk { events: None, linked };
				},
			}
		}
		Walk { events: Some(events), linked }
	}

	/// The ancestor at height `at` of block `hash` (height `number`), within
	/// [`MAX_WALK`] blocks.
	fn ancestor_at(&self, hash: H256, number: u32, at: u32) -> Result<H256, RpcError> {
		if number.saturating_sub(at) > MAX_WALK {
			return Err(RpcError::Decode("too far back".into()));
		}
		let mut block = hash;
		for _ in at..number {
			block = self.node.header_of(&block)?.1;
		}
		Ok(block)
	}

	/// The events of block `hash`, decoded with this tool's runtime types:
	/// an error unless the block's runtime is the one it was built with
	/// (another runtime's events may not decode the same, and its upgrade
	/// may have changed state without an event).
	fn events_at(&self, hash: &H256) -> Result<Vec<RuntimeEvent>, RpcError> {
		let at = Some(hex(hash.as_bytes()));
		let upgraded: Option<frame_system::LastRuntimeUpgradeInfo> =
			self.node.storage_at(&frame_system::LastRuntimeUpgrade::<Runtime>::hashed_key(), at.as_deref())?;
		let spec = medchain_runtime::VERSION.spec_version;
		if upgraded.is_some_and(|u| u.spec_version.0 != spec) {
			return Err(RpcError::Decode(format!("a block of another runtime than spec {spec}")));
		}
		let key = medchain_chain_client::events_key();
		let records: Option<Vec<frame_system::EventRecord<RuntimeEvent, H256>>> =
			self.node.storage_at(&key, at.as_deref())?;
		Ok(records.unwrap_or_default().into_iter().map(|r| r.event).collect())
	}
}

fn suspended() -> CheckError {
	CheckError::Refused("this server's institution is not active: it serves nothing".into())
}

/// The grant an event ends (or makes unusable), if any.
fn ended_grant(e: &RuntimeEvent) -> Option<u64> {
	use pallet_proxy_reencrypt::Event as P;
	match e {
		RuntimeEvent::ProxyReencrypt(P::GrantRevoked { grant } | P::GrantDeclined { grant } | P::GrantDisputed { grant, .. }) => {
			Some(*grant)
		},
		_ => None,
	}
}

/// The grant an event adds to without ending it (made, acknowledged).
fn changed_grant(e: &RuntimeEvent) -> Option<u64> {
	use pallet_proxy_reencrypt::Event as P;
	match e {
		RuntimeEvent::ProxyReencrypt(P::AccessGranted { grant, .. } | P::GrantAcknowledged { grant, .. }) => Some(*grant),
		_ => None,
	}
}

/// The record an event changes without forgetting any answer (published,
/// voted on, confirmed); every other change to a record comes with an
/// event that forgets everything.
fn changed_record(e: &RuntimeEvent) -> Option<u64> {
	use pallet_ehr_index::Event as I;
	match e {
		RuntimeEvent::EhrIndex(
			I::RecordPublished { record_id, .. } | I::RecordVoted { record_id, .. } | I::RecordConfirmed { record_id },
		) => Some(*record_id),
		_ => None,
	}
}

/// The view's best block `view`, moved by another request or the watch
/// while this one read the node's best block `best`, if it holds `best`
/// itself; else `None`, and the blocks are read again. Not any block as
/// high: a sibling of `best` from another fork (the one the watch read
/// before the node switched) may lack the revocation `best` holds, and the
/// answers kept with it would let the last check pass.
fn holding(view: Option<(H256, u32)>, best: H256) -> Option<(H256, u32)> {
	view.filter(|(hash, _)| *hash == best)
}

/// Refuses while the finalized head lags more than [`MAX_FINALITY_LAG`]
/// blocks behind the best block: a read checked that far back might be
/// logged too late.
fn lagging(best: u32, finalized: u32) -> Result<(), CheckError> {
	if best.saturating_sub(finalized) > MAX_FINALITY_LAG {
		return Err(CheckError::Unavailable(format!("finality is {} blocks behind: try again later", best - finalized)));
	}
	Ok(())
}

/// An event's pallet and name (`Pallet::Name`), without its fields: those
/// may name a patient, a reader or a record.
fn event_name(e: &RuntimeEvent) -> String {
	let full = format!("{e:?}");
	let (pallet, rest) = full.split_once('(').unwrap_or((&full, ""));
	let name = rest.trim_start_matches("Event::").split(['{', ' ', '(', ')']).next().unwrap_or_default();
	format!("{pallet}::{name}")
}

/// Whether an event leaves every allowed read allowed: fees, successes,
/// reads and fragments logged, records published and voted on, grants made
/// and acknowledged, requests on the on-chain path served. Anything else
/// (any event not listed) forgets every answer.
fn harmless(e: &RuntimeEvent) -> bool {
	use pallet_ehr_index::Event as I;
	use pallet_proxy_reencrypt::Event as P;
	matches!(
		e,
		RuntimeEvent::System(frame_system::Event::ExtrinsicSuccess { .. } | frame_system::Event::ExtrinsicFailed { .. }) |
			RuntimeEvent::Balances(_) |
			RuntimeEvent::TransactionPayment(_) |
			RuntimeEvent::EhrIndex(
				I::RecordRead { .. } |
					I::KeyFragmentServed { .. } |
					I::RecordAccessed { .. } |
					I::RecordPublished { .. } |
					I::RecordVoted { .. } |
					I::RecordConfirmed { .. }
			) | RuntimeEvent::ProxyReencrypt(
			P::AccessGranted { .. } |
				P::GrantAcknowledged { .. } |
				P::AccessRequested { .. } |
				P::FragmentAccepted { .. } |
				P::AccessReady { .. } |
				P::CapsuleAttached { .. }
		)
	)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn a_revocation_a_decline_or_a_dispute_forgets_what_was_allowed() {
		use pallet_proxy_reencrypt::Event as P;
		let who = AccountId::from([1; 32]);
		for e in [
			P::GrantRevoked { grant: 3 },
			P::GrantDeclined { grant: 3 },
			P::GrantDisputed { grant: 3, proxy: who.clone(), unusable: false },
		] {
			let e = RuntimeEvent::ProxyReencrypt(e);
			assert!(!harmless(&e), "{e:?}");
			assert_eq!(ended_grant(&e), Some(3));
		}
		let suspended = RuntimeEvent::Reputation(pallet_reputation::Event::InstitutionSuspended { who: who.clone() });
		assert_eq!(event_name(&suspended), "Reputation::InstitutionSuspended", "no account in the log");
		assert_eq!(event_name(&RuntimeEvent::ProxyReencrypt(P::GrantRevoked { grant: 3 })), "ProxyReencrypt::GrantRevoked");
		// Erasure, suspension, an upgrade, audit first: not known to be harmless.
		assert!(!harmless(&RuntimeEvent::EhrIndex(pallet_ehr_index::Event::RecordErased { record_id: 1 })));
		assert!(!harmless(&RuntimeEvent::System(frame_system::Event::CodeUpdated { hash: H256::zero() })));
		assert!(!harmless(&RuntimeEvent::ProxyReencrypt(P::AuditFirstRequired { grant: 3 })));
		assert!(!harmless(&RuntimeEvent::Reputation(pallet_reputation::Event::InstitutionSuspended { who: who.clone() })));
		// Reads logged and grants made leave every allowed read allowed.
		assert!(harmless(&RuntimeEvent::ProxyReencrypt(P::GrantAcknowledged { grant: 3, proxy: who })));
		assert!(harmless(&RuntimeEvent::System(frame_system::Event::ExtrinsicSuccess {
			dispatch_info: Default::default()
		})));
	}

	#[test]
	fn a_record_entry_kept_is_read_again_once_a_block_changes_it() {
		use pallet_ehr_index::Event as I;
		let validator = AccountId::from([7; 32]);
		// Any value will do: all zeroes.
		fn zeroes<T: codec::Decode>() -> T {
			T::decode(&mut &[0u8; 512][..]).expect("zeroes decode")
		}
		let entry = zeroes::<pallet_ehr_index::Record<Runtime>>;
		let kept = |records: &[u64]| -> View {
			let mut view = View::default();
			for &id in records {
				view.records.insert(id, entry());
			}
			view.audit_first.insert(9, true);
			view
		};
		// A vote or a confirmation changes that record's entry only: read
		// again, every other answer kept.
		for e in [
			I::RecordVoted { record_id: 1, validator: validator.clone(), vote: pallet_ehr_index::Vote::Confirm },
			I::RecordConfirmed { record_id: 1 },
			I::RecordPublished { record_id: 1, issuer: validator.clone(), digest: zeroes() },
		] {
			let mut view = kept(&[1, 2]);
			view.take_in(&[RuntimeEvent::EhrIndex(e)], 5);
			assert!(!view.records.contains_key(&1));
			assert!(view.records.contains_key(&2) && view.audit_first.contains_key(&9));
		}
		// Amended, rejected, expired, erased: every answer forgotten.
		for e in [
			I::RecordAmended { record_id: 3, previous: 1, version: 2 },
			I::RecordRejected { record_id: 2 },
			I::RecordExpired { record_id: 2 },
			I::RecordErased { record_id: 2 },
		] {
			let mut view = kept(&[1, 2]);
			view.take_in(&[RuntimeEvent::EhrIndex(e)], 5);
			assert!(view.records.is_empty() && view.audit_first.is_empty());
		}
	}

	#[test]
	fn a_flood_of_reads_never_takes_more_of_a_block_than_the_chain_logs() {
		let mut view = View::default();
		let readers: Vec<AccountId> = (0..24u8).map(|i| AccountId::from([i; 32])).collect();
		// An answer allowed since block 10, the finalized head at 12: the
		// newest block first, then older ones, each up to the chain's limit.
		let mut given = BTreeMap::<u32, u32>::new();
		for i in 0..3 * MAX_READS_PER_CHECKED_BLOCK as usize {
			*given.entry(view.allot(10, 12, &readers[i % readers.len()]).unwrap()).or_default() += 1;
		}
		assert_eq!(given, BTreeMap::from([(10, 256), (11, 256), (12, 256)]));
		// No block with room left: refused, not served to be refused later.
		assert!(matches!(view.allot(10, 12, &readers[0]), Err(CheckError::Unavailable(_))));
		// The next finalized block has room; an answer whose first block is
		// past the view's finalized head still gets its own block.
		assert_eq!(view.allot(10, 13, &readers[0]).unwrap(), 13);
		assert_eq!(view.allot(14, 13, &readers[0]).unwrap(), 14);
	}

	#[test]
	fn records_of_other_institutions_named_by_anyone_are_never_kept() {
		use jsonrpsee::server::{RpcModule, Server};
		use std::sync::{
			atomic::{AtomicUsize, Ordering},
			Arc,
		};
		let ours = AccountId::from([1; 32]);
		let theirs = AccountId::from([2; 32]);
		let entry = |issuer: &AccountId| {
			let mut record = <pallet_ehr_index::Record<Runtime> as codec::Decode>::decode(&mut &[0u8; 512][..])
				.expect("zeroes decode");
			record.issuer = issuer.clone();
			codec::Encode::encode(&record)
		};
		// A node whose records 1 (this gateway's) and 2 (another
		// institution's) anyone may name; it counts the storage reads.
		let stored: HashMap<String, String> = [(1u64, &ours), (2, &theirs)]
			.into_iter()
			.map(|(id, issuer)| (hex(&pallet_ehr_index::Records::<Runtime>::hashed_key_for(id)), hex(&entry(issuer))))
			.collect();
		let reads = Arc::new(AtomicUsize::new(0));
		let (port, server) = medchain_chain_client::runtime().block_on(async {
			let server = Server::builder().build("127.0.0.1:0").await.expect("a free port");
			let port = server.local_addr().expect("bound").port();
			let mut module = RpcModule::new((stored, reads.clone()));
			module
				.register_method("state_getStorage", |params, context, _| {
					let (key, _at): (String, Option<String>) = params.parse().expect("key and block");
					context.1.fetch_add(1, Ordering::SeqCst);
					context.0.get(&key).cloned()
				})
				.expect("one method");
			(port, server.start(module))
		});
		let checks = ReadChecks::new(Node::new(&format!("127.0.0.1:{port}")), ours.clone());
		checks.lock().expect("a view").best = Some((H256::repeat_byte(9), 5));
		// Each record is found, as the chain has it.
		assert_eq!(checks.record(1).expect("answered").map(|r| r.issuer), Some(ours));
		assert_eq!(checks.record(2).expect("answered").map(|r| r.issuer), Some(theirs));
		assert_eq!(checks.record(3).expect("answered"), None);
		assert_eq!(reads.load(Ordering::SeqCst), 3);
		// Only this gateway's own record is kept: naming another's (or none)
		// again and again reads the chain each time and fills nothing that
		// could push this gateway's own entries out.
		for _ in 0..3 {
			assert!(checks.record(1).expect("answered").is_some());
			assert!(checks.record(2).expect("answered").is_some());
			assert!(checks.record(3).expect("answered").is_none());
		}
		assert_eq!(reads.load(Ordering::SeqCst), 3 + 2 * 3);
		assert_eq!(checks.lock().expect("a view").records.keys().copied().collect::<Vec<_>>(), vec![1]);
		server.stop().expect("running");
	}

	#[test]
	fn a_first_check_uses_the_view_only_while_it_is_fresh_and_holds_the_signed_block() {
		use jsonrpsee::server::{RpcModule, Server};
		use std::sync::{
			atomic::{AtomicUsize, Ordering},
			Arc,
		};
		use std::time::{Duration, Instant};
		// A node whose best block is the view's; it counts the times asked.
		let asked = Arc::new(AtomicUsize::new(0));
		let (port, server) = medchain_chain_client::runtime().block_on(async {
			let server = Server::builder().build("127.0.0.1:0").await.expect("a free port");
			let port = server.local_addr().expect("bound").port();
			let mut module = RpcModule::new(asked.clone());
			module
				.register_method("chain_getBlockHash", |_, asked, _| {
					asked.fetch_add(1, Ordering::SeqCst);
					hex(H256::repeat_byte(9).as_bytes())
				})
				.expect("one method");
			(port, server.start(module))
		});
		let checks = ReadChecks::new(Node::new(&format!("127.0.0.1:{port}")), AccountId::from([1; 32]));
		let best = (H256::repeat_byte(9), 5);
		let second = Duration::from_secs(1);
		// Never asked: the node is.
		checks.lock().expect("a view").best = Some(best);
		assert_eq!(checks.known_best(5, second).expect("answered"), best);
		assert_eq!(asked.load(Ordering::SeqCst), 1);
		// Asked just now: the view serves requests signed at a block it holds.
		assert_eq!(checks.known_best(5, second).expect("answered"), best);
		assert_eq!(checks.known_best(3, second).expect("answered"), best);
		assert_eq!(asked.load(Ordering::SeqCst), 1);
		// A request signed at a block the view has not reached: the node.
		assert_eq!(checks.known_best(6, second).expect("answered"), best);
		assert_eq!(asked.load(Ordering::SeqCst), 2);
		// A view older than allowed: the node, and fresh again after.
		checks.lock().expect("a view").refreshed = Instant::now().checked_sub(2 * second);
		assert_eq!(checks.known_best(5, second).expect("answered"), best);
		assert_eq!(checks.known_best(5, second).expect("answered"), best);
		assert_eq!(asked.load(Ordering::SeqCst), 3);
		// The last check's finality check reads the view as it stands.
		checks.lock().expect("a view").finalized = 5 - 1;
		assert!(checks.keeping_up().is_ok());
		checks.lock().expect("a view").best = Some((best.0, 5 + MAX_FINALITY_LAG + 1));
		assert!(matches!(checks.keeping_up(), Err(CheckError::Unavailable(_))));
		server.stop().expect("running");
	}

	#[test]
	fn a_view_another_request_moved_to_a_sibling_fork_is_not_taken_for_the_nodes_best() {
		use jsonrpsee::server::{RpcModule, Server};
		use serde_json::{json, Value};
		use std::sync::{
			atomic::{AtomicBool, Ordering},
			Arc, OnceLock,
		};
		// Blocks 10: B, the node's best, holds a revocation; C, its sibling
		// from a fork the node left, does not. Both are children of A (9).
		let (a, b, c) = (H256::repeat_byte(0xa), H256::repeat_byte(0xb), H256::repeat_byte(0xc));
		let key = ReadKey { accessor: AccountId::from([2; 32]), record: 7, grant: 3, purpose: AccessPurpose::Treatment };
		// The checks, once made: while a request reads B's header, the watch
		// (here the node's handler) moves the view to C, where the read was
		// allowed.
		let checks_here: Arc<OnceLock<Arc<ReadChecks>>> = Arc::default();
		let moved = Arc::new(AtomicBool::new(false));
		let (port, server) = medchain_chain_client::runtime().block_on(async {
			let server = Server::builder().build("127.0.0.1:0").await.expect("a free port");
			let port = server.local_addr().expect("bound").port();
			let mut module = RpcModule::new(());
			module.register_method("chain_getBlockHash", move |_, _, _| hex(b.as_bytes())).expect("a method");
			module.register_method("chain_getFinalizedHead", move |_, _, _| hex(a.as_bytes())).expect("a method");
			module.register_method("state_getStorage", |_, _, _| Value::Null).expect("a method");
			let (shared, moved, allowed) = (checks_here.clone(), moved.clone(), key.clone());
			module
				.register_method("chain_getHeader", move |params, _, _| {
					let asked: Vec<String> = params.parse().unwrap_or_default();
					let asked = asked.first().cloned().unwrap_or_default();
					if asked == hex(b.as_bytes()) && !moved.swap(true, Ordering::SeqCst) {
						if let Some(checks) = shared.get() {
							let mut view = checks.lock().expect("a view");
							view.best = Some((c, 10));
							view.allowed.insert(allowed.clone(), (9, None));
						}
					}
					if asked == hex(a.as_bytes()) {
						json!({ "number": "0x9", "parentHash": hex(H256::zero().as_bytes()) })
					} else {
						json!({ "number": "0xa", "parentHash": hex(a.as_bytes()) })
					}
				})
				.expect("a method");
			(port, server.start(module))
		});
		let checks = Arc::new(ReadChecks::new(Node::new(&format!("127.0.0.1:{port}")), AccountId::from([1; 32])));
		assert!(checks_here.set(checks.clone()).is_ok());
		checks.lock().expect("a view").best = Some((a, 9));
		// The last check's best block is the node's, and nothing the view
		// kept at the sibling stands.
		assert_eq!(checks.best().expect("answered"), (b, 10));
		assert!(moved.load(Ordering::SeqCst), "the view was moved meanwhile");
		let view = checks.lock().expect("a view");
		assert_eq!(view.best, Some((b, 10)));
		assert!(!view.allowed.contains_key(&key), "the sibling's answer is forgotten");
		drop(view);
		server.stop().expect("running");
	}

	#[test]
	fn one_reader_cannot_take_a_servers_whole_share_of_a_block() {
		let mut view = View::default();
		let greedy = AccountId::from([1; 32]);
		for _ in 0..MAX_READS_PER_READER {
			assert_eq!(view.allot(5, 5, &greedy).unwrap(), 5);
		}
		assert!(matches!(view.allot(5, 5, &greedy), Err(CheckError::Unavailable(_))));
		// Everyone else still reads at that block.
		assert_eq!(view.allot(5, 5, &AccountId::from([2; 32])).unwrap(), 5);
	}
}
