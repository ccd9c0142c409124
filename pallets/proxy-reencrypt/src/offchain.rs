//! The proxy in the node: an offchain worker that serves open access
//! requests with the node's proxy keys.
//!
//! For each proxy account in the keystore (key type [`crate::KEY_TYPE`]) that
//! is a registered proxy and whose Umbral key seed is in the node's
//! persistent offchain storage (under [`crate::PROXY_SECRET_PREFIX`] followed
//! by its public key; the secret key is derived with
//! `medchain_umbral::proxy_secret_key`), and for each open request of a live
//! grant naming that proxy, the worker opens the proxy's sealed key fragment
//! and verifies it against the patient's keys (once per grant: the opened
//! fragment is kept in the node's offchain storage), re-encrypts the
//! record's capsule and submits
//! the capsule fragment in a signed transaction. The secret key and the key
//! fragment never leave the node. A persistent marker per (request, proxy)
//! prevents a second submission across blocks and restarts; it is retried
//! after [`RESUBMIT_AFTER`] blocks if the transaction did not land.

use crate::*;
use codec::Encode;
use frame_support::pallet_prelude::*;
use frame_system::{
	offchain::{AppCrypto, SendSignedTransaction, Signer},
	pallet_prelude::BlockNumberFor,
};
use sp_runtime::{offchain::storage::StorageValueRef, traits::IdentifyAccount, SaturatedConversion};

/// Blocks after which a proxy submits again if its fragment has not landed.
pub const RESUBMIT_AFTER: u32 = 10;

impl<T: Config> Pallet<T> {
	/// Serves every open request this node's proxies owe a fragment for.
	pub(crate) fn serve_open_requests(now: BlockNumberFor<T>) -> Result<(), &'static str> {
		let open = OpenRequests::<T>::get();
		if open.is_empty() {
			return Ok(());
		}
		let local = Self::local_proxies();
		if local.is_empty() {
			return Err("no registered proxy key with its secret in this node");
		}
		for request in open {
			let Some(req) = Requests::<T>::get(request) else { continue };
			let Some(g) = Grants::<T>::get(req.grant) else { continue };
			if req.status != RequestStatus::Open || !g.is_live(now) {
				continue;
			}
			for (public, account, secret) in local.iter() {
				if !g.proxies.contains(account) || Fragments::<T>::contains_key(request, account) {
					continue;
				}
				if !Self::claim(request, account, now) {
					continue;
				}
				match Self::reencrypt_for(&req, &g, account, secret) {
					Ok(fragment) => Self::submit(public.clone(), request, fragment),
					Err(e) => log::warn!(target: LOG_TARGET, "request {request}: cannot serve: {e}"),
				}
			}
		}
		Ok(())
	}

	/// This node's proxies: keystore keys whose accounts are registered
	/// proxies with their Umbral secret key in offchain storage.
	fn local_proxies() -> Vec<(T::Public, T::AccountId, medchain_umbral::SecretKey)> {
		<<T::AuthorityId as AppCrypto<T::Public, T::Signature>>::RuntimeAppPublic as sp_application_crypto::RuntimeAppPublic>::all()
			.into_iter()
			.filter_map(|key| {
				let generic: <T::AuthorityId as AppCrypto<T::Public, T::Signature>>::GenericPublic = key.into();
				let public: T::Public = generic.into();
				let account = public.clone().into_account();
				let umbral_public = Proxies::<T>::get(&account)?;
				let storage_key = [PROXY_SECRET_PREFIX, &umbral_public[..]].concat();
				let seed = StorageValueRef::persistent(&storage_key).get::<[u8; 32]>().ok().flatten()?;
				let secret = medchain_umbral::proxy_secret_key(&seed).ok()?;
				// A stale secret (the proxy key was rotated) is not used.
				(medchain_umbral::public_key_bytes(&secret.public_key()) == umbral_public)
					.then_some((public, account, secret))
			})
			.collect()
	}

	/// Takes the persistent marker for (request, proxy); false if it was
	/// taken within the last [`RESUBMIT_AFTER`] blocks.
	fn claim(request: RequestId, proxy: &T::AccountId, now: BlockNumberFor<T>) -> bool {
		let key = (b"medchain/pre/served", request, proxy).encode();
		let now: u32 = now.saturated_into();
		StorageValueRef::persistent(&key)
			.mutate(|last: Result<Option<u32>, _>| match last {
				Ok(Some(at)) if now < at.saturating_add(RESUBMIT_AFTER) => Err(()),
				_ => Ok(now),
			})
			.is_ok()
	}

	/// Opens the proxy's sealed fragment of the grant and re-encrypts the
	/// record's capsule with it.
	fn reencrypt_for(
		req: &AccessRequest<T>,
		g: &Grant<T>,
		proxy: &T::AccountId,
		secret: &medchain_umbral::SecretKey,
	) -> Result<BoundedVec<u8, T::MaxCapsuleFragmentLen>, &'static str> {
		let capsule = Capsules::<T>::get(req.record).ok_or("record has no capsule")?;
		let kfrag = Self::opened_kfrag(req.grant, g, proxy, secret)?;
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
	) -> Result<medchain_umbral::VerifiedKeyFrag, &'static str> {
		let key = (b"medchain/pre/kfrag", grant, proxy).encode();
		let cache = StorageValueRef::persistent(&key);
		if let Some(kfrag) = cache.get::<Vec<u8>>().ok().flatten().and_then(|b| medchain_umbral::key_frag(&b).ok()) {
			// Verified before it was stored; only this node writes it.
			return Ok(kfrag.skip_verification());
		}
		let sealed = SealedFragments::<T>::get(grant, proxy).ok_or("no sealed fragment")?;
		let keys = Self::delegation_keys(g).ok_or("the patient or grantee has no valid keys")?;
		let kfrag = medchain_umbral::open_kfrag(secret, &sealed.capsule, &sealed.ciphertext, &keys.delegation())
			.map_err(|_| "sealed fragment does not open or verify")?;
		if let Ok(bytes) = medchain_umbral::to_bytes(&kfrag) {
			cache.set(&bytes);
		}
		Ok(kfrag)
	}

	fn submit(public: T::Public, request: RequestId, fragment: BoundedVec<u8, T::MaxCapsuleFragmentLen>) {
		let sent = Signer::<T, T::AuthorityId>::all_accounts()
			.with_filter(alloc::vec![public])
			.send_signed_transaction(|_| Call::submit_fragment { request, fragment: fragment.clone() });
		for (account, result) in sent {
			log::info!(target: LOG_TARGET, "request {request}: fragment submitted by {:?}: {:?}", account.id, result);
		}
	}
}
