//! The journal of served reads (records by a gateway, key fragments by a
//! proxy), in the institution's MongoDB.
//!
//! On the instant path a gateway serves a read at once and logs it on chain
//! afterwards (`ehrIndex.logReads`). So that no read is ever lost from the
//! audit trail, it writes the read here *before* the ciphertext leaves (a
//! journaled write, acknowledged by the server); a background submitter
//! takes pending entries in batches, logs them on chain and marks them
//! logged once final. A gateway killed between serving and logging finds
//! its pending entries here when it starts again and logs them then; the
//! runtime logs a read once however often it is submitted, so anything the
//! submitter is unsure about is simply submitted again.
//!
//! An entry holds what the chain's entry holds (record, accessor, purpose,
//! grant, the block the read was checked at): medical metadata, kept in the
//! institution's own database beside the records themselves.

use crate::StoreError;
use futures::{
	channel::oneshot,
	future::{self, Either},
	lock::Mutex as AsyncMutex,
	TryStreamExt,
};
use mongodb::{
	bson::{doc, Bson, DateTime, Document},
	error::ErrorKind,
	options::{IndexOptions, WriteConcern},
	Collection, IndexModel,
};
use std::sync::{Arc, Mutex};

/// The collection the journal lives in.
pub const COLLECTION: &str = "access_journal";

/// Where a journaled read stands.
pub mod state {
	/// Served, not yet final on chain, nor taken by the submitter: its
	/// server may still withhold it.
	pub const PENDING: &str = "pending";
	/// Taken by the submitter to be logged on chain (submitted again after
	/// a crash until final): no longer withheld by anyone.
	pub const SUBMITTING: &str = "submitting";
	/// In a finalized block.
	pub const LOGGED: &str = "logged";
	/// The chain refused it (for example logged too late): an alarm for the
	/// institution, since the read was served.
	pub const REFUSED: &str = "refused";
	/// Journaled, then not served as journaled: the chain stopped it before
	/// the answer left (a revocation imported meanwhile), or (its detail
	/// `the patient requires audit first now`) a gateway served it only
	/// once its read was logged on chain first, as its own entry. Never
	/// logged from the journal.
	pub const WITHHELD: &str = "withheld";
}

/// What a journaled read served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
	/// The record's ciphertext (a gateway).
	Record,
	/// A capsule fragment of the record's data key (a proxy).
	KeyFragment,
}

impl Served {
	fn name(self) -> &'static str {
		match self {
			Served::Record => "record",
			Served::KeyFragment => "key-fragment",
		}
	}
}

/// A read as the gateway journals it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournaledRead {
	/// The read's id: `blake2_256(signature)` of the reader's signed
	/// request, or `blake2_256(signature ‖ blake2_256(ask))` for a request
	/// to several servers, `ask` this server's part of it.
	pub read: [u8; 32],
	/// The record read.
	pub record: u64,
	/// The reader's account (SS58).
	pub accessor: String,
	/// The purpose, as the runtime's metadata names it.
	pub purpose: String,
	/// The grant it was read under.
	pub grant: Option<u64>,
	/// The finalized block at which the gateway checked the read.
	pub checked_at: u32,
	/// What was served.
	pub served: Served,
}

/// Reads waiting for the journal's next write, each with where its outcome goes.
type Waiting = Vec<(Document, oneshot::Sender<Result<bool, StoreError>>)>;

/// The journal.
#[derive(Clone)]
pub struct Journal {
	collection: Collection<Document>,
	/// Appends not yet written.
	waiting: Arc<Mutex<Waiting>>,
	/// Held by the append writing everything waiting (one write at a time).
	writing: Arc<AsyncMutex<()>>,
}

/// MongoDB's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

impl Journal {
	pub(crate) fn new(collection: Collection<Document>) -> Self {
		Journal { collection, waiting: Arc::default(), writing: Arc::default() }
	}

	/// Makes sure the index the submitter reads by exists.
	pub async fn prepare(&self) -> Result<(), StoreError> {
		let by_state = IndexModel::builder()
			.keys(doc! { "state": 1, "checked_at": 1 })
			.options(IndexOptions::builder().name("state_checked_at".to_string()).build())
			.build();
		self.collection.create_index(by_state).await?;
		Ok(())
	}

	/// Writes `read` as pending, journaled on the server's disk before it
	/// answers; `false` if a read with its id was journaled before (left as
	/// it is: the same signed request, served already). In production the
	/// journal's MongoDB is a replica set; `j: true` makes the write durable
	/// on the primary (see the README on majority writes).
	pub async fn append(&self, read: &JournaledRead) -> Result<bool, StoreError> {
		let document = doc! {
			"_id": crate::binary(&read.read),
			"record": read.record as i64,
			"accessor": &read.accessor,
			"purpose": &read.purpose,
			"grant": read.grant.map_or(Bson::Null, |g| Bson::Int64(g as i64)),
			"checked_at": read.checked_at as i64,
			"kind": read.served.name(),
			"state": state::PENDING,
			"served": DateTime::now(),
		};
		// Group commit: reads served at once share one durable write. Each
		// append queues its document and returns as soon as a write that
		// held it is acknowledged; while its outcome is not in, it waits for
		// the turn to write everything queued (its own document included,
		// unless an earlier turn took it).
		let (outcome, mut written) = oneshot::channel();
		self.waiting.lock().map_err(|_| poisoned())?.push((document, outcome));
		loop {
			let turn = self.writing.lock();
			match future::select(&mut written, turn).await {
				Either::Left((result, _)) => {
					return result.unwrap_or_else(|_| {
						Err(StoreError::Unreachable("the journal write was abandoned: nothing served".into()))
					})
				},
				Either::Right((_turn, _)) => {
					let batch = std::mem::take(&mut *self.waiting.lock().map_err(|_| poisoned())?);
					if !batch.is_empty() {
						self.write(batch).await;
					}
				},
			}
		}
	}

	/// Writes `batch` in one durable `insert_many` (unordered: one read's
	/// duplicate does not stop the others) and tells each append its
	/// outcome: `true` written, `false` a duplicate, or the error.
	///
	/// A failure that leaves unknown which documents were written (a write
	/// concern error, a lost connection, write errors that do not name each
	/// document once) fails every read of the batch, and whatever of it was
	/// written is marked withheld, best effort: those reads are not served,
	/// and must not be logged as served. If even that fails, an entry stays
	/// pending and is logged: the trail then holds a read that was not
	/// served, never the other way round.
	async fn write(&self, batch: Waiting) {
		let (documents, outcomes): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
		let ids: Vec<Bson> = documents.iter().filter_map(|d| d.get("_id").cloned()).collect();
		let durable = WriteConcern::builder().journal(true).build();
		let written = self.collection.insert_many(documents).ordered(false).write_concern(durable).await;
		let results = match written {
			Ok(_) => Ok(vec![Ok(true); outcomes.len()]),
			Err(e) => match *e.kind {
				ErrorKind::InsertMany(ref failed) if failed.write_concern_error.is_none() => {
					per_document(outcomes.len(), failed.write_errors.iter().flatten())
						.ok_or_else(|| StoreError::Mongo("journal write: errors that name no single read".into()))
				},
				_ => Err(StoreError::from(e)),
			},
		};
		let results = match results {
			Ok(results) => results,
			Err(why) => {
				let withheld = self
					.collection
					.update_many(
						doc! { "_id": { "$in": ids }, "state": state::PENDING },
						doc! { "$set": { "state": state::WITHHELD, "detail": "journal write failed", "marked": DateTime::now() } },
					)
					.await;
				if withheld.is_err() {
					tracing::error!("a failed journal write could not be marked withheld: its reads may be logged as served");
				}
				vec![Err(why); outcomes.len()]
			},
		};
		for (outcome, result) in outcomes.into_iter().zip(results) {
			// An append that stopped waiting needs no answer.
			let _ = outcome.send(result);
		}
	}

	/// Up to `limit` reads not yet logged (pending or taken by the
	/// submitter) journaled more than `settle` ago, oldest check first,
	/// taking none: what a server starting again counts against the blocks
	/// they name.
	pub async fn unlogged(&self, limit: i64, settle: std::time::Duration) -> Result<Vec<JournaledRead>, StoreError> {
		let filter = doc! {
			"state": { "$in": [state::PENDING, state::SUBMITTING] },
			"served": { "$lt": settled_before(settle) },
		};
		Ok(self.reads(filter, limit).await?.0)
	}

	/// The submitter takes up to `limit` reads to log: those it took before
	/// and has not seen final (a crash, a batch not known to be in a block),
	/// and pending reads journaled more than `settle` ago, oldest check
	/// first. A read younger than that may still be withheld (its server's
	/// last check before answering is under way): it waits for the next
	/// round rather than be logged as served. Taking a read is one
	/// conditional write per document, as withholding it is
	/// ([`Journal::withhold`]): of a server withholding a read and the
	/// submitter taking it, one wins, so a read withheld is never logged
	/// as served, and once taken it is logged whatever its server decides.
	/// An entry that does not parse is marked refused (an alarm), so that it
	/// holds up no other.
	pub async fn take(&self, limit: i64, settle: std::time::Duration) -> Result<Vec<JournaledRead>, StoreError> {
		let taken = self.collection.count_documents(doc! { "state": state::SUBMITTING }).await?;
		let room = limit.saturating_sub(i64::try_from(taken).unwrap_or(i64::MAX));
		if room > 0 {
			let due = doc! { "state": state::PENDING, "served": { "$lt": settled_before(settle) } };
			let (due, unreadable) = self.reads(due, room).await?;
			// Entries that do not parse are taken too, to be refused below.
			let ids: Vec<Bson> = due.iter().map(|r| crate::binary(&r.read)).chain(unreadable).collect();
			if !ids.is_empty() {
				self.collection
					.update_many(
						doc! { "_id": { "$in": ids }, "state": state::PENDING },
						doc! { "$set": { "state": state::SUBMITTING, "marked": DateTime::now() } },
					)
					.await?;
			}
		}
		let (reads, unreadable) = self.reads(doc! { "state": state::SUBMITTING }, limit).await?;
		if !unreadable.is_empty() {
			tracing::error!(count = unreadable.len(), "journal entries that do not parse: marked refused, see the journal");
			self.mark_taken(unreadable, state::REFUSED, "unreadable journal entry").await?;
		}
		Ok(reads)
	}

	/// Up to `limit` reads matching `filter`, oldest check first, and the
	/// ids of entries among them that do not parse.
	async fn reads(&self, filter: Document, limit: i64) -> Result<(Vec<JournaledRead>, Vec<Bson>), StoreError> {
		let mut cursor = self.collection.find(filter).sort(doc! { "checked_at": 1 }).limit(limit).await?;
		let (mut out, mut unreadable) = (Vec::new(), Vec::new());
		while let Some(d) = cursor.try_next().await? {
			match read_of(&d) {
				Ok(read) => out.push(read),
				Err(_) => unreadable.extend(d.get("_id").cloned()),
			}
		}
		Ok((out, unreadable))
	}

	/// Marks `reads` the submitter took ([`Journal::take`]) as `state`
	/// (`state::LOGGED` with the block that holds them, or
	/// `state::REFUSED` with the chain's reason); reads it did not take
	/// stay as they are.
	pub async fn mark(&self, reads: &[[u8; 32]], state: &str, detail: &str) -> Result<(), StoreError> {
		self.mark_taken(reads.iter().map(|r| crate::binary(r)).collect(), state, detail).await
	}

	/// Marks the taken entries with ids `ids` as `state`, for `detail`.
	async fn mark_taken(&self, ids: Vec<Bson>, state: &str, detail: &str) -> Result<(), StoreError> {
		self.collection
			.update_many(
				doc! { "_id": { "$in": ids }, "state": state::SUBMITTING },
				doc! { "$set": { "state": state, "detail": detail, "marked": DateTime::now() } },
			)
			.await?;
		Ok(())
	}

	/// Marks `read` withheld, for the reason `why`, if it is still pending;
	/// `false` if it was not (the submitter took it meanwhile: it is logged
	/// as served, a read logged that was not served, never the other way
	/// round).
	pub async fn withhold(&self, read: &[u8; 32], why: &str) -> Result<bool, StoreError> {
		let updated = self
			.collection
			.update_one(
				doc! { "_id": crate::binary(read), "state": state::PENDING },
				doc! { "$set": { "state": state::WITHHELD, "detail": why, "marked": DateTime::now() } },
			)
			.await?;
		Ok(updated.modified_count == 1)
	}

	/// How many reads are in `state`.
	pub async fn count(&self, state: &str) -> Result<u64, StoreError> {
		Ok(self.collection.count_documents(doc! { "state": state }).await?)
	}
}

/// The journal time before which a read journaled `settle` ago or earlier was written.
fn settled_before(settle: std::time::Duration) -> DateTime {
	DateTime::from_millis(DateTime::now().timestamp_millis().saturating_sub(settle.as_millis() as i64))
}

fn read_of(d: &Document) -> Result<JournaledRead, StoreError> {
	let corrupt = |what: &str| StoreError::Corrupt(format!("journal field `{what}`"));
	Ok(JournaledRead {
		read: crate::bytes(d, "_id")?.try_into().map_err(|_| corrupt("_id"))?,
		record: d.get_i64("record").map_err(|_| corrupt("record"))? as u64,
		accessor: d.get_str("accessor").map_err(|_| corrupt("accessor"))?.to_string(),
		purpose: d.get_str("purpose").map_err(|_| corrupt("purpose"))?.to_string(),
		grant: match d.get("grant") {
			Some(Bson::Int64(g)) => Some(*g as u64),
			_ => None,
		},
		checked_at: d.get_i64("checked_at").map_err(|_| corrupt("checked_at"))? as u32,
		// Entries from before key fragments were journaled served records.
		served: match d.get_str("kind") {
			Ok("key-fragment") => Served::KeyFragment,
			Ok("record") | Err(_) => Served::Record,
			Ok(_) => return Err(corrupt("kind")),
		},
	})
}

/// Each of `count` documents' outcome given the write errors of an
/// unordered insert: a duplicate key is `false` (the same signed request
/// journaled before), another error is that error, the rest were written.
/// `None` unless every error names one document of the batch, once.
fn per_document<'a>(
	count: usize,
	errors: impl IntoIterator<Item = &'a mongodb::error::IndexedWriteError>,
) -> Option<Vec<Result<bool, StoreError>>> {
	let mut results: Vec<Option<Result<bool, StoreError>>> = vec![None; count];
	for w in errors {
		let slot = results.get_mut(w.index)?;
		if slot.is_some() {
			return None;
		}
		*slot = Some(if w.code == DUPLICATE_KEY {
			Ok(false)
		} else {
			Err(StoreError::Mongo(format!("journal write: {}", w.message)))
		});
	}
	Some(results.into_iter().map(|r| r.unwrap_or(Ok(true))).collect())
}

fn poisoned() -> StoreError {
	StoreError::Unreachable("the journal's queue is poisoned".into())
}

#[cfg(test)]
mod tests {
	use super::*;

	fn error(index: i32, code: i32) -> mongodb::error::IndexedWriteError {
		mongodb::bson::from_document(doc! { "index": index, "code": code, "errmsg": "refused", "errInfo": Bson::Null })
			.expect("a write error as a server reports it")
	}

	#[test]
	fn each_read_of_a_batch_gets_its_own_outcome_and_errors_that_name_none_fail_them_all() {
		let outcomes = per_document(4, [&error(1, DUPLICATE_KEY), &error(3, 121)]).expect("each error names one read");
		assert!(matches!(outcomes[..], [Ok(true), Ok(false), Ok(true), Err(StoreError::Mongo(_))]));
		// An index out of the batch, or one read named twice: nothing is
		// known of the rest, so nothing counts as written.
		assert!(per_document(2, [&error(2, DUPLICATE_KEY)]).is_none());
		assert!(per_document(2, [&error(0, DUPLICATE_KEY), &error(0, 121)]).is_none());
		assert!(per_document(0, []).is_some_and(|r| r.is_empty()));
	}
}
