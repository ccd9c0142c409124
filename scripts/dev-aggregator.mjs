#!/usr/bin/env node
// A second federated-learning aggregator on a single dev node. The runtime
// adopts a model only when at least two aggregators agree on it
// (`MinAggregatorsFloor` = 2), and a dev chain starts with one producer
// institution, //Alice. This makes //Aggregator an approved producer
// institution (funded by //Alice, approved through sudo) and inserts its
// `fl00` key into the node's keystore: the node's offchain worker signs a
// vote with every `fl00` key of a producer it holds, so it then votes twice,
// once per institution. Idempotent: a persistent dev chain keeps its
// institution and only gets the key again.
//
//   node scripts/dev-aggregator.mjs [ws://127.0.0.1:9944]
import { pathToFileURL } from 'node:url';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { sendAndWait } from '../tests/e2e/lib/node.mjs';

/** The dev chain's second aggregator. */
export const SECOND_AGGREGATOR = '//Aggregator';

/**
 * Makes `suri` an active producer institution (funded and approved by the
 * sudo key `sudo`) and inserts its `fl00` key into the node behind `api`.
 * Resolves to its key pair.
 */
export async function addAggregator(api, sudo, suri = SECOND_AGGREGATOR) {
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

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.argv[2] || 'ws://127.0.0.1:9944';
  await cryptoWaitReady();
  const alice = new Keyring({ type: 'sr25519' }).addFromUri('//Alice');
  const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
  const who = await addAggregator(api, alice);
  console.error(`[dev] ${SECOND_AGGREGATOR} (${who.address}) is a producer institution with an fl00 key`);
  await api.disconnect();
  process.exit(0);
}
