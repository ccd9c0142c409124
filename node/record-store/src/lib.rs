//! An institution's record store: encrypted medical records in MongoDB,
//! addressed by the pointers the chain's record index holds.
//!
//! The store never sees plaintext: callers put ciphertext (see
//! [`encrypt_record`]); the store computes the content digest the chain
//! indexes (BLAKE2-256, SHA-256 or SM3), and every read recomputes it, so a
//! document changed behind the chain's back is refused
//! ([`StoreError::DigestMismatch`]).
//!
//! One MongoDB collection per store holds documents
//! `{ _id: ObjectId, patient, kind, algorithm, digest, size, ciphertext, created }`
//! with a unique index on `(patient, digest)`: the same ciphertext is not
//! stored twice for a patient ([`StoreError::Duplicate`]).

use futures::TryStreamExt;
use mongodb::{
	bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, DateTime, Document},
	error::{ErrorKind, WriteFailure},
	options::{ClientOptions, IndexOptions},
	Client, Collection, IndexModel,
};
use std::time::Duration;

pub mod journal;

/// How a record's content digest is computed: the chain's own type.
pub use medchain_primitives::DigestAlgorithm;

/// Computes content digests.
pub trait Digests {
	/// The digest of `bytes`.
	fn digest(&self, bytes: &[u8]) -> [u8; 32];
}

impl Digests for DigestAlgorithm {
	fn digest(&self, bytes: &[u8]) -> [u8; 32] {
		use sha2::Digest;
		match self {
			DigestAlgorithm::Blake2_256 => blake2_256(bytes),
			DigestAlgorithm::Sha2_256 => sha2::Sha256::digest(bytes).into(),
			DigestAlgorithm::Sm3 => sm3::Sm3::digest(bytes).into(),
		}
	}
}

fn blake2_256(bytes: &[u8]) -> [u8; 32] {
	use blake2::digest::{Update, VariableOutput};
	let mut h = blake2::Blake2bVar::new(32).expect("32 is a valid BLAKE2b output size");
	h.update(bytes);
	let mut out = [0u8; 32];
	h.finalize_variable(&mut out).expect("output buffer is 32 bytes");
	out
}

/// Where a record lives: what the chain's `StorePointer` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
	/// The institution's store id.
	pub store_id: String,
	/// The collection.
	pub collection: String,
	/// The document's ObjectId.
	pub object_id: [u8; 12],
}

/// A record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
	/// Where it is.
	pub pointer: Pointer,
	/// The patient's account (SS58 or hex, as the institution writes it).
	pub patient: String,
	/// The record kind (e.g. `LabResult`).
	pub kind: String,
	/// Digest algorithm.
	pub algorithm: DigestAlgorithm,
	/// Digest of the ciphertext.
	pub digest: [u8; 32],
	/// Ciphertext length in bytes.
	pub size: u64,
}

/// Why a store operation failed. Nothing is left half-written: a failed put
/// stores nothing.
#[derive(Clone, Debug)]
pub enum StoreError {
	/// MongoDB could not be reached (or did not answer in time).
	Unreachable(String),
	/// The same ciphertext is already stored for this patient.
	Duplicate,
	/// No document at this pointer (never stored, or erased).
	NotFound,
	/// The stored content's digest differs from the expected one.
	DigestMismatch {
		/// What the chain says.
		expected: [u8; 32],
		/// What the stored bytes hash to.
		actual: [u8; 32],
	},
	/// The document is not a Medchain record.
	Corrupt(String),
	/// Any other MongoDB error.
	Mongo(String),
}

impl std::fmt::Display for StoreError {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		match self {
			StoreError::Unreachable(e) => write!(f, "MongoDB is unreachable: {e}"),
			StoreError::Duplicate => write!(f, "this ciphertext is already stored for the patient"),
			StoreError::NotFound => write!(f, "no record at this pointer"),
			StoreError::DigestMismatch { expected, actual } =>
				write!(f, "digest mismatch: expected {}, stored content hashes to {}", hex(expected), hex(actual)),
			StoreError::Corrupt(e) => write!(f, "not a Medchain record: {e}"),
			StoreError::Mongo(e) => write!(f, "MongoDB error: {e}"),
		}
	}
}

impl std::error::Error for StoreError {}

impl From<mongodb::error::Error> for StoreError {
	fn from(e: mongodb::error::Error) -> Self {
		match *e.kind {
			ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } =>
				StoreError::Unreachable(e.to_string()),
			ErrorKind::Write(WriteFailure::WriteError(ref w)) if w.code == 11000 => StoreError::Duplicate,
			_ => StoreError::Mongo(e.to_string()),
		}
	}
}

/// Lowercase hex with `0x`.
pub use medchain_chain_client::hex;

/// A connection to one institution's store.
pub struct RecordStore {
	store_id: String,
	collection: Collection<Document>,
	database: mongodb::Database,
}

/// How long the driver looks for a server before a call fails as
/// [`StoreError::Unreachable`].
pub const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(3);

impl RecordStore {
	/// Connects to `uri` (e.g. `mongodb://127.0.0.1:27017`), database
	/// `database`, collection `collection`, and makes sure the unique index
	/// exists. `store_id` names this store in on-chain pointers.
	pub async fn connect(uri: &str, database: &str, collection: &str, store_id: &str) -> Result<Self, StoreError> {
		let mut options = ClientOptions::parse(uri).await.map_err(|e| StoreError::Unreachable(e.to_string()))?;
		options.server_selection_timeout = Some(SERVER_SELECTION_TIMEOUT);
		options.connect_timeout = Some(SERVER_SELECTION_TIMEOUT);
		options.app_name = Some("medchain-record-store".into());
		let client = Client::with_options(options)?;
		let database = client.database(database);
		let collection = database.collection::<Document>(collection);
		let unique = IndexModel::builder()
			.keys(doc! { "patient": 1, "digest": 1 })
			.options(IndexOptions::builder().unique(true).name("patient_digest".to_string()).build())
			.build();
		collection.create_index(unique).await?;
		Ok(RecordStore { store_id: store_id.to_string(), collection, database })
	}

	/// The gateway's journal of served reads, in the same database
	/// (collection [`journal::COLLECTION`]).
	pub fn journal(&self) -> journal::Journal {
		journal::Journal::new(self.database.collection::<Document>(journal::COLLECTION))
	}

	/// Stores `ciphertext` for `patient`; returns the record with its pointer
	/// and digest (what to publish on chain).
	pub async fn put(
		&self,
		patient: &str,
		kind: &str,
		algorithm: DigestAlgorithm,
		ciphertext: &[u8],
	) -> Result<StoredRecord, StoreError> {
		let id = ObjectId::new();
		let digest = algorithm.digest(ciphertext);
		let document = doc! {
			"_id": id,
			"patient": patient,
			"kind": kind,
			"algorithm": algorithm.name(),
			"digest": binary(&digest),
			"size": ciphertext.len() as i64,
			"ciphertext": binary(ciphertext),
			"created": DateTime::now(),
		};
		self.collection.insert_one(document).await?;
		Ok(StoredRecord {
			pointer: self.pointer(id),
			patient: patient.to_string(),
			kind: kind.to_string(),
			algorithm,
			digest,
			size: ciphertext.len() as u64,
		})
	}

	/// The ciphertext at `object_id`, after checking it still hashes to
	/// `expected` (the digest the chain indexes).
	pub async fn get(&self, object_id: [u8; 12], expected: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
		let document = self
			.collection
			.find_one(doc! { "_id": ObjectId::from_bytes(object_id) })
			.await?
			.ok_or(StoreError::NotFound)?;
		let record = self.record(&document)?;
		let ciphertext = bytes(&document, "ciphertext")?;
		let actual = record.algorithm.digest(&ciphertext);
		if &actual != expected {
			return Err(StoreError::DigestMismatch { expected: *expected, actual });
		}
		Ok(ciphertext)
	}

	/// Whether on-chain pointers naming store `store_id` and `collection`
	/// point into this store.
	pub fn holds(&self, store_id: &[u8], collection: &[u8]) -> bool {
		self.store_id.as_bytes() == store_id && self.collection.name().as_bytes() == collection
	}

	/// The ciphertext at `object_id` as stored, unchecked: for validators,
	/// who check it against the chain's digest themselves.
	pub async fn get_unchecked(&self, object_id: [u8; 12]) -> Result<Vec<u8>, StoreError> {
		let document = self
			.collection
			.find_one(doc! { "_id": ObjectId::from_bytes(object_id) })
			.await?
			.ok_or(StoreError::NotFound)?;
		bytes(&document, "ciphertext")
	}

	/// Records of `patient`, oldest first, at most `limit`, without content.
	pub async fn list_by_patient(&self, patient: &str, limit: i64) -> Result<Vec<StoredRecord>, StoreError> {
		let mut cursor = self
			.collection
			.find(doc! { "patient": patient })
			.projection(doc! { "ciphertext": 0 })
			.sort(doc! { "_id": 1 })
			.limit(limit)
			.await?;
		let mut out = Vec::new();
		while let Some(document) = cursor.try_next().await? {
			out.push(self.record(&document)?);
		}
		Ok(out)
	}

	/// Deletes the record at `object_id` (erasure). The chain entry is then
	/// marked erased with `erase_record`.
	pub async fn delete(&self, object_id: [u8; 12]) -> Result<(), StoreError> {
		let result = self.collection.delete_one(doc! { "_id": ObjectId::from_bytes(object_id) }).await?;
		if result.deleted_count == 0 {
			return Err(StoreError::NotFound);
		}
		Ok(())
	}

	fn pointer(&self, id: ObjectId) -> Pointer {
		Pointer {
			store_id: self.store_id.clone(),
			collection: self.collection.name().to_string(),
			object_id: id.bytes(),
		}
	}

	fn record(&self, d: &Document) -> Result<StoredRecord, StoreError> {
		let corrupt = |what: &str| StoreError::Corrupt(format!("field `{what}`"));
		let id = d.get_object_id("_id").map_err(|_| corrupt("_id"))?;
		let algorithm = d
			.get_str("algorithm")
			.ok()
			.and_then(DigestAlgorithm::from_name)
			.ok_or_else(|| corrupt("algorithm"))?;
		let digest: [u8; 32] = bytes(d, "digest")?.try_into().map_err(|_| corrupt("digest"))?;
		Ok(StoredRecord {
			pointer: self.pointer(id),
			patient: d.get_str("patient").map_err(|_| corrupt("patient"))?.to_string(),
			kind: d.get_str("kind").map_err(|_| corrupt("kind"))?.to_string(),
			algorithm,
			digest,
			size: d.get_i64("size").map_err(|_| corrupt("size"))? as u64,
		})
	}
}

fn binary(bytes: &[u8]) -> Bson {
	Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: bytes.to_vec() })
}

fn bytes(d: &Document, field: &str) -> Result<Vec<u8>, StoreError> {
	match d.get(field) {
		Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
		_ => Err(StoreError::Corrupt(format!("field `{field}`"))),
	}
}

/// A record encrypted with AES-256-GCM under a fresh data key: what the
/// institution stores (`ciphertext`) and what it wraps for the patient
/// (`data_key`; with proxy re-encryption, into an Umbral capsule).
pub struct EncryptedRecord {
	/// `nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag`.
	pub ciphertext: Vec<u8>,
	/// The 256-bit data key.
	pub data_key: [u8; 32],
}

/// Encrypts `plaintext` under a fresh random key.
pub fn encrypt_record(plaintext: &[u8]) -> Result<EncryptedRecord, String> {
	use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit};
	let mut data_key = [0u8; 32];
	let mut nonce = [0u8; 12];
	getrandom::getrandom(&mut data_key).map_err(|e| e.to_string())?;
	getrandom::getrandom(&mut nonce).map_err(|e| e.to_string())?;
	let cipher = Aes256Gcm::new_from_slice(&data_key).map_err(|e| e.to_string())?;
	let sealed = cipher.encrypt(aes_gcm::Nonce::from_slice(&nonce), plaintext).map_err(|e| e.to_string())?;
	let mut ciphertext = nonce.to_vec();
	ciphertext.extend_from_slice(&sealed);
	Ok(EncryptedRecord { ciphertext, data_key })
}

/// Decrypts what [`encrypt_record`] produced; fails if anything was altered.
pub fn decrypt_record(ciphertext: &[u8], data_key: &[u8; 32]) -> Result<Vec<u8>, String> {
	use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit};
	if ciphertext.len() < 12 + 16 {
		return Err("ciphertext too short".into());
	}
	let (nonce, sealed) = ciphertext.split_at(12);
	let cipher = Aes256Gcm::new_from_slice(data_key).map_err(|e| e.to_string())?;
	cipher
		.decrypt(aes_gcm::Nonce::from_slice(nonce), sealed)
		.map_err(|_| "decryption failed: wrong key or altered ciphertext".to_string())
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn digests_match_reference_vectors() {
		assert_eq!(
			hex(&DigestAlgorithm::Sha2_256.digest(b"abc")),
			"0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
		);
		// GB/T 32905-2016, example 1.
		assert_eq!(
			hex(&DigestAlgorithm::Sm3.digest(b"abc")),
			"0x66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
		);
		assert_eq!(
			hex(&DigestAlgorithm::Blake2_256.digest(b"")),
			"0x0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
		);
		for a in DigestAlgorithm::ALL {
			assert_eq!(DigestAlgorithm::from_name(a.name()), Some(a));
		}
		assert_eq!(DigestAlgorithm::from_name("md5"), None);
	}

	#[test]
	fn encryption_round_trip_and_tamper_detection() {
		let sealed = encrypt_record(b"blood pressure 120/80").unwrap();
		assert_eq!(decrypt_record(&sealed.ciphertext, &sealed.data_key).unwrap(), b"blood pressure 120/80");
		let mut altered = sealed.ciphertext.clone();
		altered[20] ^= 1;
		assert!(decrypt_record(&altered, &sealed.data_key).is_err());
		assert!(decrypt_record(&sealed.ciphertext, &[0; 32]).is_err());
		assert!(decrypt_record(&[0; 10], &sealed.data_key).is_err());
		let again = encrypt_record(b"blood pressure 120/80").unwrap();
		assert_ne!(again.ciphertext, sealed.ciphertext, "fresh key and nonce each time");
	}
}
