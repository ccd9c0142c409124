// The record index on a real dev node: a hospital publishes a record's
// digest and pointer, two validator institutions confirm it, the issuer's
// credit rises, and the index is read back through the runtime API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Keyring } from '@polkadot/keyring';
import { createHash } from 'node:crypto';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex, stringToU8a } from '@polkadot/util';
import { startDevNode, sendAndWait } from './lib/node.mjs';
import { registerPatient, consentFor } from './lib/record-index.mjs';

let node;
let k;

/** SM3 (GB/T 32905) of `data`, from Node's OpenSSL. */
const sm3 = (data) => new Uint8Array(createHash('sm3').update(data).digest());

before(async () => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  k = Object.fromEntries(['Alice', 'Bob', 'Charlie', 'Dave', 'Ferdie']
    .map((n) => [n.toLowerCase(), keyring.addFromUri(`//${n}`)]));
  node = await startDevNode({ name: 'ehr-index' });
});

after(async () => {
  if (node) await node.stop();
});

const pointer = (n) => ({
  storeId: 'hospital-alice', collection: 'records', objectId: u8aToHex(new Uint8Array(12).fill(n)),
});

test('a published record is confirmed by two validators and credits the issuer', async () => {
  const { api } = node;
  // Bob (tier-2 hospital) and Charlie (nursing home) join as validators.
  for (const [who, kind] of [[k.bob, { Hospital: { level: 2, grade: 'B' } }], [k.charlie, 'NursingHome']]) {
    await sendAndWait(api, api.tx.reputation.applyForMembership(
      'validator', kind, { producer: false, validator: true, auditor: false }), who);
  }
  await sendAndWait(api, api.tx.sudo.sudo(api.tx.utility.batchAll([
    api.tx.reputation.approveInstitution(k.bob.address),
    api.tx.reputation.approveInstitution(k.charlie.address),
  ])), k.alice);

  // Alice, a genesis tier-3A hospital, publishes a lab result for Ferdie.
  // Only the digest of the ciphertext goes on chain.
  const ciphertext = stringToU8a('AES-256-GCM ciphertext of a lab result');
  const digest = { algorithm: 'Sm3', digest: u8aToHex(sm3(ciphertext)) };
  const publish = () => api.tx.ehrIndex.publishRecord(
    k.ferdie.address, 'LabResult', digest, pointer(1), ciphertext.length, u8aToHex(new Uint8Array(32).fill(7)));
  // Not before Ferdie consented to be indexed by Alice.
  await assert.rejects(sendAndWait(api, publish(), k.alice), /ehrIndex\.NoIndexConsent/);
  // A consent Ferdie signed for Bob does not register him with Alice.
  const forBob = k.ferdie.sign(await consentFor(api, k.bob.address, k.ferdie.address));
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.registerPatient(k.ferdie.address,
    { Sr25519: u8aToHex(forBob) }), k.alice), /ehrIndex\.BadConsentSignature/);
  // Ferdie signs his consent at Alice's desk; Alice submits it and pays.
  const registered = await registerPatient(api, k.alice, k.ferdie);
  assert.ok(registered.events.some(({ event }) => api.events.ehrIndex.IndexConsentGiven.is(event)));
  const { events } = await sendAndWait(api, publish(), k.alice);
  const published = events.find(({ event }) => api.events.ehrIndex.RecordPublished.is(event));
  assert.ok(published, 'RecordPublished emitted');
  const recordId = published.event.data[0].toNumber();

  const pending = await api.call.ehrIndexApi.pendingFor(k.bob.address, 10);
  assert.deepEqual(pending.map(([id]) => id.toNumber()), [recordId]);

  // A non-validator is refused and nothing changes.
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.voteRecord(recordId, 'Confirm'), k.dave),
    /ehrIndex\.NotValidator/);

  await sendAndWait(api, api.tx.ehrIndex.voteRecord(recordId, 'Confirm'), k.bob);
  const { events: final } = await sendAndWait(api, api.tx.ehrIndex.voteRecord(recordId, 'Confirm'), k.charlie);
  assert.ok(final.some(({ event }) => api.events.ehrIndex.RecordConfirmed.is(event)));

  const [[id, record]] = await api.call.ehrIndexApi.recordsOfPatient(k.ferdie.address, null, 10);
  assert.equal(id.toNumber(), recordId);
  assert.equal(record.status.toString(), 'Confirmed');
  assert.equal(record.confirmations.toNumber(), 2);
  assert.equal(record.digest.digest.toHex(), digest.digest);
  assert.equal((await api.call.reputationApi.credit(k.alice.address)).unwrap().toNumber(), 602);

  // An audited read by the patient, logged by the issuer's gateway. Forged
  // entries are refused: a read by someone the patient never granted, and
  // an entry written by an institution that does not hold the record.
  const { events: logged } = await sendAndWait(api,
    api.tx.ehrIndex.logAccess(recordId, k.ferdie.address, 'PatientView', null), k.alice);
  assert.ok(logged.some(({ event }) => api.events.ehrIndex.RecordAccessed.is(event)));
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.logAccess(recordId, k.bob.address, 'Treatment', null), k.alice),
    /ehrIndex\.NotReadable/);
  await assert.rejects(sendAndWait(api, api.tx.ehrIndex.logAccess(recordId, k.ferdie.address, 'PatientView', null),
    k.charlie), /ehrIndex\.NotIssuer/);
  assert.equal((await api.query.ehrIndex.accessCount(recordId)).toNumber(), 1);
  // An amendment that extends the version chain.
  const amended = stringToU8a('AES-256-GCM ciphertext of the corrected lab result');
  await sendAndWait(api, api.tx.ehrIndex.amendRecord(recordId,
    { algorithm: 'Sm3', digest: u8aToHex(sm3(amended)) }, pointer(2), amended.length, u8aToHex(new Uint8Array(32))), k.alice);
  const chain = await api.call.ehrIndexApi.versionChain(recordId + 1);
  assert.deepEqual(chain.map(([i]) => i.toNumber()), [recordId + 1, recordId]);
  assert.equal(chain[0][1].version.toNumber(), 2);
});
