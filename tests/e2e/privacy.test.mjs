// What the chain reveals about a patient treated at two hospitals. The
// patient holds one root key in its wallet and a pseudonym per hospital,
// derived from it with a hard path; each hospital registers its pseudonym
// (the patient's signed consent; the hospital pays) and publishes a record
// under it with `medchain-record put`; each pseudonym registers its own
// Umbral key and grants a doctor access, without funds (fee-less patient
// calls). Then the whole chain state and every event of every block is
// dumped and searched: the root account appears nowhere, no storage entry
// and no event names both pseudonyms (or one pseudonym and the other's
// Umbral keys), so nothing on chain links the two records to one person;
// no event names a pseudonym but its account's creation and its key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import * as umbral from '@nucypher/umbral-pre';
import { startDevNode, sendAndWait } from './lib/node.mjs';
import { registerPatient, confirmRecord } from './lib/record-index.mjs';
import { startMongo, RECORD_CLI as CLI, SECANTUSD } from './lib/services.mjs';
import { makePre } from '../../portal/lib/pre.mjs';

const pre = makePre(umbral);
/** The patient's root key: it never signs anything on chain. */
const ROOT_SEED = '//PrivacyPatient';

let node;
let mongo;
let dir;

before(async () => {
  assert.ok(existsSync(CLI), `${CLI} is built by scripts/build.sh`);
  assert.ok(existsSync(SECANTUSD), `${SECANTUSD} is installed by scripts/setup.sh`);
  await cryptoWaitReady();
  dir = mkdtempSync(join(tmpdir(), 'medchain-privacy-'));
  mongo = await startMongo();
  node = await startDevNode({ name: 'privacy' });
});

after(async () => {
  if (node) await node.stop();
  if (mongo) mongo.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The well-known key of the runtime's Wasm code, `:code`. */
const CODE_KEY = '0x3a636f6465';

/** Every storage key and value at the best block but the runtime's code, as lowercase hex without 0x. */
async function dumpState(api) {
  const at = await api.rpc.chain.getBlockHash();
  const entries = [];
  let start;
  for (;;) {
    const page = await api.rpc.state.getKeysPaged('0x', 1000, start, at);
    if (page.length === 0) break;
    // The runtime's own code (`:code`, megabytes of Wasm, compiled before any
    // patient existed) is left out: with it a page outgrows an RPC answer.
    const keys = page.filter((key) => key.toHex() !== CODE_KEY);
    const values = await api.rpc.state.queryStorageAt(keys, at);
    keys.forEach((key, i) => entries.push({ key: key.toHex().slice(2), value: values[i].toHex().slice(2) }));
    start = page[page.length - 1];
    if (page.length < 1000) break;
  }
  return entries;
}

/** Every event of every block so far, as { block, text } with the event's SCALE bytes in hex. */
async function dumpEvents(api) {
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const out = [];
  for (let n = 0; n <= best; n++) {
    const at = await api.rpc.chain.getBlockHash(n);
    const events = await api.query.system.events.at(at);
    for (const { event } of events) {
      out.push({ block: n, name: `${event.section}.${event.method}`, hex: event.toHex().slice(2) });
    }
  }
  return out;
}

test('two hospitals\' records of one patient: nothing on chain links them, and no account of the patient appears but its pseudonyms', async () => {
  const { api } = node;
  const keyring = new Keyring({ type: 'sr25519' });
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');
  const eve = keyring.addFromUri('//Eve');
  const validators = [keyring.addFromUri('//Charlie'), keyring.addFromUri('//Dave')];
  const root = keyring.addFromUri(ROOT_SEED);
  const at = { alice: keyring.addFromUri(`${ROOT_SEED}//medchain//alice`),
    bob: keyring.addFromUri(`${ROOT_SEED}//medchain//bob`) };
  const umbralKeys = { alice: pre.newKeys(), bob: pre.newKeys() };

  // Bob's hospital joins the consortium as a second producer; Eve is a
  // doctor with an Umbral key; Alice and Bob run proxies.
  await sendAndWait(api, api.tx.reputation.applyForMembership('hospital-b',
    { Hospital: { level: 3, grade: 'A' } }, { producer: true, validator: true, auditor: false }), bob);
  for (const v of validators) {
    await sendAndWait(api, api.tx.reputation.applyForMembership('validator', 'NursingHome',
      { producer: false, validator: true, auditor: false }), v);
  }
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll([bob, ...validators]
    .map((who) => api.tx.reputation.approveInstitution(who.address)))), alice);
  const proxies = {};
  for (const [name, pair] of [['alice', alice], ['bob', bob]]) {
    proxies[name] = pre.newProxyKeys();
    await sendAndWait(api, api.tx.proxyReencrypt.registerProxy(proxies[name].publicKey), pair);
  }
  const doctor = pre.newKeys();
  await sendAndWait(api, api.tx.proxyReencrypt.registerKey(doctor.publicKey, doctor.verifyingKey), eve);

  const records = {};
  for (const [name, hospital, suri] of [['alice', alice, '//Alice'], ['bob', bob, '//Bob']]) {
    const pseudonym = at[name];
    // At the hospital's desk: the pseudonym's consent, registered by the hospital.
    await registerPatient(api, hospital, pseudonym);
    // The pseudonym's own Umbral key, registered without funds.
    await sendAndWait(api, api.tx.proxyReencrypt.registerKey(umbralKeys[name].publicKey,
      umbralKeys[name].verifyingKey), pseudonym);
    const file = join(dir, `${name}.bin`);
    writeFileSync(file, randomBytes(16 * 1024));
    const put = spawnSync(CLI, ['put', '--file', file, '--patient', pseudonym.address, '--kind', 'Imaging',
      '--suri', suri, '--key-out', join(dir, `${name}.key`), '--node', `127.0.0.1:${node.rpcPort}`,
      '--mongo', mongo.url, '--store-id', `hospital-${name}`], { encoding: 'utf8' });
    assert.equal(put.status, 0, put.stderr);
    const out = JSON.parse(put.stdout.trim().split('\n').pop());
    assert.equal(out.capsule, true, 'the data key was sealed to this pseudonym\'s Umbral key');
    records[name] = out.record;
    // The pseudonym grants the doctor access, fee-less.
    const fragments = pre.sealedFragments(umbralKeys[name], doctor.publicKey,
      [{ account: alice.address, publicKey: proxies.alice.publicKey },
        { account: bob.address, publicKey: proxies.bob.publicKey }], 2);
    await sendAndWait(api, api.tx.proxyReencrypt.grantAccess(eve.address, 'All', 'Treatment', null, 2,
      fragments, false), pseudonym);
  }
  for (const name of ['alice', 'bob']) {
    const r = (await api.query.ehrIndex.records(records[name])).unwrap();
    assert.equal(r.patient.toString(), at[name].address, 'each record names that hospital\'s pseudonym');
    assert.equal((await api.query.system.account(at[name].address)).data.free.toBigInt(), 0n, 'never funded');
  }

  // What identifies each pseudonym: its account and its Umbral keys.
  const hex = (u8a) => u8aToHex(u8a).slice(2);
  const ids = Object.fromEntries(['alice', 'bob'].map((n) => [n, [hex(at[n].publicKey),
    umbralKeys[n].publicKey.replace(/^0x/, ''), umbralKeys[n].verifyingKey.replace(/^0x/, '')]]));
  const names = (text, n) => ids[n].some((id) => text.includes(id));
  const state = await dumpState(api);
  const events = await dumpEvents(api);
  assert.ok(state.length > 100 && events.length > 20, `dumped ${state.length} entries, ${events.length} events`);
  // The dump does contain each pseudonym (a search that finds nothing proves nothing).
  for (const n of ['alice', 'bob']) {
    assert.ok(state.some((e) => names(e.key + e.value, n)), `${n}'s pseudonym is in the state`);
    assert.ok(events.some((e) => names(e.hex, n)), `${n}'s pseudonym is in the events`);
  }
  const rootId = hex(root.publicKey);
  assert.deepEqual(state.filter((e) => (e.key + e.value).includes(rootId)), [], 'the root account is in no entry');
  assert.deepEqual(events.filter((e) => e.hex.includes(rootId)), [], 'the root account is in no event');
  const linking = state.filter((e) => names(e.key + e.value, 'alice') && names(e.key + e.value, 'bob'));
  assert.deepEqual(linking, [], 'no storage entry names both pseudonyms');
  const linkingEvents = events.filter((e) => names(e.hex, 'alice') && names(e.hex, 'bob'));
  assert.deepEqual(linkingEvents, [], 'no event names both pseudonyms');
  // Events carry ids, not patients: the only ones naming a pseudonym are
  // its account's creation and its own key's registration (no record,
  // consent, grant or fee event does).
  const naming = [...new Set(events.filter((e) => names(e.hex, 'alice') || names(e.hex, 'bob')).map((e) => e.name))];
  assert.deepEqual(naming.sort(), ['proxyReencrypt.KeyRegistered', 'system.NewAccount']);
  // No transfer or fee payment touches a pseudonym: a payer would link them.
  const money = events.filter((e) => /^(balances|transactionPayment)\./.test(e.name)
    && (names(e.hex, 'alice') || names(e.hex, 'bob')));
  assert.deepEqual(money, [], 'no balance or fee event names a pseudonym');

  // Each pseudonym erases its record (fee-less) once validators confirmed
  // it: the index keeps the digest and the issuer, and names the patient,
  // the kind and the size no more; the patient's list no longer holds it.
  for (const name of ['alice', 'bob']) {
    await confirmRecord(api, records[name], validators);
    const before = (await api.query.ehrIndex.records(records[name])).unwrap();
    // (Through JSON: a decoded struct is a Map, whose `size` counts fields.)
    assert.ok(before.kind.isSome && Number(before.toJSON().size) > 0, 'a record in force has a kind and a size');
    await sendAndWait(api, api.tx.ehrIndex.eraseRecord(records[name]), at[name]);
    const r = (await api.query.ehrIndex.records(records[name])).unwrap();
    assert.equal(r.status.toString(), 'Erased');
    assert.ok(r.pointer.isNone, 'the pointer is gone');
    assert.ok(r.kind.isNone, 'the kind is gone');
    assert.equal(Number(r.toJSON().size), 0, 'the size is gone');
    assert.equal(r.digest.toHex(), before.digest.toHex(), 'the digest stays');
    assert.equal(r.issuer.toString(), name === 'alice' ? alice.address : bob.address, 'the issuer stays');
    assert.ok(!names(r.toHex(), name), 'the erased entry names no pseudonym');
    assert.equal((await api.call.ehrIndexApi.recordsOfPatient(at[name].address, null, 10)).length, 0);
  }
  const after = await dumpState(api);
  const indexed = [ehrPrefix('Records'), ehrPrefix('PatientRecords')];
  assert.ok(after.some((e) => e.key.startsWith(indexed[0])), 'the dump holds the records');
  const recordKeys = after.filter((e) => indexed.some((p) => e.key.startsWith(p))
    && (names(e.key + e.value, 'alice') || names(e.key + e.value, 'bob')));
  assert.deepEqual(recordKeys, [], 'no record entry and no patient list names a pseudonym after erasure');
});

/** The hex prefix (twox128 of pallet and item, no 0x) of an `ehrIndex` storage item. */
function ehrPrefix(item) {
  return node.api.query.ehrIndex[item.charAt(0).toLowerCase() + item.slice(1)].keyPrefix().slice(2);
}
