// The patient portal in headless Chromium (Debian's) against a dev node. A
// test wallet is injected the way a browser extension injects itself
// (window.injectedWeb3); it signs in Node with the patient's key, so every
// transaction goes through @polkadot/extension-dapp exactly as with a real
// wallet. The patient generates and registers an Umbral key, sees a record,
// grants a doctor time-limited access, sees the doctor's request in the
// access log, and beside it the reads a gateway and a proxy served at once
// and logged on chain after (found in recent blocks' events), and revokes.
// The wallet receives the chain's metadata
// (`metadata.provide`), every signature covers the metadata hash
// (`CheckMetadataHash` mode 1), no proxy is chosen for the patient, the key
// is sealed under a passphrase, and a portal pinned to another chain refuses
// the node. Screenshots: tests/artifacts/portal-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex, u8aWrapBytes, hexToU8a } from '@polkadot/util';
import * as umbral from '@nucypher/umbral-pre';
import { chromium } from 'playwright-core';
import { startDevNode, sendAndWait, freePort } from './lib/node.mjs';
import { confirmRecord, registerPatient } from './lib/record-index.mjs';
import { makePre, hex, unhex, delegator, kindLabel, recordLabel } from '../../portal/lib/pre.mjs';
import { servePortal } from '../../scripts/portal.mjs';
import * as vault from '../../portal/lib/vault.mjs';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '../..');
const ARTIFACTS = join(ROOT, 'tests/artifacts');
const CHROMIUM = process.env.MEDCHAIN_CHROMIUM || '/usr/bin/chromium';
const pre = makePre(umbral);

let node;
let portal;
let browser;
let page;
let k;
/** Dave's account for a second hospital, derived in his wallet (the wallet holds both). */
let pseudonym;
/** The proxies' Umbral keys (their nodes are not this one: the test acts for them). */
const proxyKeys = {};
/** What the page handed the test wallet through `metadata.provide`. */
const provided = [];
/** What the page asked the test wallet to sign raw (`signRaw`). */
const signedRaw = [];
/** The confirmations the page asked the patient for. */
const dialogs = [];
const PASSPHRASE = 'correct horse battery';

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is installed by scripts/setup.sh`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  k = Object.fromEntries(['alice', 'bob', 'charlie', 'dave', 'eve']
    .map((n) => [n, keyring.addFromUri(`//${n[0].toUpperCase()}${n.slice(1)}`)]));
  pseudonym = keyring.addFromUri('//Dave//medchain//second-hospital');
  node = await startDevNode({ name: 'portal' });
  const { api } = node;
  // Two proxy institutions: Alice (genesis) and Bob; Bob and Charlie
  // validate records.
  for (const who of [k.bob, k.charlie]) {
    await sendAndWait(api, api.tx.reputation.applyForMembership('validator', 'NursingHome',
      { producer: false, validator: true, auditor: false }), who);
  }
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll(
    [k.bob, k.charlie].map((who) => api.tx.reputation.approveInstitution(who.address)))), k.alice);
  for (const n of ['alice', 'bob']) {
    proxyKeys[n] = pre.newProxyKeys();
    await sendAndWait(api, api.tx.proxyReencrypt.registerProxy(proxyKeys[n].publicKey), k[n]);
  }
  portal = await servePortal({ port: await freePort(), rpc: `ws://127.0.0.1:${node.rpcPort}`,
    genesisHash: api.genesisHash.toHex() });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  // Another end-to-end file runs beside this one: give each wait room.
  page.setDefaultTimeout(120_000);
  page.on('pageerror', (e) => console.error('[page]', e.message));
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await page.exposeFunction('medchainTestProvide', (def) => { provided.push(def); return true; });
  // The test wallet: what an extension injects, with signing done in Node.
  await page.exposeFunction('medchainTestSign', (payload) => {
    const ext = api.registry.createType('ExtrinsicPayload', payload, { version: payload.version });
    return ext.sign(k.dave).signature;
  });
  // Raw signing as the polkadot.js extension does it: what it signs is
  // wrapped in <Bytes>…</Bytes>, so it can never be a transaction.
  await page.exposeFunction('medchainTestSignRaw', (raw) => {
    signedRaw.push(raw);
    return u8aToHex(k.dave.sign(u8aWrapBytes(hexToU8a(raw.data))));
  });
  await page.addInitScript(({ address, second }) => {
    let id = 0;
    const accounts = [{ address, name: 'Dave (patient)', type: 'sr25519' },
      { address: second, name: 'Dave at the second hospital', type: 'sr25519' }];
    window.injectedWeb3 = {
      'medchain-test-wallet': {
        version: '1.0.0',
        enable: async () => ({
          accounts: {
            get: async () => accounts,
            subscribe: (cb) => { cb(accounts); return () => {}; },
          },
          signer: {
            signPayload: async (payload) => ({ id: ++id, signature: await window.medchainTestSign(payload) }),
            signRaw: async (raw) => ({ id: ++id, signature: await window.medchainTestSignRaw(raw) }),
          },
          metadata: {
            get: async () => window.medchainKnownMetadata || [],
            provide: async (def) => {
              window.medchainKnownMetadata = [...(window.medchainKnownMetadata || []), def];
              return window.medchainTestProvide(def);
            },
          },
        }),
      },
    };
  }, { address: k.dave.address, second: pseudonym.address });
});

after(async () => {
  if (browser) await browser.close();
  if (portal) await portal.close();
  if (node) await node.stop();
});

const rows = (table) => page.locator(`#${table} tbody tr`);

/** The latest extrinsic `section.method` signed by `signer` in the last 50 blocks. */
async function findExtrinsic(api, section, method, signer) {
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  for (let n = best; n > Math.max(0, best - 50); n--) {
    const block = await api.rpc.chain.getBlock(await api.rpc.chain.getBlockHash(n));
    const found = block.block.extrinsics.find((x) => x.isSigned && x.signer.toString() === signer
      && x.method.section === section && x.method.method === method);
    if (found) return found;
  }
  throw new Error(`no ${section}.${method} by ${signer} in the last 50 blocks`);
}

test('a patient registers a key, grants, sees the access log and revokes in the browser', async () => {
  const { api } = node;
  await page.goto(`http://127.0.0.1:${portal.port}/`);
  await page.waitForSelector('text=Connect your wallet');
  await page.click('#connect');
  await page.waitForSelector('#status:has-text("Signed in as")');

  // The wallet got this chain's metadata, for this runtime version.
  assert.equal(provided.length, 1, 'metadata provided once');
  assert.equal(provided[0].genesisHash, api.genesisHash.toHex());
  assert.equal(provided[0].specVersion, api.runtimeVersion.specVersion.toNumber());
  const v15 = (await api.call.metadata.metadataAtVersion(15)).unwrap().toHex();
  assert.ok(v15.startsWith('0x6d657461'), 'metadata V15 with its magic number');
  assert.equal(provided[0].rawMetadata, v15, 'the metadata the wallet decodes calls with');

  // Without a passphrase no key is generated.
  await page.click('#generate');
  await page.waitForSelector('#status.error:has-text("passphrase")');
  // Generate the Umbral key in the browser, sealed under a passphrase, and register it.
  await page.fill('#passphrase', PASSPHRASE);
  await page.click('#generate');
  await page.waitForSelector('#key-state:has-text("Key in this browser")');
  await page.click('#register');
  await page.waitForSelector('#key-state:has-text("Registered on chain")');
  // With it, keys derived from its secret: one per kind of record and 16
  // one-time record keys (what a grant of one kind or one record delegates
  // from), each signed in the wallet.
  await page.waitForSelector('#key-state:has-text("Keys for 9 of 9 kinds, 16 one-time record keys left.")');
  const onChain = (await api.query.proxyReencrypt.keys(k.dave.address)).unwrap();
  const inBrowser = await page.evaluate((a) => JSON.parse(localStorage.getItem(`medchain-umbral:${a}`)), k.dave.address);
  assert.equal(onChain.publicKey.toHex(), inBrowser.publicKey, 'the registered key is the browser\'s');
  assert.equal(onChain.verifyingKey.toHex(), inBrowser.verifyingKey);
  // What the browser stores reveals no secret without the passphrase.
  assert.equal(inBrowser.secretKey, undefined);
  assert.equal(inBrowser.signingKey, undefined);
  assert.ok(vault.isSealed(inBrowser));
  await assert.rejects(vault.open(inBrowser, 'not the passphrase'), /wrong passphrase/);
  const opened = await vault.open(inBrowser, PASSPHRASE);
  assert.equal(opened.publicKey, inBrowser.publicKey);
  // The scope keys on chain are the ones derived from the browser's secret.
  const labKey = (await api.query.proxyReencrypt.kindKeys(k.dave.address, 'LabResult')).unwrap().toHex();
  assert.equal(labKey, pre.scopeKey(opened, kindLabel('LabResult')).publicKey);
  const pool = await api.query.proxyReencrypt.recordKeyPool(k.dave.address);
  assert.deepEqual(pool.map(([i]) => i.toNumber()), [...Array(16).keys()]);
  for (const [i, key] of pool) assert.equal(key.toHex(), pre.scopeKey(opened, recordLabel(i.toNumber())).publicKey);
  assert.ok(!JSON.stringify(inBrowser).includes(opened.secretKey.slice(2)), 'the secret key is not stored in clear');
  // The key registration was signed over the metadata hash (mode 1).
  const registered = await findExtrinsic(api, 'proxyReencrypt', 'registerKey', k.dave.address);
  assert.equal(registered.mode.toNumber(), 1, 'CheckMetadataHash mode 1');
  await page.screenshot({ path: join(ARTIFACTS, 'portal-key.png'), fullPage: true });

  // Before any record: Dave consents in the browser to be indexed by
  // Alice's hospital. A typo'd hospital is refused before the wallet opens.
  await page.fill('#consent-issuer', 'not-an-address');
  await page.click('#consent-sign');
  await page.waitForSelector('#status.error:has-text("not an account address")');
  assert.equal(signedRaw.length, 0, 'nothing signed');
  await page.fill('#consent-issuer', k.alice.address);
  await page.click('#consent-sign');
  await page.waitForSelector('#status:has-text("Consent signed")');
  assert.ok(dialogs.at(-1).includes(k.alice.address), 'the full hospital address was confirmed');
  const code = (await page.locator('#consent-code').textContent()).trim();
  assert.match(code, /^0x[0-9a-f]{128}$/);
  // The hospital registers Dave with the code and pays; Dave's free balance
  // is untouched.
  const daveFree = (await api.query.system.account(k.dave.address)).data.free.toBigInt();
  await sendAndWait(api, api.tx.ehrIndex.registerPatient(k.dave.address, { Sr25519: code }), k.alice);
  assert.equal((await api.query.system.account(k.dave.address)).data.free.toBigInt(), daveFree);
  await page.evaluate(() => window.medchainPortal.refresh());
  await page.waitForSelector(`#consents tbody tr[data-issuer="${k.alice.address}"]`);

  // The hospital publishes a record whose data key is sealed to that key.
  const [capsule, sealedKey] = umbral.encrypt(umbral.PublicKey.fromCompressedBytes(unhex(inBrowser.publicKey)),
    new Uint8Array(32).fill(1));
  const keyCapsule = { capsule: hex(capsule.toBytes()), ciphertext: hex(sealedKey) };
  const { blake2AsHex } = await import('@polkadot/util-crypto');
  const capsuleHash = blake2AsHex(new Uint8Array([...capsule.toBytes(), ...sealedKey]), 256);
  const { events } = await sendAndWait(api, api.tx.ehrIndex.publishRecord(k.dave.address, 'LabResult',
    { algorithm: 'Sm3', digest: u8aToHex(new Uint8Array(32).fill(3)) },
    { storeId: 'hospital-1', collection: 'records', objectId: u8aToHex(new Uint8Array(12).fill(1)) },
    1024, capsuleHash), k.alice);
  const recordId = events.find(({ event }) => api.events.ehrIndex.RecordPublished.is(event)).event.data[0].toNumber();
  // It is a lab result: the data key is also sealed to Dave's lab key and to
  // one of his one-time keys (the chain refuses the record's capsule without).
  const dataKey = new Uint8Array(32).fill(1);
  const [oneTimeIndex, oneTimeKey] = pool[3];
  const scoped = { kind: pre.sealDataKey(labKey, dataKey), record: [oneTimeIndex, pre.sealDataKey(oneTimeKey.toHex(), dataKey)] };
  await assert.rejects(sendAndWait(api, api.tx.proxyReencrypt.attachCapsule(recordId, keyCapsule, { kind: scoped.kind }), k.alice),
    /proxyReencrypt\.ScopedCapsuleMissing/);
  await sendAndWait(api, api.tx.proxyReencrypt.attachCapsule(recordId, keyCapsule, scoped), k.alice);
  assert.equal((await api.query.proxyReencrypt.recordKeyPool(k.dave.address)).length, 15, 'the one-time key was taken');
  // The doctor registers a key of their own.
  const doctor = pre.newKeys();
  await sendAndWait(api, api.tx.proxyReencrypt.registerKey(doctor.publicKey, doctor.verifyingKey), k.eve);

  // Shareable only once validators confirmed it.
  await page.evaluate(() => window.medchainPortal.refresh());
  await page.waitForSelector(`#records tr[data-record="${recordId}"]:has-text("not yet")`);
  await confirmRecord(api, recordId, [k.bob, k.charlie]);
  await page.evaluate(() => window.medchainPortal.refresh());
  await page.waitForSelector(`#records tr[data-record="${recordId}"]:has-text("yes")`);

  // Dave's account for a second hospital (registered there, never funded)
  // has a record too: the chain cannot link it to Dave, the portal's
  // merged view shows both under their accounts.
  await registerPatient(api, k.alice, pseudonym);
  const { events: second } = await sendAndWait(api, api.tx.ehrIndex.publishRecord(pseudonym.address, 'Imaging',
    { algorithm: 'Sm3', digest: u8aToHex(new Uint8Array(32).fill(9)) },
    { storeId: 'hospital-1', collection: 'records', objectId: u8aToHex(new Uint8Array(12).fill(9)) },
    2048, u8aToHex(new Uint8Array(32))), k.alice);
  const secondId = second.find(({ event }) => api.events.ehrIndex.RecordPublished.is(event)).event.data[0].toNumber();
  await page.evaluate(() => window.medchainPortal.refresh());
  // Only when the patient asks: asking the node about every account at
  // once tells its operator they are one person's.
  assert.equal(await page.locator('#all-records tbody tr').count(), 0, 'not shown before the patient asks');
  await page.click('#show-all');
  await page.waitForSelector(`#all-records tr[data-record="${recordId}"][data-account="${k.dave.address}"]`);
  await page.waitForSelector(`#all-records tr[data-record="${secondId}"][data-account="${pseudonym.address}"]`
    + ':has-text("Imaging")');
  assert.equal(await page.locator(`#records tr[data-record="${secondId}"]`).count(), 0,
    'the account view shows only the chosen account\'s records');

  // No proxy is chosen for the patient; they are listed in full.
  assert.equal(await page.locator('#proxies input:checked').count(), 0, 'no proxy pre-selected');
  for (const n of ['alice', 'bob']) await page.waitForSelector(`#proxies label:has-text("${k[n].address}")`);
  // Grant the doctor this record for 200 blocks, 2 of the 2 proxies.
  for (const n of ['alice', 'bob']) await page.check(`#proxies input[data-account="${k[n].address}"]`);
  await page.fill('#grantee', k.eve.address);
  await page.selectOption('#scope', 'Record');
  await page.fill('#scope-value', String(recordId));
  await page.fill('#expires', '200');
  await page.fill('#threshold', '2');
  await page.click('#grant');
  await page.waitForSelector('#status:has-text("Granted: grant")');
  await page.waitForSelector('#grants tbody tr:has-text("awaiting proxies (0 of 2 acknowledged)")');
  // The patient confirmed full addresses before signing.
  const confirmed = dialogs.at(-1);
  for (const who of [k.eve.address, k.alice.address, k.bob.address]) assert.ok(confirmed.includes(who), confirmed);
  // The grant, too, was signed over the metadata hash; the runtime checked
  // the hash it signed (a wrong one fails the signature check).
  const granted = await findExtrinsic(api, 'proxyReencrypt', 'grantAccess', k.dave.address);
  assert.equal(granted.mode.toNumber(), 1, 'CheckMetadataHash mode 1');
  const [[grantId]] = await api.call.proxyReencryptApi.patientGrants(k.dave.address);
  // Each proxy opens and verifies its key fragment, then acknowledges: only
  // then is the grant usable (a node's offchain worker does this by itself).
  // The browser made the fragments from the record's one-time key: the
  // grant delegates from it, and they verify against it (and only it).
  const patientKeys = (await api.query.proxyReencrypt.keys(k.dave.address)).unwrap();
  const grantKey = (await api.query.proxyReencrypt.grantKeys(grantId)).unwrap();
  assert.ok(grantKey.slot.isRecord);
  assert.equal(grantKey.publicKey.toHex(), oneTimeKey.toHex());
  const asPatient = { publicKey: patientKeys.publicKey.toHex(), verifyingKey: patientKeys.verifyingKey.toHex() };
  for (const n of ['alice', 'bob']) {
    const sealed = (await api.query.proxyReencrypt.sealedFragments(grantId, k[n].address)).unwrap();
    const bound = (await api.query.proxyReencrypt.keyFragmentIds(grantId, k[n].address)).unwrap().toHex();
    const seal = { capsule: sealed.capsule.toHex(), ciphertext: sealed.ciphertext.toHex() };
    assert.throws(() => pre.openKeyFragment(proxyKeys[n].secretKey, seal, asPatient, doctor.publicKey, bound));
    pre.openKeyFragment(proxyKeys[n].secretKey, seal, delegator(asPatient, grantKey.publicKey.toHex()), doctor.publicKey, bound);
    await sendAndWait(api, api.tx.proxyReencrypt.acknowledgeGrant(grantId), k[n]);
  }
  await page.evaluate(() => window.medchainPortal.refresh());
  await page.waitForSelector('#grants tbody tr:has-text("live")');
  const [[, g]] = await api.call.proxyReencryptApi.patientGrants(k.dave.address);
  assert.equal(g.grantee.toString(), k.eve.address);
  assert.equal(g.scope.toString(), JSON.stringify({ record: recordId }));
  assert.equal(g.threshold.toNumber(), 2);
  assert.equal(g.proxies.length, 2);
  assert.ok(g.expiresAt.isSome);
  await page.screenshot({ path: join(ARTIFACTS, 'portal-grant.png'), fullPage: true });

  // The doctor asks for the record: the patient sees it in the access log.
  await sendAndWait(api, api.tx.proxyReencrypt.requestAccess(grantId, recordId), k.eve);
  await page.evaluate(() => window.medchainPortal.refresh());
  await page.waitForSelector(`#log tbody tr:has-text("${k.eve.address.slice(0, 6)}")`);
  assert.equal(await rows('log').count(), 1);
  await page.screenshot({ path: join(ARTIFACTS, 'portal-log.png'), fullPage: true });

  // The doctor reads the record on the instant path: Alice's hospital (the
  // record's issuer, its gateway) serves the ciphertext and Bob (a proxy
  // that acknowledged the grant) a key fragment, each at once after
  // checking the grant at a block, and each logs the read on chain
  // afterwards; the test acts for both. Alice also logs a read of the
  // second hospital account's record by that account: not Dave's under
  // this account, so not in his log.
  const checkedAt = (await api.rpc.chain.getHeader()).number.toNumber();
  const entry = (read, served) => ({ read: '0x' + read.repeat(32), recordId, accessor: k.eve.address,
    purpose: 'Treatment', grant: grantId.toNumber(), checkedAt, served });
  const { blockHash: recordLogged } = await sendAndWait(api, api.tx.ehrIndex.logReads([entry('a1', 'Record'),
    { read: '0x' + 'c3'.repeat(32), recordId: secondId, accessor: pseudonym.address, purpose: 'Treatment',
      grant: null, checkedAt, served: 'Record' }]), k.alice);
  const { blockHash: fragmentLogged } = await sendAndWait(api, api.tx.ehrIndex.logReads([entry('b2', 'KeyFragment')]),
    k.bob);
  const short = (a) => `${a.slice(0, 6)}…${a.slice(-6)}`;
  const loggedAt = async (hash) => [String((await api.rpc.chain.getHeader(hash)).number.toNumber()),
    new Date((await api.query.timestamp.now.at(hash)).toNumber()).toISOString()];
  await page.evaluate(() => window.medchainPortal.refresh());
  await page.waitForSelector('#log tbody tr[data-served="KeyFragment"]');
  await page.waitForSelector('#log tbody tr[data-served="Record"]');
  // Beside the request: exactly the two reads of Dave's record, with who
  // read, what was served by whom, the block the grant was checked at and
  // the block (and time) each was logged in.
  assert.equal(await rows('log').count(), 3, 'the request and two reads, not the other account\'s read');
  const cells = (served) => page.locator(`#log tbody tr[data-served="${served}"] td`).allTextContents();
  assert.deepEqual(await cells('Record'), [String(recordId), 'record read', short(k.eve.address),
    short(k.alice.address), String(checkedAt), ...await loggedAt(recordLogged), 'served at once (Treatment)']);
  assert.deepEqual(await cells('KeyFragment'), [String(recordId), `key fragment (grant ${grantId})`,
    short(k.eve.address), short(k.bob.address), String(checkedAt), ...await loggedAt(fragmentLogged), 'served at once']);
  // Newest first, after the request.
  assert.deepEqual(await page.locator('#log tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.served ?? 'request')),
    ['request', 'KeyFragment', 'Record']);
  assert.match(await page.locator('#log-window').textContent(),
    /^Reads served at once \(the instant path\) are on chain only as events: listed from the last 600 blocks \((the whole chain so far|blocks \d+ to \d+(, since [-\d:.TZ]+)?)\); older ones are not shown\.( \d+ of these blocks could not be read \(.+\): reads logged in them are missing here\.)?$/);
  await page.screenshot({ path: join(ARTIFACTS, 'portal-reads.png'), fullPage: true });

  // Revoke in the browser.
  await page.click(`button[data-revoke="${grantId}"]`);
  await page.waitForSelector('#status:has-text("Revoking grant")');
  await page.waitForSelector(`#status:has-text("Revoking grant ${grantId}: done")`);
  const revoked = (await api.query.proxyReencrypt.grants(grantId)).unwrap();
  assert.ok(revoked.revokedAt.isSome, 'the grant is revoked on chain');
  await page.evaluate(() => window.medchainPortal.refresh());
  await page.waitForFunction(() => document.querySelectorAll('#grants tbody tr').length === 0);
  await page.screenshot({ path: join(ARTIFACTS, 'portal-revoked.png'), fullPage: true });

  // Dave withdraws his consent in the browser: the hospital can index
  // nothing new under his account, and the old code does not bring it back.
  await page.click(`#consents tbody tr[data-issuer="${k.alice.address}"] button`);
  await page.waitForSelector('#status:has-text("Withdrawing consent: done")');
  await page.waitForFunction(() => document.querySelectorAll('#consents tbody tr').length === 0);
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.registerPatient(k.dave.address, { Sr25519: code }), k.alice),
    /ehrIndex\.BadConsentSignature/);
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.publishRecord(k.dave.address, 'LabResult',
    { algorithm: 'Sm3', digest: u8aToHex(new Uint8Array(32).fill(4)) },
    { storeId: 'hospital-1', collection: 'records', objectId: u8aToHex(new Uint8Array(12).fill(2)) },
    1024, capsuleHash), k.alice), /ehrIndex\.NoIndexConsent/);
  // The record published with consent is still his.
  await page.waitForSelector(`#records tr[data-record="${recordId}"]`);
  // A code he signs and then regrets is voided before the hospital uses it.
  await page.click('#consent-sign');
  await page.waitForSelector('#status:has-text("Consent signed")');
  const regretted = (await page.locator('#consent-code').textContent()).trim();
  await page.click('#consent-void');
  await page.waitForSelector('#status:has-text("Voiding consent codes: done")');
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.registerPatient(k.dave.address, { Sr25519: regretted }),
    k.alice), /ehrIndex\.BadConsentSignature/);
});

test('a key that does not open with the typed passphrase signs nothing', async () => {
  const { api } = node;
  const before = (await api.query.proxyReencrypt.nextGrantId()).toNumber();
  await page.reload();
  await page.waitForSelector('text=Connect your wallet');
  await page.click('#connect');
  await page.waitForSelector('#status:has-text("Signed in as")');
  await page.fill('#passphrase', 'not the passphrase');
  await page.fill('#grantee', k.eve.address);
  await page.selectOption('#scope', 'All');
  await page.check(`#proxies input[data-account="${k.alice.address}"]`);
  await page.fill('#threshold', '1');
  await page.click('#grant');
  await page.waitForSelector('#status.error:has-text("wrong passphrase")');
  assert.equal((await api.query.proxyReencrypt.nextGrantId()).toNumber(), before);
  await page.fill('#passphrase', PASSPHRASE);
});

test('a portal pinned to another chain refuses the node', async () => {
  const other = await servePortal({ port: await freePort(), rpc: `ws://127.0.0.1:${node.rpcPort}`,
    genesisHash: '0x' + '11'.repeat(32) });
  const p = await browser.newPage();
  try {
    await p.goto(`http://127.0.0.1:${other.port}/`);
    await p.waitForSelector('#status.error:has-text("serves another chain")');
    assert.ok(await p.locator('#connect').isVisible());
    await p.click('#connect');
    assert.doesNotMatch(await p.locator('#status').textContent(), /Signed in/);
  } finally {
    await p.close();
    await other.close();
  }
});

test('a grant that cannot work is refused with a clear message and nothing is signed', async () => {
  const { api } = node;
  const before = (await api.query.proxyReencrypt.nextGrantId()).toNumber();
  // Bob has no Umbral key registered as a grantee.
  await page.fill('#grantee', k.bob.address);
  await page.selectOption('#scope', 'All');
  await page.click('#grant');
  await page.waitForSelector('#status.error:has-text("no registered key")');
  // One proxy alone would do, and the patient never allowed that.
  await page.fill('#grantee', k.eve.address);
  await page.check(`#proxies input[data-account="${k.alice.address}"]`);
  await page.fill('#threshold', '1');
  await page.click('#grant');
  await page.waitForSelector('#status.error:has-text("choose 2 or more proxies")');
  // Ask for more fragments than proxies: refused before anything is signed.
  await page.fill('#threshold', '3');
  await page.click('#grant');
  await page.waitForSelector('#status.error:has-text("Choose at least 3 proxies")');
  assert.equal((await api.query.proxyReencrypt.nextGrantId()).toNumber(), before);
});
