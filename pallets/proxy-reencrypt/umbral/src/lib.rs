//! # Medchain Umbral
//!
//! Umbral proxy re-encryption ([`umbral_pre`] 0.10) as Medchain uses it, for
//! the runtime (no_std), the node's proxies (offchain workers) and native
//! tools alike.
//!
//! - **Wire format.** Capsules, key fragments and capsule fragments travel as
//!   the bytes `@nucypher/umbral-pre` 0.10 gives with `toBytes()` and reads
//!   with `fromBytes()` (MessagePack, structs as arrays). [`to_bytes`] and
//!   [`from_bytes`] speak the subset of MessagePack those types use without
//!   `std`, so the runtime reads exactly what a patient's browser writes.
//! - **Keys.** Public keys are 33-byte compressed secp256k1 points
//!   ([`public_key`]); secret keys 32-byte big-endian scalars.
//! - **Sealed key fragments.** A key fragment travels on chain encrypted to
//!   its proxy's public key ([`SealedKeyFrag`]): only that proxy can open it
//!   ([`open_kfrag`]), and it is verified against the patient's keys before use.
//! - **Checks the chain makes.** [`verify_cfrag`]: a capsule fragment was
//!   produced from a key fragment the patient signed for this grantee, from
//!   this capsule.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod msgpack;

use alloc::{boxed::Box, vec::Vec};

pub use msgpack::{from_bytes, to_bytes, CodecError};
pub use umbral_pre::{
	Capsule, CapsuleFrag, KeyFrag, PublicKey, SecretKey, Signer, VerifiedCapsuleFrag, VerifiedKeyFrag,
};

/// Length of a compressed public key.
pub const PUBLIC_KEY_LEN: usize = 33;
/// Length of a key seed.
pub const SEED_LEN: usize = 32;
/// Length of a key fragment's id.
pub const KFRAG_ID_LEN: usize = 32;

/// A key fragment's id: random, drawn by the patient's wallet when it makes
/// the fragment, signed with it, and carried by every capsule fragment made
/// from it. The chain binds each proxy to its fragment's id, so a proxy
/// cannot pass off another proxy's capsule fragment as its own.
pub type KfragId = [u8; KFRAG_ID_LEN];

/// What went wrong with Umbral material.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
	/// Not a compressed secp256k1 point.
	BadPublicKey,
	/// Not a valid secret scalar.
	BadSecretKey,
	/// Bytes that do not decode as the expected Umbral object.
	Malformed,
	/// A capsule fragment that does not verify against the capsule and keys.
	InvalidCapsuleFrag,
	/// A key fragment that does not verify against the patient's keys.
	InvalidKeyFrag,
	/// A key fragment other than the one the chain binds its proxy to.
	UnboundKeyFrag,
	/// Decryption failed (wrong key or tampered ciphertext).
	DecryptionFailed,
	/// Encryption failed.
	EncryptionFailed,
}

/// Parses a 33-byte compressed public key.
pub fn public_key(bytes: &[u8]) -> Result<PublicKey, Error> {
	if bytes.len() != PUBLIC_KEY_LEN {
		return Err(Error::BadPublicKey);
	}
	PublicKey::try_from_compressed_bytes(bytes).map_err(|_| Error::BadPublicKey)
}

/// Label under which a proxy's secret key is derived from its seed.
pub const PROXY_KEY_LABEL: &[u8] = b"medchain/proxy";

/// A proxy's secret key, derived from its 32-byte seed (what the node keeps)
/// with Umbral's key factory and [`PROXY_KEY_LABEL`]; browsers and tools get
/// the same key with `SecretKeyFactory.fromSecureRandomness(seed).makeKey(label)`.
pub fn proxy_secret_key(seed: &[u8]) -> Result<SecretKey, Error> {
	secret_key(seed, PROXY_KEY_LABEL)
}

/// The secret key Umbral's key factory derives from a 32-byte `seed` under
/// `label` (`SecretKeyFactory.fromSecureRandomness(seed).makeKey(label)`):
/// one seed gives unrelated keys for different labels.
pub fn secret_key(seed: &[u8], label: &[u8]) -> Result<SecretKey, Error> {
	if seed.len() != SEED_LEN {
		return Err(Error::BadSecretKey);
	}
	umbral_pre::SecretKeyFactory::from_secure_randomness(seed)
		.map(|f| f.make_key(label))
		.map_err(|_| Error::BadSecretKey)
}

/// Prefix of the labels under which a patient's scope keys are derived.
pub const SCOPE_KEY_PREFIX: &str = "medchain/scope/";

/// The label of a patient's key for every record of a kind, by the kind's
/// name as the runtime's metadata spells it (`LabResult`, `Imaging`, ...).
pub fn kind_label(kind: &str) -> Vec<u8> {
	alloc::format!("{SCOPE_KEY_PREFIX}kind/{kind}").into_bytes()
}

/// The label of a patient's one-time key number `index` (the key of one
/// record).
pub fn record_label(index: u32) -> Vec<u8> {
	alloc::format!("{SCOPE_KEY_PREFIX}record/{index}").into_bytes()
}

/// A patient's scope key: derived from the patient's *secret* key with a
/// label (Umbral's key factory seeded with the secret's 32 bytes), as
/// NuCypher derives keys per label. Hardened: neither the public key nor
/// any other scope's secret gives it, so a key fragment made from one scope
/// key opens nothing encrypted to another. (Public tweaks of the public
/// key would not do: a grantee holding one scope's secret would compute
/// every other.) Browsers derive the same key
/// (`SecretKeyFactory.fromSecureRandomness(secret).makeKey(label)`).
pub fn scope_secret_key(patient: &SecretKey, label: &[u8]) -> Result<SecretKey, Error> {
	secret_key(patient.to_be_bytes().as_secret(), label)
}

/// The compressed bytes of a public key.
pub fn public_key_bytes(pk: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
	let mut out = [0u8; PUBLIC_KEY_LEN];
	out.copy_from_slice(&pk.to_compressed_bytes());
	out
}

/// Parses a capsule in wire format (its integrity is checked while parsing).
pub fn capsule(bytes: &[u8]) -> Result<Capsule, Error> {
	from_bytes(bytes).map_err(|_| Error::Malformed)
}

/// Parses a capsule fragment in wire format, unverified.
pub fn capsule_frag(bytes: &[u8]) -> Result<CapsuleFrag, Error> {
	from_bytes(bytes).map_err(|_| Error::Malformed)
}

/// Parses a key fragment in wire format, unverified.
pub fn key_frag(bytes: &[u8]) -> Result<KeyFrag, Error> {
	from_bytes(bytes).map_err(|_| Error::Malformed)
}

/// The id of key fragment `kfrag` (verified or not).
///
/// A key fragment's wire format is `[params, id, key, precursor, proof]`; the
/// id is the second element, a 32-byte `bin`.
pub fn kfrag_id<K: serde::Serialize>(kfrag: &K) -> Result<KfragId, Error> {
	use serde::de::IgnoredAny;
	let bytes = to_bytes(kfrag).map_err(|_| Error::Malformed)?;
	let (_, id, _, _, _): (IgnoredAny, &[u8], IgnoredAny, IgnoredAny, IgnoredAny) =
		from_bytes(&bytes).map_err(|_| Error::Malformed)?;
	id.try_into().map_err(|_| Error::Malformed)
}

/// The id of the key fragment capsule fragment `cfrag_bytes` (wire format)
/// was made from. Its wire format is `[e1, v1, kfrag_id, precursor, proof]`.
/// The id is covered by the patient's signature that [`verify_cfrag`] checks.
pub fn cfrag_kfrag_id(cfrag_bytes: &[u8]) -> Result<KfragId, Error> {
	use serde::de::IgnoredAny;
	let (_, _, id, _, _): (IgnoredAny, IgnoredAny, &[u8], IgnoredAny, IgnoredAny) =
		from_bytes(cfrag_bytes).map_err(|_| Error::Malformed)?;
	id.try_into().map_err(|_| Error::Malformed)
}

/// The keys a capsule fragment is checked against.
pub struct Delegation<'a> {
	/// The patient's signing key, which signed the key fragments.
	pub verifying_key: &'a PublicKey,
	/// The patient's public key, to which the capsule was encrypted.
	pub delegating_key: &'a PublicKey,
	/// The grantee's public key, for which fragments are re-encrypted.
	pub receiving_key: &'a PublicKey,
}

/// The three public keys of a delegation, parsed and owned.
pub struct DelegationKeys {
	/// The patient's verifying key.
	pub verifying_key: PublicKey,
	/// The patient's public key.
	pub delegating_key: PublicKey,
	/// The grantee's public key.
	pub receiving_key: PublicKey,
}

impl DelegationKeys {
	/// Parses the patient's verifying and public keys and the grantee's
	/// public key (33-byte compressed points each).
	pub fn parse(verifying: &[u8], delegating: &[u8], receiving: &[u8]) -> Result<Self, Error> {
		Ok(DelegationKeys {
			verifying_key: public_key(verifying)?,
			delegating_key: public_key(delegating)?,
			receiving_key: public_key(receiving)?,
		})
	}

	/// The keys as a [`Delegation`].
	pub fn delegation(&self) -> Delegation<'_> {
		Delegation {
			verifying_key: &self.verifying_key,
			delegating_key: &self.delegating_key,
			receiving_key: &self.receiving_key,
		}
	}
}

/// Verifies a capsule fragment (wire format) against the capsule and the
/// delegation: it was re-encrypted from this capsule with a key fragment the
/// patient signed for this grantee. Returns the verified fragment.
pub fn verify_cfrag(
	capsule: &Capsule,
	cfrag_bytes: &[u8],
	keys: &Delegation<'_>,
) -> Result<VerifiedCapsuleFrag, Error> {
	let cfrag = capsule_frag(cfrag_bytes)?;
	cfrag
		.verify(capsule, keys.verifying_key, keys.delegating_key, keys.receiving_key)
		.map_err(|_| Error::InvalidCapsuleFrag)
}

/// A key fragment encrypted to one proxy's public key: an Umbral capsule and
/// the ciphertext of the fragment's wire bytes. Anyone may read it on chain;
/// only the proxy can open it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SealedKeyFrag {
	/// Capsule encapsulating the symmetric key (wire format).
	pub capsule: Vec<u8>,
	/// The key fragment's wire bytes, encrypted.
	pub ciphertext: Vec<u8>,
	/// The key fragment's id, in clear: the chain binds the proxy to it.
	pub kfrag_id: KfragId,
}

/// Seals `kfrag` to `proxy`'s public key.
pub fn seal_kfrag(
	rng: &mut (impl rand_core::CryptoRng + rand_core::RngCore),
	proxy: &PublicKey,
	kfrag: &VerifiedKeyFrag,
) -> Result<SealedKeyFrag, Error> {
	let bytes = to_bytes(kfrag).map_err(|_| Error::Malformed)?;
	let (capsule, ciphertext) =
		umbral_pre::encrypt_with_rng(rng, proxy, &bytes).map_err(|_| Error::EncryptionFailed)?;
	Ok(SealedKeyFrag {
		capsule: to_bytes(&capsule).map_err(|_| Error::Malformed)?,
		ciphertext: ciphertext.into_vec(),
		kfrag_id: kfrag_id(kfrag)?,
	})
}

/// Opens a sealed key fragment with the proxy's secret key and verifies it
/// against the delegation (the patient signed it, for these keys).
pub fn open_kfrag(
	proxy: &SecretKey,
	sealed_capsule: &[u8],
	sealed_ciphertext: &[u8],
	keys: &Delegation<'_>,
) -> Result<VerifiedKeyFrag, Error> {
	let capsule = capsule(sealed_capsule)?;
	let bytes: Box<[u8]> = umbral_pre::decrypt_original(proxy, &capsule, sealed_ciphertext)
		.map_err(|_| Error::DecryptionFailed)?;
	let kfrag = key_frag(&bytes)?;
	kfrag
		.verify(keys.verifying_key, Some(keys.delegating_key), Some(keys.receiving_key))
		.map_err(|_| Error::InvalidKeyFrag)
}

/// A proxy's key fragment as it may serve it: opened and verified
/// ([`open_kfrag`]) and, once the chain binds the proxy to a key fragment id
/// (`bound`), that one ([`Error::UnboundKeyFrag`] else): capsule fragments
/// of another would all look copied to the grantee, and cost the proxy.
pub fn open_bound_kfrag(
	proxy: &SecretKey,
	sealed_capsule: &[u8],
	sealed_ciphertext: &[u8],
	keys: &Delegation<'_>,
	bound: Option<KfragId>,
) -> Result<VerifiedKeyFrag, Error> {
	let kfrag = open_kfrag(proxy, sealed_capsule, sealed_ciphertext, keys)?;
	match bound {
		Some(id) if kfrag_id(&kfrag)? != id => Err(Error::UnboundKeyFrag),
		_ => Ok(kfrag),
	}
}

/// Re-encrypts `capsule` with a verified key fragment; returns the capsule
/// fragment in wire format. `seed` feeds the proof's randomness (an offchain
/// worker takes it from the node's entropy).
pub fn reencrypt(seed: [u8; 32], capsule: &Capsule, kfrag: VerifiedKeyFrag) -> Result<Vec<u8>, Error> {
	use rand_core::SeedableRng;
	let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
	let cfrag = umbral_pre::reencrypt_with_rng(&mut rng, capsule, kfrag);
	to_bytes(&cfrag).map_err(|_| Error::Malformed)
}

/// Encrypts `plaintext` (a record's data key) to `patient`'s public key.
/// Returns the capsule (wire format) and the ciphertext.
pub fn encrypt(
	rng: &mut (impl rand_core::CryptoRng + rand_core::RngCore),
	patient: &PublicKey,
	plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), Error> {
	let (capsule, ciphertext) =
		umbral_pre::encrypt_with_rng(rng, patient, plaintext).map_err(|_| Error::EncryptionFailed)?;
	Ok((to_bytes(&capsule).map_err(|_| Error::Malformed)?, ciphertext.into_vec()))
}

/// Decrypts a capsule's ciphertext with the key it was encrypted to.
pub fn decrypt_original(sk: &SecretKey, capsule_bytes: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
	let capsule = capsule(capsule_bytes)?;
	umbral_pre::decrypt_original(sk, &capsule, ciphertext)
		.map(|b| b.into_vec())
		.map_err(|_| Error::DecryptionFailed)
}

/// The grantee's side: opens a capsule's ciphertext with its secret key and
/// at least threshold capsule fragments (wire format), each verified first.
pub fn decrypt_reencrypted(
	receiving: &SecretKey,
	keys: &Delegation<'_>,
	capsule_bytes: &[u8],
	cfrags: &[Vec<u8>],
	ciphertext: &[u8],
) -> Result<Vec<u8>, Error> {
	let capsule = capsule(capsule_bytes)?;
	let verified = cfrags
		.iter()
		.map(|c| verify_cfrag(&capsule, c, keys))
		.collect::<Result<Vec<_>, _>>()?;
	umbral_pre::decrypt_reencrypted(receiving, keys.delegating_key, &capsule, verified, ciphertext)
		.map(|b| b.into_vec())
		.map_err(|_| Error::DecryptionFailed)
}

/// Deterministic Umbral material for benchmarks and tests: a patient, a
/// grantee and proxies, from a seed (no_std; no system randomness needed).
pub struct Fixture {
	rng: rand_chacha::ChaCha20Rng,
	/// The patient's secret key.
	pub patient: SecretKey,
	/// The patient's signer of key fragments.
	pub signer: Signer,
	/// The grantee's secret key.
	pub grantee: SecretKey,
	/// The proxies' secret keys.
	pub proxies: Vec<SecretKey>,
}

impl Fixture {
	/// Material for `proxies` proxies, from `seed`.
	pub fn new(seed: u8, proxies: usize) -> Self {
		use rand_core::SeedableRng;
		let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
		let patient = SecretKey::random_with_rng(&mut rng);
		let signer = Signer::new(SecretKey::random_with_rng(&mut rng));
		let grantee = SecretKey::random_with_rng(&mut rng);
		let proxies = (0..proxies).map(|_| SecretKey::random_with_rng(&mut rng)).collect();
		Fixture { rng, patient, signer, grantee, proxies }
	}

	/// Compressed public key of a secret key.
	pub fn public(sk: &SecretKey) -> [u8; PUBLIC_KEY_LEN] {
		public_key_bytes(&sk.public_key())
	}

	/// The patient's verifying key.
	pub fn verifying(&self) -> [u8; PUBLIC_KEY_LEN] {
		public_key_bytes(&self.signer.verifying_key())
	}

	/// A data key encrypted to the patient: (capsule, ciphertext).
	pub fn capsule(&mut self) -> (Vec<u8>, Vec<u8>) {
		let patient = self.patient.public_key();
		encrypt(&mut self.rng, &patient, &[7u8; 32]).unwrap_or_default()
	}

	/// A data key encrypted to public key `to`: (capsule, ciphertext).
	pub fn capsule_to(&mut self, to: &PublicKey, data_key: &[u8]) -> (Vec<u8>, Vec<u8>) {
		encrypt(&mut self.rng, to, data_key).unwrap_or_default()
	}

	/// `threshold`-of-`proxies.len()` key fragments for the grantee, each
	/// sealed to its proxy.
	pub fn sealed_kfrags(&mut self, threshold: usize) -> Vec<SealedKeyFrag> {
		let patient = self.patient.clone();
		self.sealed_kfrags_from(&patient, threshold)
	}

	/// As [`Fixture::sealed_kfrags`], delegating from `delegating` (a scope
	/// key of the patient) instead of the patient's key.
	pub fn sealed_kfrags_from(&mut self, delegating: &SecretKey, threshold: usize) -> Vec<SealedKeyFrag> {
		let kfrags = umbral_pre::generate_kfrags_with_rng(
			&mut self.rng,
			delegating,
			&self.grantee.public_key(),
			&self.signer,
			threshold,
			self.proxies.len(),
			true,
			true,
		);
		let proxies: Vec<PublicKey> = self.proxies.iter().map(|p| p.public_key()).collect();
		kfrags.iter().zip(proxies.iter()).filter_map(|(k, p)| seal_kfrag(&mut self.rng, p, k).ok()).collect()
	}

	/// Proxy `i`'s capsule fragment of `capsule` from its sealed fragment.
	pub fn cfrag(&mut self, i: usize, capsule: &[u8], sealed: &SealedKeyFrag) -> Result<Vec<u8>, Error> {
		let delegating = self.patient.public_key();
		self.cfrag_from(&delegating, i, capsule, sealed)
	}

	/// As [`Fixture::cfrag`], for key fragments delegated from `delegating`.
	pub fn cfrag_from(
		&mut self,
		delegating: &PublicKey,
		i: usize,
		capsule: &[u8],
		sealed: &SealedKeyFrag,
	) -> Result<Vec<u8>, Error> {
		use rand_core::RngCore;
		let verifying = self.signer.verifying_key();
		let delegating = *delegating;
		let receiving = self.grantee.public_key();
		let keys = Delegation { verifying_key: &verifying, delegating_key: &delegating, receiving_key: &receiving };
		let proxy = self.proxies.get(i).ok_or(Error::BadSecretKey)?;
		let kfrag = open_kfrag(proxy, &sealed.capsule, &sealed.ciphertext, &keys)?;
		let mut seed = [0u8; 32];
		self.rng.fill_bytes(&mut seed);
		reencrypt(seed, &crate::capsule(capsule)?, kfrag)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use umbral_pre::DefaultSerialize;

	struct Party {
		sk: SecretKey,
		pk: PublicKey,
	}

	fn party() -> Party {
		let sk = SecretKey::random();
		let pk = sk.public_key();
		Party { sk, pk }
	}

	#[test]
	fn wire_format_matches_messagepack_of_the_reference_bindings() {
		let patient = party();
		let grantee = party();
		let signer = Signer::new(SecretKey::random());
		let (capsule, _) = umbral_pre::encrypt(&patient.pk, b"data key").unwrap();
		let kfrags = umbral_pre::generate_kfrags(&patient.sk, &grantee.pk, &signer, 2, 3, true, true);
		let cfrag = umbral_pre::reencrypt(&capsule, kfrags[0].clone());

		// Ours encodes byte for byte as the reference (rmp-serde, as used by
		// the wasm and python bindings' toBytes) ...
		assert_eq!(to_bytes(&capsule).unwrap(), capsule.to_bytes().unwrap().into_vec());
		assert_eq!(to_bytes(&kfrags[0]).unwrap(), kfrags[0].to_bytes().unwrap().into_vec());
		assert_eq!(to_bytes(&cfrag).unwrap(), cfrag.to_bytes().unwrap().into_vec());
		// ... and reads what the reference writes.
		let c: Capsule = from_bytes(&capsule.to_bytes().unwrap()).unwrap();
		assert_eq!(c, capsule);
		let k: KeyFrag = from_bytes(&kfrags[1].to_bytes().unwrap()).unwrap();
		assert_eq!(k, kfrags[1].clone().unverify());
		let f: CapsuleFrag = from_bytes(&cfrag.to_bytes().unwrap()).unwrap();
		assert_eq!(f, cfrag.clone().unverify());
	}

	#[test]
	fn malformed_bytes_are_refused() {
		let patient = party();
		let (capsule, _) = umbral_pre::encrypt(&patient.pk, b"k").unwrap();
		let mut bytes = to_bytes(&capsule).unwrap();
		assert_eq!(super::capsule(&bytes[..bytes.len() - 1]), Err(Error::Malformed));
		// A flipped bit in the capsule's signature fails its self-check.
		let last = bytes.len() - 1;
		bytes[last] ^= 1;
		assert_eq!(super::capsule(&bytes), Err(Error::Malformed));
		assert_eq!(super::capsule(&[]), Err(Error::Malformed));
		assert_eq!(super::capsule_frag(&[0xc3]), Err(Error::Malformed));
		assert_eq!(public_key(&[2u8; 32]), Err(Error::BadPublicKey));
		assert_eq!(public_key(&[7u8; 33]), Err(Error::BadPublicKey));
		assert_eq!(proxy_secret_key(&[1u8; 31]).err(), Some(Error::BadSecretKey));
		let a = proxy_secret_key(&[1u8; 32]).unwrap().public_key();
		assert_eq!(a, proxy_secret_key(&[1u8; 32]).unwrap().public_key(), "derivation is deterministic");
		assert_ne!(a, proxy_secret_key(&[2u8; 32]).unwrap().public_key());
		// What `@nucypher/umbral-pre` 0.10 derives in the browser for the same
		// seed (`SecretKeyFactory.fromSecureRandomness(seed).makeKey(label)`).
		let browser = "03994cc005b2d5ab0422e11b5d7a1e3c6806e0e41b7b22cc22dc46c96d80410e22";
		let ours: String = public_key_bytes(&a).iter().map(|b| format!("{b:02x}")).collect();
		assert_eq!(ours, browser);
		assert_eq!(public_key(&public_key_bytes(&patient.pk)), Ok(patient.pk));
	}

	#[test]
	fn threshold_reencryption_round_trip_with_sealed_fragments() {
		let patient = party();
		let grantee = party();
		let proxies = [party(), party(), party()];
		let signer = Signer::new(SecretKey::random());
		let verifying = signer.verifying_key();
		let keys = Delegation {
			verifying_key: &verifying,
			delegating_key: &patient.pk,
			receiving_key: &grantee.pk,
		};
		let mut rng = rand_core::OsRng;
		let data_key = [42u8; 32];
		let (capsule_bytes, ct) = encrypt(&mut rng, &patient.pk, &data_key).unwrap();
		assert_eq!(decrypt_original(&patient.sk, &capsule_bytes, &ct).unwrap(), data_key);

		let kfrags = umbral_pre::generate_kfrags(&patient.sk, &grantee.pk, &signer, 2, 3, true, true);
		let sealed: Vec<SealedKeyFrag> = kfrags
			.iter()
			.zip(proxies.iter())
			.map(|(k, p)| seal_kfrag(&mut rng, &p.pk, k).unwrap())
			.collect();
		// A proxy cannot open another proxy's fragment.
		assert_eq!(
			open_kfrag(&proxies[1].sk, &sealed[0].capsule, &sealed[0].ciphertext, &keys).err(),
			Some(Error::DecryptionFailed)
		);
		let capsule = super::capsule(&capsule_bytes).unwrap();
		let cfrags: Vec<Vec<u8>> = (0..2)
			.map(|i| {
				let k = open_kfrag(&proxies[i].sk, &sealed[i].capsule, &sealed[i].ciphertext, &keys).unwrap();
				reencrypt([i as u8; 32], &capsule, k).unwrap()
			})
			.collect();
		for c in &cfrags {
			assert!(verify_cfrag(&capsule, c, &keys).is_ok());
		}
		assert_eq!(decrypt_reencrypted(&grantee.sk, &keys, &capsule_bytes, &cfrags, &ct).unwrap(), data_key);
		// One fragment is below the threshold.
		assert_eq!(
			decrypt_reencrypted(&grantee.sk, &keys, &capsule_bytes, &cfrags[..1], &ct),
			Err(Error::DecryptionFailed)
		);
		// A fragment for another grantee does not verify for this one.
		let other = party();
		let other_keys = Delegation { receiving_key: &other.pk, ..keys };
		assert_eq!(verify_cfrag(&capsule, &cfrags[0], &other_keys).err(), Some(Error::InvalidCapsuleFrag));
		// A fragment of another capsule does not verify for this one.
		let (capsule2, _) = encrypt(&mut rng, &patient.pk, b"other").unwrap();
		let capsule2 = super::capsule(&capsule2).unwrap();
		assert_eq!(verify_cfrag(&capsule2, &cfrags[0], &keys).err(), Some(Error::InvalidCapsuleFrag));
		// A key fragment signed by someone else is refused by the proxy.
		let forger = Signer::new(SecretKey::random());
		let forged = umbral_pre::generate_kfrags(&patient.sk, &grantee.pk, &forger, 2, 3, true, true);
		let s = seal_kfrag(&mut rng, &proxies[0].pk, &forged[0]).unwrap();
		assert_eq!(
			open_kfrag(&proxies[0].sk, &s.capsule, &s.ciphertext, &keys).err(),
			Some(Error::InvalidKeyFrag)
		);
		// A proxy bound to another proxy's key fragment id serves nothing
		// under this one; bound to its own, or not bound yet, it serves.
		let open_bound = |i: usize, bound| {
			open_bound_kfrag(&proxies[i].sk, &sealed[i].capsule, &sealed[i].ciphertext, &keys, bound)
		};
		let id_of = |i: usize| kfrag_id(&open_bound(i, None).unwrap()).unwrap();
		assert_eq!(open_bound(0, Some(id_of(1))).err(), Some(Error::UnboundKeyFrag));
		assert_eq!(kfrag_id(&open_bound(0, Some(id_of(0))).unwrap()), Ok(id_of(0)));
		assert_eq!(
			open_bound_kfrag(&proxies[0].sk, &s.capsule, &s.ciphertext, &keys, Some(id_of(0))).err(),
			Some(Error::InvalidKeyFrag),
			"a forged key fragment is refused before its id is looked at"
		);
	}

	#[test]
	fn scope_keys_are_what_the_browser_derives_and_differ_per_label() {
		let root = secret_key(&[3u8; 32], b"medchain/test-root").unwrap();
		let hex = |sk: &SecretKey| -> String {
			public_key_bytes(&sk.public_key()).iter().map(|b| format!("{b:02x}")).collect()
		};
		let lab = scope_secret_key(&root, &kind_label("LabResult")).unwrap();
		let seventh = scope_secret_key(&root, &record_label(7)).unwrap();
		// `@nucypher/umbral-pre` 0.10 for the same secret and labels
		// (`SecretKeyFactory.fromSecureRandomness(sk.toBEBytes()).makeKey(label)`).
		assert_eq!(hex(&lab), "03409d4c502879d61d5b4f158f3f29297592faf8f9b4cec41849b1e65e4de0ae80");
		assert_eq!(hex(&seventh), "031c482df36f0cb0cef377e496ca18b1beeefb0340d6aec8928af6026631a3e25d");
		let imaging = scope_secret_key(&root, &kind_label("Imaging")).unwrap();
		let eighth = scope_secret_key(&root, &record_label(8)).unwrap();
		let all = [hex(&root), hex(&lab), hex(&seventh), hex(&imaging), hex(&eighth)];
		for (i, a) in all.iter().enumerate() {
			assert!(all.iter().skip(i + 1).all(|b| a != b), "every label gives its own key");
		}
	}

	/// What colluding proxies and a grantee can open with the key fragments
	/// of one delegation: every capsule encrypted to the delegating key, and
	/// nothing else. Tries each capsule with every public key they know.
	fn colluders_open(
		fx: &mut Fixture,
		delegating: &SecretKey,
		capsules: &[(Vec<u8>, Vec<u8>)],
		known_keys: &[PublicKey],
	) -> Vec<bool> {
		let sealed = fx.sealed_kfrags_from(delegating, 2);
		let verifying = fx.signer.verifying_key();
		let receiving = fx.grantee.public_key();
		let delegating_pk = delegating.public_key();
		let kfrags: Vec<VerifiedKeyFrag> = sealed
			.iter()
			.zip(fx.proxies.iter())
			.map(|(s, p)| {
				let keys = Delegation {
					verifying_key: &verifying,
					delegating_key: &delegating_pk,
					receiving_key: &receiving,
				};
				open_kfrag(p, &s.capsule, &s.ciphertext, &keys).unwrap()
			})
			.collect();
		capsules
			.iter()
			.map(|(capsule_bytes, ct)| {
				let capsule = super::capsule(capsule_bytes).unwrap();
				let cfrags: Vec<VerifiedCapsuleFrag> =
					kfrags.iter().map(|k| umbral_pre::reencrypt(&capsule, k.clone())).collect();
				known_keys.iter().any(|claimed| {
					umbral_pre::decrypt_reencrypted(&fx.grantee, claimed, &capsule, cfrags.clone(), ct).is_ok()
				})
			})
			.collect()
	}

	#[test]
	fn a_record_scoped_grant_with_every_proxy_colluding_opens_no_other_record() {
		let mut fx = Fixture::new(9, 3);
		let root = fx.patient.clone();
		let lab = scope_secret_key(&root, &kind_label("LabResult")).unwrap();
		let imaging = scope_secret_key(&root, &kind_label("Imaging")).unwrap();
		let rec: Vec<SecretKey> = (0..3).map(|i| scope_secret_key(&root, &record_label(i)).unwrap()).collect();
		let known: Vec<PublicKey> =
			[&root, &lab, &imaging, &rec[0], &rec[1], &rec[2]].iter().map(|sk| sk.public_key()).collect();
		// Record 0 and 1 are lab results, record 2 an image; each data key is
		// encrypted to the root, the record's kind key and its one-time key.
		let record = |kind: &SecretKey, one_time: &SecretKey, fx: &mut Fixture| {
			let data_key = [0x5au8; 32];
			[root.public_key(), kind.public_key(), one_time.public_key()]
				.iter()
				.map(|pk| fx.capsule_to(pk, &data_key))
				.collect::<Vec<_>>()
		};
		let first = record(&lab, &rec[0], &mut fx);
		let second = record(&lab, &rec[1], &mut fx);
		let image = record(&imaging, &rec[2], &mut fx);

		// A grant of record 0: its fragments open record 0's one-time capsule
		// only, nothing of the second lab result nor of the image.
		assert_eq!(colluders_open(&mut fx, &rec[0], &first, &known), [false, false, true]);
		assert_eq!(colluders_open(&mut fx, &rec[0], &second, &known), [false, false, false]);
		assert_eq!(colluders_open(&mut fx, &rec[0], &image, &known), [false, false, false]);
		// A grant of every lab result opens both lab results' kind capsules,
		// nothing of the image.
		assert_eq!(colluders_open(&mut fx, &lab, &first, &known), [false, true, false]);
		assert_eq!(colluders_open(&mut fx, &lab, &second, &known), [false, true, false]);
		assert_eq!(colluders_open(&mut fx, &lab, &image, &known), [false, false, false]);
		// A grant of everything (the root key) opens every record.
		assert_eq!(colluders_open(&mut fx, &root, &image, &known), [true, false, false]);
	}

	#[test]
	fn fixtures_are_deterministic_and_valid() {
		let mut a = Fixture::new(1, 2);
		let mut b = Fixture::new(1, 2);
		assert_eq!(Fixture::public(&a.patient), Fixture::public(&b.patient));
		let (capsule, ct) = a.capsule();
		assert_eq!((capsule.clone(), ct.clone()), b.capsule());
		let sealed = a.sealed_kfrags(2);
		assert_eq!(sealed.len(), 2);
		let cfrags: Vec<Vec<u8>> = (0..2).map(|i| a.cfrag(i, &capsule, &sealed[i]).unwrap()).collect();
		let verifying = a.signer.verifying_key();
		let (delegating, receiving) = (a.patient.public_key(), a.grantee.public_key());
		let keys = Delegation { verifying_key: &verifying, delegating_key: &delegating, receiving_key: &receiving };
		assert_eq!(decrypt_reencrypted(&a.grantee, &keys, &capsule, &cfrags, &ct).unwrap(), vec![7u8; 32]);
	}

	#[test]
	fn a_capsule_fragment_carries_the_id_of_its_key_fragment() {
		let mut fx = Fixture::new(3, 3);
		let (capsule, _) = fx.capsule();
		let sealed = fx.sealed_kfrags(2);
		let ids: Vec<KfragId> = sealed.iter().map(|s| s.kfrag_id).collect();
		assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "ids are distinct");
		for (i, s) in sealed.iter().enumerate() {
			let cfrag = fx.cfrag(i, &capsule, s).unwrap();
			assert_eq!(cfrag_kfrag_id(&cfrag), Ok(ids[i]));
		}
		// The portal reads the id at a fixed place of a key fragment's wire
		// bytes: [0x95, params = [0x91, bin8(33)], bin8(32) id, …].
		let kfrags = umbral_pre::generate_kfrags(&fx.patient, &fx.grantee.public_key(), &fx.signer, 1, 1, true, true);
		let bytes = to_bytes(&kfrags[0]).unwrap();
		assert_eq!(&bytes[..4], &[0x95, 0x91, 0xc4, 33]);
		assert_eq!(&bytes[37..39], &[0xc4, 32]);
		assert_eq!(kfrag_id(&kfrags[0]), Ok(bytes[39..71].try_into().unwrap()));
		assert_eq!(cfrag_kfrag_id(b"not a fragment"), Err(Error::Malformed));
	}

	#[test]
	fn reencryption_is_deterministic_in_its_seed() {
		let patient = party();
		let grantee = party();
		let signer = Signer::new(SecretKey::random());
		let (capsule, _) = umbral_pre::encrypt(&patient.pk, b"k").unwrap();
		let kfrags = umbral_pre::generate_kfrags(&patient.sk, &grantee.pk, &signer, 1, 1, true, true);
		let a = reencrypt([1; 32], &capsule, kfrags[0].clone()).unwrap();
		let b = reencrypt([1; 32], &capsule, kfrags[0].clone()).unwrap();
		let c = reencrypt([2; 32], &capsule, kfrags[0].clone()).unwrap();
		assert_eq!(a, b);
		assert_ne!(a, c);
	}
}
