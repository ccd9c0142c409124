// Medchain patient portal: the patient's own page. Connects to a Medchain
// node, signs with the browser wallet (@polkadot/extension-dapp), keeps the
// patient's Umbral key in this browser, and lets the patient grant, limit in
// time and revoke access to their records, and see who accessed what.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { web3Accounts, web3Enable, web3FromAddress } from '@polkadot/extension-dapp';
import * as umbral from '@nucypher/umbral-pre/pkg-bundler/umbral_pre_wasm_bg.js';
import { makePre } from '../lib/pre.mjs';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const RPC = params.get('rpc') || 'ws://127.0.0.1:9944';
const KINDS = ['Diagnosis', 'LabResult', 'Imaging', 'Prescription', 'DischargeSummary', 'NursingCare',
  'Billing', 'Wearable', 'Other'];

let api;
let pre;
let account = null;

function status(text, error = false) {
  const s = $('status');
  s.textContent = text;
  s.className = error ? 'error' : '';
}

const short = (a) => `${a.slice(0, 6)}…${a.slice(-6)}`;
const scopeText = (scope) => (scope.isRecord ? `record ${scope.asRecord.toString()}`
  : scope.isKind ? `every ${scope.asKind.toString()}` : 'all records');
const storedKeys = () => JSON.parse(localStorage.getItem(`medchain-umbral:${account}`) || 'null');

/** Loads the Umbral Wasm module served beside the page. */
async function loadUmbral() {
  const bytes = await (await fetch('umbral_pre_wasm_bg.wasm')).arrayBuffer();
  const { instance } = await WebAssembly.instantiate(bytes, { './umbral_pre_wasm_bg.js': umbral });
  umbral.__wbg_set_wasm(instance.exports);
  return umbral;
}

/** Signs `tx` with the wallet and resolves once it is in a block. */
async function signAndWait(tx, what) {
  const { signer } = await web3FromAddress(account);
  status(`${what}: waiting for your wallet…`);
  return new Promise((resolve, reject) => {
    tx.signAndSend(account, { signer }, ({ status: s, events, dispatchError }) => {
      if (dispatchError) {
        const msg = dispatchError.isModule
          ? (({ section, name, docs }) => `${section}.${name}: ${docs.join(' ')}`)(api.registry.findMetaError(dispatchError.asModule))
          : dispatchError.toString();
        reject(new Error(msg));
      } else if (s.isInBlock || s.isFinalized) {
        resolve(events);
      }
    }).catch(reject);
  }).then((events) => { status(`${what}: done`); return events; },
    (e) => { status(`${what} refused: ${e.message}`, true); throw e; });
}

async function connectWallet() {
  const extensions = await web3Enable('Medchain patient portal');
  if (extensions.length === 0) {
    status('No browser wallet found: install one (for example the polkadot.js extension) and reload.', true);
    return;
  }
  const accounts = await web3Accounts();
  const select = $('account');
  select.innerHTML = '';
  for (const a of accounts) {
    const o = document.createElement('option');
    o.value = a.address;
    o.textContent = `${a.meta.name || 'account'} (${short(a.address)})`;
    select.append(o);
  }
  select.disabled = accounts.length === 0;
  if (accounts.length) await chooseAccount(accounts[0].address);
}

async function chooseAccount(address) {
  account = address;
  for (const id of ['generate', 'export', 'import', 'register', 'grant']) $(id).disabled = false;
  status(`Signed in as ${short(address)}`);
  await refresh();
}

async function refresh() {
  if (!account) return;
  await Promise.all([showKeys(), showRecords(), showProxies(), showGrants(), showLog()]);
}

async function showKeys() {
  const local = storedKeys();
  const onChain = (await api.query.proxyReencrypt.keys(account)).unwrapOr(null);
  let text = local ? `Key in this browser: ${local.publicKey.slice(0, 18)}…` : 'No key in this browser.';
  if (onChain) {
    const same = local && onChain.publicKey.toHex() === local.publicKey;
    text += same ? ' Registered on chain.' : ' A different key is registered on chain: import it.';
  } else text += ' Not on chain yet: register it.';
  $('key-state').textContent = text;
  $('register').disabled = !local || !!onChain;
  $('generate').disabled = !!local;
  $('export').disabled = !local;
}

async function showRecords() {
  const rows = await api.call.ehrIndexApi.recordsOfPatient(account, null, 100);
  const body = $('records').tBodies[0];
  body.innerHTML = '';
  for (const [id, r] of rows) {
    const capsule = await api.query.proxyReencrypt.capsules(id);
    const tr = body.insertRow();
    tr.dataset.record = id.toString();
    for (const v of [id.toString(), r.kind.toString(), short(r.issuer.toString()), r.status.toString(),
      capsule.isSome ? 'yes' : 'no (no key capsule)']) tr.insertCell().textContent = v;
  }
}

async function showProxies() {
  const entries = await api.query.proxyReencrypt.proxies.entries();
  const box = $('proxies');
  box.querySelectorAll('label').forEach((l) => l.remove());
  for (const [key, pk] of entries) {
    const who = key.args[0].toString();
    const label = document.createElement('label');
    label.innerHTML = `<input type="checkbox" checked data-account="${who}" data-key="${pk.toHex()}"> ${short(who)}`;
    box.append(label);
  }
}

/**
 * A grant's state for the patient: usable only once `threshold` proxies
 * acknowledged it (they opened and verified their key fragment), never if
 * one disputed it (its fragment did not open: grant again).
 */
function grantState(g, expires, best) {
  if (expires !== null && best >= expires) return 'expired';
  if (g.disputedBy.isSome) return `disputed by proxy ${short(g.disputedBy.unwrap().toString())}: grant again`;
  const acks = g.acknowledged.length;
  const threshold = g.threshold.toNumber();
  return acks >= threshold ? 'live' : `awaiting proxies (${acks} of ${threshold} acknowledged)`;
}

async function showGrants() {
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const grants = await api.call.proxyReencryptApi.patientGrants(account);
  const body = $('grants').tBodies[0];
  body.innerHTML = '';
  for (const [id, g] of grants) {
    const expires = g.expiresAt.isSome ? g.expiresAt.unwrap().toNumber() : null;
    const tr = body.insertRow();
    tr.dataset.grant = id.toString();
    for (const v of [id.toString(), short(g.grantee.toString()), scopeText(g.scope), g.purpose.toString(),
      expires === null ? 'never' : `block ${expires}`, grantState(g, expires, best)]) tr.insertCell().textContent = v;
    const b = document.createElement('button');
    b.textContent = 'Revoke';
    b.dataset.revoke = id.toString();
    b.onclick = () => signAndWait(api.tx.proxyReencrypt.revokeGrant(id), `Revoking grant ${id}`).then(refresh, () => {});
    tr.insertCell().append(b);
  }
}

async function showLog() {
  const rows = await api.call.ehrIndexApi.recordsOfPatient(account, null, 100);
  const body = $('log').tBodies[0];
  body.innerHTML = '';
  for (const [id] of rows) {
    for (const [rid, req] of await api.call.proxyReencryptApi.accessLog(id)) {
      const at = req.requestedAt.toNumber();
      const hash = await api.rpc.chain.getBlockHash(at);
      const time = new Date((await api.query.timestamp.now.at(hash)).toNumber()).toISOString();
      const outcome = req.emergency.isSome
        ? `emergency (${req.emergency.unwrap().reason.toString()}), ${req.status.toString()}`
        : req.status.toString();
      const tr = body.insertRow();
      for (const v of [id.toString(), rid.toString(), short(req.requester.toString()), String(at), time, outcome]) {
        tr.insertCell().textContent = v;
      }
    }
  }
}

async function grant(e) {
  e.preventDefault();
  const keys = storedKeys();
  if (!keys) return status('Generate or import your key first.', true);
  const grantee = $('grantee').value.trim();
  const granteeKeys = (await api.query.proxyReencrypt.keys(grantee)).unwrapOr(null);
  if (!granteeKeys) return status('The grantee has no registered key: they must register one first.', true);
  const proxies = [...$('proxies').querySelectorAll('input:checked')]
    .map((i) => ({ account: i.dataset.account, publicKey: i.dataset.key }));
  const threshold = Number($('threshold').value);
  if (proxies.length === 0 || threshold < 1 || threshold > proxies.length) {
    return status(`Choose at least ${threshold} proxies.`, true);
  }
  const kind = $('scope').value;
  const value = $('scope-value').value.trim();
  if (kind === 'Kind' && !KINDS.includes(value)) return status(`Kind must be one of ${KINDS.join(', ')}.`, true);
  const scope = kind === 'All' ? 'All' : kind === 'Kind' ? { Kind: value } : { Record: Number(value) };
  const blocks = Number($('expires').value);
  const expiresAt = blocks > 0 ? (await api.rpc.chain.getHeader()).number.toNumber() + blocks : null;
  const fragments = pre.sealedFragments(keys, granteeKeys.publicKey.toHex(), proxies, threshold);
  const events = await signAndWait(api.tx.proxyReencrypt.grantAccess(
    grantee, scope, $('purpose').value, expiresAt, threshold, fragments, false), 'Granting access').catch(() => null);
  const ev = events?.find(({ event }) => api.events.proxyReencrypt.AccessGranted.is(event));
  if (ev) status(`Granted: grant ${ev.event.data.grant.toString()}`);
  await refresh();
}

function exportKey() {
  const blob = new Blob([JSON.stringify(storedKeys(), null, 2)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `medchain-umbral-${account}.json`;
  a.click();
}

async function importKey(file) {
  try {
    const keys = pre.importKeys(JSON.parse(await file.text()));
    localStorage.setItem(`medchain-umbral:${account}`, JSON.stringify(keys));
    status('Key imported.');
  } catch (e) {
    status(`Not a Medchain key file: ${e.message}`, true);
  }
  await showKeys();
}

async function main() {
  pre = makePre(await loadUmbral());
  api = await ApiPromise.create({ provider: new WsProvider(RPC), noInitWarn: true });
  status(`Connected to ${RPC}. Connect your wallet.`);
  $('connect').onclick = () => connectWallet().catch((e) => status(e.message, true));
  $('account').onchange = (e) => chooseAccount(e.target.value);
  $('generate').onclick = async () => {
    localStorage.setItem(`medchain-umbral:${account}`, JSON.stringify(pre.newKeys()));
    status('Key generated in this browser. Export it to keep a copy.');
    await showKeys();
  };
  $('register').onclick = async () => {
    const k = storedKeys();
    await signAndWait(api.tx.proxyReencrypt.registerKey(k.publicKey, k.verifyingKey), 'Registering key').catch(() => {});
    await showKeys();
  };
  $('export').onclick = exportKey;
  $('import').onchange = (e) => e.target.files[0] && importKey(e.target.files[0]);
  $('grant-form').onsubmit = (e) => grant(e).catch((err) => status(err.message, true));
  api.rpc.chain.subscribeNewHeads(() => { if (account) showGrants().catch(() => {}); });
  window.medchainPortal = { refresh };
}

main().catch((e) => status(`Cannot start: ${e.message}`, true));
