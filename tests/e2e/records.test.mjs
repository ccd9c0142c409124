// An institution puts a record with `medchain-record`: the file is encrypted
// (AES-256-GCM), stored in a real MongoDB wire-protocol server (SecantusDB),
// and indexed on a dev node; it is read back with its digest verified and
// decrypted. With MongoDB down nothing reaches the chain; when publication is
// refused the stored document is deleted again; when its outcome is unknown
// (the node frozen or killed mid-way) the document is kept, and no index
// entry ever points at a missing document.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { startDevNode, sendAndWait, freePort } from './lib/node.mjs';
import { registerPatient, consentFor } from './lib/record-index.mjs';
import { startMongo, startGateway, fetchRecord as fetchRecordAs, requestMessage, RECORD_CLI as CLI, SECANTUSD }
  from './lib/services.mjs';

let node;
let mongo;
let dir;
let k;
let gateway;
let published;
/** The sr25519 pair of `uri` (after `cryptoWaitReady`). */
const keyringPair = (uri) => new Keyring({ type: 'sr25519' }).addFromUri(uri);

function record(args) {
  // `list` reads only the store: it takes no --node.
  const chain = args[0] === 'list' ? [] : ['--node', `127.0.0.1:${node.rpcPort}`];
  // `register-patient` and `verify` talk to the chain (and gateways) only.
  const store = ['register-patient', 'verify'].includes(args[0]) ? [] : ['--mongo', mongo.url, '--store-id', 'hospital-1'];
  const r = spawnSync(CLI, [...args, ...chain, ...store], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(async () => {
  assert.ok(existsSync(CLI), `${CLI} is built by scripts/build.sh`);
  assert.ok(existsSync(SECANTUSD), `${SECANTUSD} is installed by scripts/setup.sh`);
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  k = {
    alice: keyring.addFromUri('//Alice'),
    bob: keyring.addFromUri('//Bob'),
    charlie: keyring.addFromUri('//Charlie'),
    dave: keyring.addFromUri('//Dave'),
    eve: keyring.addFromUri('//Eve'),
  };
  dir = mkdtempSync(join(tmpdir(), 'medchain-records-'));
  mongo = await startMongo();
  node = await startDevNode({ name: 'records' });
});

after(async () => {
  if (gateway) gateway.stop();
  if (node) await node.stop();
  if (mongo) mongo.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('encrypt, store, publish, then read back with the digest verified', async () => {
  const { api } = node;
  // Synthetic bytes standing in for a scan: 3 MiB, so progress is printed.
  const original = randomBytes(3 * 1024 * 1024);
  const file = join(dir, 'scan.bin');
  writeFileSync(file, original);
  // Charlie consents at the hospital's desk: he signs in his wallet, the
  // hospital registers him with the signature (a garbled one is refused).
  const consent = u8aToHex(k.charlie.sign(await consentFor(api, k.alice.address, k.charlie.address)));
  const garbled = record(['register-patient', '--patient', k.charlie.address, '--consent',
    consent.slice(0, -2) + (consent.endsWith('00') ? '01' : '00'), '--suri', '//Alice']);
  assert.notEqual(garbled.code, 0);
  assert.match(garbled.err, /BadConsentSignature/);
  const registered = record(['register-patient', '--patient', k.charlie.address, '--consent', consent,
    '--suri', '//Alice']);
  assert.equal(registered.code, 0, registered.err);
  assert.deepEqual(JSON.parse(registered.out.trim()), { registered: k.charlie.address, final: true });
  const put = record(['put', '--file', file, '--patient', k.charlie.address, '--kind', 'Imaging',
    '--suri', '//Alice', '--algorithm', 'sm3', '--key-out', join(dir, 'scan.key')]);
  assert.equal(put.code, 0, put.err);
  assert.match(put.err, /read +\d+ %/);
  const out = JSON.parse(put.out.trim().split('\n').pop());
  published = { id: out.record, original, key: join(dir, 'scan.key') };

  const rec = (await api.query.ehrIndex.records(out.record)).unwrap();
  assert.equal(rec.patient.toString(), k.charlie.address);
  assert.equal(rec.issuer.toString(), k.alice.address);
  assert.equal(rec.kind.toString(), 'Imaging');
  assert.equal(rec.digest.algorithm.toString(), 'Sm3');
  assert.equal(rec.digest.digest.toHex(), out.digest);
  // polkadot.js renames the field `size` (a Map property) to `size_`.
  assert.equal(rec.get('size_').toNumber(), original.length + 12 + 16, 'nonce + ciphertext + tag');
  assert.equal(u8aToHex(rec.pointer.unwrap().objectId), out.object_id);
  assert.equal(rec.pointer.unwrap().storeId.toUtf8(), 'hospital-1');
  // Nothing on chain resembles the plaintext: only its encrypted digest.
  assert.notEqual(out.digest, '0x' + createHash('sm3').update(original).digest('hex'));

  const back = join(dir, 'scan.out');
  const get = record(['get', '--record', String(out.record), '--key', join(dir, 'scan.key'), '--out', back]);
  assert.equal(get.code, 0, get.err);
  assert.ok(readFileSync(back).equals(original), 'decrypted bytes equal the original');

  const wrongKey = join(dir, 'wrong.key');
  writeFileSync(wrongKey, u8aToHex(randomBytes(32)));
  const bad = record(['get', '--record', String(out.record), '--key', wrongKey, '--out', back]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /decryption failed/);
});

/** Asks the gateway for a record as `who`, signing for block `block`. */
const fetchRecord = (who, recordId, { block, purpose = 'PatientView', signer = who } = {}) =>
  fetchRecordAs(node.api, gateway.url, who, recordId, { block, purpose, signer, gateway: k.alice.address });

test('the gateway serves the patient, refuses others, and logs every read', async () => {
  const { api } = node;
  gateway = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url });
  const { id, original, key } = published;
  const count = async () => (await api.query.ehrIndex.accessCount(id)).toNumber();
  const before = await count();

  const ok = await fetchRecord(k.charlie, id);
  assert.ok(ok.result, JSON.stringify(ok.error));
  assert.equal(await count(), before + 1, 'the read was logged on chain before it was served');
  // The patient decrypts with the data key the institution gave them.
  const keyHex = readFileSync(key, 'utf8').trim();
  const ct = Buffer.from(ok.result.ciphertext.slice(2), 'hex');
  const { createDecipheriv } = await import('node:crypto');
  const d = createDecipheriv('aes-256-gcm', Buffer.from(keyHex.slice(2), 'hex'), ct.subarray(0, 12));
  d.setAuthTag(ct.subarray(ct.length - 16));
  const plain = Buffer.concat([d.update(ct.subarray(12, ct.length - 16)), d.final()]);
  assert.ok(plain.equals(original), 'the served ciphertext decrypts to the record');

  const issuer = await fetchRecord(k.alice, id, { purpose: 'Treatment' });
  assert.ok(issuer.result, 'the issuing institution may read it');

  const other = await fetchRecord(k.bob, id, { purpose: 'Insurance' });
  assert.match(other.error.message, /may not read record/);
  const forged = await fetchRecord(k.charlie, id, { signer: k.bob });
  assert.match(forged.error.message, /signature does not prove/);
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const stale = await fetchRecord(k.charlie, id, { block: best + 50 });
  assert.match(stale.error.message, /sign a fresh one/);
  // A signature for one purpose does not serve another.
  const at0 = (await api.rpc.chain.getHeader()).number.toNumber();
  const forOther = u8aToHex(k.charlie.sign(new TextEncoder().encode(
    await requestMessage(api, id, k.charlie.address, 'PatientView', at0))));
  const repurposed = await (await fetch(gateway.url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ehr_getRecord',
      params: { record: id, accessor: k.charlie.address, purpose: 'Research', block: at0, signature: forOther } }) }))
    .json();
  assert.match(repurposed.error.message, /signature does not prove/);
  const missing = await fetchRecord(k.charlie, 9999);
  assert.match(missing.error.message, /not on chain/);
  assert.equal(await count(), before + 2, 'refused requests leave no access entry and get nothing');

  // A captured request sent again, byte for byte, within its freshness
  // window: served once, refused the second time.
  const at = (await api.rpc.chain.getHeader()).number.toNumber();
  const message = await requestMessage(api, id, k.charlie.address, 'PatientView', at);
  const signature = u8aToHex(k.charlie.sign(new TextEncoder().encode(message)));
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ehr_getRecord',
    params: { record: id, accessor: k.charlie.address, purpose: 'PatientView', block: at, signature } });
  const send = async () => (await fetch(gateway.url, { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body })).json();
  assert.ok((await send()).result, 'the first use is served');
  const replayed = await send();
  assert.match(replayed.error.message, /already used/);
  assert.equal(await count(), before + 3, 'the replay got nothing and logged nothing');

  // Limits: a body beyond 16 KiB is refused by the HTTP server (413) and
  // what fails inside is not handed to the caller.
  const huge = await fetch(gateway.url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ehr_getRecord', params: { pad: 'x'.repeat(20_000) } }) });
  assert.equal(huge.status, 413);
});

/** Asks the gateway for pending record `recordId` as validator `who`. */
async function reviewRequest(who, recordId) {
  const { api } = node;
  const at = (await api.rpc.chain.getHeader()).number.toNumber();
  const message = `medchain-ehr-review:v1:${api.genesisHash.toHex()}:${k.alice.address}:${recordId}:${who.address}:${at}`;
  const signature = u8aToHex(who.sign(new TextEncoder().encode(message)));
  return (await fetch(gateway.url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ehr_getForReview',
      params: { record: recordId, validator: who.address, block: at, signature } }) })).json();
}

test('validator services confirm a stored record and reject one altered, missing or withheld; the issuer pays', async () => {
  const { api } = node;
  // Dave and Eve join as validator institutions.
  for (const who of [k.dave, k.eve]) {
    await sendAndWait(api, api.tx.reputation.applyForMembership(`validator ${who.address.slice(0, 4)}`,
      'ResearchInstitute', { producer: false, validator: true, auditor: false }), who);
  }
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll(
    [k.dave, k.eve].map((who) => api.tx.reputation.approveInstitution(who.address)))), k.alice);

  // A stored record, and three entries that lie about theirs: one names a
  // stored document with another digest (as if altered behind the chain's
  // back), one a document the store does not hold, one a store whose
  // gateway never answers.
  const patient = keyringPair('//Review-Patient');
  await registerPatient(api, k.alice, patient);
  const file = join(dir, 'review.bin');
  writeFileSync(file, randomBytes(4096));
  const put = record(['put', '--file', file, '--patient', patient.address, '--kind', 'LabResult', '--suri', '//Alice']);
  assert.equal(put.code, 0, put.err);
  const good = JSON.parse(put.out.trim().split('\n').pop());
  const goodRecord = (await api.query.ehrIndex.records(good.record)).unwrap();
  const lie = async (digest, pointer) => {
    const { events } = await sendAndWait(api, api.tx.ehrIndex.publishRecord(patient.address, 'LabResult',
      { algorithm: 'Sm3', digest }, pointer, 4096 + 28, u8aToHex(randomBytes(32))), k.alice);
    return events.find(({ event }) => api.events.ehrIndex.RecordPublished.is(event)).event.data[0].toNumber();
  };
  const altered = await lie(u8aToHex(randomBytes(32)), goodRecord.pointer.unwrap());
  const missing = await lie(goodRecord.digest.digest, { storeId: 'hospital-1', collection: 'records',
    objectId: u8aToHex(randomBytes(12)) });
  const withheld = await lie(goodRecord.digest.digest, { storeId: 'hospital-2', collection: 'records',
    objectId: goodRecord.pointer.unwrap().objectId });
  const creditBefore = (await api.call.reputationApi.credit(k.alice.address)).unwrap().toNumber();

  // The gateway serves review requests only to validators other than the issuer.
  assert.match((await reviewRequest(k.bob, good.record)).error.message, /does not review/);
  const served = await reviewRequest(k.dave, good.record);
  assert.ok(served.result, JSON.stringify(served.error));
  assert.equal(served.result.ciphertext.length, 2 + 2 * good.size, 'ciphertext only');
  assert.equal((await reviewRequest(k.dave, missing)).error.code, 3);

  const silent = `http://127.0.0.1:${await freePort()}`;
  const verify = (who, extra = []) => record(['verify', '--once', '--suri', `//${who}`,
    '--gateway', `hospital-1=${gateway.url}`, '--gateway', `hospital-2=${silent}`, ...extra]);
  const votes = (run) => run.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  // First round: the silent store's record is not judged yet (voting is far from over).
  const first = verify('Dave');
  assert.equal(first.code, 0, first.err);
  const byRecord = Object.fromEntries(votes(first).map((v) => [v.record, v]));
  assert.deepEqual(byRecord[good.record], { record: good.record, vote: 'Confirm', code: null });
  assert.deepEqual(byRecord[altered], { record: altered, vote: 'Reject', code: 1 });
  assert.deepEqual(byRecord[missing], { record: missing, vote: 'Reject', code: 2 });
  assert.equal(byRecord[withheld], undefined, 'no vote while the gateway may still answer');
  assert.match(first.err, /not reviewed yet/);
  // Eve's service, and Dave's again, treat the silent store as withholding
  // (voting "ends soon" for any record with a huge --withheld-blocks, and
  // one failed round is enough here).
  for (const who of ['Eve', 'Dave']) {
    const run = verify(who, ['--withheld-blocks', '100000000', '--withheld-failures', '1']);
    assert.equal(run.code, 0, run.err);
  }
  const status = async (id) => (await api.query.ehrIndex.records(id)).unwrap().status.toString();
  assert.equal(await status(good.record), 'Confirmed');
  for (const id of [altered, missing, withheld]) assert.equal(await status(id), 'Rejected', `record ${id}`);
  assert.equal((await api.query.ehrIndex.votes(withheld, k.dave.address)).unwrap().toString(),
    JSON.stringify({ reject: 2 }));
  // Three rejections cost the issuer more than one confirmation earned.
  const creditAfter = (await api.call.reputationApi.credit(k.alice.address)).unwrap().toNumber();
  assert.ok(creditAfter < creditBefore, `credit ${creditBefore} → ${creditAfter}`);
  // A decided record is no longer sent for review.
  assert.match((await reviewRequest(k.eve, good.record)).error.message, /not under review/);
  // One validator cannot make the gateway send a record over and over.
  const again = await lie(goodRecord.digest.digest, goodRecord.pointer.unwrap());
  for (let i = 0; i < 4; i++) assert.ok((await reviewRequest(k.dave, again)).result, `fetch ${i + 1}`);
  assert.match((await reviewRequest(k.dave, again)).error.message, /sent to this validator 4 times already/);
  assert.ok((await reviewRequest(k.eve, again)).result, 'another validator still gets it');
});

test('a record from a signer that may not publish is not left in the store', async () => {
  const { api } = node;
  const before = (await api.query.ehrIndex.nextRecordId()).toNumber();
  const file = join(dir, 'note.txt');
  writeFileSync(file, 'synthetic discharge note');
  // Charlie is no institution: the runtime refuses the index entry.
  const put = record(['put', '--file', file, '--patient', k.charlie.address, '--kind', 'DischargeSummary',
    '--suri', '//Charlie']);
  assert.notEqual(put.code, 0);
  assert.match(put.err, /refused the index entry.*the stored document was deleted/);
  assert.equal((await api.query.ehrIndex.nextRecordId()).toNumber(), before);
  const stored = record(['list', '--patient', k.charlie.address]);
  assert.equal(stored.code, 0, stored.err);
  const kinds = stored.out.trim().split('\n').map((l) => JSON.parse(l).kind);
  assert.deepEqual(kinds, ['Imaging'], 'only the published record is in the store');
});

test('a record for a patient who never consented to this hospital is refused and not left in the store', async () => {
  const { api } = node;
  const who = keyringPair('//Unconsented-Patient').address;
  const before = (await api.query.ehrIndex.nextRecordId()).toNumber();
  const file = join(dir, 'unconsented.txt');
  writeFileSync(file, 'synthetic lab result, no consent');
  const put = record(['put', '--file', file, '--patient', who, '--kind', 'LabResult', '--suri', '//Alice']);
  assert.notEqual(put.code, 0);
  assert.match(put.err, /NoIndexConsent/);
  assert.match(put.err, /the stored document was deleted/);
  assert.equal((await api.query.ehrIndex.nextRecordId()).toNumber(), before);
  const stored = record(['list', '--patient', who]);
  assert.equal(stored.code, 0, stored.err);
  assert.equal(stored.out.trim(), '', 'nothing stored for the patient');
});

/**
 * Starts `medchain-record put` in the background for patient `who`; calls
 * `onSubmit()` the moment it says it submits the index entry. Resolves to
 * { code, out, err } when the client exits.
 */
function putInBackground(who, file, onSubmit, waitS) {
  const args = ['put', '--file', file, '--patient', who, '--kind', 'LabResult', '--suri', '//Alice',
    '--wait-s', String(waitS), '--node', `127.0.0.1:${node.rpcPort}`, '--mongo', mongo.url, '--store-id', 'hospital-1'];
  const child = spawn(CLI, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let fired = false;
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => {
    err += d;
    if (!fired && /submitting the index entry/.test(err)) { fired = true; onSubmit(); }
  });
  return new Promise((res) => child.on('exit', (code) => res({ code, out, err })));
}

/** Every index entry of `who` from id `from` on points at a document the store holds. */
async function assertNoDanglingEntry(who, from) {
  const api = node.api;
  const next = (await api.query.ehrIndex.nextRecordId()).toNumber();
  const listed = record(['list', '--patient', who]);
  assert.equal(listed.code, 0, listed.err);
  const held = new Set(listed.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).object_id));
  let entries = 0;
  for (let id = from; id < next; id++) {
    const rec = (await api.query.ehrIndex.records(id)).unwrap();
    if (rec.patient.toString() !== who) continue;
    entries += 1;
    assert.ok(held.has(u8aToHex(rec.pointer.unwrap().objectId)), `entry ${id} points at a document the store holds`);
  }
  return entries;
}

/** Resolves once an index entry for `who` from id `from` on is on chain. */
async function entryLands(who, from, timeoutMs = 60_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const next = (await node.api.query.ehrIndex.nextRecordId()).toNumber();
    for (let id = from; id < next; id++) {
      if ((await node.api.query.ehrIndex.records(id)).unwrap().patient.toString() === who) return id;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('the index entry did not land');
}

test('a node frozen past the put\'s wait: the document is kept and the late entry points at it', async () => {
  const who = keyringPair('//Frozen-Patient').address;
  await registerPatient(node.api, k.alice, keyringPair('//Frozen-Patient'));
  const from = (await node.api.query.ehrIndex.nextRecordId()).toNumber();
  const file = join(dir, 'frozen.txt');
  writeFileSync(file, 'synthetic lab result, frozen node');
  // SIGSTOP the node as the entry goes out: the client's 5 s wait ends with
  // no verdict, and the transaction (mortal, still valid) lands after SIGCONT.
  const put = await putInBackground(who, file, () => process.kill(node.pid, 'SIGSTOP'), 5);
  process.kill(node.pid, 'SIGCONT');
  if (put.code !== 0) {
    assert.match(put.err, /outcome is unknown.*is kept/s);
    assert.doesNotMatch(put.err, /was deleted/);
  }
  await entryLands(who, from);
  assert.equal(await assertNoDanglingEntry(who, from), 1);
});

test('a node killed as the entry lands: after its restart the entry points at a stored document', async () => {
  const who = keyringPair('//Killed-Patient').address;
  await registerPatient(node.api, k.alice, keyringPair('//Killed-Patient'));
  const from = (await node.api.query.ehrIndex.nextRecordId()).toNumber();
  const file = join(dir, 'killed.txt');
  writeFileSync(file, 'synthetic lab result, killed node');
  // Kill the node (SIGKILL, no clean shutdown) the moment the entry is in a
  // block, then start it again on the same database within the put's wait.
  let restarted;
  const unsub = await node.api.query.ehrIndex.nextRecordId((n) => {
    if (n.toNumber() > from && !restarted) restarted = node.restart({ signal: 'SIGKILL' });
  });
  const put = await putInBackground(who, file, () => {}, 120);
  try { unsub(); } catch { /* the old connection is gone */ }
  await restarted;
  if (put.code !== 0) {
    assert.match(put.err, /outcome is unknown.*is kept/s);
  }
  assert.equal(await assertNoDanglingEntry(who, from), 1, put.err);
});

test('with MongoDB down nothing is published', async () => {
  const { api } = node;
  const before = (await api.query.ehrIndex.nextRecordId()).toNumber();
  mongo.stop();
  await new Promise((r) => mongo.process.on('exit', r));
  const file = join(dir, 'lab.txt');
  writeFileSync(file, 'synthetic lab result');
  const put = record(['put', '--file', file, '--patient', k.charlie.address, '--kind', 'LabResult',
    '--suri', '//Alice']);
  assert.notEqual(put.code, 0);
  assert.match(put.err, /MongoDB is unreachable/);
  assert.equal((await api.query.ehrIndex.nextRecordId()).toNumber(), before);
});
