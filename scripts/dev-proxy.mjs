#!/usr/bin/env node
// Makes the dev node's //Alice a working re-encryption proxy: inserts her
// `prx0` signing key into the node's keystore, puts the seed of her Umbral key
// in the node's local (offchain) storage and registers the public key on chain.
// From then on the node acknowledges every grant naming //Alice as proxy by
// itself (after opening and verifying her key fragment; or disputes it if the
// fragment does not open), a block or two after the grant: requests under a
// grant are accepted only once its threshold of proxies acknowledged.
// The Umbral key is kept in ~/.cache/medchain/dev-proxy-alice.json so a
// persistent dev chain keeps working across restarts.
//
//   node scripts/dev-proxy.mjs [ws://127.0.0.1:9944]
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import * as umbral from '@nucypher/umbral-pre';
import { makePre, proxySecretStorageKey, unhex } from '../portal/lib/pre.mjs';

const url = process.argv[2] || 'ws://127.0.0.1:9944';
const file = join(homedir(), '.cache/medchain/dev-proxy-alice.json');
const pre = makePre(umbral);

await cryptoWaitReady();
const alice = new Keyring({ type: 'sr25519' }).addFromUri('//Alice');
mkdirSync(join(homedir(), '.cache/medchain'), { recursive: true });
const keys = existsSync(file)
  ? pre.newProxyKeys(unhex(JSON.parse(readFileSync(file, 'utf8')).seed)) : pre.newProxyKeys();
writeFileSync(file, JSON.stringify(keys, null, 2), { mode: 0o600 });

const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
await api.rpc.author.insertKey('prx0', '//Alice', u8aToHex(alice.publicKey));
await api.rpc.offchain.localStorageSet('PERSISTENT', proxySecretStorageKey(keys.publicKey), keys.seed);
const registered = (await api.query.proxyReencrypt.proxies(alice.address)).unwrapOr(null);
if (registered?.toHex() !== keys.publicKey) {
  await new Promise((resolve, reject) => {
    api.tx.proxyReencrypt.registerProxy(keys.publicKey).signAndSend(alice, ({ status, dispatchError }) => {
      if (dispatchError) reject(new Error(dispatchError.toString()));
      else if (status.isInBlock || status.isFinalized) resolve();
    }).catch(reject);
  });
}
console.error(`[dev] //Alice is a re-encryption proxy (Umbral key ${keys.publicKey.slice(0, 18)}…)`);
await api.disconnect();
