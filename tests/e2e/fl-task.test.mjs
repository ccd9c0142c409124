// Federated learning on a real dev node: four hospitals train logistic
// regression on their non-IID shares of the Wisconsin breast-cancer data with
// `medchain-fl-client`; the node's offchain worker aggregates every round
// (FedAvg in fixed point) and the chain adopts each model. The federated
// model is compared with centralized training on the union of the data.
// A second task loses one hospital mid-way and still finishes.
// Only the collators of the session aggregate, and a model is adopted when
// ⌈⅔⌉ of them agree (two where more than one collates): the dev chain's one
// collator, //Alice, adopts on its own vote. The node also holds the `fl00`
// key of //Aggregator, a producer that does not collate: it never votes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex, hexToU8a, u8aConcat, compactAddLength, compactFromU8a, bnToU8a } from '@polkadot/util';
import { blake2AsU8a } from '@polkadot/util-crypto';
import * as umbral from '@nucypher/umbral-pre';
import { startDevNode, sendAndWait } from './lib/node.mjs';
import { addProducer } from './lib/producer.mjs';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '../..');
const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
const CLIENT = join(TARGET, 'debug', 'medchain-fl-client');
const ARTIFACTS = join(ROOT, 'tests/artifacts');

let node;
let k;
let dataDir;
let store;

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
    '--node', `127.0.0.1:${node.rpcPort}`, '--poll-ms', '300',
    // Updates kept by this run's clients only: a dev chain's genesis is the
    // same every run, and this file kills a client mid-task on purpose.
    '--state-dir', join(dataDir, 'client-state'), ...extra]);
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
  // The aggregator keys of this node: Alice, the dev collator (a producer),
  // and a producer institution that does not collate.
  await api.rpc.author.insertKey('fl00', '//Alice', u8aToHex(k.alice.publicKey));
  k.aggregator = await addProducer(api, k.alice);
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
  if (store) store.kill('SIGKILL');
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

/** ε in thousandths as the runtime computes it: ρ + 2√(ρ ln(1/δ)), ρ = 2T/z², rounded up. */
function epsilonMilli(rounds, z, deltaExp) {
  const rho = (2 * rounds) / (z * z);
  return Math.ceil((rho + 2 * Math.sqrt(rho * deltaExp * Math.LN10)) * 1000);
}

test('with differential privacy, four hospitals reach 95 % of centralized accuracy at the ε the chain shows', async () => {
  const { api } = node;
  const train = [1, 2, 3, 4].map((h) => join(dataDir, `hospital-${h}.csv`)).join(',');
  const central = lastJson(execFileSync(CLIENT, ['centralized', '--train', train,
    '--test', join(dataDir, 'test.csv'), '--epochs', '200', '--lr', '0.5'], { encoding: 'utf8' }));
  // Each update's change is clipped to norm 0.1 and gets N(0, 0.1²) noise
  // per parameter (z = 1), δ = 1e-5, for at most 30 rounds.
  // Models live in the stores, so updates are sealed to the committee.
  const url = await modelStore();
  const first = (await api.rpc.chain.getHeader()).number.toNumber();
  const published = client(['publish', '--suri', '//Ferdie', '--features', '30',
    '--rounds', '30', '--quorum', '3', '--round-blocks', '8', '--target', '0.995',
    '--epochs', '10', '--lr', '0.5', '--dp-clip', '0.1', '--dp-noise', '1', '--dp-delta-exp', '5',
    '--store', url]);
  const { task } = lastJson(published);
  const perRound = epsilonMilli(1, 1, 5);
  const total = epsilonMilli(30, 1, 5);
  // The chain records the parameters and the ε they give.
  const onChain = (await api.query.flTask.tasks(task)).unwrap().privacy.unwrap();
  assert.equal(onChain.dp.noiseMultiplier.toNumber(), 1000);
  assert.equal(onChain.dp.deltaExponent.toNumber(), 5);
  assert.ok(Math.abs(onChain.epsilonRoundMilli.toNumber() - perRound) <= 1, onChain.toString());
  assert.ok(Math.abs(onChain.epsilonTotalMilli.toNumber() - total) <= 1, onChain.toString());
  assert.match(published, /differential privacy on chain: ε 11\.\d{3} per round, at most 112\.\d{3} over its 30 rounds/);

  const runs = [1, 2, 3, 4].map((h) => trainer(['//Bob', '//Charlie', '//Dave', '//Eve'][h - 1], task, h, ['--store', url]));
  const results = await Promise.all(runs.map((r) => r.done));
  for (const r of results) {
    assert.equal(r.code, 0, r.out);
    // Each client prints the ε of its round and what it has spent so far.
    assert.match(r.out, /differential privacy: ε 11\.\d{3} this round, [\d.]+ spent over \d+ update\(s\) \(δ = 1e-5/);
  }
  const t = (await api.call.flTaskApi.task(task)).unwrap();
  assert.ok(t.status.isFinished, t.status.toString());
  const fed = lastJson(client(['evaluate', '--task', String(task), '--test', join(dataDir, 'test.csv')]));
  const rounds = settled(await api.call.flTaskApi.rounds(task));
  console.log(`with DP (ε ${perRound / 1000} per round, ${total / 1000} over 30, δ 1e-5): `
    + `centralized ${central.centralized_accuracy}, federated ${fed.federated_accuracy} after ${rounds} rounds`);
  assert.ok(fed.federated_accuracy >= 0.95 * central.centralized_accuracy,
    `federated ${fed.federated_accuracy} vs centralized ${central.centralized_accuracy}`);
  // Neither chain state nor a store shows one hospital's noisy update.
  const closed = await closedRounds(api, task, first);
  const [round0, at0] = [...closed.entries()][0];
  await assertUpdatesSealed(api, task, round0, at0, url);
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
  // Five rounds, or fewer when the hospitals' evaluations reached the
  // target first (the last round is then `Stopped`).
  assert.ok(settled(rounds) === 5 || rounds[rounds.length - 1][1].phase.isStopped, `${settled(rounds)} rounds`);
  // After the drop-out, rounds closed at their deadline with three updates.
  const last = rounds[rounds.length - 1][1];
  assert.equal(last.submitted.toNumber(), 3);
});

test('native and Wasm aggregators compute bit-identical models', async () => {
  const { api } = node;
  const { blake2AsHex } = await import('@polkadot/util-crypto');
  for (const rule of ['trimmed-mean', 'credit-fedavg']) {
    const first = (await api.rpc.chain.getHeader()).number.toNumber();
    const { task } = lastJson(client(['publish', '--suri', '//Ferdie', '--features', '30',
      '--rounds', '3', '--quorum', '3', '--round-blocks', '6', '--target', '0.999',
      '--epochs', '3', '--lr', '0.5', '--rule', rule]));
    const runs = [trainer('//Bob', task, 1), trainer('//Charlie', task, 2), trainer('//Dave', task, 3)];
    await until(`${rule}: round 0 adopted`, async () => {
      const r = await api.query.flTask.rounds(task, 0);
      return r.isSome && r.unwrap().phase.isAdopted;
    }, 120_000);
    // The block that closed round 0 (the state the offchain worker
    // aggregated) and the digest the chain adopted.
    let closedAt;
    let adopted;
    const best = (await api.rpc.chain.getHeader()).number.toNumber();
    for (let n = first; n <= best && !adopted; n++) {
      const hash = await api.rpc.chain.getBlockHash(n);
      for (const { event } of await (await api.at(hash)).query.system.events()) {
        const ours = (e) => e.is(event) && event.data.task.eq(task) && event.data.round.eqn(0);
        if (ours(api.events.flTask.RoundClosed)) closedAt = hash.toHex();
        if (ours(api.events.flTask.ModelAdopted)) adopted = event.data.digest.toHex();
      }
    }
    assert.ok(closedAt && adopted, `${rule}: round 0 closed and was adopted`);
    const native = lastJson(client(['aggregate', '--task', String(task), '--at', closedAt]));
    assert.equal(native.updates, 3);
    assert.equal(native.digest, adopted, `${rule}: native aggregate equals the offchain worker's`);
    const at = await api.at(closedAt);
    const [params, outliers] = (await at.call.flTaskApi.computeAggregate(task)).unwrap();
    const modelDigest = blake2AsHex(api.createType('Vec<i64>', params).toU8a(), 256);
    const encoded = api.createType('(u32, u32, H256, Vec<AccountId32>)', [task, 0, modelDigest, outliers]).toU8a();
    assert.equal(blake2AsHex(encoded, 256), adopted, `${rule}: runtime API aggregate equals the adopted one`);
    if (rule === 'credit-fedavg') {
      // Each update carries its submitter's credit at submission (above the
      // initial 600 after the accepted updates of the first test).
      for (const who of [k.bob, k.charlie, k.dave]) {
        const snapshot = (await at.query.flTask.updateCredit([task, 0], who.address)).unwrap().toNumber();
        assert.ok(snapshot > 600, `${who.address}: credit ${snapshot} at submission`);
      }
    }

    await sendAndWait(api, api.tx.flTask.cancelTask(task), k.ferdie);
    for (const r of await Promise.all(runs.map((x) => x.done))) assert.equal(r.code, 0, r.out);
  }
});

/** Rounds of a task that aggregators settled: adopted, or stopped at the target. */
function settled(rounds) {
  return rounds.filter(([, r]) => r.phase.isAdopted || r.phase.isStopped).length;
}

/** Accuracy of `simulate` (the same rounds run locally, no chain) after its last round. */
function simulated(args) {
  const out = execFileSync(CLIENT, ['simulate', '--data-dir', dataDir, ...args], { encoding: 'utf8' });
  return lastJson(out).accuracy;
}

/** Waits until `cond()` holds, polling. */
async function until(what, cond, timeoutMs = 180_000) {
  const t0 = Date.now();
  while (!(await cond())) {
    assert.ok(Date.now() - t0 < timeoutMs, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

test('a perceptron task and a poisoned task run across a node restart', async () => {
  // Task A: a small MLP, FedAvg. Task B: logistic regression, coordinate-wise
  // median, with one hospital scaling its parameters ×1000 (within the
  // task's bound of ±65 536, so it reaches the median and is flagged there).
  const mlp = lastJson(client(['publish', '--suri', '//Ferdie', '--features', '30',
    '--model', 'mlp', '--hidden', '8', '--rounds', '6', '--quorum', '3', '--round-blocks', '25',
    '--target', '0.999', '--epochs', '10', '--lr', '0.5'])).task;
  const robust = lastJson(client(['publish', '--suri', '//Ferdie', '--features', '30',
    '--rule', 'median', '--rounds', '6', '--quorum', '3', '--round-blocks', '25',
    '--target', '0.999', '--epochs', '10', '--lr', '0.5', '--max-abs', '65536'])).task;
  const credit = async (who) => (await node.api.call.reputationApi.credit(who.address)).unwrap().toNumber();
  const creditBefore = { eve: await credit(k.eve), dave: await credit(k.dave) };
  const firstBlock = (await node.api.rpc.chain.getHeader()).number.toNumber();

  const hospitals = [['//Bob', 1], ['//Charlie', 2], ['//Dave', 3], ['//Eve', 4]];
  const runs = [
    ...hospitals.map(([suri, h]) => trainer(suri, mlp, h)),
    ...hospitals.map(([suri, h]) => trainer(suri, robust, h, suri === '//Eve' ? ['--poison-scale', '1000'] : [])),
  ];

  // Restart the node in the middle of the perceptron's round 2: hold the
  // fourth hospital back once it has sent round 1, wait until the other
  // three updates of round 2 are on chain, restart, let it go on.
  const late = runs[3];
  let lateExit = null;
  late.done.then((r) => { lateExit = r; });
  await until('the fourth hospital to send round 1', () => {
    assert.equal(lateExit, null, `the fourth hospital stopped early:\n${late.output()}`);
    return /round  1: trained/.test(late.output());
  }).catch((e) => { throw new Error(`${e.message}\nits output:\n${late.output()}`); });
  late.child.kill('SIGSTOP');
  await until('three updates in round 2 of the perceptron task', async () => {
    const r = await node.api.query.flTask.rounds(mlp, 2);
    return r.isSome && r.unwrap().phase.isCollecting && r.unwrap().submitted.toNumber() === 3;
  });
  await node.restart();
  late.child.kill('SIGCONT');
  const { api } = node;
  const r2 = (await api.query.flTask.rounds(mlp, 2)).unwrap();
  assert.ok(r2.phase.isCollecting && r2.submitted.toNumber() === 3, 'round 2 survived the restart as it was');
  const results = await Promise.all(runs.map((r) => r.done));
  for (const r of results) assert.equal(r.code, 0, r.out);
  assert.ok(results.some((r) => /node unreachable/.test(r.out)), 'the clients saw the node go away');

  // Each task ran its six rounds, or stopped earlier once the median of
  // the hospitals' evaluations reached the target.
  const rounds = {};
  for (const task of [mlp, robust]) {
    const t = (await api.call.flTaskApi.task(task)).unwrap();
    assert.ok(t.status.isFinished, `task ${task}: ${t.status}`);
    rounds[task] = await api.call.flTaskApi.rounds(task);
    const n = settled(rounds[task]);
    assert.ok(n === 6 || rounds[task][n - 1][1].phase.isStopped, `task ${task}: ${n} rounds settled`);
  }
  const adoptedRobust = rounds[robust].filter(([, r]) => r.phase.isAdopted).length;

  // The perceptron learned the data.
  const a = lastJson(client(['evaluate', '--task', String(mlp), '--test', join(dataDir, 'test.csv')]));
  assert.ok(a.federated_accuracy > 0.94, `perceptron accuracy ${a.federated_accuracy}`);

  // The poisoner was flagged every round and lost credit; the median's
  // accuracy is within a point of the same rule without the poisoner.
  for (const [, r] of await api.call.flTaskApi.rounds(robust)) assert.equal(r.outliers.toNumber(), 1);
  const b = lastJson(client(['evaluate', '--task', String(robust), '--test', join(dataDir, 'test.csv')]));
  const clean = simulated(['--rule', 'median', '--rounds', String(adoptedRobust), '--epochs', '10', '--lr', '0.5']);
  console.log(`median with a ×1000 poisoner ${b.federated_accuracy}, without ${clean}; perceptron ${a.federated_accuracy}`);
  assert.ok(Math.abs(b.federated_accuracy - clean) <= 0.01, `poisoned ${b.federated_accuracy} vs clean ${clean}`);
  assert.ok(await credit(k.eve) < creditBefore.eve, 'the poisoner lost credit');
  // An honest hospital gained credit, unless earlier tasks in this session
  // already gave it the most one session may (`MaxCreditGainPerSession`).
  const daveGains = (await api.query.reputation.sessionGains(k.dave.address)).toNumber();
  const cap = api.consts.reputation.maxCreditGainPerSession.toNumber();
  assert.ok(await credit(k.dave) > creditBefore.dave || daveGains === cap,
    `an honest hospital gained credit or is at the session cap (${daveGains} of ${cap})`);
  assert.ok(await credit(k.dave) >= creditBefore.dave, 'an honest hospital lost no credit');

  // The offchain worker voted exactly once per round of each task, restart
  // included, and no fl-task transaction failed.
  const votes = new Map();
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  for (let n = firstBlock; n <= best; n++) {
    const at = await api.at(await api.rpc.chain.getBlockHash(n));
    for (const { event } of await at.query.system.events()) {
      if (api.events.flTask.AggregateSubmitted.is(event)) {
        const key = `${event.data.task}/${event.data.round}/${event.data.who}`;
        votes.set(key, (votes.get(key) ?? 0) + 1);
      }
      if (api.events.system.ExtrinsicFailed.is(event) && event.data.dispatchError.isModule) {
        const e = api.registry.findMetaError(event.data.dispatchError.asModule);
        assert.notEqual(e.section, 'flTask', `block ${n}: ${e.section}.${e.name}`);
      }
    }
  }
  for (const task of [mlp, robust]) {
    for (let round = 0; round < settled(rounds[task]); round++) {
      assert.equal(votes.get(`${task}/${round}/${k.alice.address}`), 1, `task ${task} round ${round}: one vote of the collator`);
      // The producer that does not collate holds a key in this node: its
      // node never votes with it.
      assert.equal(votes.get(`${task}/${round}/${k.aggregator.address}`), undefined, `task ${task} round ${round}: no vote of a non-collator`);
    }
  }
});

/** Store of this node's offchain worker, started once: it serves the
 * hospitals' sealed updates and the aggregates; //Alice, the collator,
 * registers it. Resolves its URL. */
let storeUrl;
async function modelStore() {
  if (!storeUrl) {
    storeUrl = await startStore(join(dataDir, 'model-store'));
    client(['aggregator-store', '--url', storeUrl]);
    client(['register-store', '--suri', '//Alice', '--url', storeUrl]);
  }
  return storeUrl;
}

/** Block hash at which each round of `task` closed, from block `first` on. */
async function closedRounds(api, task, first) {
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const closed = new Map();
  for (let n = first; n <= best; n++) {
    const hash = await api.rpc.chain.getBlockHash(n);
    for (const { event } of await (await api.at(hash)).query.system.events()) {
      if (api.events.flTask.RoundClosed.is(event) && event.data.task.eq(task)) closed.set(event.data.round.toNumber(), hash.toHex());
    }
  }
  return closed;
}

/**
 * No hospital's update of `round` can be read in clear: chain state (at
 * `at`, the block the round closed) holds only each update's digest and
 * store, and the store serves it only to a signed read of the round's
 * committee, encrypted to the reader's one-time key.
 */
async function assertUpdatesSealed(api, task, round, at, url) {
  const entries = await (await api.at(at)).query.flTask.updates.entries([task, round]);
  assert.ok(entries.length >= 2, 'updates of the round');
  for (const [key, value] of entries) {
    const update = value.unwrap ? value.unwrap() : value;
    assert.ok(update.params.isStored, 'no update parameters in chain state');
    const { digest, store: where } = update.params.asStored;
    assert.equal(Buffer.from(where.toU8a(true)).toString(), url);
    const plain = await fetch(`${url}/models/${digest.toHex()}`);
    assert.equal(plain.status, 404, 'a sealed update is not on the public paths');
    const sealedUrl = `${url}/sealed/models/${digest.toHex()}`;
    assert.equal((await fetch(sealedUrl)).status, 401, 'an unsigned read is refused');
    const participant = key.args[1];
    const read = u8aConcat(hexToU8a(at), bnToU8a(task, { bitLength: 32 }), bnToU8a(round, { bitLength: 32 }),
      participant.toU8a(), digest.toU8a(),
      // A one-time key (here secp256k1's generator).
      hexToU8a('0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798'));
    const context = compactAddLength(new TextEncoder().encode('medchain/fl-task/sealed-read/1'));
    const auth = (who) => u8aToHex(u8aConcat(read, compactAddLength(who.publicKey),
      compactAddLength(who.sign(u8aConcat(context, read)))));
    // The hospital that submitted it is not on the committee either.
    const asOwner = await fetch(sealedUrl, { headers: { 'X-Medchain-Sealed-Read': auth(keyOf(participant)) } });
    assert.equal(asOwner.status, 403, await asOwner.text());
    // The committee's member gets the manifest encrypted to its one-time
    // key (the generator: its secret is 1), and only that key opens it.
    const asAlice = await fetch(sealedUrl, { headers: { 'X-Medchain-Sealed-Read': auth(k.alice) } });
    assert.equal(asAlice.status, 200, 'a committee member reads');
    const answer = new Uint8Array(await asAlice.arrayBuffer());
    const [capsuleAt, capsuleLen] = compactFromU8a(answer);
    const capsule = answer.subarray(capsuleAt, capsuleAt + capsuleLen.toNumber());
    const rest = answer.subarray(capsuleAt + capsuleLen.toNumber());
    const [ciphertextAt, ciphertextLen] = compactFromU8a(rest);
    const ciphertext = rest.subarray(ciphertextAt, ciphertextAt + ciphertextLen.toNumber());
    const one = new Uint8Array(32);
    one[31] = 1;
    const manifest = umbral.decryptOriginal(umbral.SecretKey.fromBEBytes(one), umbral.Capsule.fromBytes(capsule), ciphertext);
    assert.equal(u8aToHex(blake2AsU8a(manifest)), digest.toHex(), 'the answer opens to the update\'s manifest');
    assert.ok(!Buffer.from(answer).includes(Buffer.from(manifest.subarray(0, 36))), 'and travels encrypted');
    const other = new Uint8Array(32);
    other[31] = 2;
    assert.throws(() => umbral.decryptOriginal(umbral.SecretKey.fromBEBytes(other), umbral.Capsule.fromBytes(capsule), ciphertext));
  }
}

/** The test key pair of an account. */
function keyOf(account) {
  return Object.values(k).find((pair) => u8aToHex(pair.publicKey) === account.toHex());
}

/** Starts `medchain-fl-client store` on a free port; resolves its URL. */
async function startStore(dir) {
  store = spawn(CLIENT, ['store', '--listen', '127.0.0.1:0', '--dir', dir, '--node', `127.0.0.1:${node.rpcPort}`]);
  let out = '';
  store.stderr.on('data', (d) => { out += d; });
  return new Promise((res, rej) => {
    store.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) res(JSON.parse(line).store);
    });
    store.on('exit', (code) => rej(new Error(`the store exited with ${code}:\n${out}`)));
  });
}

test('a model too large for the chain is trained and aggregated through model stores', async () => {
  const { api } = node;
  const url = await modelStore();
  // This node's offchain worker writes its aggregates to the store.
  assert.equal(lastJson(client(['aggregator-store', '--url', url])).aggregator_store, url);
  assert.throws(() => client(['aggregator-store', '--url', 'ftp://store']), /is not an http:\/\/ or https:\/\/ URL/);
  // Its aggregator account (the collator) registers that store on chain:
  // an aggregate names its aggregator's registered store.
  assert.equal(lastJson(client(['register-store', '--suri', '//Alice', '--url', url])).registered_store, url);
  // A store that would aim every aggregator's node at a host of a
  // participant's choosing is refused: by the client, and by the runtime.
  assert.throws(() => client(['register-store', '--suri', '//Bob', '--url', `${url}/?next=http://10.0.0.1`]),
    /does not accept/);
  await assert.rejects(sendAndWait(api, api.tx.flTask.registerStore('http://169.254.169.254/latest'), k.bob),
    /flTask\.InvalidStoreUrl/);
  // A model naming a store its submitter never registered is refused.
  const unregistered = { Stored: { digest: `0x${'11'.repeat(32)}`, params: 4, store: 'http://127.0.0.1:9' } };
  await assert.rejects(sendAndWait(api, api.tx.flTask.publishTask({
    model: { LogisticRegression: { features: 3 } }, initialModel: unregistered,
    hints: { epochs: 1, learningRate: 1n << 31n, batchSize: 0 }, targetAccuracy: 900_000, maxRounds: 1,
    minParticipants: 2, roundBlocks: 10, rule: 'FedAvg', aggregatorsRequired: 2,
    limits: { maxAbs: 1n << 40n, minSamples: 10, maxSamples: 1000, minHeldOut: 10 },
  }), k.eve), /flTask\.StoreNotRegistered/);
  // A perceptron with 2 200 hidden units: 70 401 parameters, over the
  // 65 536 the chain keeps inline.
  const tooBig = ['publish', '--suri', '//Ferdie', '--features', '30', '--model', 'mlp', '--hidden', '2200',
    '--rounds', '3', '--quorum', '3', '--round-blocks', '25', '--target', '0.999', '--epochs', '3', '--lr', '0.1'];
  assert.throws(() => client(tooBig), /more than the chain keeps inline: publish with --store URL/);
  const { task } = lastJson(client([...tooBig, '--store', url]));
  const first = (await api.rpc.chain.getHeader()).number.toNumber();
  const runs = [['//Bob', 1], ['//Charlie', 2], ['//Dave', 3]]
    .map(([suri, h]) => trainer(suri, task, h, ['--store', url]));
  for (const r of await Promise.all(runs.map((x) => x.done))) assert.equal(r.code, 0, r.out);

  const t = (await api.call.flTaskApi.task(task)).unwrap();
  assert.ok(t.status.isFinished && t.storedModels.isTrue, t.toString());
  // The final model is in the aggregator's store, by digest; not on chain.
  assert.ok((await api.call.flTaskApi.globalModel(task)).isNone);
  const [digest, params, where] = (await api.call.flTaskApi.storedModel(task)).unwrap();
  assert.equal(params.toNumber(), 70_401);
  assert.equal(Buffer.from(where.toU8a(true)).toString(), url);
  assert.equal(digest.toHex(), t.modelDigest.toHex());
  const rounds = await api.call.flTaskApi.rounds(task);
  const settledRounds = settled(rounds);
  assert.ok(settledRounds === 3 || rounds[settledRounds - 1][1].phase.isStopped, `${settledRounds} rounds settled`);
  const a = lastJson(client(['evaluate', '--task', String(task), '--test', join(dataDir, 'test.csv')]));
  assert.ok(a.federated_accuracy > 0.9, `wide perceptron accuracy ${a.federated_accuracy}`);

  // Each round, the digest the offchain worker's streaming aggregation got in
  // Wasm equals the natively computed one at the block the round closed.
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const closed = new Map();
  const adopted = new Map();
  for (let n = first; n <= best; n++) {
    const hash = await api.rpc.chain.getBlockHash(n);
    for (const { event } of await (await api.at(hash)).query.system.events()) {
      if (api.events.flTask.RoundClosed.is(event) && event.data.task.eq(task)) closed.set(event.data.round.toNumber(), hash.toHex());
      if (api.events.flTask.ModelAdopted.is(event) && event.data.task.eq(task)) adopted.set(event.data.round.toNumber(), event.data.digest.toHex());
    }
  }
  assert.equal(closed.size, settledRounds);
  assert.ok(adopted.size >= 1, 'a round was adopted');
  for (const [round, at] of closed) {
    if (!adopted.has(round)) continue; // stopped at the target: nothing adopted
    // Updates are sealed: the native run reads them as the committee's
    // member, //Alice.
    const native = lastJson(client(['aggregate', '--task', String(task), '--at', at, '--suri', '//Alice']));
    assert.equal(native.round, round);
    assert.equal(native.digest, adopted.get(round), `round ${round}: native and offchain aggregates agree`);
  }

  const [round0, at0] = [...closed.entries()].find(([round]) => adopted.has(round));
  await assertUpdatesSealed(api, task, round0, at0, url);
});
