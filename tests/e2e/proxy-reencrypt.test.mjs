// Patient-controlled access end to end: a hospital stores a record whose data
// key is sealed to the patient's Umbral key; the patient grants a doctor
// access with 2-of-2 key fragments sealed to two proxy institutions; the
// proxies open and verify their fragments and acknowledge the grant (the
// node's offchain workers by themselves); the doctor requests the record; the dev node's offchain workers (the two
// proxies) re-encrypt, the runtime verifies each fragment; the doctor opens
// the data key and decrypts the real record fetched through the gateway.
// After revocation and after expiry no fragment is accepted and the gateway
// refuses. A proxy that submits a bad fragment loses credit. No request is
// accepted before the proxies acknowledged, and a grant whose fragment a
// proxy cannot open is disputed by that proxy's node and cannot be used.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, signatureVerify } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import * as umbral from '@nucypher/umbral-pre';
import { startDevNode, sendAndWait, waitForBlock, waitForAcknowledged } from './lib/node.mjs';
import { registerPatient } from './lib/record-index.mjs';
import { startMongo, startGateway, mongoPython, fetchRecord as fetchRecordAs, RECORD_CLI as CLI, SECANTUSD } from './lib/services.mjs';
import { makePre, decryptRecord, proxySecretStorageKey, unhex, delegator } from '../../portal/lib/pre.mjs';
import { grantLabel, grantCapsule, scopeKeyCalls } from '../../portal/lib/scope.mjs';
import { prepareInstant, fetchInstant, checkFragments, jsonRpc, fragmentRequestMessage, fragmentMessage,
  recordRequestMessage } from '../../portal/lib/instant.mjs';

const pre = makePre(umbral);

let node;
let mongo;
let gateway;
let dir;
let k;
/** Umbral keys: patient (Dave), doctor (Eve), proxies Alice and Bob (in the node), Charlie (not). */
const keys = {};
let record;

/** Asks the gateway for a record as `who`. */
const fetchRecord = (who, recordId) => fetchRecordAs(node.api, gateway.url, who, recordId);

/** Waits until `predicate()` holds, checking each second. */
async function until(predicate, what, timeoutMs = 60_000) {
  const t0 = Date.now();
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const proxiesOf = (...names) => names.map((n) => ({ account: k[n].address, publicKey: keys[n].publicKey }));

/**
 * Charlie's proxy does not run in the node: like an institution's own tool,
 * the test opens and verifies his key fragment, then acknowledges the grant.
 */
async function charlieAcknowledges(grantId) {
  const { api } = node;
  const key = (await api.query.proxyReencrypt.grantKeys(grantId)).unwrapOr(null);
  const sealed = (await api.query.proxyReencrypt.sealedFragments(grantId, k.charlie.address)).unwrap();
  const bound = (await api.query.proxyReencrypt.keyFragmentIds(grantId, k.charlie.address)).unwrap().toHex();
  pre.openKeyFragment(keys.charlie.secretKey, { capsule: sealed.capsule.toHex(), ciphertext: sealed.ciphertext.toHex() },
    delegator(keys.dave, key?.publicKey.toHex()), keys.eve.publicKey, bound);
  await sendAndWait(api, api.tx.proxyReencrypt.acknowledgeGrant(grantId), k.charlie);
}

/**
 * Grants Eve access, with key fragments of the scope's key (as the portal
 * makes them); unless `acknowledged` is false, waits until the grant's
 * proxies acknowledged it (Alice and Bob by the node's offchain workers,
 * Charlie by `charlieAcknowledges`).
 */
async function grant(scope, { expiresAt = null, proxies = ['alice', 'bob'], threshold = 2, acknowledged = true,
  patient = k.dave, patientKeys = keys.dave } = {}) {
  const { api } = node;
  const label = await grantLabel(api, patient.address, scope);
  const fragments = pre.sealedFragments(patientKeys, keys.eve.publicKey, proxiesOf(...proxies), threshold, label);
  const { events } = await sendAndWait(api, api.tx.proxyReencrypt.grantAccess(
    k.eve.address, scope, 'Treatment', expiresAt, threshold, fragments, false), patient);
  const ev = events.find(({ event }) => api.events.proxyReencrypt.AccessGranted.is(event));
  const id = ev.event.data.grant.toNumber();
  if (acknowledged) {
    if (proxies.includes('charlie')) await charlieAcknowledges(id);
    await waitForAcknowledged(api, id);
  }
  return id;
}

async function requestAccess(grantId, recordId) {
  const { api } = node;
  const { events } = await sendAndWait(api, api.tx.proxyReencrypt.requestAccess(grantId, recordId), k.eve);
  const ev = events.find(({ event }) => api.events.proxyReencrypt.AccessRequested.is(event));
  return ev.event.data.request.toNumber();
}

/** Revokes every grant of the patient so a test starts with none. */
async function revokeAll() {
  const { api } = node;
  const ids = (await api.call.proxyReencryptApi.patientGrants(k.dave.address)).map(([id]) => id);
  if (ids.length) await sendAndWait(api, api.tx.utility.batchAll(ids.map((id) => api.tx.proxyReencrypt.revokeGrant(id))), k.dave);
}

/** Alice's hospital stores `content` for Dave as a record of `kind` with the CLI; returns its output. */
function putRecord(kind, content = randomBytes(1024)) {
  const file = join(dir, `${kind}-${randomBytes(4).toString('hex')}.bin`);
  writeFileSync(file, content);
  const put = spawnSync(CLI, ['put', '--file', file, '--patient', k.dave.address, '--kind', kind,
    '--suri', '//Alice', '--key-out', `${file}.key`, '--node', `127.0.0.1:${node.rpcPort}`,
    '--mongo', mongo.url, '--store-id', 'hospital-1'],
  { encoding: 'utf8' });
  assert.equal(put.status, 0, put.stderr);
  const out = JSON.parse(put.stdout.trim().split('\n').pop());
  assert.equal(out.kind_capsule, true, 'sealed to the patient\'s key for the kind');
  assert.equal(typeof out.one_time_key, 'number', 'sealed to one of the patient\'s one-time keys');
  return out;
}

before(async () => {
  assert.ok(existsSync(CLI), `${CLI} is built by scripts/build.sh`);
  assert.ok(existsSync(SECANTUSD), `${SECANTUSD} is installed by scripts/setup.sh`);
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  k = Object.fromEntries(['alice', 'bob', 'charlie', 'dave', 'eve']
    .map((n) => [n, keyring.addFromUri(`//${n[0].toUpperCase()}${n.slice(1)}`)]));
  for (const n of ['dave', 'eve']) keys[n] = pre.newKeys();
  for (const n of ['alice', 'bob', 'charlie']) keys[n] = pre.newProxyKeys();
  dir = mkdtempSync(join(tmpdir(), 'medchain-pre-'));
  mongo = await startMongo();
  node = await startDevNode({ name: 'proxy-reencrypt' });
  const { api } = node;

  // Bob and Charlie join as institutions; Alice is one from genesis.
  for (const who of [k.bob, k.charlie]) {
    await sendAndWait(api, api.tx.reputation.applyForMembership('proxy', 'NursingHome',
      { producer: false, validator: true, auditor: false }), who);
  }
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll([
    api.tx.reputation.approveInstitution(k.bob.address),
    api.tx.reputation.approveInstitution(k.charlie.address),
  ])), k.alice);
  // Proxies register their Umbral keys; Alice's and Bob's run in this node:
  // their signing keys go in the keystore, the seeds of their Umbral keys in
  // the node's local storage (never on chain).
  for (const n of ['alice', 'bob', 'charlie']) {
    await sendAndWait(api, api.tx.proxyReencrypt.registerProxy(keys[n].publicKey), k[n]);
  }
  for (const n of ['alice', 'bob']) {
    await api.rpc.author.insertKey('prx0', `//${n[0].toUpperCase()}${n.slice(1)}`, u8aToHex(k[n].publicKey));
    await api.rpc.offchain.localStorageSet('PERSISTENT', proxySecretStorageKey(keys[n].publicKey), keys[n].seed);
  }
  // The patient (Dave) and the doctor (Eve) register their keys.
  for (const n of ['dave', 'eve']) {
    await sendAndWait(api, api.tx.proxyReencrypt.registerKey(keys[n].publicKey, keys[n].verifyingKey), k[n]);
  }

  // Dave's wallet registers his keys per scope: one per kind, 16 one-time
  // record keys (each derived from his secret key).
  for (const call of await scopeKeyCalls(api, pre, keys.dave, k.dave.address)) await sendAndWait(api, call, k.dave);

  // Dave consents to be indexed by Alice's hospital; it stores a record for
  // him, the data key sealed to Dave's Umbral key, his lab key and one of his
  // one-time keys on the way.
  await registerPatient(api, k.alice, k.dave);
  const original = randomBytes(64 * 1024);
  const out = putRecord('LabResult', original);
  assert.equal(out.capsule, true, 'the data key was sealed to the patient');
  record = { id: out.record, original, keyFile: out.key_file };
  // The gateway signs access-log entries as the record's issuer (Alice),
  // the account the node's offchain workers also sign with as a proxy.
  gateway = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url });
  // Until validators checked it, the record cannot be granted. Bob's and
  // Charlie's review services fetch its ciphertext from the gateway, find
  // it matches the index and confirm it.
  await assert.rejects(grant({ Record: record.id }, { acknowledged: false }), /proxyReencrypt\.RecordNotConfirmed/);
  // A grant of every lab result, acknowledged, does not reach it either:
  // no request, and the gateway serves the grantee nothing.
  const everyLab = await grant({ Kind: 'LabResult' });
  await assert.rejects(requestAccess(everyLab, record.id), /proxyReencrypt\.RecordNotConfirmed/);
  assert.match((await fetchRecord(k.eve, record.id)).error.message, /may not read record/);
  assert.match((await fetchRecordAs(api, gateway.url, k.eve, record.id, { grant: everyLab })).error.message,
    new RegExp(`grant ${everyLab} does not let`));
  await revokeAll();
  for (const who of ['Bob', 'Charlie']) {
    const review = spawnSync(CLI, ['verify', '--once', '--suri', `//${who}`, '--gateway', `hospital-1=${gateway.url}`,
      '--node', `127.0.0.1:${node.rpcPort}`], { encoding: 'utf8' });
    assert.equal(review.status, 0, review.stderr);
    assert.match(review.stdout, new RegExp(`"record":${record.id},"vote":"Confirm"`));
  }
  assert.equal((await api.query.ehrIndex.records(record.id)).unwrap().status.toString(), 'Confirmed');
});

after(async () => {
  if (gateway) gateway.stop();
  if (node) await node.stop();
  if (mongo) mongo.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('grant, request, two proxies re-encrypt, the doctor decrypts the real record', async () => {
  const { api } = node;
  // Before any grant the doctor is refused.
  const early = await fetchRecord(k.eve, record.id);
  assert.match(early.error.message, /may not read record/);

  const g = await grant({ Record: record.id });
  const grants = await api.call.proxyReencryptApi.patientGrants(k.dave.address);
  assert.deepEqual(grants.map(([id]) => id.toNumber()), [g]);
  const accessible = await api.call.proxyReencryptApi.accessibleRecords(k.eve.address);
  assert.deepEqual(accessible.map(([r, gr]) => [r.toNumber(), gr.toNumber()]), [[record.id, g]]);

  const r = await requestAccess(g, record.id);
  // The node's offchain workers serve as proxies Alice and Bob.
  const req = await until(async () => {
    const q = (await api.query.proxyReencrypt.requests(r)).unwrap();
    return q.status.toString() === 'Ready' ? q : null;
  }, 'two verified fragments');
  assert.equal(req.fragments.toNumber(), 2);
  const fragments = await api.call.proxyReencryptApi.fragments(r);
  assert.deepEqual(fragments.map(([who]) => who.toString()).sort(), [k.alice.address, k.bob.address].sort());
  const credit = async (who) => (await api.call.reputationApi.credit(who.address)).unwrap().toNumber();
  assert.ok(await credit(k.bob) > 600, 'serving a valid fragment earned credit');

  // The doctor opens the data key from the chain alone: the record's
  // capsule to its one-time key, the key the grant delegates from ...
  const { capsule, delegating } = await grantCapsule(api, g, record.id);
  assert.ok((await api.query.proxyReencrypt.grantKeys(g)).unwrap().slot.isRecord, 'a record grant\'s own key');
  const dataKey = pre.openDataKey(keys.eve, delegator(keys.dave, delegating), capsule, fragments.map(([, f]) => f.toHex()));
  assert.equal(u8aToHex(dataKey), readFileSync(record.keyFile, 'utf8').trim(), 'the hospital\'s data key');
  // ... fetches the ciphertext through the gateway (the same grant is checked) ...
  const served = await fetchRecord(k.eve, record.id);
  assert.ok(served.result, JSON.stringify(served.error));
  // ... and decrypts the real record.
  const plain = await decryptRecord(dataKey, unhex(served.result.ciphertext));
  assert.ok(Buffer.from(plain).equals(record.original), 'decrypted record equals the original');
  const log = await api.call.proxyReencryptApi.accessLog(record.id);
  assert.deepEqual(log.map(([id]) => id.toNumber()), [r], 'the request is in the record\'s access log');
});

test('after revocation no fragment is accepted and the gateway refuses', async () => {
  const { api } = node;
  await revokeAll();
  // Charlie's secret is not in the node, so this request stays open with one
  // fragment (Alice's) until the patient revokes.
  const g = await grant('All', { proxies: ['alice', 'charlie'], threshold: 2 });
  const r = await requestAccess(g, record.id);
  await until(async () => (await api.query.proxyReencrypt.requests(r)).unwrap().fragments.toNumber() === 1,
    'Alice\'s fragment');
  assert.ok((await fetchRecord(k.eve, record.id)).result, 'readable while the grant holds');
  // Charlie computes a perfectly valid fragment from its sealed key fragment ...
  const capsule = (await api.query.proxyReencrypt.capsules(record.id)).unwrap();
  const kc = { capsule: capsule.capsule.toHex(), ciphertext: capsule.ciphertext.toHex() };
  const sealed = (await api.query.proxyReencrypt.sealedFragments(g, k.charlie.address)).unwrap();
  const valid = pre.proxyFragment(keys.charlie.secretKey,
    { capsule: sealed.capsule.toHex(), ciphertext: sealed.ciphertext.toHex() }, keys.dave, keys.eve.publicKey, kc);
  // The issuer can log the doctor's read under the grant, for the grant's
  // purpose only; another institution cannot log it at all.
  await sendAndWait(api, api.tx.ehrIndex.logAccess(record.id, k.eve.address, 'Treatment', g), k.alice);
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.logAccess(record.id, k.eve.address, 'Research', g), k.alice),
    /ehrIndex\.PurposeNotGranted/);
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.logAccess(record.id, k.eve.address, 'Treatment', g),
    k.charlie), /ehrIndex\.NotIssuer/);
  await sendAndWait(api, api.tx.proxyReencrypt.revokeGrant(g), k.dave);
  assert.match((await fetchRecord(k.eve, record.id)).error.message, /may not read record/);
  // Naming the revoked grant does not get past the gateway's check either
  // (nothing is fetched or logged for it), nor does a malformed grant id.
  assert.match((await fetchRecordAs(api, gateway.url, k.eve, record.id, { grant: g })).error.message,
    new RegExp(`grant ${g} does not let`));
  assert.match((await fetchRecordAs(api, gateway.url, k.eve, record.id, { grant: 'one' })).error.message,
    /`grant` must be a grant id/);
  // A gateway that checked before the revocation landed cannot log (and so
  // serve) the read after it: the runtime checks the grant at the entry's
  // block.
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.logAccess(record.id, k.eve.address, 'Treatment', g), k.alice),
    /ehrIndex\.NotReadable/);

  // ... which is refused once the patient revoked: the request in flight
  // was closed with the grant.
  assert.ok((await api.query.proxyReencrypt.requests(r)).unwrap().status.isExpired, 'closed by the revocation');
  assert.equal((await api.query.proxyReencrypt.openRequestsOf(k.eve.address)).toNumber(), 0);
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.submitFragment(r, valid), k.charlie),
    /proxyReencrypt\.RequestClosed/);
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.requestAccess(g, record.id), k.eve),
    /proxyReencrypt\.GrantNotLive/);
  // Zero fragments accepted after revocation, even with blocks passing.
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  await waitForBlock(api, best + 3);
  assert.equal((await api.query.proxyReencrypt.requests(r)).unwrap().fragments.toNumber(), 1);
  assert.equal((await api.query.proxyReencrypt.sealedFragments.entries(g)).length, 0);
});

test('after expiry no fragment is accepted and the gateway refuses', async () => {
  const { api } = node;
  await revokeAll();
  assert.match((await fetchRecord(k.eve, record.id)).error.message, /may not read record/);
  const now = (await api.rpc.chain.getHeader()).number.toNumber();
  const expiresAt = now + 20;
  const g = await grant({ Kind: 'LabResult' }, { expiresAt, proxies: ['alice', 'charlie'], threshold: 2 });
  const r = await requestAccess(g, record.id);
  assert.ok((await fetchRecord(k.eve, record.id)).result, 'readable before expiry');
  await waitForBlock(api, expiresAt);
  const { capsule: kc, delegating } = await grantCapsule(api, g, record.id);
  const sealed = (await api.query.proxyReencrypt.sealedFragments(g, k.charlie.address)).unwrap();
  const valid = pre.proxyFragment(keys.charlie.secretKey, { capsule: sealed.capsule.toHex(), ciphertext: sealed.ciphertext.toHex() },
    delegator(keys.dave, delegating), keys.eve.publicKey, kc);
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.submitFragment(r, valid), k.charlie),
    /proxyReencrypt\.GrantNotLive/);
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.requestAccess(g, record.id), k.eve),
    /proxyReencrypt\.GrantNotLive/);
  assert.match((await fetchRecord(k.eve, record.id)).error.message, /may not read record/);
  assert.ok((await api.query.proxyReencrypt.requests(r)).unwrap().fragments.toNumber() <= 1,
    'only the fragment served before expiry, if any');
});

test('a proxy that submits a bad fragment loses credit', async () => {
  const { api } = node;
  const g = await grant('All', { proxies: ['charlie', 'alice'], threshold: 2 });
  const r = await requestAccess(g, record.id);
  const before = (await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber();
  // A fragment re-encrypted for someone else (Charlie's own key) does not verify.
  const capsule = (await api.query.proxyReencrypt.capsules(record.id)).unwrap();
  const kc = { capsule: capsule.capsule.toHex(), ciphertext: capsule.ciphertext.toHex() };
  const wrongSealed = pre.sealedFragments(keys.dave, keys.charlie.publicKey, proxiesOf('charlie'), 1)[0][1];
  const wrong = pre.proxyFragment(keys.charlie.secretKey, wrongSealed, keys.dave, keys.charlie.publicKey, kc);
  const { events } = await sendAndWait(api, api.tx.proxyReencrypt.submitFragment(r, wrong), k.charlie);
  assert.ok(events.some(({ event }) => api.events.proxyReencrypt.FragmentRejected.is(event)));
  const after = (await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber();
  assert.ok(after < before, `credit fell from ${before} to ${after}`);
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.submitFragment(r, wrong), k.charlie),
    /proxyReencrypt\.AlreadySubmitted/);
});

test('a proxy cannot pass off another proxy\'s fragment as its own', async () => {
  const { api } = node;
  const g = await grant('All', { proxies: ['charlie', 'alice'], threshold: 2 });
  const r = await requestAccess(g, record.id);
  // Alice's node serves; her fragment is public once it lands.
  const ofAlice = await until(async () => {
    const s = (await api.query.proxyReencrypt.fragments(r, k.alice.address)).unwrapOr(null);
    return s?.isAccepted ? s.asAccepted.toHex() : null;
  }, 'Alice\'s fragment');
  const before = (await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber();
  // Charlie sends it as his: it verifies against the capsule and the
  // patient's keys, but it was made from Alice's key fragment.
  const { events } = await sendAndWait(api, api.tx.proxyReencrypt.submitFragment(r, ofAlice), k.charlie);
  assert.ok(events.some(({ event }) => api.events.proxyReencrypt.FragmentRejected.is(event)));
  const after = (await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber();
  assert.ok(after < before, `credit fell from ${before} to ${after}`);
  const req = (await api.query.proxyReencrypt.requests(r)).unwrap();
  assert.equal(req.fragments.toNumber(), 1, 'only Alice\'s fragment counts');
  assert.ok(req.status.isOpen, 'not Ready on a copied fragment');
});

test('requests wait for the proxies\' acknowledgement; a fragment a proxy cannot open is disputed', async () => {
  const { api } = node;
  await revokeAll();
  // Alice's node acknowledges by itself; Charlie has not: one of two.
  const g = await grant('All', { proxies: ['alice', 'charlie'], threshold: 2, acknowledged: false });
  await until(async () => (await api.query.proxyReencrypt.grants(g)).unwrap().acknowledged.length === 1,
    'Alice\'s acknowledgement');
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.requestAccess(g, record.id), k.eve),
    /proxyReencrypt\.GrantNotAcknowledged/);
  assert.deepEqual((await api.call.proxyReencryptApi.accessibleRecords(k.eve.address)).toJSON(), []);
  await charlieAcknowledges(g);
  const r = await requestAccess(g, record.id);
  // One request per grant per minute.
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.requestAccess(g, record.id), k.eve),
    /proxyReencrypt\.RequestTooSoon/);
  await until(async () => (await api.query.proxyReencrypt.requests(r)).unwrap().fragments.toNumber() === 1,
    'Alice\'s fragment');
  await sendAndWait(api, api.tx.proxyReencrypt.revokeGrant(g), k.dave);

  // Alice's key fragment sealed to Bob's key: her node cannot open it and
  // disputes the grant, which can then not be used; nobody's credit changes.
  const credit = async (who) => (await api.call.reputationApi.credit(who.address)).unwrap().toNumber();
  const aliceBefore = await credit(k.alice);
  const fragments = pre.sealedFragments(keys.dave, keys.eve.publicKey,
    [{ account: k.alice.address, publicKey: keys.bob.publicKey }, ...proxiesOf('bob')], 2);
  const { events } = await sendAndWait(api, api.tx.proxyReencrypt.grantAccess(
    k.eve.address, 'All', 'Treatment', null, 2, fragments, false), k.dave);
  const bad = events.find(({ event }) => api.events.proxyReencrypt.AccessGranted.is(event)).event.data.grant.toNumber();
  const disputed = await until(async () => (await api.query.proxyReencrypt.grants(bad)).unwrap().disputedBy.unwrapOr(null),
    'Alice\'s dispute');
  assert.equal(disputed.toString(), k.alice.address);
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.requestAccess(bad, record.id), k.eve),
    /proxyReencrypt\.GrantDisputed/);
  assert.ok(await credit(k.alice) >= aliceBefore, 'a dispute costs the proxy nothing');

  // The patient binds Alice and Charlie to ids that are not their fragments':
  // Alice's node disputes, and Charlie's tool refuses to acknowledge.
  const rebound = pre.sealedFragments(keys.dave, keys.eve.publicKey, proxiesOf('alice', 'charlie'), 2)
    .map(([who, sealed], i) => [who, sealed, '0x' + String(i + 1).repeat(64)]);
  const { events: made } = await sendAndWait(api, api.tx.proxyReencrypt.grantAccess(
    k.eve.address, 'All', 'Treatment', null, 2, rebound, false), k.dave);
  const wrongIds = made.find(({ event }) => api.events.proxyReencrypt.AccessGranted.is(event)).event.data.grant.toNumber();
  await until(async () => (await api.query.proxyReencrypt.disputes(wrongIds)).some((p) => p.toString() === k.alice.address),
    'Alice\'s dispute of the wrong id');
  await assert.rejects(charlieAcknowledges(wrongIds), /not the one the chain binds this proxy to/);
});

test('one grantee cannot hold more than its share of the request queue; grantees decline; one proxy needs consent', async () => {
  const { api } = node;
  await revokeAll();
  // Revoking closed Eve's requests in flight (earlier tests left some open).
  assert.equal((await api.query.proxyReencrypt.openRequestsOf(k.eve.address)).toNumber(), 0);
  // Seventeen grants to Eve at once (a doctor, or a patient's sybils).
  const n = 17;
  const grants = Array.from({ length: n }, () => api.tx.proxyReencrypt.grantAccess(k.eve.address, 'All', 'Treatment',
    null, 2, pre.sealedFragments(keys.dave, keys.eve.publicKey, proxiesOf('alice', 'bob'), 2), false));
  const { events } = await sendAndWait(api, api.tx.utility.batchAll(grants), k.dave);
  const ids = events.filter(({ event }) => api.events.proxyReencrypt.AccessGranted.is(event))
    .map(({ event }) => event.data.grant.toNumber());
  assert.equal(ids.length, n);
  for (const id of ids) await waitForAcknowledged(api, id, 120_000);
  // Eve asks under all of them in one block: the 17th is refused.
  const { events: asked } = await sendAndWait(api,
    api.tx.utility.batch(ids.map((g) => api.tx.proxyReencrypt.requestAccess(g, record.id))), k.eve);
  assert.equal(asked.filter(({ event }) => api.events.proxyReencrypt.AccessRequested.is(event)).length, 16);
  const stop = asked.find(({ event }) => api.events.utility.BatchInterrupted.is(event));
  assert.ok(stop, 'the batch stopped');
  const err = api.registry.findMetaError(stop.event.data.error.asModule);
  assert.equal(`${err.section}.${err.name}`, 'proxyReencrypt.TooManyOwnRequests');
  // Served requests give their slots back: the 17th then goes through.
  await until(async () => (await api.query.proxyReencrypt.openRequestsOf(k.eve.address)).toNumber() === 0,
    'the proxies serving Eve\'s requests', 120_000);
  await requestAccess(ids[n - 1], record.id);

  // Eve declines a grant: it ends and leaves both lists.
  const { events: declined } = await sendAndWait(api, api.tx.proxyReencrypt.declineGrant(ids[0]), k.eve);
  assert.ok(declined.some(({ event }) => api.events.proxyReencrypt.GrantDeclined.is(event)));
  assert.ok((await api.query.proxyReencrypt.grants(ids[0])).unwrap().revokedAt.isSome);
  assert.ok(!(await api.call.proxyReencryptApi.patientGrants(k.dave.address)).some(([id]) => id.toNumber() === ids[0]));
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.declineGrant(ids[1]), k.dave),
    /proxyReencrypt\.NotGrantee/);

  // One proxy and the grantee could open everything: not without consent.
  const single = () => api.tx.proxyReencrypt.grantAccess(k.eve.address, 'All', 'Treatment', null, 1,
    pre.sealedFragments(keys.dave, keys.eve.publicKey, proxiesOf('alice'), 1), false);
  await assert.rejects(sendAndWait(api, single(), k.dave), /proxyReencrypt\.SingleProxyNotAllowed/);
  await sendAndWait(api, api.tx.proxyReencrypt.allowSingleProxyGrants(true), k.dave);
  await sendAndWait(api, single(), k.dave);
  await sendAndWait(api, api.tx.proxyReencrypt.allowSingleProxyGrants(false), k.dave);
  await revokeAll();
});

test('a patient\'s pseudonym for one hospital, never funded, keys, grants and revokes for free', async () => {
  const { api } = node;
  const keyring = new Keyring({ type: 'sr25519' });
  // Derived in the patient's wallet per hospital (hard derivation: not
  // linkable to Dave's other accounts from chain data), never funded.
  const pseudonym = keyring.addFromUri('//Dave//medchain//alice');
  const stranger = keyring.addFromUri('//Dave//medchain//nobody');
  const free = async (who) => (await api.query.system.account(who.address)).data.free.toBigInt();
  const pseudoKeys = pre.newKeys();
  // Nobody registered the stranger: its calls need fees it cannot pay.
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.registerKey(pseudoKeys.publicKey,
    pseudoKeys.verifyingKey), stranger), /Inability to pay some fees|1010/);
  // Alice's hospital registers the pseudonym (the hospital pays); from then
  // on its own patient calls are fee-less.
  await registerPatient(api, k.alice, pseudonym);
  await sendAndWait(api, api.tx.proxyReencrypt.registerKey(pseudoKeys.publicKey, pseudoKeys.verifyingKey), pseudonym);
  const grantId = await grant('All', { patient: pseudonym, patientKeys: pseudoKeys });
  await sendAndWait(api, api.tx.proxyReencrypt.revokeGrant(grantId), pseudonym);
  assert.ok((await api.query.proxyReencrypt.grants(grantId)).unwrap().revokedAt.isSome, 'revoked');
  assert.equal(await free(pseudonym), 0n, 'the pseudonym never held funds');
  assert.equal((await api.query.ehrIndex.freeCalls(pseudonym.address)).unwrap().used.toNumber(), 3);
  // Not every call is free: a transfer from it still needs fees.
  await assert.rejects(sendAndWait(api, api.tx.balances.transferAllowDeath(k.eve.address, 0), pseudonym),
    /Inability to pay some fees|1010/);
});

test('a record grant, every proxy colluding with the grantee, opens no other record; a kind grant no other kind', async () => {
  const { api } = node;
  await revokeAll();
  // Two more of Dave's records from Alice's hospital: a lab result and an image.
  const lab = putRecord('LabResult');
  const image = putRecord('Imaging');
  const keyOf = (out) => readFileSync(out.key_file, 'utf8').trim();
  /** Every capsule of a record on chain: to Dave's key, his kind key, a one-time key. */
  const capsulesOf = async (id) => {
    const pr = api.query.proxyReencrypt;
    const all = [(await pr.capsules(id)).unwrap(), (await pr.kindCapsules(id)).unwrap(),
      (await pr.oneTimeCapsules(id)).unwrap().capsule];
    return all.map((c) => ({ capsule: c.capsule.toHex(), ciphertext: c.ciphertext.toHex() }));
  };
  /**
   * Alice, Bob and Charlie open their key fragments of grant `g` and
   * re-encrypt `capsule` (any capsule, not only what the chain asks for);
   * Eve tries to open it with their fragments. The data key, or null.
   */
  const colludeOn = async (g, capsule) => {
    const key = (await api.query.proxyReencrypt.grantKeys(g)).unwrapOr(null);
    const who = delegator(keys.dave, key?.publicKey.toHex());
    const cfrags = [];
    for (const n of ['alice', 'bob', 'charlie']) {
      const sealed = (await api.query.proxyReencrypt.sealedFragments(g, k[n].address)).unwrap();
      const bound = (await api.query.proxyReencrypt.keyFragmentIds(g, k[n].address)).unwrap().toHex();
      cfrags.push(pre.proxyFragment(keys[n].secretKey, { capsule: sealed.capsule.toHex(), ciphertext: sealed.ciphertext.toHex() },
        who, keys.eve.publicKey, capsule, bound));
    }
    try {
      return u8aToHex(pre.openDataKey(keys.eve, who, capsule, cfrags));
    } catch {
      return null;
    }
  };

  // A grant of the first lab result: its proxies and Eve open its one-time
  // capsule (the hospital's data key) and nothing of the other two records.
  const one = await grant({ Record: record.id }, { proxies: ['alice', 'bob', 'charlie'], threshold: 2 });
  assert.equal(await colludeOn(one, (await grantCapsule(api, one, record.id)).capsule),
    readFileSync(record.keyFile, 'utf8').trim());
  for (const other of [lab, image]) {
    for (const capsule of await capsulesOf(other.record)) assert.equal(await colludeOn(one, capsule), null);
  }
  // A grant of every lab result opens the second lab result, not the image.
  const labs = await grant({ Kind: 'LabResult' }, { proxies: ['alice', 'bob', 'charlie'], threshold: 2 });
  assert.equal(await colludeOn(labs, (await grantCapsule(api, labs, lab.record)).capsule), keyOf(lab));
  for (const capsule of await capsulesOf(image.record)) assert.equal(await colludeOn(labs, capsule), null);
  // A grant of everything (Dave's own key) does open the image: the test
  // would notice if the colluders' method failed for another reason.
  const all = await grant('All', { proxies: ['alice', 'bob', 'charlie'], threshold: 2 });
  assert.equal(await colludeOn(all, (await capsulesOf(image.record))[0]), keyOf(image));
  await revokeAll();
});

test('the instant path: served at once and journaled; killed before logging, the gateway logs it after restart; a revocation stops it', async () => {
  const { api } = node;
  await revokeAll();
  const g = await grant({ Record: record.id });
  const reads = [];
  const unsubscribe = await api.query.system.events((events) => {
    for (const { event } of events) {
      if (api.events.ehrIndex.RecordRead.is(event)) {
        const d = event.data;
        reads.push({ recordId: d.recordId.toNumber(), accessor: d.accessor.toString(), gateway: d.gateway.toString(),
          purpose: d.purpose.toString(), checkedAt: d.checkedAt.toNumber() });
      }
    }
  });
  const count = async () => (await api.query.ehrIndex.accessCount(record.id)).toNumber();
  // A gateway on the instant path whose submitter would wait an hour.
  let instant = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url,
    extra: ['--instant', '--log-interval-ms', '3600000'] });
  try {
  const before = await count();
  // Served as soon as the grant is usable at the finalized head, without
  // waiting for any block.
  const served = await until(async () => {
    const r = await fetchRecordAs(api, instant.url, k.eve, record.id, { grant: g });
    return r.result ? r.result : null;
  }, 'the grant usable at the finalized head');
  assert.equal(served.record, record.id);
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  assert.ok(served.checked_at <= best, 'checked at a block already on chain');
  assert.equal(await count(), before, 'not on chain yet');
  // Killed (SIGKILL) between serving and logging.
  await instant.kill();
  await waitForBlock(api, best + 2);
  assert.equal(await count(), before, 'nothing logged by a dead gateway');
  // Started again: its journal still holds the read, which lands.
  // (Its MongoDB client checks the server's health once a minute: the
  // server is stopped for 5 s below, which a check under way must outlast.)
  instant = await startGateway({ rpcPort: node.rpcPort, mongoUrl: `${mongo.url}&heartbeatFrequencyMS=60000`,
    extra: ['--instant'] });
  const entry = await until(async () => reads.find((r) => r.recordId === record.id && r.checkedAt === served.checked_at
    && r.accessor === k.eve.address), 'the journaled read on chain');
  assert.equal(entry.gateway, k.alice.address);
  assert.equal(entry.purpose, 'Treatment');
  assert.equal(await count(), before + 1, 'logged once');

  // The store cannot give the ciphertext (its document altered behind the
  // chain's back). The gateway journals a read while it reads the store, so
  // it must withhold that read: nothing is served, nothing logged as served.
  const objectId = (await api.query.ehrIndex.records(record.id)).unwrap().pointer.unwrap().objectId.toHex().slice(2);
  const journalOf = () => mongoPython(mongo.url, `print(json.dumps([[d['state'], d.get('detail')] for d in
    db.access_journal.find({'record': ${record.id}, 'accessor': '${k.eve.address}'})]))`);
  const journaledBefore = journalOf();
  const moveCiphertext = (from, to) => mongoPython(mongo.url,
    `print(db.records.update_one({'_id': bson.ObjectId('${objectId}')}, {'$rename': {'${from}': '${to}'}}).modified_count)`);
  assert.equal(moveCiphertext('ciphertext', 'aside'), 1);
  let unserved;
  try {
    unserved = await fetchRecordAs(api, instant.url, k.eve, record.id, { grant: g });
  } finally {
    assert.equal(moveCiphertext('aside', 'ciphertext'), 1);
  }
  assert.ok(unserved.error && !unserved.result, 'nothing served');
  const journaled = journalOf();
  // One entry more than before: the read journaled while the store failed,
  // withheld, never logged as served; none more to be logged.
  const toLog = (entries) => entries.filter(([state]) => ['pending', 'submitting', 'logged'].includes(state)).length;
  assert.equal(journaled.length, journaledBefore.length + 1, JSON.stringify(journaled));
  assert.equal(toLog(journaled), toLog(journaledBefore), JSON.stringify(journaled));
  const withheld = (entries) => entries.filter(([, detail]) => detail === 'the store did not give the ciphertext');
  assert.deepEqual(withheld(journaled), [...withheld(journaledBefore), ['withheld', 'the store did not give the ciphertext']]);
  // The store does not answer at all: its server stopped (SIGSTOP) for
  // longer than the gateway waits for a ciphertext (2.5 s). The journal,
  // on the same server, answers once it runs again; the read is withheld
  // for its own reason, nothing served, nothing to log.
  const lateBefore = journalOf();
  mongo.process.kill('SIGSTOP');
  const resumed = new Promise((resolve) => setTimeout(resolve, 5000)).then(() => mongo.process.kill('SIGCONT'));
  let late;
  try {
    late = await fetchRecordAs(api, instant.url, k.eve, record.id, { grant: g });
  } finally {
    await resumed;
  }
  assert.ok(late.error && !late.result, 'nothing served');
  assert.equal(late.error.code, 2, 'unavailable');
  const lateAfter = journalOf();
  assert.equal(lateAfter.length, lateBefore.length + 1, JSON.stringify(lateAfter));
  assert.equal(toLog(lateAfter), toLog(lateBefore), JSON.stringify(lateAfter));
  const tooLate = (entries) => entries.filter(([, detail]) => detail === 'the store did not answer in time');
  assert.deepEqual(tooLate(lateAfter), [...tooLate(lateBefore), ['withheld', 'the store did not answer in time']]);

  // The patient revokes: the gateway refuses at once (it checks the best
  // block too), and the runtime refuses any entry dated after the revocation.
  const { blockHash } = await sendAndWait(api, api.tx.proxyReencrypt.revokeGrant(g), k.dave);
  const revokedAt = (await api.rpc.chain.getHeader(blockHash)).number.toNumber();
  assert.match((await fetchRecordAs(api, instant.url, k.eve, record.id, { grant: g })).error.message,
    new RegExp(`grant ${g} does not let`));
  const entryAt = (read, checkedAt) => ({ read: '0x' + read.repeat(64), recordId: record.id, accessor: k.eve.address,
    purpose: 'Treatment', grant: g, checkedAt, served: 'Record' });
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.logReads([entryAt('7', revokedAt)]), k.alice),
    /ehrIndex\.NotReadable/);
  // A read checked before the revocation is still logged after it.
  await sendAndWait(api, api.tx.ehrIndex.logReads([entryAt('8', revokedAt - 1)]), k.alice);
  // And a read logged twice counts once.
  await sendAndWait(api, api.tx.ehrIndex.logReads([entryAt('8', revokedAt - 1)]), k.alice);
  assert.equal(await count(), before + 2);
  } finally {
    instant.stop();
    unsubscribe();
  }
});

test('the instant key path: fragments from the proxies and the record from its gateway at once, verified, each logged; copied, bad, stranger\'s and replayed requests refused; a revocation stops every server; the runtime refuses entries written against its rules', async () => {
  const { api } = node;
  await revokeAll();
  const g = await grant({ Record: record.id }, { proxies: ['alice', 'bob', 'charlie'], threshold: 2 });
  const served = [];
  const unsubscribe = await api.query.system.events((events) => {
    for (const { event } of events) {
      if (api.events.ehrIndex.KeyFragmentServed.is(event) || api.events.ehrIndex.RecordRead.is(event)) {
        const d = event.data;
        served.push({ kind: event.method, recordId: d.recordId.toNumber(), accessor: d.accessor.toString(),
          by: (d.proxy ?? d.gateway).toString(), checkedAt: d.checkedAt.toNumber() });
      }
    }
  });
  // Each proxy institution runs the gateway with its proxy's seed (Alice's
  // also holds the record); each journals in its own database.
  const started = [];
  const servers = {};
  try {
    for (const n of ['alice', 'bob', 'charlie']) {
      const seedFile = join(dir, `${n}.seed`);
      writeFileSync(seedFile, keys[n].seed, { mode: 0o600 });
      const database = n === 'alice' ? [] : ['--database', `journal-${n}`];
      const s = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url,
        suri: `//${n[0].toUpperCase()}${n.slice(1)}`,
        extra: ['--instant', '--proxy-seed-file', seedFile, '--log-interval-ms', '500', ...database] });
      started.push(s);
      servers[k[n].address] = s.url;
    }
    const ready = await prepareInstant(api, g, record.id);
    assert.deepEqual([...ready.proxies].sort(), [k.alice.address, k.bob.address, k.charlie.address].sort());
    const sign = async (message) => u8aToHex(k.eve.sign(new TextEncoder().encode(message)));
    const best = async () => (await api.rpc.chain.getHeader()).number.toNumber();
    // What the grantee sent each server in its last fetch: one signed
    // request asking them all.
    let sent = [];
    const call = (url, method, params) => { sent.push({ url, method, params }); return jsonRpc(url, method, params); };
    let signatures = 0;
    const signOnce = async (message) => { signatures += 1; return sign(message); };
    const fetchAs = async () => {
      sent = [];
      signatures = 0;
      return fetchInstant(umbral, ready, { accessor: k.eve.address, keys: keys.eve, sign: signOnce,
        block: await best(), servers, call });
    };
    let last;
    // Every proxy and the gateway answer once the grant is usable at the
    // finalized head (each checks it there).
    const got = await until(async () => {
      try {
        const r = await fetchAs();
        return r.fragments.length === 3 && r.rejected.length === 0 ? r : null;
      } catch (e) { last = e; return null; }
    }, 'the grant usable at the finalized head', 60_000).catch((e) => { throw new Error(`${e.message}: ${last?.message}`); });
    assert.deepEqual(Buffer.from(got.plaintext), record.original, 'the real record, decrypted');
    assert.equal(got.fragments.length, 3);
    assert.deepEqual(got.rejected, []);
    // One signature asked the gateway and the three proxies (a wallet asks
    // its user once per fetch).
    assert.equal(signatures, 1);
    assert.equal(sent.length, 4);
    assert.equal(new Set(sent.map((x) => x.params.signature)).size, 1);
    // A proxy passes the grantee's request on to the record's gateway, as a
    // record request or as one for the gateway's own proxy: it can name only
    // its own salt, which asks nothing of the gateway. The gateway's own ask
    // again is a replay.
    const bobs = sent.find((x) => x.method === 'pre_reencrypt' && x.url === servers[k.bob.address]).params;
    const gateways = sent.find((x) => x.method === 'ehr_getRecord').params;
    await assert.rejects(jsonRpc(servers[k.alice.address], 'ehr_getRecord', { ...gateways, salt: bobs.salt }),
      /does not ask this server .* for ehr_getRecord/);
    await assert.rejects(jsonRpc(servers[k.alice.address], 'pre_reencrypt', bobs),
      /does not ask this server .* for pre_reencrypt/);
    await assert.rejects(jsonRpc(servers[k.alice.address], 'ehr_getRecord', gateways), /already used/);
    // Malformed asks at a live gateway and proxy: invalid params, refused
    // before any check, nothing journaled.
    const journaledNow = () => ['medchain', 'journal-bob'].map((database) => mongoPython(mongo.url,
      `print(json.dumps(db.access_journal.count_documents({'grant': ${g}})))`, database));
    const journalBefore = journaledNow();
    const malformed = [
      Array(17).fill(gateways.asks[0]), // more servers than one request may ask
      [gateways.asks.join(',')], // a list that could be split another way
      gateways.asks.map((a) => a.toUpperCase()), // the digest not in lowercase hex
      [`ehr_getRecord@${k.alice.address}#0x${'0'.repeat(64)}${'x'.repeat(100)}`], // oversized
      [], // asks nothing
    ];
    for (const asks of malformed) {
      for (const [method, params] of [['ehr_getRecord', gateways], ['pre_reencrypt', bobs]]) {
        await assert.rejects(jsonRpc(servers[method === 'pre_reencrypt' ? k.bob.address : k.alice.address], method,
          { ...params, asks }), (e) => e.code === -32602 && /asks/.test(e.message), `${method} ${asks[0]?.slice(0, 40)}`);
      }
    }
    await assert.rejects(jsonRpc(servers[k.alice.address], 'ehr_getRecord', { ...gateways, salt: gateways.salt.toUpperCase() }),
      (e) => e.code === -32602 && /salt/.test(e.message));
    assert.deepEqual(journaledNow(), journalBefore, 'nothing journaled for a malformed request, at the gateway or the proxy');
    // Fetched again with the same `ready` (its capsule and keys parsed once).
    assert.deepEqual(Buffer.from((await fetchAs()).plaintext), record.original);
    // Each answer is signed by its proxy, over the fragment it served.
    for (const f of got.fragments) {
      const message = fragmentMessage(ready.genesis, g, record.id, k.eve.address, f.fragment);
      assert.ok(signatureVerify(message, f.signature, f.proxy).isValid, `${f.proxy} signed what it served`);
    }

    // A proxy that passes off another's fragment as its own, or sends one
    // twice, is caught by the key fragment id the chain binds it to; a
    // fragment altered on the way fails Umbral's proof.
    const [a, b] = got.fragments;
    const check = (answers) => checkFragments(umbral, ready, keys.eve.publicKey, k.eve.address, answers);
    // Proxy b hands over a's fragment under its own name and signature.
    const fragmentBy = (f, who) => ({ ...f, proxy: who.address,
      signature: u8aToHex(who.sign(fragmentMessage(ready.genesis, g, record.id, k.eve.address, f.fragment))) });
    const proxyB = [k.alice, k.bob, k.charlie].find((p) => p.address === b.proxy);
    let c = check([fragmentBy(a, proxyB)]);
    assert.equal(c.verified.length, 0);
    assert.match(c.rejected[0].why, /copied/);
    // A bad fragment passed off as a's, under another's signature, proves
    // nothing against a; a's good fragment is good whoever signed it.
    const altered = unhex(a.fragment);
    altered[altered.length - 5] ^= 1;
    c = check([{ ...fragmentBy({ ...a, fragment: u8aToHex(altered) }, proxyB), proxy: a.proxy }, a]);
    assert.equal(c.verified.length, 1, 'a\'s own fragment');
    assert.equal(c.rejected.length, 1);
    assert.match(c.rejected[0].why, /not signed by the proxy/);
    assert.equal(c.rejected[0].fraud, false, 'proves nothing against a');
    assert.equal(check([{ ...a, signature: fragmentBy(a, proxyB).signature }]).verified.length, 1);
    c = check([a, { ...a }]);
    assert.equal(c.verified.length, 1);
    assert.match(c.rejected[0].why, /second fragment/);
    // Altered on the way (and signed again by its proxy): Umbral's proof fails.
    const proxyA = [k.alice, k.bob, k.charlie].find((p) => p.address === a.proxy);
    const bytes = unhex(a.fragment);
    bytes[bytes.length - 5] ^= 1;
    const badAnswer = fragmentBy({ ...a, fragment: u8aToHex(bytes) }, proxyA);
    c = check([badAnswer]);
    assert.equal(c.verified.length, 0, 'an altered fragment does not verify');
    assert.equal(c.rejected.length, 1);
    assert.equal(c.rejected[0].fraud, true, 'signed by its proxy: a fraud proof');
    // A proxy that signs a bad fragment (here the test signs as proxy a):
    // the grantee's fraud proof, checked on chain, costs the proxy credit.
    // A good fragment is no fraud, a proof is used once, and only the
    // grantee reports.
    const report = (answer, who = k.eve) => sendAndWait(api, api.tx.proxyReencrypt.reportBadFragment(
      g, record.id, answer.proxy, answer.fragment, { Sr25519: answer.signature }), who);
    const credit = async (who) => (await api.call.reputationApi.credit(who)).unwrap().toNumber();
    await assert.rejects(report(a), /proxyReencrypt\.FragmentIsValid/);
    await assert.rejects(report(badAnswer, k.dave), /proxyReencrypt\.NotGrantee/);
    await assert.rejects(report({ ...badAnswer, signature: a.signature }), /proxyReencrypt\.BadProxySignature/);
    const before = await credit(a.proxy);
    const { events } = await report(badAnswer);
    assert.ok(events.some(({ event }) => api.events.proxyReencrypt.BadFragmentReported.is(event)));
    assert.ok(await credit(a.proxy) < before, 'the proxy lost credit');
    await assert.rejects(report(badAnswer), /proxyReencrypt\.AlreadyReported/);

    // The patient asking with the doctor's grant, a replayed request, a
    // request for another record: refused.
    const ask = async (who, params, signed) => jsonRpc(servers[k.bob.address], 'pre_reencrypt', {
      grant: g, record: record.id, accessor: who.address, ...params,
      signature: u8aToHex(who.sign(new TextEncoder().encode(signed))) });
    const at = await best();
    const asDave = fragmentRequestMessage(ready.genesis, k.bob.address, g, record.id, k.dave.address, 'Treatment', at);
    await assert.rejects(ask(k.dave, { block: at }, asDave), /is not .*'s/);
    const once = fragmentRequestMessage(ready.genesis, k.bob.address, g, record.id, k.eve.address, 'Treatment', at);
    const signature = u8aToHex(k.eve.sign(new TextEncoder().encode(once)));
    const params = { grant: g, record: record.id, accessor: k.eve.address, block: at, signature };
    assert.ok((await jsonRpc(servers[k.bob.address], 'pre_reencrypt', params)).fragment);
    await assert.rejects(jsonRpc(servers[k.bob.address], 'pre_reencrypt', params), /already used/);
    const other = fragmentRequestMessage(ready.genesis, k.bob.address, g, record.id + 1000, k.eve.address, 'Treatment', at);
    await assert.rejects(ask(k.eve, { block: at, record: record.id + 1000 }, other), /does not let this reader/);

    // Every fragment and the record read are on chain, logged by the
    // proxies and the gateway that served them, within a few blocks.
    await until(() => served.filter((s) => s.kind === 'KeyFragmentServed' && s.accessor === k.eve.address
      && s.recordId === record.id).length >= 4, 'the journaled fragments on chain');
    const by = new Set(served.filter((s) => s.kind === 'KeyFragmentServed').map((s) => s.by));
    assert.deepEqual([...by].sort(), [k.alice.address, k.bob.address, k.charlie.address].sort());
    await until(() => served.some((s) => s.kind === 'RecordRead' && s.by === k.alice.address
      && s.accessor === k.eve.address && s.recordId === record.id && s.checkedAt >= got.checkedAt),
    'the record read on chain');

    // Revoked: once the node imported the revocation's block, no proxy and
    // no gateway serves anything, key fragments kept in memory included.
    await sendAndWait(api, api.tx.proxyReencrypt.revokeGrant(g), k.dave);
    const after = await Promise.all(ready.proxies.map(async (proxy) => {
      const blockNow = await best();
      const m = fragmentRequestMessage(ready.genesis, proxy, g, record.id, k.eve.address, 'Treatment', blockNow);
      return jsonRpc(servers[proxy], 'pre_reencrypt', { grant: g, record: record.id, accessor: k.eve.address,
        block: blockNow, signature: await sign(m) }).then(() => 'served', (e) => e.message);
    }));
    for (const answer of after) assert.match(answer, new RegExp(`grant ${g} does not let`));
    const refused = await fetchRecordAs(api, servers[k.alice.address], k.eve, record.id, { grant: g });
    assert.match(refused.error?.message ?? 'served', new RegExp(`grant ${g} does not let`), 'the gateway serves nothing');

    // A grant whose patient requires audit first: no proxy serves it on the
    // instant path, and the gateway logs each read on chain before serving.
    const strict = await grant({ Record: record.id }, { proxies: ['alice', 'bob', 'charlie'], threshold: 2 });
    await sendAndWait(api, api.tx.proxyReencrypt.requireAuditFirst(strict), k.dave);
    const strictReady = await prepareInstant(api, strict, record.id);
    await assert.rejects(fetchInstant(umbral, strictReady, { accessor: k.eve.address, keys: keys.eve, sign,
      block: await best(), servers }), /requires audit first/);
    const logged = await fetchRecordAs(api, servers[k.alice.address], k.eve, record.id, { grant: strict });
    assert.ok(logged.result, JSON.stringify(logged.error));
    assert.equal(logged.result.checked_at, undefined, 'served once its access entry was final, not journaled');
    await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.requireAuditFirst(strict), k.dave),
      /proxyReencrypt\.AlreadyAuditFirst/);

    // A request signed before the patient required audit first, sent after,
    // to a server whose view of the chain has not moved since (it follows
    // the chain between requests only every minute here, not at each new
    // block): its first check,
    // against that view, lets it pass; its last check, against the node's
    // best block, withholds the journaled read. The proxy then refuses; the
    // gateway logs the read on chain, final, before the ciphertext leaves.
    // Alice's gateway and Bob's proxy each run a second server for it, with
    // a database of its own (Alice's holds a copy of her records); the
    // first servers stop, so that no two submit as one institution.
    for (const s of started.splice(0)) s.stop();
    mongoPython(mongo.url, `copy = db.client['alice-still']
for d in db.records.find(): copy.records.replace_one({'_id': d['_id']}, d, upsert=True)
print(json.dumps(copy.records.count_documents({})))`);
    const stillServer = async (who, database) => {
      const s = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url, suri: `//${who}`,
        extra: ['--instant', '--proxy-seed-file', join(dir, `${who.toLowerCase()}.seed`), '--log-interval-ms', '500',
          '--database', database, '--watch-interval-ms', '60000', '--follow-heads', 'false'] });
      started.push(s);
      return s;
    };
    const aliceStill = await stillServer('Alice', 'alice-still');
    const bobStill = await stillServer('Bob', 'bob-still');
    const late = await grant({ Record: record.id }, { proxies: ['alice', 'bob'], threshold: 2 });
    const askLate = async (server, method, at) => {
      const message = method === 'pre_reencrypt'
        ? fragmentRequestMessage(ready.genesis, k.bob.address, late, record.id, k.eve.address, 'Treatment', at)
        : recordRequestMessage(ready.genesis, k.alice.address, record.id, k.eve.address, 'Treatment', at);
      return jsonRpc(server.url, method, { grant: late, record: record.id, accessor: k.eve.address, purpose: 'Treatment',
        block: at, signature: await sign(message) });
    };
    let signedAt;
    await until(async () => {
      signedAt = await best();
      return askLate(bobStill, 'pre_reencrypt', signedAt).then(() => true, () => false);
    }, 'the late grant served on the instant path', 60_000);
    assert.ok((await askLate(aliceStill, 'ehr_getRecord', signedAt)).checked_at > 0, 'journaled, not logged first');
    await sendAndWait(api, api.tx.proxyReencrypt.requireAuditFirst(late), k.dave);
    await assert.rejects(askLate(bobStill, 'pre_reencrypt', signedAt),
      new RegExp(`requires audit first for grant ${late} now`));
    const loggedFirst = await askLate(aliceStill, 'ehr_getRecord', signedAt);
    assert.equal(loggedFirst.checked_at, undefined, 'served once its read was on chain, not journaled');
    assert.ok(unhex(loggedFirst.ciphertext).length > 0);
    // Each journaled the read before its last check stopped it: withheld,
    // never logged as served.
    for (const database of ['alice-still', 'bob-still']) {
      const withheld = mongoPython(mongo.url, `print(json.dumps(db.access_journal.count_documents({'grant': ${late},
  'state': 'withheld', 'detail': 'the patient requires audit first now'})))`, database);
      assert.equal(withheld, 1, database);
    }
    // Signed at the best block, the requirement is met at the first check.
    await assert.rejects(askLate(bobStill, 'pre_reencrypt', await best()), /requires audit first for grant/);
    for (const s of started.splice(0)) s.stop();

    // The runtime itself refuses the entries a server could write by hand:
    // a key fragment logged by an institution that is not one of the
    // grant's acknowledged proxies, a record read logged by another than
    // the record's issuer, any read served first under an audit-first grant.
    const pair = await grant({ Record: record.id });
    const now = await best();
    const entry = (served, grantId, read) => ({ read: `0x${read.repeat(32)}`, recordId: record.id,
      accessor: k.eve.address, purpose: 'Treatment', grant: grantId, checkedAt: now, served });
    const logAs = (who, e) => sendAndWait(api, api.tx.ehrIndex.logReads([e]), who);
    await assert.rejects(logAs(k.charlie, entry('KeyFragment', pair, 'd1')), /ehrIndex\.NotGrantProxy/);
    await assert.rejects(logAs(k.bob, entry('Record', pair, 'd2')), /ehrIndex\.NotIssuer/);
    await assert.rejects(logAs(k.alice, entry('KeyFragment', strict, 'd3')), /ehrIndex\.AuditFirst/);
    await assert.rejects(logAs(k.alice, entry('Record', strict, 'd4')), /ehrIndex\.AuditFirst/);
    // As the rules allow, the same entries land.
    const { events: fine } = await logAs(k.alice, entry('KeyFragment', pair, 'd1'));
    assert.ok(fine.some(({ event }) => api.events.ehrIndex.KeyFragmentServed.is(event)
      && event.data.grant.toNumber() === pair && event.data.proxy.toString() === k.alice.address));
  } finally {
    for (const s of started) s.stop();
    unsubscribe();
  }
});

test('a record erased after the instant gateway kept its index entry is served to no one; reads served before still land', async () => {
  const { api } = node;
  await revokeAll();
  // A second record of Dave's, confirmed by Bob's and Charlie's reviews.
  const out = putRecord('LabResult', randomBytes(4 * 1024));
  for (const who of ['Bob', 'Charlie']) {
    const review = spawnSync(CLI, ['verify', '--once', '--suri', `//${who}`, '--gateway', `hospital-1=${gateway.url}`,
      '--node', `127.0.0.1:${node.rpcPort}`], { encoding: 'utf8' });
    assert.equal(review.status, 0, review.stderr);
  }
  assert.equal((await api.query.ehrIndex.records(out.record)).unwrap().status.toString(), 'Confirmed');
  const g = await grant({ Record: out.record });
  const landed = [];
  const unsubscribe = await api.query.system.events((events) => {
    for (const { event } of events) {
      if (api.events.ehrIndex.RecordRead.is(event) && event.data.recordId.toNumber() === out.record) {
        landed.push(event.data.checkedAt.toNumber());
      }
    }
  });
  // Its submitter would wait an hour: nothing is logged before the erasure.
  let instant = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url,
    extra: ['--instant', '--log-interval-ms', '3600000'] });
  try {
    const read = () => fetchRecordAs(api, instant.url, k.eve, out.record, { grant: g });
    await until(async () => ((await read()).result ? true : null), 'the grant usable at the finalized head');
    // Served again from the index entry the gateway keeps.
    assert.equal((await read()).result.record, out.record);
    // Dave erases it. The store still holds the document (the hospital
    // deletes it in its own time): only the index entry says it is gone.
    const { blockHash } = await sendAndWait(api, api.tx.ehrIndex.eraseRecord(out.record), k.dave);
    const erasedAt = (await api.rpc.chain.getHeader(blockHash)).number.toNumber();
    const refused = await read();
    assert.equal(refused.result, undefined, 'nothing served');
    assert.match(refused.error.message, new RegExp(`record ${out.record} was erased`));
    assert.deepEqual(landed, []);
    // What the record named is kept only for reads checked before the
    // erasure: the issuer cannot date a read at its block or later, the
    // grantee's nor the patient's own.
    const entryAt = (accessor, grantId, read) => ({ read: `0x${read.repeat(32)}`, recordId: out.record, accessor,
      purpose: 'Treatment', grant: grantId, checkedAt: erasedAt, served: 'Record' });
    await assert.rejects(sendAndWait(api, api.tx.ehrIndex.logReads([entryAt(k.eve.address, g, 'e1')]), k.alice),
      /ehrIndex\.NotReadable/);
    await assert.rejects(sendAndWait(api, api.tx.ehrIndex.logReads([entryAt(k.dave.address, null, 'e2')]), k.alice),
      /ehrIndex\.NotReadable/);
    // The two reads served before the erasure are logged after it: the
    // runtime judges each against the record as it stood when checked.
    instant.stop();
    instant = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url,
      extra: ['--instant', '--log-interval-ms', '500'] });
    await until(async () => (landed.length >= 2 ? true : null), 'both reads served before the erasure on chain');
    assert.equal(landed.length, 2);
    assert.ok(landed.every((checkedAt) => checkedAt < erasedAt), `checked before block ${erasedAt}: ${landed}`);
  } finally {
    instant.stop();
    unsubscribe();
  }
});
