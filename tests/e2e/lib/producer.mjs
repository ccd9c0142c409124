// A producer institution with an `fl00` key in a dev node: for tests of who
// aggregates. Only the collators of the session aggregate, so a producer
// that does not collate (this one) holds a key its node must not vote with.
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { sendAndWait } from './node.mjs';

/** The producer that does not collate. */
export const NON_COLLATING_PRODUCER = '//Aggregator';

/**
 * Makes `suri` an active producer institution (funded and approved by the
 * sudo key `sudo`) and inserts its `fl00` key into the node behind `api`.
 * Resolves to its key pair.
 */
export async function addProducer(api, sudo, suri = NON_COLLATING_PRODUCER) {
  await cryptoWaitReady();
  const who = new Keyring({ type: 'sr25519' }).addFromUri(suri);
  const status = async () => {
    const inst = await api.query.reputation.institutions(who.address);
    return inst.isSome ? inst.unwrap().status.toString() : null;
  };
  if ((await status()) === null) {
    // The institution bond (100 UNIT) and fees for its votes.
    await sendAndWait(api, api.tx.balances.transferKeepAlive(who.address, 10n ** 15n), sudo);
    await sendAndWait(api, api.tx.reputation.applyForMembership('Regional Hospital (FL aggregator)',
      { Hospital: { level: 3, grade: 'A' } }, { producer: true, validator: false, auditor: false }), who);
  }
  if ((await status()) !== 'Active') {
    await sendAndWait(api, api.tx.sudo.sudo(api.tx.reputation.approveInstitution(who.address)), sudo);
  }
  await api.rpc.author.insertKey('fl00', suri, u8aToHex(who.publicKey));
  return who;
}
