//! `medchain-record verify`: a validator institution's review service.
//!
//! Each round it asks the chain which pending records this validator may
//! still vote on (`EhrIndexApi_pending_for`), fetches each record's stored
//! ciphertext from the issuer's gateway (`ehr_getForReview`, a request
//! signed by the validator: ciphertext only, never a key), checks it against
//! the index and votes:
//!
//! - digest and size match → `Confirm`;
//! - the digest does not match → `Reject(1)` (digest mismatch);
//! - the digest matches but not the size → `Reject(3)` (malformed metadata);
//! - the gateway says it holds no document there → `Reject(2)` (missing);
//! - the gateway cannot be asked (down, refusing) → no vote yet, asked
//!   again next round; once it failed in `--withheld-failures` rounds and
//!   voting ends within `--withheld-blocks` blocks, `Reject(2)`: an issuer
//!   that withholds its record from review is rejected, not left to expire,
//!   while a gateway down for a moment is not;
//! - no `--gateway` for the record's store → as a gateway that cannot be
//!   asked (list every store of the consortium: an issuer must not dodge
//!   review by naming a store nobody knows);
//! - this validator used its 4 fetches of the record → no vote.
//!
//! The count of failed rounds lives in the running service: with `--once`
//! (one round) a record counts as withheld only with
//! `--withheld-failures 1`.
//!
//! Records are reviewed nearest deadline first, each request signed for a
//! block read just before it (two behind the best, so a gateway whose node
//! lags a little still takes it).
//!
//! Rejections cost the issuer credit (`pallet-reputation`), confirmations
//! earn it. Codes are those of `pallets/ehr-index/README.md`.

use jsonrpsee::{
	core::{client::ClientT, params::ObjectParams, ClientError},
	http_client::{HttpClient, HttpClientBuilder},
};
use medchain_chain_client::{cli::SubmitArgs, hex, unhex, Node, Outcome};
use medchain_record_store::Digests;
use medchain_runtime::{AccountId, Runtime, RuntimeCall};
use pallet_ehr_index::{Record, Vote};
use serde_json::{json, Value};
use sp_core::{crypto::Ss58Codec, Pair};
use std::{collections::BTreeMap, time::Duration};

/// Reject codes (`pallets/ehr-index/README.md`).
const DIGEST_MISMATCH: u8 = 1;
/// The store holds no document at the pointer, or the issuer withheld it.
const DOCUMENT_MISSING: u8 = 2;
/// The content matches but the indexed size does not.
const MALFORMED_METADATA: u8 = 3;

/// Arguments of `medchain-record verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
	/// The gateway of a store, as `STORE_ID=URL` (the store id the records'
	/// pointers name, e.g. `hospital-1=http://10.0.0.5:9955`); repeat for
	/// each store.
	#[arg(long = "gateway", value_parser = store_gateway)]
	gateways: Vec<(String, String)>,
	/// Review once and exit (default: every `--interval-s` seconds until
	/// stopped).
	#[arg(long)]
	once: bool,
	/// Seconds between rounds.
	#[arg(long, default_value_t = 12)]
	interval_s: u64,
	/// A record whose gateway cannot be asked is rejected as missing once
	/// its voting ends within this many blocks (and it failed in
	/// `--withheld-failures` rounds).
	#[arg(long, default_value_t = 20)]
	withheld_blocks: u32,
	/// Rounds in which a record's gateway must have failed before it counts
	/// as withholding the record.
	#[arg(long, default_value_t = 3)]
	withheld_failures: u32,
	/// Most records reviewed per round (the runtime answers at most 100).
	#[arg(long, default_value_t = 100)]
	limit: u32,
	/// The validator institution's account (and the node, the wait for
	/// each vote).
	#[command(flatten)]
	submit: SubmitArgs,
}

fn store_gateway(s: &str) -> Result<(String, String), String> {
	let (store, url) = s.split_once('=').ok_or("expected STORE_ID=URL")?;
	if store.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
		return Err("expected STORE_ID=URL with an http(s) URL".into());
	}
	Ok((store.to_string(), url.to_string()))
}

/// What reviewing one record found.
#[derive(Debug, PartialEq)]
enum Finding {
	/// Vote this.
	Vote(Vote),
	/// The gateway could not be asked: try again next round.
	Unreachable(String),
	/// This validator used its fetches of the record: no vote, and not the
	/// issuer's fault.
	OwnLimit(String),
}

/// Runs the review service.
pub async fn verify(o: &VerifyArgs) -> Result<(), String> {
	let signer = o.submit.signer.signer()?;
	let me = AccountId::from(signer.public());
	let node = o.submit.node.node();
	let genesis = super::gateway::genesis_of(&node)?;
	let mut gateways = BTreeMap::new();
	for (store, url) in &o.gateways {
		let client = HttpClientBuilder::default()
			.max_response_size(40 * 1024 * 1024)
			.request_timeout(Duration::from_secs(60))
			.build(url)
			.map_err(|e| format!("--gateway {store}={url}: {e}"))?;
		gateways.insert(store.clone(), client);
	}
	tracing::info!("reviewing pending records as {} ({} gateways)", me.to_ss58check(), gateways.len());
	// Rounds in which each record's gateway failed.
	let mut failures: BTreeMap<u64, u32> = BTreeMap::new();
	loop {
		let mut pending: Vec<(u64, Record<Runtime>)> = node
			.runtime_call("EhrIndexApi_pending_for", &(me.clone(), o.limit))
			.map_err(|e| e.to_string())?;
		pending.sort_by_key(|(id, r)| (r.deadline, *id));
		failures.retain(|id, _| pending.iter().any(|(p, _)| p == id));
		for (id, record) in pending {
			let store_id = record.pointer.as_ref().map(|p| String::from_utf8_lossy(&p.store_id).into_owned());
			let best = node.best_number().map_err(|e| e.to_string())?;
			// A store the consortium's list (this service's --gateway) does
			// not name cannot be checked: it counts as withheld, or an issuer
			// could dodge review by naming a store nobody knows.
			let finding = match store_id.as_ref().and_then(|s| gateways.get(s)) {
				Some(client) => review(client, &genesis, &signer, id, &record, best.saturating_sub(2)).await,
				None => Finding::Unreachable(format!("no --gateway for store {store_id:?}")),
			};
			let vote = match finding {
				Finding::Vote(vote) => vote,
				Finding::OwnLimit(why) => {
					tracing::warn!("record {id}: {why}; not voting");
					continue;
				},
				Finding::Unreachable(why) => {
					let failed = failures.entry(id).or_insert(0);
					*failed += 1;
					if *failed >= o.withheld_failures && record.deadline.saturating_sub(best) <= o.withheld_blocks {
						tracing::warn!("record {id}: withheld in {failed} rounds until voting nearly ended ({why}): rejecting");
						Vote::Reject(DOCUMENT_MISSING)
					} else {
						tracing::info!("record {id}: not reviewed yet ({why}); asking again next round");
						continue;
					}
				},
			};
			cast(&node, &signer, id, vote, o.submit.wait());
		}
		if o.once {
			return Ok(());
		}
		tokio::time::sleep(Duration::from_secs(o.interval_s)).await;
	}
}

/// Fetches record `id` from its issuer's gateway and judges it.
async fn review(
	client: &HttpClient,
	genesis: &str,
	signer: &sp_core::sr25519::Pair,
	id: u64,
	record: &Record<Runtime>,
	block: u32,
) -> Finding {
	let validator = AccountId::from(signer.public()).to_ss58check();
	let message = super::gateway::review_message(genesis, &record.issuer.to_ss58check(), id, &validator, block);
	let mut params = ObjectParams::new();
	let filled = params
		.insert("record", id)
		.and_then(|_| params.insert("validator", &validator))
		.and_then(|_| params.insert("block", block))
		.and_then(|_| params.insert("signature", hex(&signer.sign(message.as_bytes()).0)));
	if let Err(e) = filled {
		return Finding::Unreachable(format!("request not built: {e}"));
	}
	match client.request::<Value, _>("ehr_getForReview", params).await {
		Ok(answer) => match answer["ciphertext"].as_str().map(unhex) {
			Some(Ok(ciphertext)) => Finding::Vote(judge(record, &ciphertext)),
			_ => Finding::Unreachable("the gateway's answer has no ciphertext".into()),
		},
		Err(ClientError::Call(e)) if e.code() == super::gateway::NOT_IN_STORE => {
			Finding::Vote(Vote::Reject(DOCUMENT_MISSING))
		},
		Err(ClientError::Call(e)) if e.code() == super::gateway::QUOTA_USED => Finding::OwnLimit(e.message().to_string()),
		Err(e) => Finding::Unreachable(e.to_string()),
	}
}

/// The vote on `ciphertext` as the index describes `record`.
fn judge(record: &Record<Runtime>, ciphertext: &[u8]) -> Vote {
	if record.digest.algorithm.digest(ciphertext) != record.digest.digest {
		Vote::Reject(DIGEST_MISMATCH)
	} else if ciphertext.len() as u64 != record.size {
		Vote::Reject(MALFORMED_METADATA)
	} else {
		Vote::Confirm
	}
}

/// Votes and reports the outcome (one JSON line per vote on stdout).
fn cast(node: &Node, signer: &sp_core::sr25519::Pair, id: u64, vote: Vote, wait: Duration) {
	let call = RuntimeCall::EhrIndex(pallet_ehr_index::Call::vote_record { record_id: id, vote });
	let (name, code) = match vote {
		Vote::Confirm => ("Confirm", None),
		Vote::Reject(code) => ("Reject", Some(code)),
	};
	match node.send(signer, call, wait) {
		Ok((_, outcome)) if outcome.succeeded() => {
			tracing::info!("record {id}: voted {name}");
			println!("{}", json!({ "record": id, "vote": name, "code": code }));
		},
		Ok((_, Outcome::Finalized { dispatch: Some(failed), .. })) => {
			tracing::warn!("record {id}: the vote was refused: {failed:?}")
		},
		Ok((_, other)) => tracing::warn!("record {id}: the vote's outcome is not known yet: {other:?}"),
		Err(e) => tracing::warn!("record {id}: the vote was not sent: {e}"),
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use medchain_primitives::{ContentDigest, DigestAlgorithm, RecordKind};

	fn record(content: &[u8], size: u64) -> Record<Runtime> {
		let algorithm = DigestAlgorithm::Sm3;
		Record {
			patient: AccountId::from([1; 32]),
			issuer: AccountId::from([2; 32]),
			kind: Some(RecordKind::LabResult),
			digest: ContentDigest { algorithm, digest: algorithm.digest(content) },
			pointer: None,
			size,
			capsule_hash: Default::default(),
			published_at: 1,
			timestamp: 0,
			version: 1,
			previous: None,
			chain_hash: Default::default(),
			status: pallet_ehr_index::RecordStatus::Pending,
			confirmations: 0,
			rejections: 0,
			deadline: 100,
		}
	}

	#[test]
	fn a_record_is_confirmed_only_if_digest_and_size_match() {
		let stored = b"ciphertext as stored";
		assert_eq!(judge(&record(stored, stored.len() as u64), stored), Vote::Confirm);
		// Altered behind the chain's back.
		assert_eq!(judge(&record(stored, stored.len() as u64), b"ciphertext altered!!"), Vote::Reject(DIGEST_MISMATCH));
		// The right content under a wrong size.
		assert_eq!(judge(&record(stored, 7), stored), Vote::Reject(MALFORMED_METADATA));
	}

	#[test]
	fn a_gateway_is_named_by_store_id_and_http_url() {
		assert_eq!(
			store_gateway("hospital-1=http://10.0.0.5:9955"),
			Ok(("hospital-1".into(), "http://10.0.0.5:9955".into()))
		);
		assert!(store_gateway("hospital-1").is_err());
		assert!(store_gateway("=http://x").is_err());
		assert!(store_gateway("hospital-1=ftp://x").is_err());
	}
}
