// Federated learning on the zombienet network (run by
// zombienet/fl-two-aggregators.js; usage: node scripts/zombienet-fl.mjs
// ALICE_WS BOB_WS). Both collators get an aggregator key; a task that needs
// two agreeing aggregators runs two rounds with three hospitals; every round
// must be adopted with both nodes' offchain workers voting the same digest.
// Exits 0 when all of that held.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sendAndWait } from '../tests/e2e/lib/node.mjs';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const TARGET = process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/medchain/target');
const CLIENT = join(TARGET, 'debug/medchain-fl-client');
const [aliceWs, bobWs] = process.argv.slice(2);
const port = (ws) => new URL(ws).port;
const log = (...a) => console.log('[zombienet-fl]', ...a);

function client(args) {
  const out = execFileSync(CLIENT, [...args, '--node', `127.0.0.1:${port(aliceWs)}`], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop());
}

function trainer(suri, task, hospital, dataDir) {
  const child = spawn(CLIENT, ['train', '--suri', suri, '--task', String(task),
    '--data', join(dataDir, `hospital-${hospital}.csv`), '--node', `127.0.0.1:${port(aliceWs)}`,
    '--poll-ms', '1000', '--wait-s', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  return new Promise((res) => child.on('exit', (code) => res({ code, out })));
}

async function main() {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  const k = Object.fromEntries(['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie']
    .map((n) => [n.toLowerCase(), keyring.addFromUri(`//${n}`)]));
  const alice = await ApiPromise.create({ provider: new WsProvider(aliceWs), noInitWarn: true });
  const bob = await ApiPromise.create({ provider: new WsProvider(bobWs), noInitWarn: true });
  // Each collator aggregates with its own key (both are genesis producers).
  await alice.rpc.author.insertKey('fl00', '//Alice', u8aToHex(k.alice.publicKey));
  await bob.rpc.author.insertKey('fl00', '//Bob', u8aToHex(k.bob.publicKey));

  const members = [
    [k.ferdie, 'Cancer Research Institute', 'ResearchInstitute'],
    [k.charlie, 'Hospital Two', { Hospital: { level: 2, grade: 'A' } }],
    [k.dave, 'Hospital Three', { Hospital: { level: 2, grade: 'B' } }],
    [k.eve, 'Hospital Four', 'NursingHome'],
  ];
  log('registering a research institute and three hospitals');
  await Promise.all(members.map(([who, name, kind]) => sendAndWait(alice,
    alice.tx.reputation.applyForMembership(name, kind, { producer: false, validator: true, auditor: false }),
    who, 300_000)));
  await sendAndWait(alice, alice.tx.sudo.sudo(alice.tx.utility.batchAll(
    members.map(([who]) => alice.tx.reputation.approveInstitution(who.address)))), k.alice, 300_000);
  const first = (await alice.rpc.chain.getHeader()).number.toNumber();

  const dataDir = mkdtempSync(join(tmpdir(), 'medchain-zombienet-fl-'));
  try {
    execFileSync(CLIENT, ['split', '--input', join(ROOT, 'tests/data/wdbc.csv'), '--out', dataDir]);
    const { task } = client(['publish', '--suri', '//Ferdie', '--features', '30', '--rounds', '2',
      '--quorum', '3', '--round-blocks', '10', '--target', '0.999', '--epochs', '10', '--lr', '0.5',
      '--aggregators', '2', '--wait-s', '300']);
    log(`task ${task} published; three hospitals train`);
    const results = await Promise.all([['//Charlie', 1], ['//Dave', 2], ['//Eve', 3]]
      .map(([suri, h]) => trainer(suri, task, h, dataDir)));
    for (const r of results) if (r.code !== 0) throw new Error(`a hospital failed:\n${r.out}`);

    const t = (await alice.call.flTaskApi.task(task)).unwrap();
    if (!t.status.isFinished) throw new Error(`task ${task}: ${t.status}`);
    const rounds = await alice.call.flTaskApi.rounds(task);
    // Two rounds settled: adopted, or the second stopped because the
    // hospitals' evaluations of the first model reached the target.
    const settled = rounds.filter(([, r]) => r.phase.isAdopted || r.phase.isStopped).length;
    if (settled !== 2) throw new Error(`${settled} rounds settled, 2 expected`);

    // Both nodes voted in every round, with the same digest.
    const votes = {};
    const best = (await alice.rpc.chain.getHeader()).number.toNumber();
    for (let n = first; n <= best; n++) {
      const at = await alice.at(await alice.rpc.chain.getBlockHash(n));
      for (const { event } of await at.query.system.events()) {
        if (alice.events.flTask.AggregatorMismatched.is(event)) throw new Error(`block ${n}: ${event}`);
        if (alice.events.flTask.AggregateSubmitted.is(event) && event.data.task.toNumber() === task) {
          const round = event.data.round.toNumber();
          (votes[round] ??= {})[event.data.who.toHex()] = event.data.digest.toHex();
        }
      }
    }
    for (const round of [0, 1]) {
      const a = votes[round]?.[u8aToHex(k.alice.publicKey)];
      const b = votes[round]?.[u8aToHex(k.bob.publicKey)];
      if (!a || a !== b) throw new Error(`round ${round}: alice ${a}, bob ${b}`);
      log(`round ${round}: both collators' offchain workers voted ${a}`);
    }
    const fed = client(['evaluate', '--task', String(task), '--test', join(dataDir, 'test.csv')]);
    log(`task ${task} finished after 2 rounds on two aggregators; federated accuracy ${fed.federated_accuracy}`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    await alice.disconnect();
    await bob.disconnect();
  }
}

main().then(() => process.exit(0), (e) => { console.error('[zombienet-fl]', e.message ?? e); process.exit(1); });
