// Medchain scope keys on chain: which of a patient's keys a grant delegates
// from, which capsule of a record it opens, and the calls that register a
// patient's keys for kinds and its one-time record keys. What the runtime
// does in `pallet-proxy-reencrypt` (`scope_key`, `capsule_for`), read with
// @polkadot/api. Shared by the portal, the tools' tests and the README's
// snippets.

import { kindLabel, recordLabel } from './pre.mjs';

/** Every record kind, in the runtime's order. */
export const KINDS = ['Diagnosis', 'LabResult', 'Imaging', 'Prescription', 'DischargeSummary', 'NursingCare',
  'Billing', 'Wearable', 'Other'];

/** How many one-time record keys the portal keeps on chain for a patient. */
export const RECORD_KEY_TARGET = 16;

/** Below this many, the portal offers to add one-time record keys. */
export const RECORD_KEY_LOW = 8;

/**
 * The label of the key the chain will make a grant of `scope` (`'All'`,
 * `{ Kind }`, `{ Record }`) by `patient` delegate from, or `null` for the
 * patient's own key: a kind's key if registered; for one record its
 * one-time key, else its kind's key if the data key was encrypted to it.
 * Key fragments made from another key are disputed by the proxies.
 */
export async function grantLabel(api, patient, scope) {
  const pr = api.query.proxyReencrypt;
  if (scope === 'All' || scope.All !== undefined) return null;
  if (scope.Kind !== undefined) return (await pr.kindKeys(patient, scope.Kind)).isSome ? kindLabel(scope.Kind) : null;
  const record = scope.Record;
  const oneTime = await pr.oneTimeCapsules(record);
  if (oneTime.isSome) return recordLabel(oneTime.unwrap().index.toNumber());
  if ((await pr.kindCapsules(record)).isSome) {
    const kind = (await api.query.ehrIndex.records(record)).unwrap().kind.unwrap().toString();
    return kindLabel(kind);
  }
  return null;
}

/**
 * What the grantee of `grant` needs to open `record`'s data key: the capsule
 * the grant's key opens (`{ capsule, ciphertext }`, hex) and the key the
 * grant delegates from (hex, `null`: the patient's own key).
 */
export async function grantCapsule(api, grant, record) {
  const pr = api.query.proxyReencrypt;
  const key = await pr.grantKeys(grant);
  let c;
  if (key.isNone) c = (await pr.capsules(record)).unwrapOr(null);
  else if (key.unwrap().slot.isKind) c = (await pr.kindCapsules(record)).unwrapOr(null);
  else c = (await pr.oneTimeCapsules(record)).unwrapOr(null)?.capsule ?? null;
  if (c === null) throw new Error(`record ${record} has no capsule grant ${grant} opens`);
  const { capsule, ciphertext } = c;
  return {
    capsule: { capsule: capsule.toHex(), ciphertext: ciphertext.toHex() },
    delegating: key.isSome ? key.unwrap().publicKey.toHex() : null,
  };
}

/**
 * The calls that complete `patient`'s scope keys (derived from `keys`, its
 * Umbral keys, with `pre`): a key for each kind it has none for, and
 * one-time record keys up to `target` in the pool. Empty when nothing is
 * missing. Each is a call a registered patient makes without fees.
 */
export async function scopeKeyCalls(api, pre, keys, patient, target = RECORD_KEY_TARGET) {
  const pr = api.query.proxyReencrypt;
  const calls = [];
  const have = await pr.kindKeys.multi(KINDS.map((k) => [patient, k]));
  const missing = KINDS.filter((_, i) => have[i].isNone);
  if (missing.length) {
    calls.push(api.tx.proxyReencrypt.registerKindKeys(missing.map((k) => [k, pre.scopeKey(keys, kindLabel(k)).publicKey])));
  }
  const left = (await pr.recordKeyPool(patient)).length;
  const next = (await pr.nextRecordKeyIndex(patient)).toNumber();
  const add = Array.from({ length: Math.max(0, target - left) }, (_, i) => pre.scopeKey(keys, recordLabel(next + i)).publicKey);
  if (add.length) calls.push(api.tx.proxyReencrypt.addRecordKeys(next, add));
  return calls;
}

/** How many of `patient`'s kinds have keys and how many one-time keys are left. */
export async function scopeKeyState(api, patient) {
  const have = await api.query.proxyReencrypt.kindKeys.multi(KINDS.map((k) => [patient, k]));
  return { kinds: have.filter((k) => k.isSome).length, oneTime: (await api.query.proxyReencrypt.recordKeyPool(patient)).length };
}
