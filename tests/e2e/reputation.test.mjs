// Consortium registry and credit-weighted DPoS on a real dev node:
// two institutions apply, sudo approves them, a token holder delegates, and
// credit is read back through the runtime API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, xxhashAsHex } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevNode, sendAndWait } from './lib/node.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

let node;
let k;

before(async () => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  k = {
    alice: keyring.addFromUri('//Alice'),
    charlie: keyring.addFromUri('//Charlie'),
    dave: keyring.addFromUri('//Dave'),
    eve: keyring.addFromUri('//Eve'),
    ferdie: keyring.addFromUri('//Ferdie'),
  };
  node = await startDevNode({ name: 'reputation' });
});

after(async () => {
  if (node) await node.stop();
});

test('institutions apply, are approved, and get the initial credit', async () => {
  const { api } = node;
  await sendAndWait(api, api.tx.reputation.applyForMembership(
    'Regional Hospital', { Hospital: { level: 3, grade: 'A' } },
    { producer: true, validator: true, auditor: false }), k.charlie);
  await sendAndWait(api, api.tx.reputation.applyForMembership(
    'Health Regulator', 'Regulator',
    { producer: false, validator: false, auditor: true }), k.dave);

  const pending = await api.call.reputationApi.institution(k.charlie.address);
  assert.equal(pending.unwrap().status.toString(), 'Pending');
  assert.ok((await api.call.reputationApi.credit(k.charlie.address)).isNone);

  const { events } = await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll([
    api.tx.reputation.approveInstitution(k.charlie.address),
    api.tx.reputation.approveInstitution(k.dave.address),
  ])), k.alice);
  const approved = events.filter(({ event }) => api.events.reputation.InstitutionApproved.is(event));
  assert.equal(approved.length, 2);

  const credit = await api.call.reputationApi.credit(k.charlie.address);
  assert.equal(credit.unwrap().toNumber(), 600);
  const summary = (await api.call.reputationApi.institution(k.dave.address)).unwrap();
  assert.equal(summary.status.toString(), 'Active');
  assert.equal(summary.roles.auditor.isTrue, true);
});

test('an auditor penalises with a reason and the ranking reflects it', async () => {
  const { api } = node;
  const { events } = await sendAndWait(api,
    api.tx.reputation.penalise(k.charlie.address, 25, 'late confirmation'), k.dave);
  const changed = events.find(({ event }) => api.events.reputation.CreditChanged.is(event));
  assert.ok(changed);
  // CreditChanged { who, old, new, reason }
  assert.equal(changed.event.data[1].toNumber(), 600);
  assert.equal(changed.event.data[2].toNumber(), 575);
  assert.equal((await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber(), 575);
  const ranking = await api.call.reputationApi.ranking();
  const who = ranking.map((r) => r.who.toString());
  assert.ok(who.indexOf(k.dave.address) < who.indexOf(k.charlie.address));
});

test('a producer with session keys becomes a candidate and receives a delegation', async () => {
  const { api } = node;
  // The node generates session keys and proves they belong to Charlie.
  const owner = u8aToHex(k.charlie.publicKey);
  const generated = await api._rpcCore.provider.send('author_rotateKeysWithOwner', [owner]);
  await sendAndWait(api, api.tx.session.setKeys(generated.keys, generated.proof), k.charlie);
  const bond = 1000n * 10n ** 12n;
  await sendAndWait(api, api.tx.reputation.registerAsCandidate(bond), k.charlie);
  const amount = 250n * 10n ** 12n;
  const { events } = await sendAndWait(api, api.tx.reputation.delegate(k.charlie.address, amount), k.eve);
  assert.ok(events.some(({ event }) => api.events.reputation.Delegated.is(event)));
  const info = (await api.query.reputation.candidates(k.charlie.address)).unwrap();
  assert.equal(info.delegated.toBigInt(), amount);
  const row = (await api.call.reputationApi.ranking()).find((r) => r.who.toString() === k.charlie.address);
  assert.equal(row.stake.toBigInt(), bond + amount);
  // 575 / 1000 of the stake.
  assert.equal(row.effectiveStake.toBigInt(), (bond + amount) * 575n / 1000n);
  // Refused: a new delegation below the minimum changes nothing.
  await assert.rejects(
    sendAndWait(api, api.tx.reputation.delegate(k.charlie.address, 1n), k.ferdie),
    /reputation\.DelegationTooLow/);
  const after = (await api.query.reputation.candidates(k.charlie.address)).unwrap();
  assert.equal(after.delegated.toBigInt(), amount);
});

test('credit cannot be farmed with a self-published task in one batch', async () => {
  const { api } = node;
  // Charlie, a producer, publishes a task only it would take part in and
  // aggregate, joins it, and would submit update and aggregate in the same
  // batch: the runtime's quorum floors refuse the task, nothing changes.
  const before = (await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber();
  const nextTask = (await api.query.flTask.nextTaskId()).toNumber();
  const spec = {
    model: { LogisticRegression: { features: 2 } },
    initialModel: { Inline: [0, 0, 0] },
    hints: { epochs: 1, learningRate: 1 << 16, batchSize: 8 },
    targetAccuracy: 900_000,
    maxRounds: 10,
    minParticipants: 1,
    roundBlocks: 5,
    rule: 'FedAvg',
    aggregatorsRequired: 1,
    limits: { maxAbs: 1024 * (1 << 24), minSamples: 10, maxSamples: 100_000, minHeldOut: 10 },
  };
  await assert.rejects(
    sendAndWait(api, api.tx.utility.batchAll([
      api.tx.flTask.publishTask(spec),
      api.tx.flTask.joinTask(nextTask),
    ]), k.charlie),
    /flTask\.QuorumTooSmall/);
  // Quorum 2 passes the first floor, one aggregator fails the second.
  await assert.rejects(
    sendAndWait(api, api.tx.flTask.publishTask({ ...spec, minParticipants: 2 }), k.charlie),
    /flTask\.TooFewAggregators/);
  assert.equal((await api.query.flTask.nextTaskId()).toNumber(), nextTask);
  const after = (await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber();
  assert.ok(after <= before, `credit ${before} -> ${after}`);
});

/**
 * Follows new blocks until `sessions` more sessions have started, collecting
 * each block's events and the session's validators.
 */
async function followSessions(api, sessions, timeoutMs = 120_000) {
  const start = (await api.query.session.currentIndex()).toNumber();
  const seen = [];
  return new Promise((res, rej) => {
    const t = setTimeout(() => { unsub.then((u) => u()); rej(new Error(`${sessions} sessions not seen in ${timeoutMs} ms`)); }, timeoutMs);
    let busy = Promise.resolve();
    const unsub = api.rpc.chain.subscribeNewHeads((h) => {
      busy = busy.then(async () => {
        const at = await api.at(h.hash);
        const [events, index, validators] = await Promise.all([
          at.query.system.events(), at.query.session.currentIndex(), at.query.session.validators()]);
        seen.push({ number: h.number.toNumber(), events, index: index.toNumber(),
          validators: validators.map((v) => v.toString()) });
        if (index.toNumber() >= start + sessions) {
          clearTimeout(t);
          unsub.then((u) => u());
          res(seen);
        }
      }).catch((e) => { clearTimeout(t); rej(e); });
    });
  });
}

test('a newly elected collator keeps its credit over real session changes', async () => {
  const { api } = node;
  // Sessions of 4 blocks: the runtime's `SessionPeriod` storage parameter.
  const key = xxhashAsHex(':SessionPeriod:', 128);
  // The SCALE (little-endian) bytes: `toHex()` of a u32 would be big-endian.
  const value = u8aToHex(api.createType('u32', 4).toU8a());
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.system.setStorage([[key, value]])), k.alice);
  const before = (await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber();

  // Charlie (a candidate with session keys, earlier test) is elected, joins
  // the set one session later, authors its slots, and is scored on them.
  const seen = await followSessions(api, 4);
  const last = seen[seen.length - 1];
  assert.deepEqual(last.validators.sort(), [k.alice.address, k.charlie.address].sort());

  const settled = seen.flatMap(({ events }) => events
    .filter(({ event }) => api.events.reputation.AuthorshipSettled.is(event))
    .map(({ event }) => event.data.collators.toNumber()));
  assert.ok(settled.includes(2), `a session with both collators was settled: ${settled}`);

  const charlieChanges = seen.flatMap(({ events }) => events
    .filter(({ event }) => api.events.reputation.CreditChanged.is(event) &&
      event.data.who.toString() === k.charlie.address)
    .map(({ event }) => event.data.reason.toJSON()));
  assert.ok(charlieChanges.some((r) => JSON.stringify(r).toLowerCase().includes('blockauthored')),
    `Charlie was credited for authoring: ${JSON.stringify(charlieChanges)}`);
  assert.ok(!charlieChanges.some((r) => JSON.stringify(r).toLowerCase().includes('blockmissed')),
    `Charlie was never scored as missing blocks: ${JSON.stringify(charlieChanges)}`);
  const after = (await api.call.reputationApi.credit(k.charlie.address)).unwrap().toNumber();
  assert.ok(after > before, `credit ${before} -> ${after}`);
  assert.ok((await api.query.reputation.candidates(k.charlie.address)).isSome);
});

test('the institution CLI applies, approves by sudo, sets roles and refuses unknown options', async () => {
  // Asynchronous: the node's log pipes are drained by this process while the
  // CLI runs.
  const cli = (...args) => new Promise((res) => {
    execFile(process.execPath,
      [join(ROOT, 'scripts/institution.mjs'), ...args, '--rpc', `ws://127.0.0.1:${node.rpcPort}`],
      { encoding: 'utf8', timeout: 120_000 },
      (error, stdout, stderr) => res({ status: error ? error.code : 0, stdout, stderr }));
  });
  const json = (r) => {
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  };
  const applied = json(await cli('apply', '--suri', '//Bob', '--name', 'Bob Hospital', '--kind', 'hospital',
    '--roles', 'validator'));
  assert.equal(applied.status, 'Pending');
  const approved = json(await cli('approve', '--who', '//Bob'));
  assert.deepEqual(approved.sudo, { ok: true });
  assert.equal(approved.status, 'Active');
  // Approving twice is refused with the pallet's error, not hidden.
  assert.deepEqual(json(await cli('approve', '--who', '//Bob')).sudo,
    { ok: false, error: 'reputation.AlreadyActive' });
  assert.deepEqual(json(await cli('set-roles', '--who', '//Bob', '--roles', 'validator,auditor')).sudo, { ok: true });
  const status = json(await cli('status', '--who', '//Bob'));
  assert.equal(status.status, 'Active');
  assert.deepEqual(status.roles, { producer: false, validator: true, auditor: true });
  assert.ok(status.credit > 0, 'an approved institution has credit');
  // A typo in an option is an error, not silently ignored.
  const typo = await cli('status', '--whom', '//Bob');
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /Unknown option '--whom'/);
});
