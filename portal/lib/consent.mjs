// What a patient signs to let an institution index records under its
// account (pallet-ehr-index's `consent_message`): the domain tag, then the
// SCALE encoding of (genesis hash, issuer, patient, generation). The
// generation is how often the patient withdrew consent from that issuer
// (`ehrIndex.indexConsents(patient, issuer).generation`), so a withdrawn
// consent cannot be submitted again. Dependency-free: browsers and Node.js.

/** The domain tag the runtime puts first (`INDEX_CONSENT_TAG`). */
export const INDEX_CONSENT_TAG = 'medchain:index-consent';

/**
 * The consent message as bytes. `genesisHash`, `issuer` and `patient` are
 * 32-byte Uint8Arrays (account ids, not SS58 addresses); `generation` a u32.
 */
export function consentMessage(genesisHash, issuer, patient, generation) {
  for (const [name, bytes] of [['genesis hash', genesisHash], ['issuer', issuer], ['patient', patient]]) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== 32) throw new Error(`${name} must be 32 bytes`);
  }
  if (!Number.isInteger(generation) || generation < 0 || generation > 0xffffffff) {
    throw new Error('generation must be a u32');
  }
  const tag = new TextEncoder().encode(INDEX_CONSENT_TAG);
  const out = new Uint8Array(tag.length + 32 * 3 + 4);
  out.set(tag, 0);
  out.set(genesisHash, tag.length);
  out.set(issuer, tag.length + 32);
  out.set(patient, tag.length + 64);
  new DataView(out.buffer).setUint32(tag.length + 96, generation, true);
  return out;
}
