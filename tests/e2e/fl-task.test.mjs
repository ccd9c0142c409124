// Federated learning on a real dev node: four hospitals train logistic
// regression on their non-IID shares of the Wisconsin breast-cancer data with
// `medchain-fl-client`; the node's offchain worker aggregates every round
// (FedAvg in fixed point) and the chain adopts each model. The federated
// model is compared with centralized training on the union of the data.
// A second task loses one hospital mid-way and still finishes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { startDevNode, sendAndWait } from './lib/node.mjs';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '../..');
const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
const CLIENT = join(TARGET, 'debug', 'medchain-fl-client');
const ARTIFACTS = join(ROOT, 'tests/artifacts');

let node;
let k;
let dataDir;

function client(args) {
  return execFileSync(CLIENT, [...args, '--node', `127.0.0.1:${node.rpcPort}`], { encoding: 'utf8' });
}

function lastJson(out) {
  return JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop());
}

/** Starts a training client; resolves { code, out } when it exits. */
function trainer(suri, task, hospital, extra = []) {
  const child = spawn(CLIENT, ['train', '--suri', suri, '--task', String(task),
    '--data', join(dataDir, `hospital-${hospital}.csv`),
    '--node', `127.0.0.1:${node.rpcPort}`, '--poll-ms', '300', ...extra]);
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const done = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal, out })));
  return { child, done, output: () => out };
}

before(async () => {
  assert.ok(existsSync(CLIENT), `${CLIENT} is built by scripts/build.sh`);
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  k = Object.fromEntries(['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie']
    .map((n) => [n.toLowerCase(), keyring.addFromUri(`//${n}`)]));
  node = await startDevNode({ name: 'fl-task' });
  const { api } = node;
  // The aggregator key of this node: Alice, the dev collator (a producer).
  await api.rpc.author.insertKey('fl00', '//Alice', u8aToHex(k.alice.publicKey));
  // A research institute publishes; four hospitals train.
  const members = [
    [k.ferdie, 'Cancer Research Institute', 'ResearchInstitute'],
    [k.bob, 'Hospital One', { Hospital: { level: 3, grade: 'A' } }],
    [k.charlie, 'Hospital Two', { Hospital: { level: 2, grade: 'A' } }],
    [k.dave, 'Hospital Three', { Hospital: { level: 2, grade: 'B' } }],
    [k.eve, 'Hospital Four', 'NursingHome'],
  ];
  for (const [who, name, kind] of members) {
    await sendAndWait(api, api.tx.reputation.applyForMembership(name, kind,
      { producer: false, validator: true, auditor: false }), who);
  }
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll(
    members.map(([who]) => api.tx.reputation.approveInstitution(who.address)))), k.alice);

  dataDir = mkdtempSync(join(tmpdir(), 'medchain-fl-'));
  execFileSync(CLIENT, ['split', '--input', join(ROOT, 'tests/data/wdbc.csv'), '--out', dataDir]);
});

after(async () => {
  if (node) await node.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('four hospitals reach the accuracy of centralized training', async () => {
  const { api } = node;
  const train = [1, 2, 3, 4].map((h) => join(dataDir, `hospital-${h}.csv`)).join(',');
  const central = lastJson(execFileSync(CLIENT, ['centralized', '--train', train,
    '--test', join(dataDir, 'test.csv'), '--epochs', '200', '--lr', '0.5'], { encoding: 'utf8' }));
  assert.ok(central.centralized_accuracy > 0.9, JSON.stringify(central));

  const { task } = lastJson(client(['publish', '--suri', '//Ferdie', '--features', '30',
    '--rounds', '20', '--quorum', '3', '--round-blocks', '8', '--target', '0.995',
    '--epochs', '10', '--lr', '0.5']));
  mkdirSync(ARTIFACTS, { recursive: true });
  const plot = join(ARTIFACTS, 'fl-task-accuracy.png');
  const runs = [
    trainer('//Bob', task, 1, ['--plot', plot]),
    trainer('//Charlie', task, 2),
    trainer('//Dave', task, 3),
    trainer('//Eve', task, 4),
  ];
  const results = await Promise.all(runs.map((r) => r.done));
  for (const r of results) assert.equal(r.code, 0, r.out);

  const t = (await api.call.flTaskApi.task(task)).unwrap();
  assert.ok(t.status.isFinished, t.status.toString());
  const rounds = await api.call.flTaskApi.rounds(task);
  const adopted = rounds.filter(([, r]) => r.phase.isAdopted);
  assert.ok(adopted.length >= 1 && adopted.length <= 20, `${adopted.length} rounds`);
  for (const [, r] of adopted) assert.equal(r.submitted.toNumber(), 4);

  const fed = lastJson(client(['evaluate', '--task', String(task), '--test', join(dataDir, 'test.csv')]));
  console.log(`centralized ${central.centralized_accuracy}, federated ${fed.federated_accuracy} after ${adopted.length} rounds`);
  assert.ok(fed.federated_accuracy >= 0.97 * central.centralized_accuracy,
    `federated ${fed.federated_accuracy} vs centralized ${central.centralized_accuracy}`);
  assert.ok(statSync(plot).size > 1000, 'the accuracy plot is written');

  // The hospitals' accepted updates raised their credit above the initial 600.
  const credit = (await api.call.reputationApi.credit(k.bob.address)).unwrap().toNumber();
  assert.ok(credit > 600, `credit ${credit}`);
});

test('a task finishes when one hospital drops out mid-way', async () => {
  const { api } = node;
  const { task } = lastJson(client(['publish', '--suri', '//Ferdie', '--features', '30',
    '--rounds', '5', '--quorum', '3', '--round-blocks', '6', '--target', '0.999',
    '--epochs', '5', '--lr', '0.5']));
  const runs = [
    trainer('//Bob', task, 1),
    trainer('//Charlie', task, 2),
    trainer('//Dave', task, 3),
  ];
  const quitter = trainer('//Eve', task, 4);
  // Kill the fourth hospital once it has submitted for round 1.
  const t0 = Date.now();
  while (!/round  1: trained/.test(quitter.output())) {
    assert.ok(Date.now() - t0 < 120_000, `quitter never reached round 1:\n${quitter.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  quitter.child.kill('SIGKILL');
  const results = await Promise.all(runs.map((r) => r.done));
  for (const r of results) assert.equal(r.code, 0, r.out);

  const t = (await api.call.flTaskApi.task(task)).unwrap();
  assert.ok(t.status.isFinished, t.status.toString());
  const rounds = await api.call.flTaskApi.rounds(task);
  assert.equal(rounds.filter(([, r]) => r.phase.isAdopted).length, 5);
  // After the drop-out, rounds closed at their deadline with three updates.
  const last = rounds[rounds.length - 1][1];
  assert.equal(last.submitted.toNumber(), 3);
});

test('native and Wasm aggregators compute bit-identical models', async () => {
  const { api } = node;
  // Two aggregators must agree, this node has one: the round stays open for
  // aggregation after its offchain worker votes, so every side can be compared.
  const { task } = lastJson(client(['publish', '--suri', '//Ferdie', '--features', '30',
    '--rounds', '3', '--quorum', '3', '--round-blocks', '6', '--target', '0.999',
    '--epochs', '3', '--lr', '0.5', '--rule', 'trimmed-mean', '--aggregators', '2']));
  const runs = [trainer('//Bob', task, 1), trainer('//Charlie', task, 2), trainer('//Dave', task, 3)];
  let vote;
  const t0 = Date.now();
  while (!(vote = await api.query.flTask.aggregateVotes([task, 0], k.alice.address)).isSome) {
    assert.ok(Date.now() - t0 < 120_000, 'the offchain worker voted');
    await new Promise((r) => setTimeout(r, 500));
  }
  const onChain = vote.unwrap().toHex();
  const native = lastJson(client(['aggregate', '--task', String(task)]));
  assert.equal(native.updates, 3);
  assert.equal(native.digest, onChain, 'native aggregate equals the offchain worker\'s');
  const [params, outliers] = (await api.call.flTaskApi.computeAggregate(task)).unwrap();
  const encoded = api.createType('(u32, u32, Vec<i64>, Vec<AccountId32>)', [task, 0, params, outliers]).toU8a();
  const { blake2AsHex } = await import('@polkadot/util-crypto');
  assert.equal(blake2AsHex(encoded, 256), onChain, 'runtime API aggregate equals the vote');

  await sendAndWait(api, api.tx.flTask.cancelTask(task), k.ferdie);
  for (const r of await Promise.all(runs.map((x) => x.done))) assert.equal(r.code, 0, r.out);
});
