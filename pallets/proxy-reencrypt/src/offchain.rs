//! The proxy in the node: an offchain worker that answers the grants naming
//! the node's proxies and serves their open access requests.
//!
//! For each proxy account in the keystore (key type [`crate::KEY_TYPE`]) that
//! is an active institution and a registered proxy, and whose Umbral key seed is in the node's
//! persistent offchain storage (under [`crate::PROXY_SECRET_PREFIX`] followed
//! by its public key; the secret key is derived with
//! `medchain_umbral::proxy_secret_key`):
//!
//! - for each live grant naming that proxy that it has not answered yet
//!   ([`crate::PendingAcknowledgements`]), the worker opens the proxy's sealed
//!   key fragment and verifies it against the patient's keys (once per grant:
//!   the opened fragment is kept in the node's offchain storage) and submits
//!   `acknowledge_grant`, or `dispute_grant` if the fragment does not open or
//!   verify;
//! - for each open request of a live grant the proxy acknowledged, it
//!   re-encrypts the record's capsule with the opened key fragment and
//!   submits the capsule fragment;
//! - the opened key fragment of a grant that ended (revoked, expired,
//!   disputed beyond use) is deleted from the node at the next block: the
//!   node keeps nothing that could serve a grant the patient ended.
//!
//! Everything is sent in signed transactions. The secret key and the key
//! fragment never leave the node. A persistent marker per (grant, proxy) and
//! per (request, proxy) prevents a second submission across blocks and
//! restarts; it is retried after [`RESUBMIT_AFTER`] blocks if the
//! transaction did not land.

use crate::*;
use codec::Encode;
use frame_support::{pallet_prelude::*, traits::GetCallName};
use frame_system::{
	offchain::{AppCrypto, SendSignedTransaction, Signer},
	pallet_prelude::BlockNumberFor,
};
use sp_runtime::{offchain::storage::StorageValueRef, traits::IdentifyAccount, SaturatedConversion};

/// Blocks after which a proxy submits again if its fragment has not landed.
pub const RESUBMIT_AFTER: u32 = 10;

/// A proxy of this node: its signing key, its account and its Umbral secret key.
type LocalProxy<T> = (<T as frame_system::offchain::SigningTypes>::Public, <T as frame_system::Config>::AccountId, medchain_umbral::SecretKey);

/// Why a proxy cannot use its key fragment of a grant.
enum KfragError {
	/// The sealed fragment does not open with the proxy's key or does not
	/// verify against the patient's keys: the proxy disputes the grant.
	Invalid,
	/// Something to open it with is missing; tried again later.
	Unavailable(&'static str),
}

impl<T: Config> Pallet<T> {
	/// Does what this node's proxies owe at `now`: answers to the grants
	/// naming them, then fragments for the open requests they serve.
	pub(crate) fn run_proxies(now: BlockNumberFor<T>) -> Result<(), &'static str> {
		Self::forget_ended_grants(now);
		let local = Self::local_proxies();
		if local.is_empty() {
			return Err("no active registered proxy with its secret in this node");
		}
		Self::answer_grants(&local, now);
		Self::serve_open_requests(&local, now);
		Ok(())
	}

	/// Acknowledges (or disputes) every live grant a local proxy has not
	/// answered yet, after opening and verifying its key fragment.
	fn answer_grants(local: &[LocalProxy<T>], now: BlockNumberFor<T>) {
		for (public, account, secret) in local {
			for grant in PendingAcknowledgements::<T>::iter_key_prefix(account) {
				let Some(g) = Grants::<T>::get(grant) else {
					frame_support::defensive!("pending acknowledgement of an unknown grant");
					continue;
				};
				if !g.is_live(now) || g.disputed_by.is_some() {
					continue;
				}
				if !Self::claim(&(b"medchain/pre/answered", grant, account).encode(), now) {
					continue;
				}
				let call = match Self::opened_kfrag(grant, &g, account, secret) {
					Ok(_) => Call::acknowledge_grant { grant },
					Err(KfragError::Invalid) => {
						log::warn!(target: LOG_TARGET, "grant {grant}: key fragment does not open or verify: disputing");
						Call::dispute_grant { grant }
					},
					Err(KfragError::Unavailable(e)) => {
						log::warn!(target: LOG_TARGET, "grant {grant}: cannot answer: {e}");
						continue;
					},
				};
				Self::submit(public.clone(), call);
			}
		}
	}

	/// Serves every open request of a grant a local proxy acknowledged.
	fn serve_open_requests(local: &[LocalProxy<T>], now: BlockNumberFor<T>) {
		for request in OpenRequests::<T>::get() {
			let Some(req) = Requests::<T>::get(request) else { continue };
			let Some(g) = Grants::<T>::get(req.grant) else { continue };
			if req.status != RequestStatus::Open || !g.is_live(now) || g.disputed_by.is_some() {
				continue;
			}
			for (public, account, secret) in local.iter() {
				if !g.acknowledged.contains(account) || Fragments::<T>::contains_key(request, account) {
					continue;
				}
				if !Self::claim(&(b"medchain/pre/served", request, account).encode(), now) {
					continue;
				}
				match Self::reencrypt_for(&req, &g, account, secret) {
					Ok(fragment) => Self::submit(public.clone(), Call::submit_fragment { request, fragment }),
					Err(e) => log::warn!(target: LOG_TARGET, "request {request}: cannot serve: {e}"),
				}
			}
		}
	}

	/// Deletes the opened key fragments this node keeps for grants that
	/// ended: revoked, expired, unusable by disputes, or gone. Every proxy
	/// key in the keystore is swept, active or not.
	fn forget_ended_grants(now: BlockNumberFor<T>) {
		for account in Self::keystore_accounts() {
			let list_key = kept_key::<T>(&account);
			let list = StorageValueRef::persistent(&list_key);
			let kept: Vec<GrantId> = list.get().ok().flatten().unwrap_or_default();
			let ended: Vec<GrantId> = kept
				.iter()
				.copied()
				.filter(|grant| !Grants::<T>::get(grant).is_some_and(|g| g.is_live(now) && g.disputed_by.is_none()))
				.collect();
			if ended.is_empty() {
				continue;
			}
			for grant in ended.iter() {
				StorageValueRef::persistent(&kfrag_key::<T>(*grant, &account)).clear();
			}
			let _ = list.mutate(|kept: Result<Option<Vec<GrantId>>, _>| -> Result<_, ()> {
				let mut kept = kept.ok().flatten().unwrap_or_default();
				kept.retain(|grant| !ended.contains(grant));
				Ok(kept)
			});
			log::debug!(target: LOG_TARGET, "deleted {} key fragments of ended grants", ended.len());
		}
	}

	/// The accounts of every proxy key in the keystore.
	fn keystore_accounts() -> Vec<T::AccountId> {
		Self::keystore_keys().into_iter().map(|(_, account)| account).collect()
	}

	/// This node's keystore keys of the pallet's key type, with their accounts.
	fn keystore_keys() -> Vec<(T::Public, T::AccountId)> {
		<<T::AuthorityId as AppCrypto<T::Public, T::Signature>>::RuntimeAppPublic as sp_application_crypto::RuntimeAppPublic>::all()
			.into_iter()
			.map(|key| {
				let generic: <T::AuthorityId as AppCrypto<T::Public, T::Signature>>::GenericPublic = key.into();
				let public: T::Public = generic.into();
				let account = public.clone().into_account();
				(public, account)
			})
			.collect()
	}

	/// This node's proxies: keystore keys whose accounts are active
	/// institutions and registered proxies with their Umbral secret key in
	/// offchain storage.
	fn local_proxies() -> Vec<LocalProxy<T>> {
		Self::keystore_keys()
			.into_iter()
			.filter_map(|(public, account)| {
				let umbral_public = Proxies::<T>::get(&account)?;
				// A suspended institution's calls would be refused.
				if !T::Registry::is_active(&account) {
					return None;
				}
				let storage_key = [PROXY_SECRET_PREFIX, &umbral_public[..]].concat();
				let seed = StorageValueRef::persistent(&storage_key).get::<[u8; 32]>().ok().flatten()?;
				let secret = medchain_umbral::proxy_secret_key(&seed).ok()?;
				// A stale secret (the proxy key was rotated) is not used.
				(medchain_umbral::public_key_bytes(&secret.public_key()) == umbral_public)
					.then_some((public, account, secret))
			})
			.collect()
	}

	/// Takes the persistent marker `key`; false if it was taken within the
	/// last [`RESUBMIT_AFTER`] blocks.
	fn claim(key: &[u8], now: BlockNumberFor<T>) -> bool {
		let now: u32 = now.saturated_into();
		StorageValueRef::persistent(key)
			.mutate(|last: Result<Option<u32>, _>| match last {
				Ok(Some(at)) if now < at.saturating_add(RESUBMIT_AFTER) => Err(()),
				_ => Ok(now),
			})
			.is_ok()
	}

	/// Opens the proxy's sealed fragment of the grant and re-encrypts the
	/// record's capsule the grant's key opens with it (`Pallet::capsule_for`).
	fn reencrypt_for(
		req: &AccessRequest<T>,
		g: &Grant<T>,
		proxy: &T::AccountId,
		secret: &medchain_umbral::SecretKey,
	) -> Result<BoundedVec<u8, T::MaxCapsuleFragmentLen>, &'static str> {
		let capsule = Self::capsule_for(req.grant, req.record).ok_or("record has no capsule for the grant's key")?;
		let kfrag = Self::opened_kfrag(req.grant, g, proxy, secret).map_err(|e| match e {
			KfragError::Invalid => "sealed fragment does not open or verify",
			KfragError::Unavailable(e) => e,
		})?;
		let capsule = medchain_umbral::capsule(&capsule.capsule).map_err(|_| "malformed capsule")?;
		let seed = sp_io::offchain::random_seed();
		let fragment = medchain_umbral::reencrypt(seed, &capsule, kfrag).map_err(|_| "re-encryption failed")?;
		BoundedVec::try_from(fragment).map_err(|_| "fragment too long")
	}

	/// The proxy's key fragment of a grant, opened and verified once and then
	/// kept in this node's persistent offchain storage (where the proxy's
	/// seed already is), so each further request costs one re-encryption.
	fn opened_kfrag(
		grant: GrantId,
		g: &Grant<T>,
		proxy: &T::AccountId,
		secret: &medchain_umbral::SecretKey,
	) -> Result<medchain_umbral::VerifiedKeyFrag, KfragError> {
		let key = kfrag_key::<T>(grant, proxy);
		let cache = StorageValueRef::persistent(&key);
		if let Some(kfrag) = cache.get::<Vec<u8>>().ok().flatten().and_then(|b| medchain_umbral::key_frag(&b).ok()) {
			// Listed for the sweep (one kept before the sweep existed was not).
			list_kept::<T>(grant, proxy);
			// Verified before it was stored; only this node writes it.
			return Ok(kfrag.skip_verification());
		}
		let sealed = SealedFragments::<T>::get(grant, proxy).ok_or(KfragError::Unavailable("no sealed fragment"))?;
		let keys =
			Self::delegation_keys(grant, g).ok_or(KfragError::Unavailable("the patient or grantee has no valid keys"))?;
		// Bound to another id, every fragment this proxy made would be
		// refused (and cost it credit): the grant is refused instead.
		let bound = KeyFragmentIds::<T>::get(grant, proxy);
		let kfrag =
			medchain_umbral::open_bound_kfrag(secret, &sealed.capsule, &sealed.ciphertext, &keys.delegation(), bound)
				.map_err(|_| KfragError::Invalid)?;
		if let Ok(bytes) = medchain_umbral::to_bytes(&kfrag) {
			// Listed first, so that no kept fragment escapes the sweep.
			if list_kept::<T>(grant, proxy) {
				cache.set(&bytes);
			}
		}
		Ok(kfrag)
	}

	/// Sends `call` signed by the local proxy key `public`.
	fn submit(public: T::Public, call: Call<T>) {
		let sent = Signer::<T, T::AuthorityId>::all_accounts()
			.with_filter(alloc::vec![public])
			.send_signed_transaction(|_| call.clone());
		for (account, result) in sent {
			log::info!(target: LOG_TARGET, "{} submitted by {:?}: {:?}", call.get_call_name(), account.id, result);
		}
	}
}

/// Where a proxy's opened key fragment of a grant is kept in the node.
pub(crate) fn kfrag_key<T: Config>(grant: GrantId, proxy: &T::AccountId) -> Vec<u8> {
	(b"medchain/pre/kfrag", grant, proxy).encode()
}

/// Where the grants whose opened key fragments a proxy keeps are listed.
pub(crate) fn kept_key<T: Config>(proxy: &T::AccountId) -> Vec<u8> {
	(b"medchain/pre/kept", proxy).encode()
}

/// Lists `grant` among those whose opened key fragment `proxy` keeps; whether
/// it is listed.
fn list_kept<T: Config>(grant: GrantId, proxy: &T::AccountId) -> bool {
	let list_key = kept_key::<T>(proxy);
	StorageValueRef::persistent(&list_key)
		.mutate(|kept: Result<Option<Vec<GrantId>>, _>| -> Result<_, ()> {
			let mut kept = kept.ok().flatten().unwrap_or_default();
			if !kept.contains(&grant) {
				kept.push(grant);
			}
			Ok(kept)
		})
		.is_ok()
}
