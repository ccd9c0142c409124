// An institution puts a record with `medchain-record`: the file is encrypted
// (AES-256-GCM), stored in a real MongoDB wire-protocol server (SecantusDB),
// and indexed on a dev node; it is read back with its digest verified and
// decrypted. With MongoDB down nothing reaches the chain; when publication is
// refused the stored document is deleted again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir, homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { startDevNode, freePort } from './lib/node.mjs';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '../..');
const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
const CLI = join(TARGET, 'debug', 'medchain-record');
const SECANTUSD = process.env.MEDCHAIN_SECANTUSD
  || join(homedir(), '.cache/medchain/venv/bin/secantusd-py');

let node;
let mongo;
let mongoPort;
let dir;
let k;
let gateway;
let gatewayPort;
let published;

function record(args) {
  const r = spawnSync(CLI, [...args, '--node', `127.0.0.1:${node.rpcPort}`,
    '--mongo', `mongodb://127.0.0.1:${mongoPort}/?directConnection=true`, '--store-id', 'hospital-1'],
  { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function startMongo() {
  mongoPort = await freePort();
  mongo = spawn(SECANTUSD, ['--host', '127.0.0.1', '--port', String(mongoPort), '--storage-path', ':memory:'],
    { stdio: 'ignore' });
  const net = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((res) => {
      const s = net.connect(mongoPort, '127.0.0.1', () => { s.end(); res(true); });
      s.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('SecantusDB did not start');
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
  };
  dir = mkdtempSync(join(tmpdir(), 'medchain-records-'));
  await startMongo();
  node = await startDevNode({ name: 'records' });
});

after(async () => {
  if (gateway) gateway.kill('SIGTERM');
  if (node) await node.stop();
  if (mongo) mongo.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('encrypt, store, publish, then read back with the digest verified', async () => {
  const { api } = node;
  // Synthetic bytes standing in for a scan: 3 MiB, so progress is printed.
  const original = randomBytes(3 * 1024 * 1024);
  const file = join(dir, 'scan.bin');
  writeFileSync(file, original);
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

async function startGateway() {
  gatewayPort = await freePort();
  gateway = spawn(CLI, ['serve', '--listen', `127.0.0.1:${gatewayPort}`, '--suri', '//Alice',
    '--node', `127.0.0.1:${node.rpcPort}`,
    '--mongo', `mongodb://127.0.0.1:${mongoPort}/?directConnection=true`, '--store-id', 'hospital-1'],
  { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${gatewayPort}`, { method: 'POST', body: '{}' });
      return;
    } catch { await new Promise((r) => setTimeout(r, 200)); }
  }
  throw new Error('gateway did not start');
}

/** Asks the gateway for a record as `who`, signing for block `block`. */
async function fetchRecord(who, recordId, { block, purpose = 'PatientView', signer = who } = {}) {
  const best = (await node.api.rpc.chain.getHeader()).number.toNumber();
  const at = block ?? best;
  const message = `medchain-ehr-get:${recordId}:${who.address}:${at}`;
  const signature = u8aToHex(signer.sign(new TextEncoder().encode(message)));
  const res = await fetch(`http://127.0.0.1:${gatewayPort}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ehr_getRecord',
      params: { record: recordId, accessor: who.address, purpose, block: at, signature } }),
  });
  return res.json();
}

test('the gateway serves the patient, refuses others, and logs every read', async () => {
  const { api } = node;
  await startGateway();
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
  const missing = await fetchRecord(k.charlie, 9999);
  assert.match(missing.error.message, /not on chain/);
  assert.equal(await count(), before + 2, 'refused requests leave no access entry and get nothing');
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

test('with MongoDB down nothing is published', async () => {
  const { api } = node;
  const before = (await api.query.ehrIndex.nextRecordId()).toNumber();
  mongo.kill('SIGTERM');
  await new Promise((r) => mongo.on('exit', r));
  const file = join(dir, 'lab.txt');
  writeFileSync(file, 'synthetic lab result');
  const put = record(['put', '--file', file, '--patient', k.charlie.address, '--kind', 'LabResult',
    '--suri', '//Alice']);
  assert.notEqual(put.code, 0);
  assert.match(put.err, /MongoDB is unreachable/);
  assert.equal((await api.query.ehrIndex.nextRecordId()).toNumber(), before);
});
