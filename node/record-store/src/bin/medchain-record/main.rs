//! `medchain-record`: what an institution runs to put a medical record on
//! Medchain. It encrypts the file (AES-256-GCM, fresh data key), stores the
//! ciphertext in the institution's MongoDB, and publishes the index entry
//! (digest, pointer, size, key commitment) on chain, in one step. If the
//! patient registered an Umbral key, the data key is also encrypted to it
//! (the record's key capsule, `proxyReencrypt.attachCapsule`), so the
//! patient can later share the record by grant without anyone handing keys
//! around.
//!
//! ```text
//! medchain-record put --file scan.dcm --patient <SS58> --kind Imaging --suri //Alice \
//!     [--algorithm sm3|sha-256|blake2-256] [--key-out scan.key] \
//!     [--mongo mongodb://127.0.0.1:27017] [--store-id hospital-1] [--node 127.0.0.1:9944]
//! medchain-record get --record 7 --key scan.key --out scan.dcm [--mongo ...] [--node ...]
//! medchain-record list --patient <SS58> [--limit 100] [--mongo ...]
//! medchain-record serve --listen 127.0.0.1:9955 --suri //Alice [--mongo ...] [--node ...]
//! ```
//! `serve` is the institution's record gateway: JSON-RPC over HTTP with
//! `ehr_getRecord`, served only to an account that proves by signature that
//! the chain lets it read the record, and logged on chain (`log_access`)
//! before the ciphertext leaves. See `gateway.rs`.
//! ```text
//! ```
//! A put that cannot store changes nothing on chain; a put whose publication
//! is known to have failed deletes what it stored, so no document is
//! orphaned; a put whose publication's outcome is unknown (the node went away
//! or the wait ended) keeps it, so no index entry points at a missing
//! document.

mod checks;
mod gateway;
mod verify;

use medchain_chain_client::{Dispatch, Node, Outcome, RpcError, Sent};
use medchain_record_store::{decrypt_record, encrypt_record, hex, DigestAlgorithm, Digests, RecordStore, StoredRecord};
use medchain_runtime::{AccountId, Runtime, RuntimeCall};
use pallet_ehr_index::{ContentDigest, NextRecordId, RecordKind, Records, StorePointer};
use sp_core::{crypto::Ss58Codec, sr25519, H256};
use clap::{Args, Parser, Subcommand, ValueEnum};
use medchain_chain_client::cli::{NodeArgs, SignerArgs, SubmitArgs};
use std::{
	io::{Read, Write},
	path::{Path, PathBuf},
	time::{Duration, Instant},
};

/// Largest record a single MongoDB document holds here (documents are capped
/// at 16 MiB; the rest is the document's other fields and headroom).
const MAX_RECORD_BYTES: u64 = 15 * 1024 * 1024;

/// Puts medical records on Medchain: ciphertext in the institution's
/// MongoDB, digest and pointer on chain.
#[derive(Parser)]
#[command(name = "medchain-record", version)]
struct Cli {
	#[command(subcommand)]
	command: Command,
}

#[derive(Subcommand)]
enum Command {
	/// Encrypts a file under a fresh data key, stores the ciphertext in
	/// MongoDB and publishes its index entry (and key capsule).
	Put(PutArgs),
	/// Reads a record's ciphertext, checks it against the chain's digest and
	/// decrypts it with its data key.
	Get(GetArgs),
	/// Lists what the store holds for a patient (no content), one JSON per
	/// line.
	List(ListArgs),
	/// Serves the institution's record gateway (`ehr_getRecord` over HTTP
	/// JSON-RPC): only to readers the chain allows, logged on chain first.
	Serve(ServeArgs),
	/// Registers a patient with the institution: submits the consent to be
	/// indexed that the patient signed in its wallet (the portal's consent
	/// code). The institution pays the fee.
	RegisterPatient(RegisterPatientArgs),
	/// Reviews pending records as a validator institution: fetches each
	/// one's ciphertext from its issuer's gateway, checks digest and size
	/// against the index and votes (rejecting what is missing, altered or
	/// withheld).
	Verify(verify::VerifyArgs),
}

#[derive(Args)]
struct RegisterPatientArgs {
	/// The patient's account (SS58).
	#[arg(long)]
	patient: String,
	/// The patient's sr25519 signature of the consent message (hex, 64
	/// bytes), as the portal shows it.
	#[arg(long)]
	consent: String,
	#[command(flatten)]
	submit: SubmitArgs,
}

/// Where the institution keeps its records.
#[derive(Args)]
struct StoreArgs {
	/// MongoDB connection string; default `MEDCHAIN_MONGO`, else
	/// `mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true` (27017).
	#[arg(long, default_value_t = medchain_chain_client::cli::default_mongo())]
	mongo: String,
	/// Database.
	#[arg(long, default_value = "medchain")]
	database: String,
	/// Collection.
	#[arg(long, default_value = "records")]
	collection: String,
	/// The store's id in on-chain pointers.
	#[arg(long, default_value = "hospital-1")]
	store_id: String,
}

#[derive(Args)]
struct PutArgs {
	/// The file to put.
	#[arg(long)]
	file: PathBuf,
	/// The patient's account (SS58).
	#[arg(long)]
	patient: String,
	/// Diagnosis, LabResult, Imaging, Prescription, DischargeSummary,
	/// NursingCare, Billing, Wearable or Other.
	#[arg(long, value_parser = kind)]
	kind: RecordKind,
	/// Digest of the ciphertext.
	#[arg(long, value_enum, default_value_t = Algorithm::Sm3)]
	algorithm: Algorithm,
	/// Where to write the data key (default: FILE.key).
	#[arg(long)]
	key_out: Option<PathBuf>,
	#[command(flatten)]
	submit: SubmitArgs,
	#[command(flatten)]
	store: StoreArgs,
}

/// Digest algorithms, by their command-line names.
#[derive(Clone, Copy, ValueEnum)]
enum Algorithm {
	/// SM3 (GB/T 32905).
	Sm3,
	/// SHA-256.
	#[value(name = "sha-256")]
	Sha256,
	/// BLAKE2b-256.
	#[value(name = "blake2-256")]
	Blake2_256,
}

impl From<Algorithm> for DigestAlgorithm {
	fn from(a: Algorithm) -> Self {
		match a {
			Algorithm::Sm3 => DigestAlgorithm::Sm3,
			Algorithm::Sha256 => DigestAlgorithm::Sha2_256,
			Algorithm::Blake2_256 => DigestAlgorithm::Blake2_256,
		}
	}
}

#[derive(Args)]
struct GetArgs {
	/// The record's id on chain.
	#[arg(long)]
	record: u64,
	/// The record's data key file.
	#[arg(long)]
	key: PathBuf,
	/// Where to write the decrypted record.
	#[arg(long)]
	out: PathBuf,
	#[command(flatten)]
	node: NodeArgs,
	#[command(flatten)]
	store: StoreArgs,
}

#[derive(Args)]
struct ListArgs {
	/// The patient's account (SS58).
	#[arg(long)]
	patient: String,
	/// Most records listed.
	#[arg(long, default_value_t = 100)]
	limit: i64,
	#[command(flatten)]
	store: StoreArgs,
}

#[derive(Args)]
struct ServeArgs {
	/// Address to listen on.
	#[arg(long, default_value = "127.0.0.1:9955")]
	listen: String,
	// The gateway operator's account, which logs accesses on chain.
	#[command(flatten)]
	signer: SignerArgs,
	#[command(flatten)]
	node: NodeArgs,
	#[command(flatten)]
	store: StoreArgs,
	#[command(flatten)]
	connections: medchain_chain_client::cli::ConnectionArgs,
	/// The instant path: serve a permitted read at once, journaled in
	/// MongoDB first, and log it on chain afterwards (`log_reads`, in
	/// batches) instead of waiting for its entry to be final.
	#[arg(long)]
	instant: bool,
	/// With `--instant`: how often the journal's pending reads are logged.
	#[arg(long, default_value_t = 1000)]
	log_interval_ms: u64,
	/// With `--instant`: how often the chain is followed between requests
	/// (new blocks' events taken in, ended grants' key fragments dropped),
	/// besides at each new best block the node announces. A request's first
	/// check may use the view of the chain this keeps, up to twice this old
	/// (at least a second); its last check, before anything leaves, asks the
	/// node whatever this is.
	#[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
	watch_interval_ms: u64,
	/// With `--instant`: whether to follow the chain at each new best block
	/// the node announces (`chain_subscribeNewHeads`) as well as every
	/// `--watch-interval-ms` (`--follow-heads false`: the interval only).
	#[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
	follow_heads: bool,
	/// With `--instant`: also serve the institution's proxy's key fragments
	/// (`pre_reencrypt`): the file holds the proxy's Umbral key seed (hex),
	/// the one its node keeps; the chain must register its key for the
	/// signer's account.
	#[arg(long)]
	proxy_seed_file: Option<std::path::PathBuf>,
}

fn main() {
	let cli = Cli::parse();
	medchain_chain_client::cli::init_logging();
	let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
	let result = match &cli.command {
		Command::Put(a) => runtime.block_on(put(a)),
		Command::Get(a) => runtime.block_on(get(a)),
		Command::List(a) => runtime.block_on(list(a)),
		Command::Serve(a) => runtime.block_on(store(&a.store)).and_then(|st| gateway::serve(a, st, runtime.handle().clone())),
		Command::RegisterPatient(a) => register_patient(a),
		Command::Verify(a) => runtime.block_on(verify::verify(a)),
	};
	if let Err(e) = result {
		tracing::error!("{e}");
		std::process::exit(1);
	}
}

async fn store(o: &StoreArgs) -> Result<RecordStore, String> {
	RecordStore::connect(&o.mongo, &o.database, &o.collection, &o.store_id)
		.await
		.map_err(|e| e.to_string())
}

fn kind(name: &str) -> Result<RecordKind, String> {
	RecordKind::ALL
		.into_iter()
		.find(|k| k.name() == name)
		.ok_or_else(|| format!("--kind: unknown record kind `{name}`"))
}

/// Reads `path` in 1 MiB chunks, printing progress for files over 1 MiB.
fn read_with_progress(path: &Path) -> Result<Vec<u8>, String> {
	let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
	let total = file.metadata().map_err(|e| e.to_string())?.len();
	if total > MAX_RECORD_BYTES {
		return Err(format!(
			"{}: {total} bytes; records up to {MAX_RECORD_BYTES} bytes fit one MongoDB document",
			path.display()
		));
	}
	let mut data = Vec::with_capacity(total as usize);
	let mut chunk = vec![0u8; 1 << 20];
	let mut last = 0;
	loop {
		let n = file.read(&mut chunk).map_err(|e| e.to_string())?;
		if n == 0 {
			break;
		}
		data.extend_from_slice(&chunk[..n]);
		let pct = data.len() as u64 * 100 / total.max(1);
		if total > (1 << 20) && pct >= last + 10 {
			tracing::info!("read {pct:>3} % ({} of {total} bytes)", data.len());
			last = pct;
		}
	}
	Ok(data)
}

async fn put(o: &PutArgs) -> Result<(), String> {
	let t0 = Instant::now();
	let path = o.file.as_path();
	let patient = AccountId::from_ss58check(&o.patient).map_err(|e| format!("--patient: {e:?}"))?;
	let kind = o.kind;
	let algorithm = DigestAlgorithm::from(o.algorithm);
	let signer = o.submit.signer.signer()?;
	let node = o.submit.node.node();

	let plaintext = read_with_progress(path)?;
	let sealed = encrypt_record(&plaintext)?;
	drop(plaintext);
	tracing::info!("encrypted {} bytes with AES-256-GCM under a fresh data key", sealed.ciphertext.len());
	let key_out = o.key_out.clone().unwrap_or_else(|| PathBuf::from(format!("{}.key", path.display())));
	write_key(Path::new(&key_out), &sealed.data_key)?;

	// The patient's Umbral key, if registered: the data key is sealed to it.
	let patient_key: Option<pallet_proxy_reencrypt::UmbralKeys> = node
		.storage(&pallet_proxy_reencrypt::Keys::<Runtime>::hashed_key_for(&patient))
		.map_err(|e| e.to_string())?;
	let capsule = match &patient_key {
		Some(k) => Some(seal_data_key(&k.public_key, &sealed.data_key)?),
		None => {
			tracing::info!("the patient has no Umbral key on chain: no key capsule (sharing by grant needs one)");
			None
		},
	};

	let store = store(&o.store).await?;
	let stored = store
		.put(&patient.to_ss58check(), &format!("{kind:?}"), algorithm, &sealed.ciphertext)
		.await
		.map_err(|e| format!("not stored, nothing published: {e}"))?;
	tracing::info!(
		"stored in {}/{} as {} ({} digest {})",
		stored.pointer.store_id,
		stored.pointer.collection,
		hex(&stored.pointer.object_id),
		algorithm.name(),
		hex(&stored.digest)
	);
	let capsule_hash = match &capsule {
		Some(c) => c.hash(),
		// Without a capsule the index commits to the key itself: BLAKE2-256
		// of it, which reveals nothing about it.
		None => H256(DigestAlgorithm::Blake2_256.digest(&sealed.data_key)),
	};
	let wait = o.submit.wait();
	match publish(&node, &signer, &patient, kind, &stored, capsule_hash, wait) {
		Ok(id) => {
			let scoped = match capsule {
				Some(c) => Some(attach_capsules(&node, &signer, id, &patient, kind, c, &sealed.data_key, wait)?),
				None => None,
			};
			println!(
				"{}",
				serde_json::json!({
					"record": id,
					"object_id": hex(&stored.pointer.object_id),
					"digest": hex(&stored.digest),
					"size": stored.size,
					"key_file": key_out,
					"capsule": patient_key.is_some(),
					// To the patient's key for the kind; the one-time key's number.
					"kind_capsule": scoped.as_ref().is_some_and(|s| s.kind.is_some()),
					"one_time_key": scoped.as_ref().and_then(|s| s.record.as_ref().map(|(index, _)| *index)),
					"seconds": t0.elapsed().as_secs_f64(),
				})
			);
			Ok(())
		},
		Err(NotPublished::Refused(e)) => {
			let cleanup = match store.delete(stored.pointer.object_id).await {
				Ok(()) => "the stored document was deleted".to_string(),
				Err(d) => format!("and deleting the stored document failed too: {d}"),
			};
			Err(format!("publishing failed: {e}; {cleanup}"))
		},
		Err(NotPublished::Unknown(e)) => Err(format!(
			"publishing's outcome is unknown: {e}; the stored document {} is kept, so an entry that lands points at \
			 it (delete it only once the era has passed without the entry)",
			hex(&stored.pointer.object_id)
		)),
	}
}

fn write_key(path: &Path, key: &[u8; 32]) -> Result<(), String> {
	let mut options = std::fs::OpenOptions::new();
	options.write(true).create(true).truncate(true);
	#[cfg(unix)]
	std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
	let mut f = options.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
	f.write_all(hex(key).as_bytes()).map_err(|e| e.to_string())?;
	tracing::info!("data key written to {} (give it only to whom the patient allows)", path.display());
	Ok(())
}

/// Why an index entry is not on chain.
enum NotPublished {
	/// It never will be (the node refused it, the runtime refused it in a
	/// finalized block, or its era ended without it): the stored document
	/// may go.
	Refused(String),
	/// It may still land (up to the end of its era): the stored document
	/// must stay, or the entry would point at nothing.
	Unknown(String),
}

fn refused(why: &str) -> NotPublished {
	NotPublished::Refused(why.to_string())
}

/// Publishes the index entry and waits up to `wait` until it is on chain;
/// returns its id.
fn publish(
	node: &Node,
	signer: &sr25519::Pair,
	patient: &AccountId,
	kind: RecordKind,
	stored: &StoredRecord,
	capsule_hash: H256,
	wait: Duration,
) -> Result<u64, NotPublished> {
	let unknown = |e: RpcError| NotPublished::Unknown(e.to_string());
	let pointer = StorePointer {
		store_id: stored.pointer.store_id.as_bytes().to_vec().try_into().map_err(|_| refused("store id too long"))?,
		collection: stored.pointer.collection.as_bytes().to_vec().try_into().map_err(|_| refused("collection too long"))?,
		object_id: stored.pointer.object_id,
	};
	let digest = ContentDigest { algorithm: stored.algorithm, digest: stored.digest };
	let first: u64 =
		node.storage(&NextRecordId::<Runtime>::hashed_key()).map_err(|e| refused(&e.to_string()))?.unwrap_or(0);
	let call = RuntimeCall::EhrIndex(pallet_ehr_index::Call::publish_record {
		patient: patient.clone(),
		kind,
		digest,
		pointer,
		size: stored.size,
		capsule_hash,
	});
	let announce = |sent: &Sent| {
		tracing::info!(
			"submitting the index entry (valid up to block {}); waiting up to {} s for a final block",
			sent.death,
			wait.as_secs()
		)
	};
	let (sent, outcome) = match node.send_with(signer, call, wait, announce) {
		Ok(done) => done,
		// The node refused it outright: it is in no pool.
		Err(RpcError::Node(e)) => return Err(refused(&format!("the node refused the index entry: {e}"))),
		Err(e) => return Err(unknown(e)),
	};
	let block = match outcome {
		// In a block whose events say it succeeded, or whose events the node
		// could not give: the entry itself, read below, decides.
		Outcome::Finalized { block, dispatch: Some(Dispatch::Success) | None } |
		Outcome::InBlock { block, dispatch: Some(Dispatch::Success) | None } => block,
		Outcome::Finalized { dispatch: Some(Dispatch::Failed(error)), .. } => {
			let hint = if error.contains("NoIndexConsent") {
				"the patient must first consent to be indexed by this institution: `register-patient` with the \
				 consent the patient signed, or the patient's own `ehrIndex.consentToIndex`"
			} else {
				"is the signer an active producer institution?"
			};
			return Err(refused(&format!("the runtime refused the index entry: {error} ({hint})")))
		},
		Outcome::Dead(why) => return Err(refused(&format!("the index entry will never be on chain: {why}"))),
		Outcome::InBlock { dispatch: Some(Dispatch::Failed(_)), .. } => {
			return Err(NotPublished::Unknown(
				"the index entry failed in a block not yet final (a fork may still include it)".into(),
			))
		},
		Outcome::Unknown { death, why } => {
			return Err(NotPublished::Unknown(format!(
				"the index entry's fate is not known yet ({why}); it may still be on chain up to block {death}, and not after"
			)))
		},
	};
	let at = medchain_chain_client::hex(block.as_bytes());
	let next: u64 = node.storage_at(&NextRecordId::<Runtime>::hashed_key(), Some(&at)).map_err(unknown)?.unwrap_or(0);
	for id in first..next {
		let record: Option<pallet_ehr_index::Record<Runtime>> =
			node.storage_at(&Records::<Runtime>::hashed_key_for(id), Some(&at)).map_err(unknown)?;
		if record.is_some_and(|r| r.digest == digest && r.patient == *patient) {
			return Ok(id);
		}
	}
	Err(NotPublished::Unknown(format!("transaction {:?} is in a block but no entry of it was found there", sent.hash)))
}

/// Encrypts the data key to the patient's Umbral public key.
fn seal_data_key(patient: &[u8; 33], data_key: &[u8; 32]) -> Result<pallet_proxy_reencrypt::KeyCapsule, String> {
	let pk = medchain_umbral::public_key(patient).map_err(|e| format!("patient's Umbral key: {e:?}"))?;
	let (capsule, ciphertext) =
		medchain_umbral::encrypt(&mut rand_core::OsRng, &pk, data_key).map_err(|e| format!("Umbral: {e:?}"))?;
	Ok(pallet_proxy_reencrypt::KeyCapsule {
		capsule: capsule.try_into().map_err(|_| "capsule too long")?,
		ciphertext: ciphertext.try_into().map_err(|_| "sealed key too long")?,
	})
}

/// The data key encrypted to the patient's narrower keys: its key for
/// `kind`, if registered, and one of its one-time record keys (drawn at
/// random, so that hospitals publishing for one patient at once seldom
/// draw the same), if it has any left.
fn scoped_capsules(
	node: &Node,
	patient: &AccountId,
	kind: RecordKind,
	data_key: &[u8; 32],
) -> Result<pallet_proxy_reencrypt::ScopedCapsules, String> {
	use pallet_proxy_reencrypt::{KindKeys, RecordKeyPool};
	let kind_key: Option<[u8; 33]> =
		node.storage(&KindKeys::<Runtime>::hashed_key_for(patient, kind)).map_err(|e| e.to_string())?;
	let pool: Vec<(u32, [u8; 33])> = node
		.storage(&RecordKeyPool::<Runtime>::hashed_key_for(patient))
		.map_err(|e| e.to_string())?
		.unwrap_or_default();
	let one_time = match pool.len() {
		0 => None,
		n => Some(pool[(rand_core::RngCore::next_u32(&mut rand_core::OsRng) as usize) % n]),
	};
	Ok(pallet_proxy_reencrypt::ScopedCapsules {
		kind: kind_key.map(|k| seal_data_key(&k, data_key)).transpose()?,
		record: one_time.map(|(index, k)| seal_data_key(&k, data_key).map(|c| (index, c))).transpose()?,
	})
}

/// Attaches the record's key capsules (`capsule`, to the patient's key, and
/// those to its kind and one-time keys, made here), trying again with
/// another one-time key if another issuer took the drawn one first.
/// Returns the scoped capsules attached.
#[allow(clippy::too_many_arguments)]
fn attach_capsules(
	node: &Node,
	signer: &sr25519::Pair,
	record: u64,
	patient: &AccountId,
	kind: RecordKind,
	capsule: pallet_proxy_reencrypt::KeyCapsule,
	data_key: &[u8; 32],
	wait: Duration,
) -> Result<pallet_proxy_reencrypt::ScopedCapsules, String> {
	const ATTEMPTS: usize = 3;
	for attempt in 1..=ATTEMPTS {
		let scoped = scoped_capsules(node, patient, kind, data_key)?;
		let drawn = scoped.record.as_ref().map(|(index, _)| *index);
		match attach_capsule(node, signer, record, capsule.clone(), scoped.clone(), wait) {
			Ok(()) => return Ok(scoped),
			// Another issuer took the drawn key, or the patient added keys
			// in between: read the patient's keys again and retry.
			Err(e) if attempt < ATTEMPTS && (e.contains("NoScopeKey") || e.contains("ScopedCapsuleMissing")) => {
				tracing::warn!("{e}; reading the patient's keys again (drawn one-time key: {drawn:?})");
			},
			// An earlier attempt whose outcome was not known landed after
			// all: the capsules on chain are ours if the key capsule is.
			Err(e) if e.contains("CapsuleAlreadyAttached") => {
				return attached_scoped(node, record, &capsule).map_err(|why| format!("{e} ({why})"))
			},
			Err(e) => return Err(e),
		}
	}
	Err(format!("record {record}: no one-time key of the patient could be taken"))
}

/// The scoped capsules on chain for `record`, if its key capsule on chain is
/// `capsule` (attached by an earlier attempt of this command).
fn attached_scoped(
	node: &Node,
	record: u64,
	capsule: &pallet_proxy_reencrypt::KeyCapsule,
) -> Result<pallet_proxy_reencrypt::ScopedCapsules, String> {
	use pallet_proxy_reencrypt::{Capsules, KindCapsules, OneTimeCapsule, OneTimeCapsules};
	let on_chain: Option<pallet_proxy_reencrypt::KeyCapsule> =
		node.storage(&Capsules::<Runtime>::hashed_key_for(record)).map_err(|e| e.to_string())?;
	if on_chain.as_ref() != Some(capsule) {
		return Err("another key capsule is attached".into());
	}
	let kind = node.storage(&KindCapsules::<Runtime>::hashed_key_for(record)).map_err(|e| e.to_string())?;
	let one_time: Option<OneTimeCapsule> =
		node.storage(&OneTimeCapsules::<Runtime>::hashed_key_for(record)).map_err(|e| e.to_string())?;
	Ok(pallet_proxy_reencrypt::ScopedCapsules { kind, record: one_time.map(|c| (c.index, c.capsule)) })
}

/// Attaches the record's key capsules and waits up to `wait` until they are
/// on chain.
fn attach_capsule(
	node: &Node,
	signer: &sr25519::Pair,
	record: u64,
	capsule: pallet_proxy_reencrypt::KeyCapsule,
	scoped: pallet_proxy_reencrypt::ScopedCapsules,
	wait: Duration,
) -> Result<(), String> {
	let call = RuntimeCall::ProxyReencrypt(pallet_proxy_reencrypt::Call::attach_capsule { record, capsule, scoped });
	let (_, outcome) = node.send(signer, call, wait).map_err(|e| format!("record {record} is published: {e}"))?;
	// Events the node could not give: the capsule on chain at that block
	// decides.
	let undecoded_but_there = match &outcome {
		Outcome::Finalized { block, dispatch: None } | Outcome::InBlock { block, dispatch: None } => node
			.storage_at::<pallet_proxy_reencrypt::KeyCapsule>(
				&pallet_proxy_reencrypt::Capsules::<Runtime>::hashed_key_for(record),
				Some(&medchain_chain_client::hex(block.as_bytes())),
			)
			.map_err(|e| e.to_string())?
			.is_some(),
		_ => false,
	};
	if outcome.succeeded() || undecoded_but_there {
		tracing::info!("key capsule of record {record} on chain (the patient can grant access)");
		return Ok(());
	}
	Err(format!("record {record} is published but its key capsule is not on chain: {outcome:?}"))
}

/// Submits the patient's signed consent (`register_patient`) and waits until
/// it is final.
fn register_patient(o: &RegisterPatientArgs) -> Result<(), String> {
	let patient = AccountId::from_ss58check(&o.patient).map_err(|e| format!("--patient: {e:?}"))?;
	let signature: [u8; 64] = medchain_chain_client::unhex(o.consent.trim())
		.map_err(|e| format!("--consent: {e}"))?
		.try_into()
		.map_err(|_| "--consent: not a 64-byte sr25519 signature")?;
	let signer = o.submit.signer.signer()?;
	let call = RuntimeCall::EhrIndex(pallet_ehr_index::Call::register_patient {
		patient: patient.clone(),
		signature: sp_core::sr25519::Signature::from_raw(signature).into(),
	});
	let (_, outcome) =
		o.submit.node.node().send(&signer, call, o.submit.wait()).map_err(|e| e.to_string())?;
	match outcome {
		Outcome::Finalized { dispatch: Some(Dispatch::Success), .. } => {
			tracing::info!("patient registered: records may now be indexed under their account");
			println!("{}", serde_json::json!({ "registered": patient.to_ss58check(), "final": true }));
			Ok(())
		},
		// Registered in a block that was not final when the wait ended: so
		// it stands unless a fork drops it (then submit the code again).
		Outcome::InBlock { dispatch: Some(Dispatch::Success), .. } => {
			tracing::warn!("patient registered in a block not yet final");
			println!("{}", serde_json::json!({ "registered": patient.to_ss58check(), "final": false }));
			Ok(())
		},
		other => Err(format!("the patient is not registered: {other:?}")),
	}
}

async fn get(o: &GetArgs) -> Result<(), String> {
	let node = o.node.node();
	let id = o.record;
	let record: pallet_ehr_index::Record<Runtime> = node
		.storage(&Records::<Runtime>::hashed_key_for(id))
		.map_err(|e| e.to_string())?
		.ok_or(format!("record {id} is not on chain"))?;
	let pointer = record.pointer.ok_or(format!("record {id} was erased"))?;
	let key_text = std::fs::read_to_string(&o.key).map_err(|e| format!("--key: {e}"))?;
	let key: [u8; 32] = medchain_chain_client::unhex(key_text.trim())
		.map_err(|e| e.to_string())?
		.try_into()
		.map_err(|_| "--key: not a 32-byte key")?;
	let ciphertext = store(&o.store).await?.get(pointer.object_id, &record.digest.digest).await.map_err(|e| e.to_string())?;
	let plaintext = decrypt_record(&ciphertext, &key)?;
	let out = &o.out;
	std::fs::write(out, &plaintext).map_err(|e| format!("{}: {e}", out.display()))?;
	tracing::info!("record {id}: digest verified, {} bytes decrypted to {}", plaintext.len(), out.display());
	Ok(())
}

/// Prints the store's records of a patient (no content), one JSON per line.
async fn list(o: &ListArgs) -> Result<(), String> {
	let patient = AccountId::from_ss58check(&o.patient).map_err(|e| format!("--patient: {e:?}"))?;
	let limit = o.limit;
	for r in store(&o.store).await?.list_by_patient(&patient.to_ss58check(), limit).await.map_err(|e| e.to_string())? {
		println!(
			"{}",
			serde_json::json!({
				"object_id": hex(&r.pointer.object_id),
				"kind": r.kind,
				"algorithm": r.algorithm.name(),
				"digest": hex(&r.digest),
				"size": r.size,
			})
		);
	}
	Ok(())
}

#[cfg(test)]
mod tests {
	use super::*;
	use clap::CommandFactory;

	#[test]
	fn every_subcommand_and_option_is_documented() {
		medchain_chain_client::cli::assert_documented(Cli::command());
	}

	#[test]
	fn a_misspelt_option_is_an_error_not_a_default() {
		let put = ["medchain-record", "put", "--file", "x", "--patient", "p", "--kind", "Imaging", "--suri", "//Alice"];
		assert!(Cli::try_parse_from(put).is_ok());
		let typo = Cli::try_parse_from(put.iter().chain(&["--algoritm", "sha-256"])).err().expect("refused");
		assert_eq!(typo.kind(), clap::error::ErrorKind::UnknownArgument);
		let kind = Cli::try_parse_from(put.map(|a| if a == "Imaging" { "Xray" } else { a })).err().expect("refused");
		assert_eq!(kind.kind(), clap::error::ErrorKind::ValueValidation);
	}
}
