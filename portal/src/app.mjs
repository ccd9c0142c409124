// Medchain patient portal: the patient's own page. Connects to a Medchain
// node of the chain it is pinned to (config.json's genesis hash), signs with
// the browser wallet (@polkadot/extension-dapp) after handing it the chain's
// metadata, keeps the patient's Umbral key in this browser sealed under a
// passphrase, and lets the patient grant, limit in time and revoke access to
// their records, and see who accessed what.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { web3Accounts, web3Enable, web3FromAddress } from '@polkadot/extension-dapp';
import { merkleizeMetadata } from '@polkadot-api/merkleize-metadata';
import { base64Encode, decodeAddress } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import * as umbral from '@nucypher/umbral-pre/pkg-bundler/umbral_pre_wasm_bg.js';
import { makePre } from '../lib/pre.mjs';
import * as vault from '../lib/vault.mjs';
import { consentMessage } from '../lib/consent.mjs';
import { KINDS, RECORD_KEY_LOW, grantLabel, scopeKeyCalls, scopeKeyState } from '../lib/scope.mjs';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
/** Token symbol and decimals the runtime's metadata hash covers (`enable_metadata_hash("MED", 12)`). */
const METADATA_HASH_TOKEN = { tokenSymbol: 'MED', decimals: 12 };

let api;
let pre;
let account = null;
/** Every account of the wallet: the patient's pseudonyms, one per hospital. */
let walletAccounts = [];
/** What the portal is pinned to: { rpc, genesisHash }. */
let config;
/** The runtime's metadata hash (RFC 78), signed over with `CheckMetadataHash` mode 1. */
let metadataHash;
/** The chain's metadata as a wallet takes it (`metadata.provide`). */
let metadataDef;
/** The patient's keys once opened with the passphrase (this page's memory only). */
let unlocked = null;

function status(text, error = false) {
  const s = $('status');
  s.textContent = text;
  s.className = error ? 'error' : '';
}

const short = (a) => `${a.slice(0, 6)}…${a.slice(-6)}`;
const scopeText = (scope) => (scope.isRecord ? `record ${scope.asRecord.toString()}`
  : scope.isKind ? `every ${scope.asKind.toString()}` : 'all records');
/** What this browser stores for the account: a sealed envelope (public parts readable). */
const storedEnvelope = () => JSON.parse(localStorage.getItem(`medchain-umbral:${account}`) || 'null');

/** The patient's keys, opened with the passphrase typed in the page. */
async function openKeys() {
  if (unlocked) return unlocked;
  const envelope = storedEnvelope();
  if (!envelope) return null;
  unlocked = await vault.open(envelope, $('passphrase').value);
  return unlocked;
}

/** Loads the Umbral Wasm module served beside the page. */
async function loadUmbral() {
  const bytes = await (await fetch('umbral_pre_wasm_bg.wasm')).arrayBuffer();
  const { instance } = await WebAssembly.instantiate(bytes, { './umbral_pre_wasm_bg.js': umbral });
  umbral.__wbg_set_wasm(instance.exports);
  return umbral;
}

/**
 * Signs `tx` with the wallet and resolves once it is in a block. The
 * signature covers the runtime's metadata hash (`CheckMetadataHash` mode 1),
 * so a wallet that shows the call decoded from the metadata it was given
 * (or a Ledger's generic app) signs exactly what it showed.
 */
async function signAndWait(tx, what) {
  const { signer } = await web3FromAddress(account);
  status(`${what}: waiting for your wallet…`);
  return new Promise((resolve, reject) => {
    tx.signAndSend(account, { signer, mode: 1, metadataHash, withSignedTransaction: true },
      ({ status: s, events, dispatchError }) => {
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
  walletAccounts = accounts;
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
  unlocked = null;
  for (const id of ['generate', 'export', 'import', 'register', 'grant', 'consent-sign', 'consent-void', 'show-all']) {
    $(id).disabled = false;
  }
  await provideMetadata(address);
  status(`Signed in as ${short(address)}`);
  await refresh();
}

/**
 * Hands the wallet this chain's metadata unless it has it for this runtime
 * version, so it shows calls (a grant above all) decoded, not as bytes.
 */
async function provideMetadata(address) {
  const injected = await web3FromAddress(address);
  if (!injected.metadata) return;
  const known = await injected.metadata.get();
  if (known.some((m) => m.genesisHash === metadataDef.genesisHash && m.specVersion === metadataDef.specVersion)) return;
  await injected.metadata.provide(metadataDef);
}

async function refresh() {
  if (!account) return;
  await Promise.all([showKeys(), showConsents(), showRecords(), showProxies(), showGrants(), showLog()]);
}

/** The hospitals the patient consented to, each with a withdraw button. */
async function showConsents() {
  const body = $('consents').tBodies[0];
  body.innerHTML = '';
  for (const [key, consent] of await api.query.ehrIndex.indexConsents.entries(account)) {
    if (!consent.given.isTrue) continue;
    const issuer = key.args[1].toString();
    const tr = body.insertRow();
    tr.dataset.issuer = issuer;
    for (const v of [issuer, 'may index your records']) tr.insertCell().textContent = v;
    const b = document.createElement('button');
    b.textContent = 'Withdraw';
    b.onclick = () => signAndWait(api.tx.ehrIndex.withdrawIndexConsent(issuer), 'Withdrawing consent')
      .then(refresh, () => {});
    tr.insertCell().append(b);
  }
}

/**
 * Signs, in the wallet, the patient's consent to be indexed by the hospital
 * typed in the page (bound to this chain, that hospital, this account and
 * the current generation) and shows the code to hand to the hospital.
 * Signing costs nothing; nothing is submitted from here.
 */
async function signConsent() {
  $('consent-code').textContent = '';
  const issuer = $('consent-issuer').value.trim();
  let issuerId;
  try {
    issuerId = decodeAddress(issuer);
  } catch {
    return status('That is not an account address. Nothing was signed.', true);
  }
  if (!(await api.query.reputation.institutions(issuer)).isSome) {
    return status('That account is no institution of this network. Nothing was signed.', true);
  }
  const consent = await api.query.ehrIndex.indexConsents(account, issuer);
  if (consent.given.isTrue) return status('This hospital may already index your records.');
  if (!window.confirm(`Let this hospital put records of yours on the index?\nHospital: ${issuer}\n`
    + 'You can withdraw this any time; records published before stay.')) {
    return status('Consent cancelled: nothing was signed.');
  }
  const message = consentMessage(api.genesisHash.toU8a(), issuerId, decodeAddress(account),
    consent.generation.toNumber());
  const { signer } = await web3FromAddress(account);
  try {
    const { signature } = await signer.signRaw({ address: account, data: u8aToHex(message), type: 'bytes' });
    $('consent-code').textContent = signature;
    status('Consent signed: give the code to the hospital.');
  } catch (e) {
    status(`Consent not signed: ${e.message}`, true);
  }
}

async function showKeys() {
  const local = storedEnvelope();
  const onChain = (await api.query.proxyReencrypt.keys(account)).unwrapOr(null);
  let text = local ? `Key in this browser: ${local.publicKey.slice(0, 18)}…` : 'No key in this browser.';
  if (onChain) {
    const same = local && onChain.publicKey.toHex() === local.publicKey;
    text += same ? ' Registered on chain.' : ' A different key is registered on chain: import it.';
  } else text += ' Not on chain yet: register it.';
  // Keys per scope: a grant of one kind or one record opens that scope only.
  const scoped = await scopeKeyState(api, account);
  const incomplete = scoped.kinds < KINDS.length || scoped.oneTime < RECORD_KEY_LOW;
  if (onChain) {
    text += ` Keys for ${scoped.kinds} of ${KINDS.length} kinds, ${scoped.oneTime} one-time record keys left`
      + (incomplete ? ': register keys to add what is missing.' : '.');
  }
  if (local && !vault.isSealed(local)) text += ' Not protected by a passphrase: import it again with one (export is refused until then).';
  $('key-state').textContent = text;
  $('register').disabled = !local || (!!onChain && !incomplete);
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
    const shareable = !capsule.isSome ? 'no (no key capsule)'
      : r.status.isConfirmed ? 'yes'
        : r.status.isPending ? 'not yet (validators are checking it)' : 'no (not confirmed)';
    for (const v of [id.toString(), r.kind.toString(), short(r.issuer.toString()), r.status.toString(), shareable]) {
      tr.insertCell().textContent = v;
    }
  }
}

/**
 * One view of the patient's records under every account of its wallet (a
 * pseudonym per hospital): the chain cannot link them, only the wallet can,
 * and asking the node about all of them at once tells its operator they are
 * one person's, so the patient asks for it (*Show records under every
 * account*). Grants and revocations are signed by the account that owns the
 * record: choose it above. Accounts that are no Medchain account (an
 * Ethereum key in the wallet) are skipped.
 */
async function showAllRecords() {
  const body = $('all-records').tBodies[0];
  const found = [];
  for (const a of walletAccounts.filter((w) => w.type !== 'ethereum')) {
    try {
      for (const [id, r] of await api.call.ehrIndexApi.recordsOfPatient(a.address, null, 100)) found.push([a, id, r]);
    } catch (e) {
      status(`Records of ${short(a.address)} not read: ${e.message}`, true);
    }
  }
  body.innerHTML = '';
  for (const [a, id, r] of found) {
    const tr = body.insertRow();
    tr.dataset.record = id.toString();
    tr.dataset.account = a.address;
    for (const v of [`${a.meta.name || 'account'} (${short(a.address)})`, id.toString(), r.kind.toString(),
      short(r.issuer.toString()), r.status.toString()]) tr.insertCell().textContent = v;
  }
}

async function showProxies() {
  const entries = await api.query.proxyReencrypt.proxies.entries();
  const box = $('proxies');
  box.querySelectorAll('label').forEach((l) => l.remove());
  for (const [key, pk] of entries) {
    const who = key.args[0].toString();
    // None is chosen for the patient: the node the portal talks to lists
    // them, and a dishonest one could list its own. Full addresses, checked
    // again in the confirmation before anything is signed.
    const label = document.createElement('label');
    const input = document.createElement('input');
    Object.assign(input, { type: 'checkbox', checked: false });
    input.dataset.account = who;
    input.dataset.key = pk.toHex();
    label.append(input, ` ${who}`);
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
    const auditFirst = (await api.query.proxyReencrypt.auditFirst(id)).isSome ? ', audit first' : '';
    for (const v of [id.toString(), short(g.grantee.toString()), scopeText(g.scope), g.purpose.toString(),
      expires === null ? 'never' : `block ${expires}`, grantState(g, expires, best) + auditFirst]) {
      tr.insertCell().textContent = v;
    }
    const b = document.createElement('button');
    b.textContent = 'Revoke';
    b.dataset.revoke = id.toString();
    b.onclick = () => signAndWait(api.tx.proxyReencrypt.revokeGrant(id), `Revoking grant ${id}`).then(refresh, () => {});
    const cell = tr.insertCell();
    cell.append(b);
    if (!auditFirst) {
      const a = document.createElement('button');
      a.textContent = 'Audit first';
      a.title = 'From now on, every read under this grant is on chain before it is served (cannot be undone)';
      a.onclick = () => signAndWait(api.tx.proxyReencrypt.requireAuditFirst(id), `Requiring audit first for grant ${id}`)
        .then(refresh, () => {});
      cell.append(a);
    }
  }
}

/**
 * How far back the access log looks for reads served at once (the instant
 * path): the chain keeps them only as events (`ehrIndex.RecordRead`,
 * `ehrIndex.KeyFragmentServed`), so the page reads the events of this many
 * recent blocks, about an hour at 6 s a block.
 */
const READ_SCAN_BLOCKS = 600;
/** How many blocks' events the scan asks the node for at a time. */
const READ_SCAN_PARALLEL = 16;
/** The instant-path reads found in each block, by block hash: a block's events never change. */
const readsByBlock = new Map();
/** The latest `showLog` run: one overtaken while it scans writes nothing. */
let logRun = 0;

/** A block's time (its `timestamp.now`), ISO 8601. */
const blockTime = async (hash) => new Date((await api.query.timestamp.now.at(hash)).toNumber()).toISOString();

/** A row of the access log with `cells`' text and `data` as its data attributes (not in the page yet). */
function logRow(cells, data) {
  const tr = document.createElement('tr');
  Object.assign(tr.dataset, data);
  for (const v of cells) tr.insertCell().textContent = v;
  return tr;
}

/** `f` over `items`, at most `limit` at a time, started in order: `{ value }` or `{ error }` each. */
async function mapLimited(items, limit, f) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await f(items[i]).then((value) => ({ value }), (error) => ({ error }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The reads a gateway (the record's ciphertext) or a proxy (a key fragment)
 * served and logged afterwards (`ehrIndex.logReads`), among a block's
 * events. Ids, addresses and blocks only: nothing of the record itself.
 */
function readsIn(events) {
  const reads = [];
  for (const { event } of events) {
    const d = event.data;
    if (api.events.ehrIndex.RecordRead.is(event)) {
      reads.push({ served: 'Record', recordId: d.recordId.toString(), accessor: d.accessor.toString(),
        by: d.gateway.toString(), purpose: d.purpose.toString(), checkedAt: d.checkedAt.toNumber() });
    } else if (api.events.ehrIndex.KeyFragmentServed.is(event)) {
      reads.push({ served: 'KeyFragment', recordId: d.recordId.toString(), accessor: d.accessor.toString(),
        by: d.proxy.toString(), grant: d.grant.toString(), checkedAt: d.checkedAt.toNumber() });
    }
  }
  return reads;
}

/**
 * Block `number`: its hash, the reads logged in it and, if any, its time
 * (each block read once; the time with the events, before the node prunes
 * the block's state).
 */
async function blockReads(number) {
  const hash = (await api.rpc.chain.getBlockHash(number)).toHex();
  let found = readsByBlock.get(hash);
  if (!found) {
    const reads = readsIn(await api.query.system.events.at(hash));
    found = { reads, time: reads.length ? await blockTime(hash) : '' };
    readsByBlock.set(hash, found);
  }
  return { number, hash, ...found };
}

/**
 * Reads the events of the last `READ_SCAN_BLOCKS` blocks, newest first,
 * `READ_SCAN_PARALLEL` at a time. Returns the blocks read (newest first),
 * the range scanned and how many blocks could not be read (a node that
 * prunes state, as nodes do by default, has no events of older blocks):
 * those are counted, never skipped silently.
 */
async function scanReads() {
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const oldest = Math.max(0, best - READ_SCAN_BLOCKS + 1);
  const numbers = Array.from({ length: best - oldest + 1 }, (_, i) => best - i);
  const results = await mapLimited(numbers, READ_SCAN_PARALLEL, blockReads);
  const blocks = results.filter((r) => !r.error).map((r) => r.value);
  const kept = new Set(blocks.map((b) => b.hash));
  for (const hash of readsByBlock.keys()) if (!kept.has(hash)) readsByBlock.delete(hash);
  return { blocks, best, oldest, unread: results.length - blocks.length };
}

/** The access requests on chain for the patient's records, as log rows. */
async function requestRows(records) {
  const rows = [];
  for (const [id] of records) {
    for (const [rid, req] of await api.call.proxyReencryptApi.accessLog(id)) {
      const at = req.requestedAt.toNumber();
      // A pruning node no longer has the time of an old block's state.
      const time = await blockTime(await api.rpc.chain.getBlockHash(at)).catch(() => '');
      const outcome = req.emergency.isSome
        ? `emergency (${req.emergency.unwrap().reason.toString()}), ${req.status.toString()}`
        : req.status.toString();
      rows.push(logRow([id.toString(), `request ${rid}`, short(req.requester.toString()), '', '', String(at), time, outcome],
        { record: id.toString(), request: rid.toString() }));
    }
  }
  return rows;
}

/**
 * The reads of the patient's records (`ids`) the scan found, newest first,
 * as log rows: who read, what was served by which institution, the block
 * it checked the chain at and the block it was logged in.
 */
function readRows({ blocks }, ids) {
  const rows = [];
  for (const { number, reads, time } of blocks) {
    const mine = reads.filter((r) => ids.has(r.recordId));
    for (const r of mine) {
      const record = r.served === 'Record';
      rows.push(logRow([r.recordId, record ? 'record read' : `key fragment (grant ${r.grant})`, short(r.accessor),
        short(r.by), String(r.checkedAt), String(number), time, record ? `served at once (${r.purpose})` : 'served at once'],
      { record: r.recordId, served: r.served }));
    }
  }
  return rows;
}

/** What the scan covered, for the line under the log (with the oldest block's time when the node has it). */
async function scanText({ blocks, best, oldest, unread }) {
  const last = blocks.at(-1);
  const since = last?.number === oldest ? await blockTime(last.hash).then((t) => `, since ${t}`, () => '') : '';
  const range = oldest === 0 ? 'the whole chain so far' : `blocks ${oldest} to ${best}${since}`;
  return `Reads served at once (the instant path) are on chain only as events: listed from the last ${READ_SCAN_BLOCKS} `
    + `blocks (${range}); older ones are not shown.`
    + (unread ? ` ${unread} of these blocks could not be read (a node keeps the state of its last 256 blocks unless `
      + 'run with --state-pruning archive): reads logged in them are missing here.' : '');
}

/**
 * Who accessed what, and when: the access requests on chain and the reads
 * served at once and logged after, of the patient's records. Built apart
 * and put in the page at once, by the latest run only.
 */
async function showLog() {
  const run = ++logRun;
  const records = await api.call.ehrIndexApi.recordsOfPatient(account, null, 100);
  const ids = new Set(records.map(([id]) => id.toString()));
  const [requests, scan] = await Promise.all([requestRows(records), scanReads()]);
  const reads = readRows(scan, ids);
  const text = await scanText(scan);
  if (run !== logRun) return;
  $('log').tBodies[0].replaceChildren(...requests, ...reads);
  $('log-window').textContent = text;
}

async function grant(e) {
  e.preventDefault();
  if (!storedEnvelope()) return status('Generate or import your key first.', true);
  let keys;
  try {
    keys = await openKeys();
  } catch (err) {
    return status(`Your key did not open: ${err.message}. Nothing was signed.`, true);
  }
  const grantee = $('grantee').value.trim();
  const granteeKeys = (await api.query.proxyReencrypt.keys(grantee)).unwrapOr(null);
  if (!granteeKeys) return status('The grantee has no registered key: they must register one first.', true);
  const proxies = [...$('proxies').querySelectorAll('input:checked')]
    .map((i) => ({ account: i.dataset.account, publicKey: i.dataset.key }));
  const threshold = Number($('threshold').value);
  if (proxies.length === 0 || threshold < 1 || threshold > proxies.length) {
    return status(`Choose at least ${threshold} proxies.`, true);
  }
  if (threshold < 2 && (await api.query.proxyReencrypt.singleProxyGrants(account)).isNone) {
    return status('With 1 proxy needed, that proxy and the grantee together could read every record the grant '
      + 'covers: choose 2 or more proxies (or first allow such grants with proxyReencrypt.allowSingleProxyGrants).', true);
  }
  const kind = $('scope').value;
  const value = $('scope-value').value.trim();
  if (kind === 'Kind' && !KINDS.includes(value)) return status(`Kind must be one of ${KINDS.join(', ')}.`, true);
  const scope = kind === 'All' ? 'All' : kind === 'Kind' ? { Kind: value } : { Record: Number(value) };
  const auditFirst = $('audit-first').checked;
  const blocks = Number($('expires').value);
  const expiresAt = blocks > 0 ? (await api.rpc.chain.getHeader()).number.toNumber() + blocks : null;
  const summary = [
    'Grant access to your medical records?',
    `Grantee: ${grantee}`,
    `Records: ${kind === 'All' ? 'all your records' : kind === 'Kind' ? `every ${value}` : `record ${value}`}`,
    `Purpose: ${$('purpose').value}`,
    `Expires: ${expiresAt === null ? 'never (until you revoke)' : `at block ${expiresAt}`}`,
    `Proxies (${threshold} of ${proxies.length} needed):`,
    ...proxies.map((p) => `  ${p.account}`),
    auditFirst ? 'Audit first: every read on chain before it is served (a second signature)'
      : 'Reads are served at once and on chain within minutes',
  ].join('\n');
  if (!window.confirm(summary)) return status('Grant cancelled: nothing was signed.');
  // From the scope's own key where there is one: the proxies check it.
  const label = await grantLabel(api, account, scope);
  const fragments = pre.sealedFragments(keys, granteeKeys.publicKey.toHex(), proxies, threshold, label);
  const events = await signAndWait(api.tx.proxyReencrypt.grantAccess(
    grantee, scope, $('purpose').value, expiresAt, threshold, fragments, false), 'Granting access').catch(() => null);
  const ev = events?.find(({ event }) => api.events.proxyReencrypt.AccessGranted.is(event));
  if (ev) status(`Granted: grant ${ev.event.data.grant.toString()}`);
  // Before the grant's proxies acknowledge it (a block later at the
  // earliest), nothing is served under it either way.
  if (ev && auditFirst) {
    const id = ev.event.data.grant;
    await signAndWait(api.tx.proxyReencrypt.requireAuditFirst(id), `Requiring audit first for grant ${id}`)
      .then(() => status(`Granted: grant ${id}, audit first`),
        () => status(`Grant ${id} was made but audit first was NOT set: its reads are served at once and logged `
          + 'after. Revoke it, or set audit first from your grants.', true));
  }
  await refresh();
}

/**
 * Registers what is missing on chain: the patient's key, its keys for each
 * kind and one-time record keys (derived from the secret key, opened with
 * the passphrase), one signed call each (fee-less for a registered patient).
 */
async function registerKeys() {
  const k = storedEnvelope();
  if ((await api.query.proxyReencrypt.keys(account)).isNone) {
    const ok = await signAndWait(api.tx.proxyReencrypt.registerKey(k.publicKey, k.verifyingKey), 'Registering key')
      .then(() => true, () => false);
    if (!ok) return showKeys();
  }
  let keys;
  try {
    keys = await openKeys();
  } catch (err) {
    status(`Your key did not open: ${err.message}. Scope keys not registered.`, true);
    return showKeys();
  }
  for (const call of await scopeKeyCalls(api, pre, keys, account)) {
    const ok = await signAndWait(call, 'Registering scope keys').then(() => true, () => false);
    if (!ok) break;
  }
  await showKeys();
}

/** Exports the sealed envelope: the file opens only with the passphrase. */
function exportKey() {
  if (!vault.isSealed(storedEnvelope())) return status('Set a passphrase and import the key again first: it is not sealed.', true);
  const blob = new Blob([JSON.stringify(storedEnvelope(), null, 2)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `medchain-umbral-${account}.json`;
  a.click();
}

/**
 * Imports a key file: a sealed export (opened with the passphrase typed in
 * the page, to check it) or plaintext keys, which are sealed under it.
 */
async function importKey(file) {
  try {
    const content = JSON.parse(await file.text());
    const passphrase = $('passphrase').value;
    const keys = pre.importKeys(vault.isSealed(content) ? await vault.open(content, passphrase) : content);
    const envelope = vault.isSealed(content) ? content : await vault.seal(keys, passphrase);
    localStorage.setItem(`medchain-umbral:${account}`, JSON.stringify(envelope));
    unlocked = keys;
    status('Key imported.');
  } catch (e) {
    status(`Key not imported: ${e.message}`, true);
  }
  await showKeys();
}

/**
 * The chain's metadata for the wallet, and its RFC 78 hash as the runtime
 * computes it at build time (`CheckMetadataHash`): both from metadata V15.
 */
async function loadMetadata() {
  const v15 = (await api.call.metadata.metadataAtVersion(15)).unwrap().toU8a(true);
  // The values the runtime's build hashed with (runtime/build.rs), not the
  // chain spec's properties, which a spec could set otherwise.
  const { tokenSymbol, decimals } = METADATA_HASH_TOKEN;
  metadataHash = u8aToHex(merkleizeMetadata(v15, { decimals, tokenSymbol }).digest());
  metadataDef = {
    chain: (await api.rpc.system.chain()).toString(),
    chainType: 'substrate',
    genesisHash: api.genesisHash.toHex(),
    icon: 'substrate',
    ss58Format: api.registry.chainSS58 ?? 42,
    specVersion: api.runtimeVersion.specVersion.toNumber(),
    tokenDecimals: decimals,
    tokenSymbol,
    types: {},
    metaCalls: base64Encode(api.runtimeMetadata.asCallsOnly.toU8a()),
    rawMetadata: u8aToHex(v15),
  };
}

async function main() {
  pre = makePre(await loadUmbral());
  config = await (await fetch('config.json')).json();
  if (!/^0x[0-9a-f]{64}$/.test(config.genesisHash || '')) {
    return status('This portal is not pinned to a chain (config.json has no genesis hash): refusing to connect.', true);
  }
  // `?rpc=` may name another node, but only one of the pinned chain.
  const rpc = params.get('rpc') || config.rpc;
  api = await ApiPromise.create({ provider: new WsProvider(rpc), noInitWarn: true });
  if (api.genesisHash.toHex() !== config.genesisHash) {
    const other = api.genesisHash.toHex();
    await api.disconnect();
    return status(`Refused: ${rpc} serves another chain (genesis ${other}), not the one this portal is pinned to `
      + `(${config.genesisHash}). Nothing was read or signed.`, true);
  }
  await loadMetadata();
  status(`Connected to ${rpc}. Connect your wallet.`);
  $('connect').onclick = () => connectWallet().catch((e) => status(e.message, true));
  $('consent-sign').onclick = () => signConsent().catch((e) => status(e.message, true));
  $('show-all').onclick = () => showAllRecords().catch((e) => status(e.message, true));
  // Withdrawing also voids every code signed for the hospital, used or not.
  $('consent-void').onclick = () => {
    const issuer = $('consent-issuer').value.trim();
    if (!window.confirm(`Void every consent code you signed for this hospital, and any consent in force?\n${issuer}`)) return;
    $('consent-code').textContent = '';
    signAndWait(api.tx.ehrIndex.withdrawIndexConsent(issuer), 'Voiding consent codes').then(refresh, () => {});
  };
  $('account').onchange = (e) => chooseAccount(e.target.value);
  $('generate').onclick = async () => {
    const keys = pre.newKeys();
    let envelope;
    try {
      envelope = await vault.seal(keys, $('passphrase').value);
    } catch (e) {
      return status(`No key generated: ${e.message}.`, true);
    }
    localStorage.setItem(`medchain-umbral:${account}`, JSON.stringify(envelope));
    unlocked = keys;
    status('Key generated and sealed under your passphrase in this browser. Export it to keep a copy.');
    await showKeys();
  };
  $('register').onclick = () => registerKeys().catch((e) => status(e.message, true));
  $('export').onclick = exportKey;
  $('import').onchange = (e) => e.target.files[0] && importKey(e.target.files[0]);
  $('grant-form').onsubmit = (e) => grant(e).catch((err) => status(err.message, true));
  api.rpc.chain.subscribeNewHeads(() => { if (account) showGrants().catch(() => {}); });
  window.medchainPortal = { refresh };
}

main().catch((e) => status(`Cannot start: ${e.message}`, true));
