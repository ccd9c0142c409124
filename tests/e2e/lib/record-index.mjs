// The record index (pallet-ehr-index) in tests. Patients consent to be
// indexed: the patient signs the consent message with its key and the
// hospital submits it, as at a hospital's registration desk. Validators
// confirm records before they can be shared.
import { decodeAddress } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { consentMessage } from '../../../portal/lib/consent.mjs';
import { sendAndWait } from './node.mjs';

/** The consent message `patient` signs for `issuer` now (addresses). */
export async function consentFor(api, issuer, patient) {
  const { generation } = await api.query.ehrIndex.indexConsents(patient, issuer);
  return consentMessage(api.genesisHash.toU8a(), decodeAddress(issuer), decodeAddress(patient), generation.toNumber());
}

/** `issuerPair` registers `patientPair` with the patient's signed consent. */
export async function registerPatient(api, issuerPair, patientPair) {
  const signature = patientPair.sign(await consentFor(api, issuerPair.address, patientPair.address));
  return sendAndWait(api, api.tx.ehrIndex.registerPatient(patientPair.address, { Sr25519: u8aToHex(signature) }),
    issuerPair);
}

/**
 * Validator institutions `validators` (two, none the issuer) confirm record
 * `id`: only confirmed records are shared with grantees.
 */
export async function confirmRecord(api, id, validators) {
  for (const v of validators) await sendAndWait(api, api.tx.ehrIndex.voteRecord(id, 'Confirm'), v);
  const status = (await api.query.ehrIndex.records(id)).unwrap().status.toString();
  if (status !== 'Confirmed') throw new Error(`record ${id} is ${status} after ${validators.length} confirmations`);
}
