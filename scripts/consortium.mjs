// A regional consortium at work, on a node started with the production-style
// preset (`medchain-node --dev --chain medchain-local`: no sudo key; council
// Alice, Bob, Charlie; regulators Dave, Eve, Ferdie):
//
//   1. a new hospital applies;
//   2. the council votes it in (two thirds) and the regulators approve
//      (a majority): it is admitted and takes a council seat;
//   3. a parameter (record confirmations) changes by council motion;
//   4. a runtime upgrade is whitelisted by the council, dispatched by the
//      regulators and applied by anyone;
//   5. the hospital is removed: the council's motion waits for the
//      regulators'.
//
// Every step is a pallet-collective motion, visible in polkadot.js Apps'
// Council and Motions pages. Run it against a node:
//   node scripts/consortium.mjs [ws://127.0.0.1:9944] [runtime.wasm]
// tests/e2e/consortium.test.mjs imports the same steps.
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, blake2AsHex } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { sendAndWait } from '../tests/e2e/lib/node.mjs';

/** The founding members of the `medchain_local` preset and a newcomer. */
export async function consortiumKeys() {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  const k = {};
  for (const name of ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie']) {
    k[name.toLowerCase()] = keyring.addFromUri(`//${name}`);
  }
  k.george = keyring.addFromUri('//George//hospital');
  return k;
}

/** The runtime Wasm the node was built with. */
export function runtimeWasmPath() {
  const target = process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/medchain/target');
  return join(target, 'debug/wbuild/medchain-runtime/medchain_runtime.wasm');
}

/** The magic prefix of a zstd-compressed runtime (`sp-maybe-compressed-blob`). */
const ZSTD_PREFIX = Uint8Array.from([82, 188, 83, 118, 70, 219, 142, 5]);

/**
 * `wasm`, compressed as the chain expects a runtime (a debug build's Wasm is
 * larger than a block): the zstd stream behind the magic prefix. Uses the
 * `zstd` program (scripts/setup.sh installs it).
 */
export function compressRuntime(wasm) {
  if (ZSTD_PREFIX.every((b, i) => wasm[i] === b)) return wasm;
  const out = spawnSync('zstd', ['-10', '-q', '-c'], { input: wasm, maxBuffer: 64 << 20 });
  if (out.status !== 0) throw new Error(`zstd failed: ${out.stderr}`);
  return Buffer.concat([Buffer.from(ZSTD_PREFIX), out.stdout]);
}

/** The `Executed` result of a motion in `events`, or null if none ran. */
function executed(api, body, events) {
  const ev = events.find(({ event }) => api.events[body].Executed.is(event));
  if (!ev) return null;
  const result = ev.event.data.result;
  if (result.isOk) return { ok: true };
  const err = result.asErr;
  if (err.isModule) {
    const d = api.registry.findMetaError(err.asModule);
    return { ok: false, error: `${d.section}.${d.name}` };
  }
  return { ok: false, error: err.toString() };
}

/**
 * Carries `call` as a motion of `body` ('council' or 'regulators'): the first
 * of `ayes` proposes it with a threshold of `ayes.length`, all of them vote
 * aye, and the motion is closed. Returns { ok, error } of the dispatched call,
 * or null if it did not run. A threshold of one dispatches at once, as one
 * member's vote.
 */
export async function motion(api, body, ayes, call) {
  const len = call.method.encodedLength;
  const hash = call.method.hash.toHex();
  // A finished motion of the same call must give its deposit back first.
  await releaseDeposit(api, body, hash, ayes[0]);
  const index = (await api.query[body].proposalCount()).toNumber();
  const proposed = await sendAndWait(api, api.tx[body].propose(ayes.length, call, len), ayes[0]);
  if (ayes.length < 2) return executed(api, body, proposed.events);
  await Promise.all(ayes.map((k) => sendAndWait(api, api.tx[body].vote(hash, index, true), k)));
  const { weight } = await api.call.transactionPaymentCallApi.queryCallInfo(call.method, len);
  const closed = await sendAndWait(api, api.tx[body].close(hash, index, weight, len), ayes[0]);
  await releaseDeposit(api, body, hash, ayes[0]);
  return executed(api, body, closed.events);
}

/**
 * Returns the deposit of a finished motion (by proposal hash) to whoever
 * proposed it; anyone may ask. The runtime refuses to open a motion of the
 * same call while a finished one's deposit is still on record.
 */
export async function releaseDeposit(api, body, hash, signer) {
  const [cost, open] = await Promise.all([api.query[body].costOf(hash), api.query[body].proposalOf(hash)]);
  if (cost.isSome && open.isNone) await sendAndWait(api, api.tx[body].releaseProposalCost(hash), signer);
}

/** The status of `who` in the registry, or null. */
export async function statusOf(api, who) {
  const inst = await api.query.reputation.institutions(who);
  return inst.isSome ? inst.unwrap().status.toString() : null;
}

/** Step 1: the newcomer funds itself from Ferdie and applies. */
export async function apply(api, k) {
  await sendAndWait(api, api.tx.balances.transferKeepAlive(k.george.address, 1_000n * 10n ** 12n), k.ferdie);
  await sendAndWait(api, api.tx.reputation.applyForMembership(
    'George Regional Hospital', { Hospital: { level: 2, grade: 'B' } },
    { producer: true, validator: true, auditor: false }), k.george);
}

/** Step 2: the council and then the regulators admit the newcomer. */
export async function admit(api, k) {
  const call = api.tx.reputation.approveInstitution(k.george.address);
  const council = await motion(api, 'council', [k.alice, k.bob], call);
  const waiting = await statusOf(api, k.george.address);
  const regulators = await motion(api, 'regulators', [k.dave, k.eve], call);
  return { council, waiting, regulators, status: await statusOf(api, k.george.address) };
}

/** The `parameters.setParameter` call for record confirmations. */
export function setConfirmations(api, n) {
  return api.tx.parameters.setParameter({ EhrIndex: { ConfirmationsRequired: [null, n] } });
}

/** The stored value of the record-confirmations parameter, or null. */
export async function confirmationsParameter(api) {
  const v = await api.query.parameters.parameters({ EhrIndex: { ConfirmationsRequired: null } });
  return v.isSome ? Number(v.unwrap().toJSON().ehrIndex.confirmationsRequired) : null;
}

/** Step 3: `ayes` of the council set record confirmations to `n`. */
export async function changeParameter(api, ayes, n) {
  const result = await motion(api, 'council', ayes, setConfirmations(api, n));
  return { result, value: await confirmationsParameter(api) };
}

/** Three founding hospitals: two thirds of a council of up to four. */
export function foundingCouncil(k) {
  return [k.alice, k.bob, k.charlie];
}

/**
 * Step 4: the council whitelists `system.authorizeUpgradeWithoutChecks`, the
 * regulators dispatch it, anyone applies the code; resolves once the node
 * runs the new code (`system.CodeUpdated`).
 */
export async function upgrade(api, k, wasm) {
  const code = compressRuntime(wasm);
  const codeHash = blake2AsHex(code, 256);
  const authorize = api.tx.system.authorizeUpgradeWithoutChecks(codeHash);
  const whitelisted = await motion(api, 'council', foundingCouncil(k),
    api.tx.whitelist.whitelistCall(authorize.method.hash));
  const dispatched = await motion(api, 'regulators', [k.eve, k.ferdie],
    api.tx.whitelist.dispatchWhitelistedCallWithPreimage(authorize));
  const updated = new Promise((res) => {
    const unsub = api.query.system.events((events) => {
      if (events.some(({ event }) => api.events.system.CodeUpdated.is(event))) {
        unsub.then((u) => u());
        res(true);
      }
    });
  });
  await sendAndWait(api, api.tx.system.applyAuthorizedUpgrade(u8aToHex(code)), k.ferdie);
  const applied = await Promise.race([updated, new Promise((res) => setTimeout(() => res(false), 60_000))]);
  return { whitelisted, dispatched, applied, codeHash };
}

/** Step 5: the council and then the regulators remove the newcomer. */
export async function remove(api, k) {
  const call = api.tx.reputation.removeInstitution(k.george.address);
  const council = await motion(api, 'council', foundingCouncil(k), call);
  const waiting = await statusOf(api, k.george.address);
  const regulators = await motion(api, 'regulators', [k.dave, k.ferdie], call);
  return { council, waiting, regulators, status: await statusOf(api, k.george.address) };
}

async function main() {
  const url = process.argv[2] ?? 'ws://127.0.0.1:9944';
  const wasm = process.argv[3] ?? runtimeWasmPath();
  const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
  const k = await consortiumKeys();
  const say = (step, value) => console.log(`[consortium] ${step}: ${JSON.stringify(value)}`);
  if ((await api.query.sudo.key()).isSome) console.warn('[consortium] this chain has a sudo key: not a consortium preset');
  await apply(api, k);
  say('applied', await statusOf(api, k.george.address));
  say('admitted', await admit(api, k));
  say('confirmations', await changeParameter(api, foundingCouncil(k), 3));
  if (existsSync(wasm)) say('upgrade', await upgrade(api, k, readFileSync(wasm)));
  else say('upgrade', `skipped: no runtime at ${wasm}`);
  say('removed', await remove(api, k));
  await api.disconnect();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => { console.error(e); process.exit(1); });
}
