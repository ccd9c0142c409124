#!/usr/bin/env node
// Record fetch latency under patient-controlled access, at N concurrent
// clients (default 100), on a dev node with two proxies in its offchain
// worker, SecantusDB and a record gateway:
//
//   request  request_access signed and in a block (the audit entry)
//   reencrypt until threshold verified capsule fragments are on chain
//   fetch    gateway: signature, grant check, store read, digest, access log
//   total    request → the record decrypted by the client
//
// Then each client fetches key and record again on the instant path (over
// `node:http`, instant-node.mjs; a lone fetch also over Node's `fetch`), in the
// same run: one signed request straight to both proxies (`pre_reencrypt`) and
// to the record's gateway (`ehr_getRecord`), each checked at the best and the
// finalized block, journaled, served, logged on chain afterwards:
//
//   instant        signed request → 2 fragments + ciphertext → verify → decrypt
//                  (twice: the first fetch of each grant asks the chain, the
//                  second uses the answers kept until a block changes them)
//   on chain       blocks from the answer to each fragment's `KeyFragmentServed`
//
// Prints p50/p99 of each phase. Started by scripts/bench-pre.sh, which also
// measures re-encryption cost against raw umbral-pre in the same run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import * as umbral from '@nucypher/umbral-pre';
import { startDevNode, sendAndWait, waitForBlock, waitForAcknowledged } from '../tests/e2e/lib/node.mjs';
import { startMongo, startGateway, fetchRecord, RECORD_CLI } from '../tests/e2e/lib/services.mjs';
import { registerPatient, confirmRecord } from '../tests/e2e/lib/record-index.mjs';
import { makePre, decryptRecord, proxySecretStorageKey, unhex, hex } from '../portal/lib/pre.mjs';
import { prepareInstant, fetchInstant, jsonRpc } from '../portal/lib/instant.mjs';
import { nodeJsonRpc } from '../portal/lib/instant-node.mjs';

const CLIENTS = Number(process.argv[2] || 100);
const PER_PATIENT = 50;
const pre = makePre(umbral);
const now = () => performance.now();
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/**
 * Signs `tx` immortal (hundreds are signed at once, while 1 s blocks pass)
 * and resolves with its events once it is in a block.
 */
function send(tx, signer, options = {}) {
  return new Promise((resolve, reject) => {
    tx.signAndSend(signer, { era: 0, ...options }, ({ status, dispatchError, events }) => {
      if (dispatchError) reject(new Error(dispatchError.toString()));
      else if (status.isInBlock || status.isFinalized) resolve(events);
    }).catch(reject);
  });
}

await cryptoWaitReady();
const keyring = new Keyring({ type: 'sr25519' });
const alice = keyring.addFromUri('//Alice');
const bob = keyring.addFromUri('//Bob');
const charlie = keyring.addFromUri('//Charlie');
const dir = mkdtempSync(join(tmpdir(), 'medchain-bench-pre-'));
const mongo = await startMongo();
const node = await startDevNode({ name: 'bench-pre' });
let gateway;
let instant;
let bobProxy;
let bobMongo;
try {
  const { api } = node;
  console.error(`[bench] setting up ${CLIENTS} clients`);
  // Proxies: Alice and Bob, both served by this node's offchain worker.
  // Alice's hospital issues the records and runs their gateway (a gateway
  // serves only its institution's records; a nonce its offchain worker took
  // is signed again).
  for (const who of [bob, charlie]) {
    await sendAndWait(api, api.tx.reputation.applyForMembership('institution', 'NursingHome',
      { producer: false, validator: true, auditor: false }), who);
  }
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll([bob, charlie]
    .map((who) => api.tx.reputation.approveInstitution(who.address)))), alice);
  const proxies = [];
  for (const [who, uri] of [[alice, '//Alice'], [bob, '//Bob']]) {
    const keys = pre.newProxyKeys();
    await sendAndWait(api, api.tx.proxyReencrypt.registerProxy(keys.publicKey), who);
    await api.rpc.author.insertKey('prx0', uri, u8aToHex(who.publicKey));
    await api.rpc.offchain.localStorageSet('PERSISTENT', proxySecretStorageKey(keys.publicKey), keys.seed);
    proxies.push({ account: who.address, publicKey: keys.publicKey, seed: keys.seed });
  }
  // Patients (MaxGrantsPerAccount limits grants per patient) and clients.
  const patients = Array.from({ length: Math.ceil(CLIENTS / PER_PATIENT) },
    (_, i) => ({ pair: keyring.addFromUri(`//BenchPatient${i}`), keys: pre.newKeys() }));
  const clients = Array.from({ length: CLIENTS },
    (_, i) => ({ pair: keyring.addFromUri(`//BenchClient${i}`), keys: pre.newKeys() }));
  // One batch, signed again if Alice's offchain worker (a proxy) took the nonce.
  await sendAndWait(api, api.tx.utility.batchAll([...patients, ...clients].map((a) =>
    api.tx.balances.transferKeepAlive(a.pair.address, 10n ** 15n))), alice);
  // Let the pool see the funded accounts before they sign.
  await waitForBlock(api, (await api.rpc.chain.getHeader()).number.toNumber() + 2);
  await Promise.all([...patients, ...clients].map((a) =>
    send(api.tx.proxyReencrypt.registerKey(a.keys.publicKey, a.keys.verifyingKey), a.pair)));
  // One 64 KiB record per patient, stored and sealed to the patient.
  const original = randomBytes(64 * 1024);
  writeFileSync(join(dir, 'record.bin'), original);
  for (const p of patients) {
    await registerPatient(api, alice, p.pair);
    const put = spawnSync(RECORD_CLI, ['put', '--file', join(dir, 'record.bin'), '--patient', p.pair.address,
      '--kind', 'LabResult', '--suri', '//Alice', '--key-out', join(dir, 'k'), '--node', `127.0.0.1:${node.rpcPort}`,
      '--mongo', mongo.url], { encoding: 'utf8' });
    if (put.status !== 0) throw new Error(put.stderr);
    p.record = JSON.parse(put.stdout.trim().split('\n').pop()).record;
    // Bob and Charlie (validators) confirm it: only confirmed records are shared.
    await confirmRecord(api, p.record, [bob, charlie]);
  }
  // Each client gets a grant from its patient, 2 of 2 proxies.
  for (const [i, p] of patients.entries()) {
    const mine = clients.slice(i * PER_PATIENT, (i + 1) * PER_PATIENT);
    // One batch (paid): a registered patient's fee-less calls enter the
    // pool one at a time.
    const { events } = await sendAndWait(api, api.tx.utility.batchAll(mine.map((c) => api.tx.proxyReencrypt.grantAccess(
      c.pair.address, { Record: p.record }, 'Treatment', null, 2,
      pre.sealedFragments(p.keys, c.keys.publicKey, proxies, 2), false))), p.pair);
    const granted = events.filter(({ event }) => api.events.proxyReencrypt.AccessGranted.is(event));
    granted.forEach(({ event }, j) => Object.assign(mine[j], { grant: event.data.grant.toNumber(), patient: p }));
  }
  // Requests are accepted once both proxies acknowledged (their offchain
  // workers open and verify each key fragment first); not part of the timing.
  for (const c of clients) await waitForAcknowledged(api, c.grant, 300_000);
  // Every client is on this machine's loopback: one IP address.
  gateway = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url, maxPerClient: CLIENTS });

  console.error(`[bench] ${CLIENTS} clients fetch at once`);
  const t = { request: [], reencrypt: [], fetch: [], total: [] };
  await Promise.all(clients.map(async (c) => {
    const t0 = now();
    const events = await send(api.tx.proxyReencrypt.requestAccess(c.grant, c.patient.record), c.pair);
    const request = events.find(({ event }) => api.events.proxyReencrypt.AccessRequested.is(event)).event.data.request;
    const t1 = now();
    for (;;) {
      const r = (await api.query.proxyReencrypt.requests(request)).unwrap();
      if (r.status.isReady) break;
      if (r.status.isExpired) throw new Error(`request ${request} expired`);
      await new Promise((res) => setTimeout(res, 200));
    }
    const fragments = await api.call.proxyReencryptApi.fragments(request);
    const capsule = (await api.query.proxyReencrypt.capsules(c.patient.record)).unwrap();
    const dataKey = c.dataKey = pre.openDataKey(c.keys, c.patient.keys,
      { capsule: capsule.capsule.toHex(), ciphertext: capsule.ciphertext.toHex() }, fragments.map(([, f]) => f.toHex()));
    const t2 = now();
    const served = await fetchRecord(api, gateway.url, c.pair, c.patient.record);
    if (!served.result) throw new Error(JSON.stringify(served.error));
    const plain = await decryptRecord(dataKey, unhex(served.result.ciphertext));
    if (!Buffer.from(plain).equals(original)) throw new Error('decrypted record differs');
    const t3 = now();
    t.request.push(t1 - t0);
    t.reencrypt.push(t2 - t1);
    t.fetch.push(t3 - t2);
    t.total.push(t3 - t0);
  }));
  const tools = RECORD_CLI.includes('/release/') ? 'release' : 'debug';
  console.log(`record fetch latency, ${CLIENTS} concurrent clients, 64 KiB record, 2-of-2 proxies, 1 s dev blocks `
    + `(debug node, ${tools} record tools: ${RECORD_CLI}):`);
  for (const [phase, xs] of Object.entries(t)) {
    console.log(`  ${phase.padEnd(10)} p50 ${(pct(xs, 50) / 1000).toFixed(2)} s   p99 ${(pct(xs, 99) / 1000).toFixed(2)} s`);
  }

  // The instant path, same clients, same records, same node: Alice's
  // gateway serves the record and her proxy's fragments, Bob's gateway his
  // proxy's fragments; each journals in its own institution's MongoDB.
  const seedFile = (name, seed) => { const f = join(dir, `${name}.seed`); writeFileSync(f, seed); return f; };
  instant = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url, maxPerClient: CLIENTS,
    extra: ['--instant', '--proxy-seed-file', seedFile('alice', proxies[0].seed)] });
  // Bob's institution journals in its own MongoDB, as another hospital would.
  bobMongo = await startMongo();
  bobProxy = await startGateway({ rpcPort: node.rpcPort, mongoUrl: bobMongo.url, maxPerClient: CLIENTS, suri: '//Bob',
    extra: ['--instant', '--proxy-seed-file', seedFile('bob', proxies[1].seed), '--database', 'bob-journal'] });
  const servers = { [alice.address]: instant.url, [bob.address]: bobProxy.url };
  // Where each served fragment landed on chain, by block. The events are
  // read between the timed rounds, so that decoding them does not hold up
  // the clients being timed (they share this process); during a round only
  // the best block's number is followed.
  const landed = new Map();
  let bestNumber = (await api.rpc.chain.getHeader()).number.toNumber();
  const firstBlock = bestNumber;
  const unsubscribe = await api.rpc.chain.subscribeNewHeads((header) => { bestNumber = header.number.toNumber(); });
  let scanned = firstBlock;
  const scanLanded = async () => {
    for (const top = bestNumber; scanned < top;) {
      scanned += 1;
      const hash = await api.rpc.chain.getBlockHash(scanned);
      for (const { event } of await api.query.system.events.at(hash)) {
        if (api.events.ehrIndex.RecordRead.is(event) || api.events.ehrIndex.KeyFragmentServed.is(event)) {
          const d = event.data;
          const by = (d.proxy ?? d.gateway).toString();
          landed.set(`${d.recordId}:${d.accessor}:${d.checkedAt}:${by}`, scanned);
        }
      }
    }
  };
  // What each grantee reads from the chain once per grant (not timed).
  for (const c of clients) c.ready = await prepareInstant(api, c.grant, c.patient.record);
  const served = [];
  const failures = [];
  // `oneAtATime`: each waits for the last; `rate` (fetches/s): client i
  // starts at i / rate s (an open load, as grantees arrive); else all at once.
  // `rpc`: the grantees' HTTP client, `node:http` (instant-node.mjs) unless
  // said otherwise; Node's `fetch` (`jsonRpc`) for comparison.
  const round = async (label, who = clients, { oneAtATime = false, rate, rpc = nodeJsonRpc } = {}) => {
    console.error(`[bench] ${who.length} clients fetch key and record on the instant path (${label})`);
    const times = [];
    times.answered = [];
    const block = (await api.rpc.chain.getHeader()).number.toNumber();
    const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
    const run = oneAtATime
      ? async (each) => { for (const c of who) await each(c); }
      : (each) => Promise.all(who.map(async (c, i) => { if (rate) await sleep((1000 * i) / rate); return each(c); }));
    // Where a fetch's time goes: signing, and each server's round trip.
    times.parts = { sign: [], pre_reencrypt: [], ehr_getRecord: [] };
    const timed = (part, f) => async (...args) => {
      const s = now();
      try { return await f(...args); } finally { times.parts[part].push(now() - s); }
    };
    const call = (url, method, params) => timed(method, rpc)(url, method, params);
    await run(async (c) => {
      const sign = timed('sign', async (m) => u8aToHex(c.pair.sign(new TextEncoder().encode(m))));
      const t0 = now();
      const got = await fetchInstant(umbral, c.ready, { accessor: c.pair.address, keys: c.keys, sign, block, servers, call })
        .catch((e) => { failures.push(e.message); return null; });
      const t1 = now();
      if (!got) return;
      if (!Buffer.from(got.plaintext).equals(original)) throw new Error('decrypted record differs');
      times.push(t1 - t0);
      times.answered.push(got.answeredIn);
      const at = bestNumber;
      for (const f of got.fragments) served.push({ key: `${c.patient.record}:${c.pair.address}:${f.checked_at}:${f.proxy}`, at });
    });
    return times;
  };
  // Between rounds (untimed), the blocks so far are read: a node keeps the
  // state of its last 256 blocks only.
  const cold = await round('first fetch of each grant, all at once: the chain asked');
  await scanLanded();
  const warm = await round('again, all at once: answers kept until a block changes them');
  await scanLanded();
  const alone = await round('one client at a time', clients.slice(0, 20), { oneAtATime: true });
  await scanLanded();
  const aloneFetch = await round('one client at a time, with Node\'s fetch', clients.slice(0, 20),
    { oneAtATime: true, rpc: jsonRpc });
  await scanLanded();
  // Grantees arriving at a steady rate, each fetching once.
  const RATES = [20, 50];
  const steady = [];
  for (const rate of RATES) {
    steady.push(await round(`arriving at ${rate} per second`, clients, { rate }));
    await scanLanded();
  }
  const deadline = Date.now() + 300_000;
  for (;;) {
    await scanLanded();
    if (!served.some(({ key }) => !landed.has(key)) || Date.now() > deadline) break;
    await new Promise((res) => setTimeout(res, 1000));
  }
  unsubscribe();
  const lags = served.map(({ key, at }) => (landed.has(key) ? landed.get(key) - at : Infinity));
  console.log(`  ${'fetch'.padEnd(10)} p50 ${pct(t.fetch, 50).toFixed(0)} ms   p99 ${pct(t.fetch, 99).toFixed(0)} ms   `
    + '(log first, then serve; clients arriving as their keys were ready)');
  console.log(`on-chain: p50 ${pct(t.total, 50).toFixed(0)} ms p99 ${pct(t.total, 99).toFixed(0)} ms   `
    + '(key through request_access, then the record logged first)');
  const answered = (ts) => `servers answered p50 ${pct(ts.answered, 50).toFixed(0)} ms p99 ${pct(ts.answered, 99).toFixed(0)} ms`;
  console.log(`instant: p50 ${pct(warm, 50).toFixed(0)} ms p99 ${pct(warm, 99).toFixed(0)} ms   `
    + `(one signed request -> 2 fragments + ciphertext -> verify -> decrypt, ${CLIENTS} clients at once; ${answered(warm)})`);
  console.log(`  first fetch of a grant: p50 ${pct(cold, 50).toFixed(0)} ms p99 ${pct(cold, 99).toFixed(0)} ms`);
  console.log(`  one client at a time (20): p50 ${pct(alone, 50).toFixed(0)} ms p99 ${pct(alone, 99).toFixed(0)} ms; `
    + answered(alone));
  const parts = (ts) => Object.entries(ts.parts).map(([part, xs]) => `${part} ${pct(xs, 50).toFixed(1)} ms`).join(', ');
  console.log(`    parts, p50: ${parts(alone)}`);
  console.log(`  the same 20 with Node's fetch: p50 ${pct(aloneFetch, 50).toFixed(0)} ms `
    + `p99 ${pct(aloneFetch, 99).toFixed(0)} ms; ${answered(aloneFetch)}; parts, p50: ${parts(aloneFetch)}`);
  RATES.forEach((rate, i) => console.log(`  ${CLIENTS} grantees arriving at ${rate}/s, one fetch each: `
    + `p50 ${pct(steady[i], 50).toFixed(0)} ms p99 ${pct(steady[i], 99).toFixed(0)} ms; ${answered(steady[i])}`));
  console.log(`  fetches refused or failed: ${failures.length} of ${(2 + RATES.length) * CLIENTS + 40}`
    + (failures.length ? ` (first: ${failures[0]})` : ''));
  console.log(`  ratio instant/on-chain p50 ${(pct(warm, 50) / pct(t.total, 50)).toFixed(4)}, `
    + `p99 ${(pct(warm, 99) / pct(t.total, 99)).toFixed(4)}`);
  // The grantee decodes each ciphertext from the gateway's hex (in the
  // browser too, so without Node's Buffer): against Buffer's native decoder.
  const cipherHex = hex(original);
  const perCall = (f) => { f(); const s = now(); for (let i = 0; i < 50; i++) f(); return (now() - s) / 50; };
  const decoded = perCall(() => unhex(cipherHex));
  const native = perCall(() => Buffer.from(cipherHex.slice(2), 'hex'));
  console.log(`  grantee: hex-decode a 64 KiB ciphertext ${decoded.toFixed(2)} ms (Node's Buffer ${native.toFixed(2)} ms, `
    + `ratio ${(decoded / native).toFixed(1)})`);
  console.log(`  on chain: every fragment within ${Math.max(...lags)} blocks of its answer (p50 ${pct(lags, 50)}, p99 ${pct(lags, 99)})`);
} finally {
  if (instant) instant.stop();
  if (bobProxy) bobProxy.stop();
  if (gateway) gateway.stop();
  await node.stop();
  mongo.stop();
  if (bobMongo) bobMongo.stop();
  rmSync(dir, { recursive: true, force: true });
}
