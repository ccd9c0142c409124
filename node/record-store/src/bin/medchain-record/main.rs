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
//! fails deletes what it stored, so no document is orphaned and no index entry
//! points at a missing document.

mod gateway;

use medchain_chain_client::{Node, RpcError};
use medchain_record_store::{decrypt_record, encrypt_record, hex, DigestAlgorithm, RecordStore, StoredRecord};
use medchain_runtime::{AccountId, Runtime, RuntimeCall};
use pallet_ehr_index::{ContentDigest, NextRecordId, RecordKind, Records, StorePointer};
use sp_core::{crypto::Ss58Codec, sr25519, Pair, H256};
use std::{
	collections::HashMap,
	io::{Read, Write},
	path::Path,
	time::{Duration, Instant},
};

/// Largest record a single MongoDB document holds here (documents are capped
/// at 16 MiB; the rest is the document's other fields and headroom).
const MAX_RECORD_BYTES: u64 = 15 * 1024 * 1024;

fn main() {
	let args: Vec<String> = std::env::args().skip(1).collect();
	let Some(command) = args.first().cloned() else {
		eprintln!("usage: medchain-record <put|get|list|serve> [--option value]...");
		std::process::exit(2);
	};
	let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
	let result = medchain_chain_client::parse_options(&args[1..]).and_then(|o| match command.as_str() {
		"put" => runtime.block_on(put(&o)),
		"get" => runtime.block_on(get(&o)),
		"list" => runtime.block_on(list(&o)),
		"serve" => runtime.block_on(store(&o)).and_then(|st| gateway::serve(&o, st, runtime.handle().clone())),
		other => Err(format!("unknown command `{other}`")),
	});
	if let Err(e) = result {
		eprintln!("error: {e}");
		std::process::exit(1);
	}
}

type Options = HashMap<String, String>;

fn opt<'a>(o: &'a Options, key: &str) -> Result<&'a str, String> {
	o.get(key).map(String::as_str).ok_or_else(|| format!("--{key} is required"))
}

fn or<'a>(o: &'a Options, key: &str, default: &'a str) -> &'a str {
	o.get(key).map(String::as_str).unwrap_or(default)
}

async fn store(o: &Options) -> Result<RecordStore, String> {
	RecordStore::connect(
		or(o, "mongo", "mongodb://127.0.0.1:27017/?directConnection=true"),
		or(o, "database", "medchain"),
		or(o, "collection", "records"),
		or(o, "store-id", "hospital-1"),
	)
	.await
	.map_err(|e| e.to_string())
}

fn kind(name: &str) -> Result<RecordKind, String> {
	Ok(match name {
		"Diagnosis" => RecordKind::Diagnosis,
		"LabResult" => RecordKind::LabResult,
		"Imaging" => RecordKind::Imaging,
		"Prescription" => RecordKind::Prescription,
		"DischargeSummary" => RecordKind::DischargeSummary,
		"NursingCare" => RecordKind::NursingCare,
		"Billing" => RecordKind::Billing,
		"Wearable" => RecordKind::Wearable,
		"Other" => RecordKind::Other,
		other => return Err(format!("--kind: unknown record kind `{other}`")),
	})
}

fn chain_algorithm(a: DigestAlgorithm) -> pallet_ehr_index::DigestAlgorithm {
	match a {
		DigestAlgorithm::Blake2_256 => pallet_ehr_index::DigestAlgorithm::Blake2_256,
		DigestAlgorithm::Sha256 => pallet_ehr_index::DigestAlgorithm::Sha2_256,
		DigestAlgorithm::Sm3 => pallet_ehr_index::DigestAlgorithm::Sm3,
	}
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
			eprintln!("[record] read {pct:>3} % ({} of {total} bytes)", data.len());
			last = pct;
		}
	}
	Ok(data)
}

async fn put(o: &Options) -> Result<(), String> {
	let t0 = Instant::now();
	let path = Path::new(opt(o, "file")?);
	let patient = AccountId::from_ss58check(opt(o, "patient")?).map_err(|e| format!("--patient: {e:?}"))?;
	let kind = kind(opt(o, "kind")?)?;
	let algorithm = DigestAlgorithm::from_name(or(o, "algorithm", "sm3")).ok_or("--algorithm: sm3, sha-256 or blake2-256")?;
	let signer = sr25519::Pair::from_string(opt(o, "suri")?, None).map_err(|e| format!("--suri: {e:?}"))?;
	let node = Node::new(or(o, "node", "127.0.0.1:9944"));

	let plaintext = read_with_progress(path)?;
	let sealed = encrypt_record(&plaintext)?;
	drop(plaintext);
	eprintln!("[record] encrypted {} bytes with AES-256-GCM under a fresh data key", sealed.ciphertext.len());
	let key_out = o.get("key-out").cloned().unwrap_or_else(|| format!("{}.key", path.display()));
	write_key(Path::new(&key_out), &sealed.data_key)?;

	// The patient's Umbral key, if registered: the data key is sealed to it.
	let patient_key: Option<pallet_proxy_reencrypt::UmbralKeys> = node
		.storage(&pallet_proxy_reencrypt::Keys::<Runtime>::hashed_key_for(&patient))
		.map_err(|e| e.to_string())?;
	let capsule = match &patient_key {
		Some(k) => Some(seal_data_key(&k.public_key, &sealed.data_key)?),
		None => {
			eprintln!("[record] the patient has no Umbral key on chain: no key capsule (sharing by grant needs one)");
			None
		},
	};

	let store = store(o).await?;
	let stored = store
		.put(&patient.to_ss58check(), opt(o, "kind")?, algorithm, &sealed.ciphertext)
		.await
		.map_err(|e| format!("not stored, nothing published: {e}"))?;
	eprintln!(
		"[record] stored in {}/{} as {} ({} digest {})",
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
	match publish(&node, &signer, &patient, kind, &stored, capsule_hash) {
		Ok(id) => {
			if let Some(c) = capsule {
				attach_capsule(&node, &signer, id, c)?;
			}
			println!(
				"{}",
				serde_json::json!({
					"record": id,
					"object_id": hex(&stored.pointer.object_id),
					"digest": hex(&stored.digest),
					"size": stored.size,
					"key_file": key_out,
					"capsule": patient_key.is_some(),
					"seconds": t0.elapsed().as_secs_f64(),
				})
			);
			Ok(())
		},
		Err(e) => {
			let cleanup = match store.delete(stored.pointer.object_id).await {
				Ok(()) => "the stored document was deleted".to_string(),
				Err(d) => format!("and deleting the stored document failed too: {d}"),
			};
			Err(format!("publishing failed: {e}; {cleanup}"))
		},
	}
}

fn write_key(path: &Path, key: &[u8; 32]) -> Result<(), String> {
	let mut options = std::fs::OpenOptions::new();
	options.write(true).create(true).truncate(true);
	#[cfg(unix)]
	std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
	let mut f = options.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
	f.write_all(hex(key).as_bytes()).map_err(|e| e.to_string())?;
	eprintln!("[record] data key written to {} (give it only to whom the patient allows)", path.display());
	Ok(())
}

/// Publishes the index entry and waits until it is on chain; returns its id.
fn publish(
	node: &Node,
	signer: &sr25519::Pair,
	patient: &AccountId,
	kind: RecordKind,
	stored: &StoredRecord,
	capsule_hash: H256,
) -> Result<u64, String> {
	let q = |e: RpcError| e.to_string();
	let pointer = StorePointer {
		store_id: stored.pointer.store_id.as_bytes().to_vec().try_into().map_err(|_| "store id too long")?,
		collection: stored.pointer.collection.as_bytes().to_vec().try_into().map_err(|_| "collection too long")?,
		object_id: stored.pointer.object_id,
	};
	let digest = ContentDigest { algorithm: chain_algorithm(stored.algorithm), digest: stored.digest };
	let first: u64 = node.storage(&NextRecordId::<Runtime>::hashed_key()).map_err(q)?.unwrap_or(0);
	let call = RuntimeCall::EhrIndex(pallet_ehr_index::Call::publish_record {
		patient: patient.clone(),
		kind,
		digest,
		pointer,
		size: stored.size,
		capsule_hash,
	});
	let nonce = node.submit(signer, call).map_err(q)?;
	let issuer = AccountId::from(signer.public());
	eprintln!("[record] index entry submitted; waiting for a block");
	let deadline = Instant::now() + Duration::from_secs(60);
	loop {
		// Whether the transaction is in a block is read before the scan, so a
		// scan that finds nothing after inclusion means the runtime refused it.
		let included = node.included(&issuer, nonce).map_err(q)?;
		let next: u64 = node.storage(&NextRecordId::<Runtime>::hashed_key()).map_err(q)?.unwrap_or(0);
		for id in first..next {
			let record: Option<pallet_ehr_index::Record<Runtime>> =
				node.storage(&Records::<Runtime>::hashed_key_for(id)).map_err(q)?;
			if record.is_some_and(|r| r.digest == digest && r.patient == *patient) {
				return Ok(id);
			}
		}
		if included {
			return Err("the runtime refused the index entry (is the signer an active producer institution?)".into());
		}
		if Instant::now() > deadline {
			return Err("the index entry did not reach the chain within 60 s".into());
		}
		std::thread::sleep(Duration::from_millis(300));
	}
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

/// Attaches the record's key capsule and waits until it is on chain.
fn attach_capsule(
	node: &Node,
	signer: &sr25519::Pair,
	record: u64,
	capsule: pallet_proxy_reencrypt::KeyCapsule,
) -> Result<(), String> {
	let q = |e: RpcError| e.to_string();
	let call = RuntimeCall::ProxyReencrypt(pallet_proxy_reencrypt::Call::attach_capsule { record, capsule });
	let nonce = node.submit(signer, call).map_err(q)?;
	let issuer = AccountId::from(signer.public());
	let deadline = Instant::now() + Duration::from_secs(60);
	loop {
		let included = node.included(&issuer, nonce).map_err(q)?;
		let attached: Option<pallet_proxy_reencrypt::KeyCapsule> =
			node.storage(&pallet_proxy_reencrypt::Capsules::<Runtime>::hashed_key_for(record)).map_err(q)?;
		if attached.is_some() {
			eprintln!("[record] key capsule of record {record} on chain (the patient can grant access)");
			return Ok(());
		}
		if included {
			return Err(format!("record {record} is published but the runtime refused its key capsule"));
		}
		if Instant::now() > deadline {
			return Err(format!("record {record} is published but its key capsule did not reach the chain in 60 s"));
		}
		std::thread::sleep(Duration::from_millis(300));
	}
}

async fn get(o: &Options) -> Result<(), String> {
	let node = Node::new(or(o, "node", "127.0.0.1:9944"));
	let id: u64 = opt(o, "record")?.parse().map_err(|_| "--record: not a number")?;
	let record: pallet_ehr_index::Record<Runtime> = node
		.storage(&Records::<Runtime>::hashed_key_for(id))
		.map_err(|e| e.to_string())?
		.ok_or(format!("record {id} is not on chain"))?;
	let pointer = record.pointer.ok_or(format!("record {id} was erased"))?;
	let key_text = std::fs::read_to_string(opt(o, "key")?).map_err(|e| format!("--key: {e}"))?;
	let key: [u8; 32] = medchain_chain_client::unhex(key_text.trim())
		.map_err(|e| e.to_string())?
		.try_into()
		.map_err(|_| "--key: not a 32-byte key")?;
	let ciphertext = store(o).await?.get(pointer.object_id, &record.digest.digest).await.map_err(|e| e.to_string())?;
	let plaintext = decrypt_record(&ciphertext, &key)?;
	let out = opt(o, "out")?;
	std::fs::write(out, &plaintext).map_err(|e| format!("{out}: {e}"))?;
	eprintln!("[record] record {id}: digest verified, {} bytes decrypted to {out}", plaintext.len());
	Ok(())
}

/// Prints the store's records of a patient (no content), one JSON per line.
async fn list(o: &Options) -> Result<(), String> {
	let patient = AccountId::from_ss58check(opt(o, "patient")?).map_err(|e| format!("--patient: {e:?}"))?;
	let limit: i64 = or(o, "limit", "100").parse().map_err(|_| "--limit: not a number")?;
	for r in store(o).await?.list_by_patient(&patient.to_ss58check(), limit).await.map_err(|e| e.to_string())? {
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
