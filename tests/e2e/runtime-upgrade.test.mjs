// A runtime upgrade enacted on a running chain the way a parachain's is
// (`system.setCode` → pending validation code → the relay's go-ahead →
// applied), and the tools across it: a record gateway and two validators'
// review services started before the upgrade keep reading, signing and
// voting after it, and the command-line tools run after it sign for the new
// runtime. The new runtime is the same code one `spec_version` later
// (`scripts/build-upgrade-runtime.sh`), compacted and compressed as shipped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { startDevNode, sendAndWait } from './lib/node.mjs';
import { consentFor } from './lib/record-index.mjs';
import { startMongo, startGateway, fetchRecord, RECORD_CLI, ROOT } from './lib/services.mjs';

const TARGET = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache/medchain/target');
const FL_CLIENT = join(TARGET, 'debug', 'medchain-fl-client');

let node;
let mongo;
let gateway;
let dir;
let blob;
let k;
/** The review services of Bob and Charlie: { who, child, votes: [...] }. */
const reviewers = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `medchain-record` against the node and the hospital's store. */
function record(args) {
  const store = args[0] === 'register-patient' ? [] : ['--mongo', mongo.url, '--store-id', 'hospital-1'];
  const r = spawnSync(RECORD_CLI, [...args, '--node', `127.0.0.1:${node.rpcPort}`, ...store], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Polls `check` every second until it returns a truthy value. */
async function until(what, check, timeoutMs = 90_000) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    // A query may fail while the client swaps to the new runtime's metadata.
    const value = await Promise.resolve().then(check).catch((e) => { last = e; return undefined; });
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await sleep(1_000);
  }
}

/** The hospital registers `patient` with its signed consent and stores a record for it. */
async function registerAndPut(patient, name) {
  const consent = u8aToHex(patient.sign(await consentFor(node.api, k.alice.address, patient.address)));
  const registered = record(['register-patient', '--patient', patient.address, '--consent', consent, '--suri', '//Alice']);
  assert.equal(registered.code, 0, registered.err);
  const file = join(dir, name);
  writeFileSync(file, randomBytes(64 * 1024));
  const put = record(['put', '--file', file, '--patient', patient.address, '--kind', 'LabResult',
    '--suri', '//Alice', '--key-out', join(dir, `${name}.key`)]);
  assert.equal(put.code, 0, put.err);
  return JSON.parse(put.out.trim().split('\n').pop()).record;
}

const status = async (id) => (await node.api.query.ehrIndex.records(id)).unwrap().status.toString();
const specVersion = async () => (await node.api.rpc.state.getRuntimeVersion()).specVersion.toNumber();

before(async () => {
  await cryptoWaitReady();
  // Built before the node starts: only the runtime crate compiles again.
  blob = await new Promise((res, rej) => execFile('bash', [join(ROOT, 'scripts/build-upgrade-runtime.sh')],
    { maxBuffer: 64 * 1024 * 1024 }, (err, out, errOut) => (err ? rej(new Error(`${err.message}\n${errOut}`))
      : res(out.trim().split('\n').pop()))));
  const keyring = new Keyring({ type: 'sr25519' });
  k = { alice: keyring.addFromUri('//Alice') };
  dir = mkdtempSync(join(tmpdir(), 'medchain-upgrade-'));
  mongo = await startMongo();
  node = await startDevNode({ name: 'runtime-upgrade' });
  gateway = await startGateway({ rpcPort: node.rpcPort, mongoUrl: mongo.url });
  for (const who of ['Bob', 'Charlie']) {
    const child = spawn(RECORD_CLI, ['verify', '--suri', `//${who}`, '--gateway', `hospital-1=${gateway.url}`,
      '--interval-s', '2', '--node', `127.0.0.1:${node.rpcPort}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    const reviewer = { who, child, votes: [] };
    let rest = '';
    child.stdout.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines.filter(Boolean)) reviewer.votes.push(JSON.parse(line));
    });
    reviewers.push(reviewer);
  }
});

after(async () => {
  for (const { child } of reviewers) child.kill('SIGTERM');
  if (gateway) gateway.stop();
  if (node) await node.stop();
  if (mongo) mongo.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('after a runtime upgrade, services started before it and tools run after it keep working', async () => {
  const { api } = node;
  const keyring = new Keyring({ type: 'sr25519' });
  // Bob and Charlie join as validator institutions (their review services
  // run since `before`).
  const validators = ['//Bob', '//Charlie'].map((uri) => keyring.addFromUri(uri));
  for (const who of validators) {
    await sendAndWait(api, api.tx.reputation.applyForMembership(`validator ${who.address.slice(0, 4)}`,
      'ResearchInstitute', { producer: false, validator: true, auditor: false }), who);
  }
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll(
    validators.map((who) => api.tx.reputation.approveInstitution(who.address)))), k.alice);

  // Before: the review services confirm a record published under the old runtime.
  const first = await registerAndPut(keyring.addFromUri('//Upgrade-Patient-1'), 'before.bin');
  await until(`record ${first} confirmed`, async () => (await status(first)) === 'Confirmed');
  const old = await specVersion();

  // The upgrade: Alice (sudo) sets the code; the chain stores it as pending
  // validation code and applies it once the relay chain (mocked by the dev
  // node) gives the go-ahead.
  const code = readFileSync(blob);
  assert.ok(code.length < 2 * 1024 * 1024, `${code.length} bytes fit the relay's code size limit`);
  const { events } = await sendAndWait(api, api.tx.sudo.sudoUncheckedWeight(
    api.tx.system.setCode(u8aToHex(code)), { refTime: 0, proofSize: 0 }), k.alice);
  const sudid = events.find(({ event }) => api.events.sudo.Sudid.is(event));
  assert.ok(sudid.event.data.sudoResult.isOk, `setCode: ${sudid.event.data.sudoResult.toString()}`);
  assert.ok(events.some(({ event }) => api.events.parachainSystem.ValidationFunctionStored.is(event)),
    'stored as pending validation code');
  await until('the new runtime', async () => (await specVersion()) === old + 1);
  // The first block the new code executes runs its upgrade hooks.
  await until('a block executed by the new runtime', async () =>
    (await api.query.system.lastRuntimeUpgrade()).unwrap().specVersion.toNumber() === old + 1);

  // After: a patient registered and a record published by tools started now
  // (signed for the new runtime), reviewed by the services started before
  // (their votes signed for it too), then read through the gateway started
  // before, which logs the read on chain.
  const patient = keyring.addFromUri('//Upgrade-Patient-2');
  const second = await registerAndPut(patient, 'after.bin');
  await until(`record ${second} confirmed`, async () => (await status(second)) === 'Confirmed');
  // Each service reports its vote once the vote is final.
  await until('both services report their votes', () =>
    reviewers.every((r) => r.votes.some((v) => v.record === second)));
  for (const reviewer of reviewers) {
    assert.ok(reviewer.votes.some((v) => v.record === second && v.vote === 'Confirm'), `${reviewer.who} voted`);
    assert.equal((await api.query.ehrIndex.votes(second, keyring.addFromUri(`//${reviewer.who}`).address))
      .unwrap().toString(), 'Confirm');
    assert.equal(reviewer.child.exitCode, null, `${reviewer.who}'s service still runs`);
  }
  const logged = (await api.query.ehrIndex.accessCount(second)).toNumber();
  const read = await fetchRecord(api, gateway.url, patient, second, { purpose: 'PatientView' });
  assert.ok(read.result, JSON.stringify(read.error));
  assert.equal((await api.query.ehrIndex.accessCount(second)).toNumber(), logged + 1, 'the read was logged');

  // The federated-learning client publishes a task and reads its id from
  // the events of the new runtime.
  const published = spawnSync(FL_CLIENT, ['publish', '--suri', '//Alice', '--features', '4', '--rounds', '1',
    '--node', `127.0.0.1:${node.rpcPort}`], { encoding: 'utf8' });
  assert.equal(published.status, 0, published.stderr);
  const { task } = JSON.parse(published.stdout.trim().split('\n').pop());
  assert.ok((await api.query.flTask.tasks(task)).isSome, `task ${task} on chain`);
  assert.equal(await specVersion(), old + 1, 'still the upgraded runtime');
});
