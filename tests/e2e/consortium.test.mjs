// A regional consortium on the production-style preset (`--chain
// medchain-local`): no sudo key; admission, a parameter change, a runtime
// upgrade and a removal each pass only with the required majorities of the
// council and the regulators, and fail with a clear error below them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { startDevNode } from './lib/node.mjs';
import {
  consortiumKeys, motion, statusOf, apply, admit, changeParameter, setConfirmations,
  confirmationsParameter, upgrade, remove, runtimeWasmPath, foundingCouncil,
} from '../../scripts/consortium.mjs';

let node;
let k;

before(async () => {
  k = await consortiumKeys();
  node = await startDevNode({ name: 'consortium', args: ['--chain', 'medchain-local'] });
});

after(async () => {
  if (node) await node.stop();
});

test('the consortium chain has no sudo key and founding bodies', async () => {
  const { api } = node;
  assert.equal((await api.query.sudo.key()).isNone, true, 'a sudo key is set');
  const council = (await api.query.council.members()).map(String).sort();
  assert.deepEqual(council, [k.alice, k.bob, k.charlie].map((p) => p.address).sort());
  const regulators = (await api.query.regulators.members()).map(String).sort();
  assert.deepEqual(regulators, [k.dave, k.eve, k.ferdie].map((p) => p.address).sort());
});

test('a hospital is admitted only by two thirds of the council and a majority of regulators', async () => {
  const { api } = node;
  await apply(api, k);
  const call = api.tx.reputation.approveInstitution(k.george.address);
  // One council member alone (a threshold-1 motion) is refused.
  assert.deepEqual(await motion(api, 'council', [k.alice], call), { ok: false, error: 'BadOrigin' });
  assert.equal(await statusOf(api, k.george.address), 'Pending');
  // Nor can a member sign the call directly.
  await assert.rejects(
    new Promise((res, rej) => call.signAndSend(k.alice, ({ dispatchError, status }) => {
      if (dispatchError) rej(new Error(dispatchError.toString()));
      else if (status.isInBlock || status.isFinalized) res();
    }).catch(rej)),
    /BadOrigin/);
  const admitted = await admit(api, k);
  assert.deepEqual(admitted.council, { ok: true });
  assert.equal(admitted.waiting, 'Pending', 'the council alone admitted');
  assert.deepEqual(admitted.regulators, { ok: true });
  assert.equal(admitted.status, 'Active');
  const council = (await api.query.council.members()).map(String);
  assert.ok(council.includes(k.george.address), 'the new hospital has no council seat');
});

test('a parameter changes only by a two-thirds council motion', async () => {
  const { api } = node;
  assert.deepEqual(await motion(api, 'council', [k.bob], setConfirmations(api, 4)),
    { ok: false, error: 'BadOrigin' });
  assert.equal(await confirmationsParameter(api), null);
  // Four members now: two are not two thirds.
  const below = await changeParameter(api, [k.alice, k.charlie], 3);
  assert.deepEqual(below.result, { ok: false, error: 'BadOrigin' });
  assert.equal(below.value, null);
  const carried = await changeParameter(api, foundingCouncil(k), 3);
  assert.deepEqual(carried.result, { ok: true });
  assert.equal(carried.value, 3);
});

test('a runtime upgrade is authorised by both bodies through the whitelist and applied', async () => {
  const { api } = node;
  const wasm = runtimeWasmPath();
  assert.ok(existsSync(wasm), `no runtime Wasm at ${wasm}`);
  const code = readFileSync(wasm);
  // The regulators cannot whitelist; the council cannot dispatch.
  const authorize = api.tx.system.authorizeUpgradeWithoutChecks('0x' + '11'.repeat(32));
  assert.deepEqual(
    await motion(api, 'regulators', [k.dave, k.eve], api.tx.whitelist.whitelistCall(authorize.method.hash)),
    { ok: false, error: 'BadOrigin' });
  assert.deepEqual(
    await motion(api, 'council', [k.alice, k.bob, k.charlie],
      api.tx.whitelist.dispatchWhitelistedCallWithPreimage(authorize)),
    { ok: false, error: 'BadOrigin' });
  const result = await upgrade(api, k, code).catch((e) => ({ error: e.message }));
  assert.equal(result.error, undefined, result.error);
  assert.equal(result.applied, true, 'the node never ran the new code');
  assert.deepEqual(result.whitelisted, { ok: true });
  assert.deepEqual(result.dispatched, { ok: true });
});

test('a removal needs the regulators as well as the council', async () => {
  const { api } = node;
  // One regulator's motion is refused and records nothing.
  assert.deepEqual(
    await motion(api, 'regulators', [k.dave], api.tx.reputation.removeInstitution(k.george.address)),
    { ok: false, error: 'BadOrigin' });
  assert.equal((await api.query.reputation.pendingDecisions.entries(k.george.address)).length, 0);
  const removed = await remove(api, k);
  assert.deepEqual(removed.council, { ok: true });
  assert.equal(removed.waiting, 'Active', 'the council alone removed');
  assert.deepEqual(removed.regulators, { ok: true });
  assert.equal(removed.status, null);
  const council = (await api.query.council.members()).map(String);
  assert.ok(!council.includes(k.george.address));
});
