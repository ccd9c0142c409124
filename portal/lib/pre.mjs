// Medchain proxy re-encryption, client side: what a patient's browser (the
// portal) and a grantee's tools do with @nucypher/umbral-pre 0.10, in the wire
// format the runtime reads (the library's toBytes/fromBytes).
//
// Works in Node and in the browser: pass the loaded umbral module.

import { hex, unhex } from './hex.mjs';

/**
 * The id of a key fragment, from its wire bytes (MessagePack
 * `[params, id, key, precursor, proof]`; params `[point]`): the 32 bytes at
 * 39..71. The layout is checked here and in `medchain-umbral`'s tests.
 */
export function kfragId(bytes) {
  const expect = (at, want) => {
    if (want.some((b, i) => bytes[at + i] !== b)) throw new Error('not a key fragment of @nucypher/umbral-pre 0.10');
  };
  expect(0, [0x95, 0x91, 0xc4, 33]);
  expect(37, [0xc4, 32]);
  return bytes.slice(39, 71);
}

/** Helpers bound to a loaded `@nucypher/umbral-pre` module. */
export function makePre(umbral) {
  /** Fresh Umbral keys: a key pair for data keys and a signer for key fragments. */
  function newKeys() {
    return exportKeys(umbral.SecretKey.random(), umbral.SecretKey.random());
  }

  /**
   * A proxy's keys: a 32-byte seed (what its node keeps in local storage)
   * and the key derived from it as the runtime derives it
   * (`medchain_umbral::proxy_secret_key`).
   */
  function newProxyKeys(seed = globalThis.crypto.getRandomValues(new Uint8Array(32))) {
    const sk = umbral.SecretKeyFactory.fromSecureRandomness(seed).makeKey(new TextEncoder().encode('medchain/proxy'));
    return { seed: hex(seed), secretKey: hex(sk.toBEBytes()), publicKey: hex(sk.publicKey().toCompressedBytes()) };
  }

  /**
   * A patient's scope key under `label` (`kindLabel`, `recordLabel`),
   * derived from its *secret* key as the runtime's `medchain_umbral::scope_secret_key`
   * does: Umbral's key factory seeded with the secret's 32 bytes. Returns
   * `{ secretKey, publicKey }` as hex.
   */
  function scopeKey(patientKeys, label) {
    const root = umbral.SecretKey.fromBEBytes(unhex(patientKeys.secretKey));
    const sk = umbral.SecretKeyFactory.fromSecureRandomness(root.toBEBytes()).makeKey(new TextEncoder().encode(label));
    return { secretKey: hex(sk.toBEBytes()), publicKey: hex(sk.publicKey().toCompressedBytes()) };
  }

  /** Keys as hex, for storage or export. */
  function exportKeys(secret, signing) {
    return {
      secretKey: hex(secret.toBEBytes()),
      signingKey: hex(signing.toBEBytes()),
      publicKey: hex(secret.publicKey().toCompressedBytes()),
      verifyingKey: hex(signing.publicKey().toCompressedBytes()),
    };
  }

  /** Keys back from their exported form (checks they are consistent). */
  function importKeys(k) {
    const secret = umbral.SecretKey.fromBEBytes(unhex(k.secretKey));
    const signing = umbral.SecretKey.fromBEBytes(unhex(k.signingKey));
    const e = exportKeys(secret, signing);
    if (e.publicKey !== k.publicKey || e.verifyingKey !== k.verifyingKey) throw new Error('keys do not match');
    return e;
  }

  /**
   * A patient's key fragments for `granteePublicKey`, `threshold` of
   * `proxies.length`, each sealed to its proxy's public key, with the
   * fragment's id (the chain binds each proxy to it):
   * `[[proxyAccount, { capsule, ciphertext }, kfragId], ...]` as `grantAccess`
   * takes them. With `label`, the fragments delegate from that scope key
   * (what the chain's `grantKeys` will name for the grant: see
   * `scope.mjs`'s `grantLabel`), so they open only what it opens.
   */
  function sealedFragments(patientKeys, granteePublicKey, proxies, threshold, label = null) {
    const secret = label === null ? patientKeys.secretKey : scopeKey(patientKeys, label).secretKey;
    const sk = umbral.SecretKey.fromBEBytes(unhex(secret));
    const signer = new umbral.Signer(umbral.SecretKey.fromBEBytes(unhex(patientKeys.signingKey)));
    const receiving = umbral.PublicKey.fromCompressedBytes(unhex(granteePublicKey));
    const kfrags = umbral.generateKFrags(sk, receiving, signer, threshold, proxies.length, true, true);
    return proxies.map(({ account, publicKey }, i) => {
      const bytes = kfrags[i].toBytes();
      const [capsule, ciphertext] = umbral.encrypt(umbral.PublicKey.fromCompressedBytes(unhex(publicKey)), bytes);
      return [account, { capsule: hex(capsule.toBytes()), ciphertext: hex(ciphertext) }, hex(kfragId(bytes))];
    });
  }

  /**
   * The grantee's side: verifies each capsule fragment against the patient's
   * keys and opens the record's data key. Throws if a fragment does not
   * verify or there are fewer than the threshold.
   */
  function openDataKey(granteeKeys, patient, keyCapsule, fragments) {
    const capsule = umbral.Capsule.fromBytes(unhex(keyCapsule.capsule));
    const delegating = umbral.PublicKey.fromCompressedBytes(unhex(patient.publicKey));
    const verifying = umbral.PublicKey.fromCompressedBytes(unhex(patient.verifyingKey));
    const receiving = umbral.PublicKey.fromCompressedBytes(unhex(granteeKeys.publicKey));
    const verified = fragments.map((f) =>
      umbral.CapsuleFrag.fromBytes(unhex(f)).verify(capsule, verifying, delegating, receiving));
    const sk = umbral.SecretKey.fromBEBytes(unhex(granteeKeys.secretKey));
    return umbral.decryptReencrypted(sk, delegating, capsule, verified, unhex(keyCapsule.ciphertext));
  }

  /**
   * What a proxy checks before it acknowledges a grant (`acknowledgeGrant`):
   * opens its sealed key fragment with its secret key and verifies it against
   * the patient's keys and the grantee's public key, and checks that its id
   * is `boundId`, the one the chain binds this proxy to
   * (`keyFragmentIds(grant, proxy)`, hex; `null` only for grants made before
   * ids were bound). Returns the verified key fragment; throws if it does not
   * open, verify or carry that id (then the proxy sends `disputeGrant`: with
   * another id every fragment it made would be refused and cost it credit).
   * The node's offchain worker does the same in Wasm.
   */
  function openKeyFragment(proxySecretKey, sealed, patient, granteePublicKey, boundId) {
    const sk = umbral.SecretKey.fromBEBytes(unhex(proxySecretKey));
    const kfragBytes = umbral.decryptOriginal(sk, umbral.Capsule.fromBytes(unhex(sealed.capsule)), unhex(sealed.ciphertext));
    if (boundId === undefined) throw new Error('pass the key fragment id the chain binds this proxy to (or null)');
    if (boundId !== null && hex(kfragId(kfragBytes)) !== boundId.toLowerCase()) {
      throw new Error('the key fragment is not the one the chain binds this proxy to');
    }
    return umbral.KeyFrag.fromBytes(kfragBytes).verify(
      umbral.PublicKey.fromCompressedBytes(unhex(patient.verifyingKey)),
      umbral.PublicKey.fromCompressedBytes(unhex(patient.publicKey)),
      umbral.PublicKey.fromCompressedBytes(unhex(granteePublicKey)));
  }

  /**
   * What a proxy computes: opens its sealed fragment with its secret key and
   * re-encrypts the capsule (the node's offchain worker does this in Wasm).
   */
  function proxyFragment(proxySecretKey, sealed, patient, granteePublicKey, keyCapsule, boundId = null) {
    const kfrag = openKeyFragment(proxySecretKey, sealed, patient, granteePublicKey, boundId);
    return hex(umbral.reencrypt(umbral.Capsule.fromBytes(unhex(keyCapsule.capsule)), kfrag).toBytes());
  }

  /**
   * The issuer's side: the data key encrypted to `publicKey` (hex) as a
   * `KeyCapsule` `{ capsule, ciphertext }` in hex.
   */
  function sealDataKey(publicKey, dataKey) {
    const [capsule, ciphertext] = umbral.encrypt(umbral.PublicKey.fromCompressedBytes(unhex(publicKey)), dataKey);
    return { capsule: hex(capsule.toBytes()), ciphertext: hex(ciphertext) };
  }

  return {
    newKeys, newProxyKeys, importKeys, scopeKey, sealedFragments, sealDataKey, openDataKey, openKeyFragment, proxyFragment,
  };
}

/** The label of a patient's key for every record of `kind` (its name: `LabResult`, ...). */
export const kindLabel = (kind) => `medchain/scope/kind/${kind}`;

/** The label of a patient's one-time record key number `index`. */
export const recordLabel = (index) => `medchain/scope/record/${index}`;

/**
 * A grant's delegation as the proxies and the grantee check it: the
 * patient's verifying key and the key the grant delegates from (its scope
 * key, `grantKeys(grant)`, else the patient's own).
 */
export function delegator(patient, grantKeyPublic = null) {
  return { publicKey: grantKeyPublic ?? patient.publicKey, verifyingKey: patient.verifyingKey };
}

/** Decrypts a record's ciphertext (nonce ‖ ciphertext ‖ tag, AES-256-GCM) with Web Crypto. */
export async function decryptRecord(dataKey, ciphertext, subtle = globalThis.crypto.subtle) {
  const key = await subtle.importKey('raw', dataKey, 'AES-GCM', false, ['decrypt']);
  const plain = await subtle.decrypt({ name: 'AES-GCM', iv: ciphertext.subarray(0, 12) }, key, ciphertext.subarray(12));
  return new Uint8Array(plain);
}

/** The node-local storage key under which a proxy's key seed is kept. */
export function proxySecretStorageKey(proxyPublicKey) {
  return hex(new TextEncoder().encode('medchain/pre/secret/')) + proxyPublicKey.slice(2);
}

export { hex, unhex };
