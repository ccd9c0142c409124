//! The instant key path: the institution's proxy serves the key fragments
//! of the grants it acknowledged straight to their grantees, over the
//! gateway's JSON-RPC (`pre_reencrypt`), journaled and logged on chain
//! afterwards as the gateway's reads are.
//!
//! `pre_reencrypt { grant, record, accessor, block, signature, asks?, salt? }` returns a
//! capsule fragment of the record's data key to `accessor` if
//! 1. `signature` is `accessor`'s sr25519 signature of
//!    `medchain-pre-reencrypt:v1:<genesis hash>:<proxy SS58>:<grant>:<record>:<accessor SS58>:<purpose>:<block>`
//!    ([`fragment_request_message`]; the purpose is the grant's), or of
//!    [`bundle_message`] with this proxy's ask for `pre_reencrypt` among
//!    its `asks` (one signature for all the servers a grantee asks), fresh
//!    and not used before (as `ehr_getRecord`'s);
//! 2. `accessor` is the grant's grantee, the grant is not a break-glass
//!    grant (those go through the chain: `break_glass`), its patient does
//!    not require audit first (`require_audit_first`: then only
//!    `request_access`), and this proxy acknowledged it;
//! 3. the chain lets `accessor` read the record under the grant at the best
//!    block and at the finalized head (the block the log entry names);
//! 4. the proxy's key fragment opens with its key, verifies against the
//!    grant's delegation and carries the id the chain binds the proxy to;
//! 5. the read is journaled (a `KeyFragment` entry) before the answer
//!    leaves, and checked once more against the node's best block then (the
//!    first checks may use the server's view of the chain as it stood): a
//!    revocation, or the patient requiring audit first, imported meanwhile
//!    stops it.
//!
//! The answer carries the fragment, `checked_at` and the proxy's sr25519
//! signature of [`fragment_message`] (the chain, grant, record, grantee
//! and the fragment's BLAKE2-256): the grantee checks the key fragment id
//! it commits to against `keyFragmentIds(grant, proxy)` (a fragment copied
//! from another proxy is refused) and opens the data key with it; if the
//! key does not open, it checks Umbral's proof of each fragment, and a
//! fragment that fails, with the proxy's signature, is a fraud proof the
//! grantee reports on chain (`reportBadFragment`), which costs the proxy
//! credit.
//!
//! The key fragment is opened once per grant and kept in memory; it is
//! dropped at the first block that revokes, declines or disputes the grant
//! (the gateway's view of the chain reports them), and a grant that ended
//! is refused by step 3 whatever is kept.

use super::*;
use crate::checks::Ended;
use medchain_primitives::ProxyAssignment;
use medchain_umbral::{Capsule, DelegationKeys, SecretKey, VerifiedKeyFrag};
use std::collections::HashMap;

/// An institution's proxy in its gateway.
pub(super) struct Proxy {
	secret: SecretKey,
	/// Opened and verified key fragments, by grant, with the grant's end.
	kfrags: Mutex<HashMap<u64, (VerifiedKeyFrag, Option<u32>)>>,
	/// Capsules the grants' key fragments open, by (grant, record).
	capsules: Mutex<HashMap<(u64, u64), Capsule>>,
	/// Grants seen to end: a key fragment read before the end and kept
	/// after it would outlive it, so none of theirs is kept.
	ended: Mutex<std::collections::HashSet<u64>>,
}

/// Most key fragments and capsules kept at once; beyond, they are read
/// again (a memory bound, not a limit honest grantees meet).
const MAX_KEPT: usize = 100_000;

impl Proxy {
	/// The proxy whose Umbral key seed (32 bytes, hex) is in `seed_file`,
	/// once the chain registers its key for `operator`.
	pub(super) fn load(seed_file: &std::path::Path, node: &Node, operator: &AccountId) -> Result<Self, String> {
		let text = std::fs::read_to_string(seed_file).map_err(|e| format!("{}: {e}", seed_file.display()))?;
		let seed = unhex(text.trim()).map_err(|_| format!("{}: not hex", seed_file.display()))?;
		let secret = medchain_umbral::proxy_secret_key(&seed).map_err(|e| format!("the proxy seed: {e:?}"))?;
		let registered: Option<[u8; 33]> = node
			.storage(&pallet_proxy_reencrypt::Proxies::<Runtime>::hashed_key_for(operator))
			.map_err(|e| format!("cannot read the proxy's key on chain: {e}"))?;
		if registered != Some(medchain_umbral::public_key_bytes(&secret.public_key())) {
			return Err(format!(
				"the chain registers no proxy with this seed's key for {} (registerProxy)",
				operator.to_ss58check()
			));
		}
		Ok(Proxy { secret, kfrags: Mutex::default(), capsules: Mutex::default(), ended: Mutex::default() })
	}

	/// Drops what is kept for grants that `ended`, everything if the view
	/// lost track of the chain, and the key fragments of grants expired by
	/// block `best`.
	pub(super) fn forget(&self, ended: &Ended, best: Option<u32>) {
		if let Ok(mut e) = self.ended.lock() {
			if e.len() >= MAX_KEPT {
				e.clear();
			}
			e.extend(ended.grants.iter().copied());
		}
		let gone = |g: &u64, end: &Option<u32>| {
			ended.everything || ended.grants.contains(g) || best.is_some_and(|b| end.is_some_and(|e| b >= e))
		};
		if let Ok(mut k) = self.kfrags.lock() {
			let before = k.len();
			k.retain(|g, (_, end)| !gone(g, end));
			if k.len() < before {
				tracing::info!(count = before - k.len(), "key fragments of ended grants dropped");
			}
		}
		if let Ok(mut c) = self.capsules.lock() {
			c.retain(|(g, _), _| !gone(g, &None));
		}
	}

	/// The proxy's key fragment of `grant` (which ends at `end`), opened and
	/// verified (once).
	fn kfrag(&self, node: &Node, me: &AccountId, grant: u64, end: Option<u32>) -> Result<VerifiedKeyFrag, (i32, String)> {
		if let Some((k, _)) = self.kfrags.lock().map_err(|_| poisoned())?.get(&grant) {
			return Ok(k.clone());
		}
		// Read at the finalized head: a grant id a reorganisation gave to
		// another grant would otherwise lead to fragments of the wrong one.
		let at = finalized_hash(node)?;
		let a: Option<ProxyAssignment> = node
			.runtime_call_at("ProxyReencryptApi_key_fragment_of", &(me.clone(), grant), Some(&at))
			.map_err(|e| unavailable(e.to_string()))?;
		let a = a.ok_or_else(|| refused(format!("this proxy holds no key fragment of grant {grant}")))?;
		let keys = DelegationKeys::parse(&a.verifying_key, &a.delegating_key, &a.receiving_key)
			.map_err(|_| refused(format!("grant {grant}'s keys do not parse")))?;
		let kfrag = medchain_umbral::open_bound_kfrag(
			&self.secret,
			&a.sealed_capsule,
			&a.sealed_ciphertext,
			&keys.delegation(),
			a.kfrag_id,
		)
		.map_err(|e| match e {
			medchain_umbral::Error::UnboundKeyFrag => {
				refused(format!("this proxy's key fragment of grant {grant} is not the one the chain binds"))
			},
			_ => refused(format!("this proxy's key fragment of grant {grant} does not open or verify")),
		})?;
		let mut kept = self.kfrags.lock().map_err(|_| poisoned())?;
		if kept.len() >= MAX_KEPT {
			kept.clear();
		}
		if !self.ended.lock().map_err(|_| poisoned())?.contains(&grant) {
			kept.insert(grant, (kfrag.clone(), end));
		}
		Ok(kfrag)
	}

	/// The capsule of `record` that `grant`'s key fragments open.
	fn capsule(&self, node: &Node, grant: u64, record: u64) -> Result<Capsule, (i32, String)> {
		if let Some(c) = self.capsules.lock().map_err(|_| poisoned())?.get(&(grant, record)) {
			return Ok(c.clone());
		}
		// Read at the finalized head: a capsule attached in a block that a
		// reorganisation retracts may come back as another one, and a
		// fragment of the first would then fail against it.
		let at = finalized_hash(node)?;
		let found: Option<(Vec<u8>, Vec<u8>)> = node
			.runtime_call_at("ProxyReencryptApi_capsule_for", &(grant, record), Some(&at))
			.map_err(|e| unavailable(e.to_string()))?;
		let (capsule, _) = found.ok_or_else(|| refused(format!("record {record} has no capsule grant {grant} opens")))?;
		let capsule = medchain_umbral::capsule(&capsule).map_err(|_| refused(format!("record {record}'s capsule does not parse")))?;
		let mut kept = self.capsules.lock().map_err(|_| poisoned())?;
		if kept.len() >= MAX_KEPT {
			kept.clear();
		}
		kept.insert((grant, record), capsule.clone());
		Ok(capsule)
	}
}

/// The finalized head's hash (0x hex).
fn finalized_hash(node: &Node) -> Result<String, (i32, String)> {
	node.finalized_head().map(|(h, _)| hex(h.as_bytes())).map_err(|e| unavailable(e.to_string()))
}

fn poisoned() -> (i32, String) {
	unavailable("proxy state poisoned".into())
}

/// The message a grantee `accessor` (SS58) signs to ask the proxy `proxy`
/// (SS58) on the chain with genesis hash `genesis` for a capsule fragment of
/// `record`'s data key under `grant`, for the grant's `purpose`, at `block`.
pub fn fragment_request_message(
	genesis: &str,
	proxy: &str,
	grant: u64,
	record: u64,
	accessor: &str,
	purpose: &str,
	block: u32,
) -> String {
	format!("medchain-pre-reencrypt:v1:{genesis}:{proxy}:{grant}:{record}:{accessor}:{purpose}:{block}")
}

/// What a proxy signs with its answer: that it served `fragment` of
/// `record`'s data key to `accessor` under `grant`, on the chain with genesis
/// hash `genesis` (0x hex); the runtime's
/// [`pallet_proxy_reencrypt::fragment_statement`], which a grantee's fraud
/// proof (`reportBadFragment`) carries.
pub fn fragment_message(genesis: &str, grant: u64, record: u64, accessor: &AccountId, fragment: &[u8]) -> Result<Vec<u8>, String> {
	let genesis: [u8; 32] =
		unhex(genesis).ok().and_then(|g| g.try_into().ok()).ok_or("the chain's genesis hash is not 32 bytes")?;
	Ok(pallet_proxy_reencrypt::fragment_statement(sp_core::H256(genesis), grant, record, accessor, fragment))
}

impl Gateway {
	/// `pre_reencrypt` (see the module's docs).
	pub(super) fn pre_reencrypt(&self, p: &Value) -> Result<Value, (i32, String)> {
		let (Some(proxy), Some(checks), Some(journal)) = (&self.proxy, &self.checks, &self.journal) else {
			return Err(refused("this gateway serves no key fragments (--instant --proxy-seed-file)".into()));
		};
		let grant = p["grant"].as_u64().ok_or_else(|| bad("`grant` must be a grant id"))?;
		let record = p["record"].as_u64().ok_or_else(|| bad("`record` must be a number"))?;
		let accessor_text = p["accessor"].as_str().ok_or_else(|| bad("`accessor` must be an SS58 address"))?;
		let accessor = AccountId::from_ss58check(accessor_text).map_err(|_| bad("`accessor` is not an SS58 address"))?;
		let block = block_number(p)?;
		let started = std::time::Instant::now();
		// The view as it stands (no call to the node): checked again against
		// the node's best block before anything leaves.
		let (_, best) = checks.known_best(block, self.view_age).map_err(check_error)?;
		proxy.forget(&checks.take_ended(), Some(best));
		let g = checks.grant(grant).map_err(check_error)?.ok_or_else(|| refused(format!("no grant {grant}")))?;
		let purpose_name = purpose_name(g.purpose);
		let me = AccountId::from(self.operator.public());
		let me_text = me.to_ss58check();
		// Signed for this proxy alone, or as one of the servers a grantee
		// asks at once.
		let (message, ask) = match asked(p, "pre_reencrypt", &me_text)? {
			None => (fragment_request_message(&self.genesis, &me_text, grant, record, accessor_text, purpose_name, block), None),
			Some((asks, ask)) =>
				(bundle_message(&self.genesis, grant, record, accessor_text, purpose_name, block, &asks), Some(ask)),
		};
		let read_id = self.signed_once(p, &accessor, block, &message, best, ask.as_ref())?;
		if g.grantee != accessor {
			return Err(refused(format!("grant {grant} is not {accessor_text}'s")));
		}
		if g.emergency {
			return Err(refused("break-glass access goes through the chain (breakGlass), audited first".into()));
		}
		if checks.audit_first(grant).map_err(check_error)? {
			return Err(refused(format!(
				"the patient requires audit first for grant {grant}: ask through the chain (requestAccess)"
			)));
		}
		if !g.acknowledged.contains(&me) {
			return Err(refused(format!("this proxy did not acknowledge grant {grant}")));
		}
		let key = ReadKey { accessor: accessor.clone(), record, grant, purpose: g.purpose };
		let checked_at = checks.allowed(&key).map_err(check_error)?;
		let checked = started.elapsed();
		let kfrag = proxy.kfrag(&self.node, &me, grant, g.expires_at)?;
		let capsule = proxy.capsule(&self.node, grant, record)?;
		let mut seed = [0u8; 32];
		getrandom::getrandom(&mut seed).map_err(|e| unavailable(format!("no randomness: {e}")))?;
		let fragment = medchain_umbral::reencrypt(seed, &capsule, kfrag)
			.map_err(|_| unavailable("re-encryption failed".into()))?;
		// Everything that could fail is done before the journal write.
		let statement = fragment_message(&self.genesis, grant, record, &accessor, &fragment).map_err(unavailable)?;
		let signed = self.operator.sign(&statement);
		let read = JournaledRead {
			read: read_id,
			record,
			accessor: accessor_text.to_string(),
			purpose: purpose_name.to_string(),
			grant: Some(grant),
			checked_at,
			served: journal::Served::KeyFragment,
		};
		let journaled = std::time::Instant::now();
		self.journal_once(journal, &read)?;
		let last = std::time::Instant::now();
		if self.still_allowed(checks, journal, (&key, block), &read, journaled)? == LastCheck::AuditFirstNow {
			return Err(refused(format!(
				"the patient requires audit first for grant {grant} now: ask through the chain (requestAccess)"
			)));
		}
		tracing::info!(
			check_us = checked.as_micros() as u64,
			crypto_us = (journaled - started).saturating_sub(checked).as_micros() as u64,
			journal_us = (last - journaled).as_micros() as u64,
			last_check_us = last.elapsed().as_micros() as u64,
			"key fragment served (journaled)"
		);
		Ok(json!({
			"grant": grant,
			"record": record,
			"fragment": hex(&fragment),
			"checked_at": checked_at,
			"proxy": me.to_ss58check(),
			"signature": hex(&signed.0),
		}))
	}
}

/// The purpose's name as requests carry it.
fn purpose_name(p: AccessPurpose) -> &'static str {
	match p {
		AccessPurpose::Treatment => "Treatment",
		AccessPurpose::PatientView => "PatientView",
		AccessPurpose::Insurance => "Insurance",
		AccessPurpose::Research => "Research",
		AccessPurpose::Audit => "Audit",
		AccessPurpose::Emergency => "Emergency",
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn a_fragment_request_signed_for_another_proxy_grant_or_chain_proves_nothing() {
		let doctor = sr25519::Pair::from_string("//Eve", None).expect("dev key");
		let who = AccountId::from(doctor.public());
		let me = who.to_ss58check();
		let signed = fragment_request_message("0x01", "proxy-a", 3, 7, &me, "Treatment", 100);
		let signature = doctor.sign(signed.as_bytes()).0;
		assert!(signature_proves(&signed, &signature, &who));
		for other in [
			fragment_request_message("0x01", "proxy-b", 3, 7, &me, "Treatment", 100),
			fragment_request_message("0x02", "proxy-a", 3, 7, &me, "Treatment", 100),
			fragment_request_message("0x01", "proxy-a", 4, 7, &me, "Treatment", 100),
			fragment_request_message("0x01", "proxy-a", 3, 8, &me, "Treatment", 100),
			fragment_request_message("0x01", "proxy-a", 3, 7, &me, "Research", 100),
			// A gateway's record request for the same record is not a fragment request.
			request_message("0x01", "proxy-a", 7, &me, "Treatment", 100),
		] {
			assert!(!signature_proves(&other, &signature, &who), "{other}");
		}
		for p in [
			AccessPurpose::Treatment,
			AccessPurpose::PatientView,
			AccessPurpose::Insurance,
			AccessPurpose::Research,
			AccessPurpose::Audit,
			AccessPurpose::Emergency,
		] {
			assert_eq!(purpose(purpose_name(p)), Some(p));
		}
	}
}
