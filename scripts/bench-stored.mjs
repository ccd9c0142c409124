// Streaming aggregation of a model too large for the chain, in the node's
// offchain worker (the runtime's Wasm): K institutions upload updates of D
// parameters to a model store and submit their references; the worker
// streams them chunk by chunk, writes the aggregate back and votes. Prints
// the time from the round's closing to the model's adoption and how much
// the node's peak resident memory grew meanwhile, against the size of the
// updates it read.
//
//   node scripts/bench-stored.mjs [K] [D]     (scripts/bench-stored.sh builds first)
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { startDevNode } from '../tests/e2e/lib/node.mjs';

const K = Number(process.argv[2] || 10);
const D = Number(process.argv[3] || 1_000_000);
// The runtime's quorum floor (MinParticipantsFloor).
if (!(K >= 2)) throw new Error(`K = ${process.argv[2]}: a round needs at least 2 updates`);
const TARGET = process.env.CARGO_TARGET_DIR;
const CLIENT = join(TARGET, 'debug', 'medchain-fl-client');

/** Peak resident memory of a process, in MiB. */
function peakMiB(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM'));
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** Signs `tx` immortal and resolves once it is in a block (rejects if it failed). */
function send(api, tx, signer) {
  return new Promise((res, rej) => {
    tx.signAndSend(signer, { era: 0 }, ({ status, dispatchError }) => {
      if (dispatchError) rej(new Error(dispatchError.toString()));
      else if (status.isInBlock || status.isFinalized) res();
    }).catch(rej);
  });
}

function run(args) {
  return new Promise((res, rej) => {
    const child = spawn(CLIENT, args);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${args[0]} exited ${code}:\n${out}`))));
  });
}

await cryptoWaitReady();
const keyring = new Keyring({ type: 'sr25519' });
const alice = keyring.addFromUri('//Alice');
const members = Array.from({ length: K }, (_, i) => keyring.addFromUri(`//Bench/${i}`));
const dir = mkdtempSync(join(tmpdir(), 'medchain-bench-store-'));
const node = await startDevNode({ name: 'bench-stored', blockTimeMs: 1000 });
let store;
try {
  const { api } = node;
  const rpc = ['--node', `127.0.0.1:${node.rpcPort}`];
  await api.rpc.author.insertKey('fl00', '//Alice', u8aToHex(alice.publicKey));
  store = spawn(CLIENT, ['store', '--listen', '127.0.0.1:0', '--dir', dir, ...rpc]);
  const url = await new Promise((res) => store.stdout.once('data', (d) => res(JSON.parse(String(d)).store)));
  execFileSync(CLIENT, ['aggregator-store', '--url', url, ...rpc]);
  // The collator's aggregator account registers the store its aggregates name.
  execFileSync(CLIENT, ['register-store', '--suri', '//Alice', '--url', url, ...rpc]);

  await send(api, api.tx.utility.batchAll(
    members.map((m) => api.tx.balances.transferKeepAlive(m.address, 10n ** 15n))), alice);
  await Promise.all(members.map((m, i) => send(api,
    api.tx.reputation.applyForMembership(`Bench Hospital ${i}`, { Hospital: { level: 2, grade: 'A' } },
      { producer: false, validator: true, auditor: false }), m)));
  await send(api, api.tx.sudo.sudo(api.tx.utility.batchAll(
    members.map((m) => api.tx.reputation.approveInstitution(m.address)))), alice);

  const published = await run(['publish', '--suri', '//Bench/0', '--features', String(D - 1), '--store', url,
    '--rounds', '1', '--quorum', String(K), '--round-blocks', '10000', '--target', '0.99', ...rpc]);
  const task = JSON.parse(published.trim().split('\n').pop()).task;
  // Everyone joins first: a round closes once all participants submitted.
  await Promise.all(members.map((m) => send(api, api.tx.flTask.joinTask(task), m)));
  // Two uploads at a time (two cores).
  for (let i = 0; i < K; i += 2) {
    await Promise.all([i, i + 1].filter((j) => j < K).map((j) =>
      run(['synthetic-update', '--suri', `//Bench/${j}`, '--task', String(task), '--store', url,
        '--seed', String(j + 1), '--wait-s', '300', ...rpc])));
  }
  const before = peakMiB(node.pid);
  let closedAt = null;
  for (;;) {
    const r = (await api.query.flTask.rounds(task, 0)).unwrap();
    if (closedAt === null && !r.phase.isCollecting) closedAt = performance.now();
    if (r.phase.isAdopted) break;
    if (r.phase.isAbandoned) throw new Error('the round was abandoned');
    await new Promise((res) => setTimeout(res, 100));
  }
  const seconds = (performance.now() - closedAt) / 1000;
  const after = peakMiB(node.pid);
  const inputMiB = (K * D * 8) / 2 ** 20;
  const [digest, params] = (await api.call.flTaskApi.storedModel(task)).unwrap();
  const t = (await api.call.flTaskApi.task(task)).unwrap();
  console.log(`K=${K} updates x D=${D} parameters (${inputMiB.toFixed(1)} MiB of updates in the store)`);
  console.log(`offchain worker (Wasm), round closed -> model adopted: ${seconds.toFixed(1)} s`);
  console.log(`node peak RSS ${before.toFixed(0)} MiB before, ${after.toFixed(0)} MiB after: grew ${(after - before).toFixed(0)} MiB`);
  console.log(`adopted ${params.toNumber()} parameters, digest ${digest.toHex()}, task status ${t.status}`);
} finally {
  if (store) store.kill('SIGKILL');
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
}
