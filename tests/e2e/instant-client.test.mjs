// The grantee's side of the instant path (`portal/lib/instant.mjs`,
// `fetchInstant`) against servers that lie or refuse, with real Umbral
// material and no chain: what it asks, in which order, and what a failure
// carries (the proxies' answers, fraud proofs among them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import * as umbral from '@nucypher/umbral-pre';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fetchInstant, checkFragments, fragmentMessage, ask, instantRequestMessage, forgetInstant } from '../../portal/lib/instant.mjs';
import { hex } from '../../portal/lib/pre.mjs';

await cryptoWaitReady();
const keyring = new Keyring({ type: 'sr25519' });
const [proxyA, proxyB, proxyC, issuer, grantee] = ['//A', '//B', '//C', '//Issuer', '//Grantee']
  .map((uri) => keyring.addFromUri(uri).address);

/**
 * A patient's data key sealed to its key, a 2-of-3 delegation to the
 * grantee, and each proxy's honest fragment.
 */
function material() {
  const patient = umbral.SecretKey.random();
  const signer = new umbral.Signer(umbral.SecretKey.random());
  const granteeKey = umbral.SecretKey.random();
  const [capsule, sealed] = umbral.encrypt(patient.publicKey(), new Uint8Array(32).fill(7));
  const kfrags = umbral.generateKFrags(patient, granteeKey.publicKey(), signer, 2, 3, true, true);
  const fragments = kfrags.map((k) => hex(umbral.reencrypt(capsule, k).toBytes()));
  const ready = {
    genesis: `0x${'11'.repeat(32)}`,
    grant: 1,
    record: 2,
    purpose: 'Treatment',
    threshold: 2,
    proxies: [proxyA, proxyB, proxyC],
    bound: { [proxyA]: null, [proxyB]: null, [proxyC]: null },
    issuer,
    verifyingKey: hex(signer.verifyingKey().toCompressedBytes()),
    delegatingKey: hex(patient.publicKey().toCompressedBytes()),
    receivingKey: hex(granteeKey.publicKey().toCompressedBytes()),
    capsule: { capsule: hex(capsule.toBytes()), ciphertext: hex(sealed) },
  };
  const keys = { secretKey: hex(granteeKey.toBEBytes()), publicKey: ready.receivingKey };
  // Proxy i's fragment of another capsule of the same patient: made with
  // the right key fragment, but not the grant's record.
  const [otherCapsule] = umbral.encrypt(patient.publicKey(), new Uint8Array(32).fill(9));
  const foreign = (i) => hex(umbral.reencrypt(otherCapsule, kfrags[i]).toBytes());
  return { ready, keys, fragments, foreign, dataKey: new Uint8Array(32).fill(7) };
}

/** A fragment whose proof was altered on the way (its points are intact). */
const altered = (fragment) => fragment.slice(0, -2) + (fragment.endsWith('00') ? '01' : '00');

/** `plaintext` sealed under `dataKey` as a record's ciphertext is (AES-GCM, IV first). */
async function sealRecord(dataKey, plaintext) {
  const key = await crypto.subtle.importKey('raw', dataKey, 'AES-GCM', false, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, plaintext));
  return hex(new Uint8Array([...iv, ...sealed]));
}

/** Umbral with the fragment proofs it checks counted (`proofs`). */
function countingProofs() {
  const c = { ...umbral, proofs: 0 };
  c.CapsuleFrag = {
    fromBytes: (bytes) => {
      const f = umbral.CapsuleFrag.fromBytes(bytes);
      const verify = f.verify.bind(f);
      f.verify = (...args) => { c.proofs += 1; return verify(...args); };
      return f;
    },
  };
  return c;
}

/**
 * Servers at `url-<address>` answering as `answer(method, address)` says
 * (a value, or an Error to refuse); every call is recorded.
 */
function servers(answer) {
  const calls = [];
  const urls = Object.fromEntries([proxyA, proxyB, proxyC, issuer].map((a) => [a, `url-${a}`]));
  const call = async (url, method, params) => {
    const who = url.slice(4);
    calls.push({ method, who, params });
    const a = answer(method, who);
    if (a instanceof Error) throw a;
    return a;
  };
  return { calls, urls, call };
}

const fetchWith = (ready, keys, { urls, call }) => fetchInstant(umbral, ready, {
  accessor: grantee, keys, block: 5, servers: urls, call, sign: async () => `0x${'00'.repeat(64)}`,
});

/** `ask('pre_reencrypt', proxyA, 0x1f…1f)`, pinned here and in medchain-record's gateway tests. */
const ASK_VECTOR = 'pre_reencrypt@5HKahGmFjQDV7wseA3J33646dc71WRvoJ72KSHPAN1kCYqki'
  + '#0xda788f3ab6df3f8be8cc110367d114837f35927a836936d5de627acdd3f6592c';

const fragmentAnswer = (fragment) => ({ grant: 1, record: 2, fragment, checked_at: 4, signature: `0x${'00'.repeat(64)}` });

test('a fetch with keys that are not the grantee\'s on chain asks no server (nothing is served, nothing logged)', async () => {
  const { ready } = material();
  const other = umbral.SecretKey.random();
  const s = servers(() => { throw new Error('asked'); });
  await assert.rejects(fetchWith(ready, { secretKey: hex(other.toBEBytes()),
    publicKey: hex(other.publicKey().toCompressedBytes()) }, s), /not the grantee's keys on chain/);
  assert.equal(s.calls.length, 0);
});

test('the gateway is asked first, and its refusal is what a failed fetch reports, with the proxies\' answers', async () => {
  const { ready, keys, fragments, foreign } = material();
  const s = servers((method, who) => {
    if (method === 'ehr_getRecord') return Object.assign(new Error('ehr_getRecord: grant revoked'), { code: 1 });
    const i = [proxyA, proxyB, proxyC].indexOf(who);
    return fragmentAnswer(i === 0 ? foreign(0) : fragments[i]);
  });
  const error = await fetchWith(ready, keys, s).then(() => null, (e) => e);
  assert.ok(error, 'the fetch fails');
  assert.match(error.message, /grant revoked/);
  assert.equal(s.calls[0].method, 'ehr_getRecord', 'the gateway first');
  assert.equal(s.calls.length, 4);
  // Proxy A's bad fragment is reported, unsigned by A: no fraud proof.
  assert.deepEqual(error.rejected.map((r) => [r.proxy, r.fraud]), [[proxyA, false]]);
});

test('one signature asks every server, each sent only its own salt: no server can pass the request on as another\'s', async () => {
  const { ready, keys } = material();
  const s = servers(() => Object.assign(new Error('stop'), { code: 1 }));
  const signed = [];
  await assert.rejects(fetchInstant(umbral, ready, { accessor: grantee, keys, block: 5, servers: s.urls, call: s.call,
    sign: async (m) => { signed.push(m); return `0x${'00'.repeat(64)}`; } }), /stop/);
  assert.equal(signed.length, 1, 'one signature per fetch');
  assert.equal(s.calls.length, 4);
  const { asks } = s.calls[0].params;
  assert.equal(signed[0], instantRequestMessage(ready.genesis, ready.grant, ready.record, grantee, ready.purpose, 5, asks));
  // What the wallet shows: every server and what it is asked for, in clear.
  assert.deepEqual(asks.map((a) => a.split('#')[0]),
    [`ehr_getRecord@${issuer}`, ...[proxyA, proxyB, proxyC].map((p) => `pre_reencrypt@${p}`)]);
  const salts = new Set();
  for (const { method, who, params } of s.calls) {
    assert.deepEqual(params.asks, asks, 'every server sees the same list');
    assert.match(params.salt, /^0x[0-9a-f]{32}$/);
    salts.add(params.salt);
    // Its own ask is in the list; with its salt it asks no other server,
    // and no other method of its own.
    assert.ok(asks.includes(ask(method, who, params.salt)), `${method} at ${who}`);
    for (const other of [proxyA, proxyB, proxyC, issuer].filter((a) => a !== who)) {
      for (const m of ['ehr_getRecord', 'pre_reencrypt']) assert.ok(!asks.includes(ask(m, other, params.salt)));
    }
    const otherMethod = method === 'ehr_getRecord' ? 'pre_reencrypt' : 'ehr_getRecord';
    assert.ok(!asks.includes(ask(otherMethod, who, params.salt)));
  }
  assert.equal(salts.size, 4, 'a salt of its own for each server');
});

test('a grant\'s capsule is parsed once per prepared grant, not on every fetch', async () => {
  const { ready, keys, fragments } = material();
  // Umbral with its capsule parser counted.
  const counting = () => {
    const c = { ...umbral, parses: 0 };
    c.Capsule = { fromBytes: (bytes) => { c.parses += 1; return umbral.Capsule.fromBytes(bytes); } };
    return c;
  };
  const s = servers((method, who) => (method === 'ehr_getRecord'
    ? Object.assign(new Error('no record'), { code: 1 })
    : fragmentAnswer(fragments[[proxyA, proxyB, proxyC].indexOf(who)])));
  const fetchWithUmbral = (u, r) => fetchInstant(u, r, { accessor: grantee, keys, block: 5, servers: s.urls,
    call: s.call, sign: async () => `0x${'00'.repeat(64)}` });
  const u = counting();
  // Each fetch checks the fragments and opens the data key (the gateway's
  // refusal comes after): both need the capsule.
  await assert.rejects(fetchWithUmbral(u, ready), /no record/);
  await assert.rejects(fetchWithUmbral(u, ready), /no record/);
  assert.equal(u.parses, 1, 'once for two fetches');
  // Another prepared grant (a copy), or another Umbral module: parsed again.
  await assert.rejects(fetchWithUmbral(u, { ...ready }), /no record/);
  assert.equal(u.parses, 2);
  const other = counting();
  await assert.rejects(fetchWithUmbral(other, ready), /no record/);
  assert.equal(other.parses, 1);
});

/**
 * Umbral with every capsule and key it parses for `ready` kept in `made`, to
 * see whether each was freed (the grantee's own key, parsed and freed by each
 * proof, is not kept).
 */
function recordingParses(ready) {
  const u = { ...umbral, made: [] };
  const keep = (o) => { u.made.push(o); return o; };
  u.Capsule = { fromBytes: (bytes) => keep(umbral.Capsule.fromBytes(bytes)) };
  u.PublicKey = {
    fromCompressedBytes: (bytes) => (hex(bytes) === ready.receivingKey
      ? umbral.PublicKey.fromCompressedBytes(bytes) : keep(umbral.PublicKey.fromCompressedBytes(bytes))),
  };
  return u;
}

/** wasm-bindgen zeroes an object's pointer when it is freed. */
const freed = (o) => o.__wbg_ptr === 0;

test('what a prepared grant parsed is freed in Wasm: at once by forgetInstant, and when the grant is collected', async () => {
  const { ready, keys, fragments } = material();
  const s = servers((method, who) => (method === 'ehr_getRecord'
    ? Object.assign(new Error('no record'), { code: 1 })
    : fragmentAnswer(fragments[[proxyA, proxyB, proxyC].indexOf(who)])));
  const fetchWithUmbral = (u, r) => fetchInstant(u, r, { accessor: grantee, keys, block: 5, servers: s.urls,
    call: s.call, sign: async () => `0x${'00'.repeat(64)}` });
  const u = recordingParses(ready);
  await assert.rejects(fetchWithUmbral(u, ready), /no record/);
  assert.equal(u.made.length, 3, 'the capsule, the verifying and the delegating key');
  assert.ok(!u.made.some(freed), 'kept for the next fetch');
  forgetInstant(ready);
  assert.ok(u.made.every(freed), 'freed at once');
  forgetInstant(ready); // nothing left to free: no double free
  // Still usable: parsed again.
  await assert.rejects(fetchWithUmbral(u, ready), /no record/);
  assert.equal(u.made.length, 6);
  assert.ok(!u.made.slice(3).some(freed));
  // Fetched with another Umbral module: what the first parsed is freed.
  await assert.rejects(fetchWithUmbral(recordingParses(ready), ready), /no record/);
  assert.ok(u.made.slice(3).every(freed), 'the first module\'s objects freed when parsed anew');
  // A grant whose delegating key does not parse: the capsule and verifying
  // key parsed before it are freed, and the fetch fails.
  const broken = { ...ready, delegatingKey: `0x02${'00'.repeat(32)}` };
  const partly = recordingParses(broken);
  await assert.rejects(fetchWithUmbral(partly, broken));
  assert.equal(partly.made.length, 2);
  assert.ok(partly.made.every(freed), 'nothing left behind by a grant that does not parse');
  // A prepared grant no longer referenced: its objects are freed once it is
  // collected.
  const dropped = { ...ready };
  const collected = recordingParses(dropped);
  await (async () => {
    const gone = { ...dropped };
    await assert.rejects(fetchWithUmbral(collected, gone), /no record/);
  })();
  assert.equal(collected.made.length, 3);
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  for (let i = 0; i < 100 && !collected.made.every(freed); i += 1) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(collected.made.every(freed), 'freed when the grant was collected');
});

test('an ask and the signed message are byte for byte what the servers check (the vector medchain-record\'s tests pin)', () => {
  const salt = `0x${'1f'.repeat(16)}`;
  const a = ask('pre_reencrypt', proxyA, salt);
  assert.equal(a, ASK_VECTOR);
  assert.equal(instantRequestMessage('0x01', 3, 7, grantee, 'Treatment', 100, [a]),
    `medchain-instant:v1:0x01:3:7:${grantee}:Treatment:100:${ASK_VECTOR}`);
});

test('a data key that cannot be opened fails the fetch after the gateway answered, still carrying the rejected answers', async () => {
  const { ready, keys, fragments } = material();
  // Keys that claim the grantee's public key with another secret: every
  // fragment verifies (against the public key), the key does not open.
  const liar = { ...keys, secretKey: hex(umbral.SecretKey.random().toBEBytes()) };
  const s = servers((method, who) => {
    if (method === 'ehr_getRecord') return { record: 2, ciphertext: '0x00', checked_at: 4 };
    const i = [proxyA, proxyB, proxyC].indexOf(who);
    return fragmentAnswer(i === 2 ? altered(fragments[2]) : fragments[i]);
  });
  const error = await fetchWith(ready, liar, s).then(() => null, (e) => e);
  assert.ok(error, 'the fetch fails');
  assert.doesNotMatch(error.message, /fragments verified/, 'two fragments did verify');
  assert.deepEqual(error.rejected.map((r) => r.proxy), [proxyC]);
  // The honest keys open the same answers.
  const honest = servers((method, who) => {
    if (method === 'ehr_getRecord') return Object.assign(new Error('stop after the key'), { code: 1 });
    return fragmentAnswer(fragments[[proxyA, proxyB, proxyC].indexOf(who)]);
  });
  const refused = await fetchWith(ready, keys, honest).then(() => null, (e) => e);
  assert.match(refused.message, /stop after the key/);
  assert.deepEqual(refused.rejected, []);
});

test('an honest fetch checks no proof of the fragments its key opened with, only of those beyond the threshold', async () => {
  const { ready, keys, fragments, dataKey } = material();
  const plaintext = new TextEncoder().encode('the record');
  const ciphertext = await sealRecord(dataKey, plaintext);
  const answering = (proxies) => servers((method, who) => {
    if (method === 'ehr_getRecord') return { record: 2, ciphertext, checked_at: 4 };
    const i = proxies.indexOf(who);
    return i < 0 ? Object.assign(new Error('not serving'), { code: 1 }) : fragmentAnswer(fragments[i]);
  });
  const fetchCounting = (u, s) => fetchInstant(u, ready, { accessor: grantee, keys, block: 5, servers: s.urls,
    call: s.call, sign: async () => `0x${'00'.repeat(64)}` });
  // Two of three proxies answer: the key opens with both, unproved.
  const two = countingProofs();
  const got = await fetchCounting(two, answering([proxyA, proxyB]));
  assert.deepEqual(got.plaintext, plaintext);
  assert.deepEqual(got.dataKey, dataKey);
  assert.equal(two.proofs, 0, 'the key opening proves the fragments it opened with');
  assert.deepEqual(got.rejected.map((r) => r.proxy), [proxyC], 'the proxy that refused');
  // All three answer: the third is proved, so that a bad one is reported.
  const three = countingProofs();
  const all = await fetchCounting(three, answering([proxyA, proxyB, proxyC]));
  assert.deepEqual(all.plaintext, plaintext);
  assert.equal(three.proofs, 1);
  assert.deepEqual(all.rejected, []);
});

test('a proxy that serves a fragment of another of the patient\'s records is caught: every fragment is then proved, its fraud reported, the key opened with the others', async () => {
  const { ready, keys, fragments, foreign, dataKey } = material();
  const plaintext = new TextEncoder().encode('the record');
  const ciphertext = await sealRecord(dataKey, plaintext);
  const pairA = keyring.addFromUri('//A');
  // Proxy A signs its bad answer, as every proxy signs its answers.
  const bad = foreign(0);
  const signedBad = { ...fragmentAnswer(bad),
    signature: hex(pairA.sign(fragmentMessage(ready.genesis, ready.grant, ready.record, grantee, bad))) };
  const s = servers((method, who) => {
    if (method === 'ehr_getRecord') return { record: 2, ciphertext, checked_at: 4 };
    const i = [proxyA, proxyB, proxyC].indexOf(who);
    return i === 0 ? signedBad : fragmentAnswer(fragments[i]);
  });
  const u = countingProofs();
  const got = await fetchInstant(u, ready, { accessor: grantee, keys, block: 5, servers: s.urls, call: s.call,
    sign: async () => `0x${'00'.repeat(64)}` });
  assert.deepEqual(got.plaintext, plaintext, 'opened with B\'s and C\'s fragments');
  assert.equal(u.proofs, 3, 'the key did not open with A\'s and B\'s: all three proved');
  assert.deepEqual(got.rejected.map((r) => [r.proxy, r.fraud]), [[proxyA, true]], 'a fraud proof against A');
  // Two proxies only, one of them bad: nothing opens, the fraud still reported.
  const twoOnly = servers((method, who) => {
    if (method === 'ehr_getRecord') return { record: 2, ciphertext, checked_at: 4 };
    if (who === proxyC) return Object.assign(new Error('not serving'), { code: 1 });
    return who === proxyA ? signedBad : fragmentAnswer(fragments[1]);
  });
  const error = await fetchWith(ready, keys, twoOnly).then(() => null, (e) => e);
  assert.match(error?.message ?? 'served', /1 of 2 fragments verified/);
  assert.deepEqual(error.rejected.filter((r) => r.fraud).map((r) => r.proxy), [proxyA]);
});

test('a fragment whose proof alone was altered, its re-encryption right, opens the key and is not reported (it cost the grantee nothing)', async () => {
  const { ready, keys, fragments, dataKey } = material();
  const plaintext = new TextEncoder().encode('the record');
  const ciphertext = await sealRecord(dataKey, plaintext);
  const s = servers((method, who) => {
    if (method === 'ehr_getRecord') return { record: 2, ciphertext, checked_at: 4 };
    if (who === proxyC) return Object.assign(new Error('not serving'), { code: 1 });
    return fragmentAnswer(who === proxyA ? altered(fragments[0]) : fragments[1]);
  });
  const got = await fetchWith(ready, keys, s);
  assert.deepEqual(got.plaintext, plaintext);
  assert.deepEqual(got.rejected.map((r) => r.proxy), [proxyC]);
  // Proved on its own, the same fragment fails: it is the proof that is bad.
  const { verified, rejected } = checkFragments(umbral, ready, ready.receivingKey, grantee,
    [{ ...fragmentAnswer(altered(fragments[0])), proxy: proxyA }]);
  assert.equal(verified.length, 0);
  assert.equal(rejected.length, 1);
});

test('a bad fragment that comes first under a good one\'s key fragment id does not push the good one out', async () => {
  const { ready, keys, fragments, foreign, dataKey } = material();
  const plaintext = new TextEncoder().encode('the record');
  const ciphertext = await sealRecord(dataKey, plaintext);
  // Proxy A answers first with a fragment of another capsule, made with B's
  // key fragment (no id is bound here, as for a grant made before binding).
  const s = servers((method, who) => {
    if (method === 'ehr_getRecord') return { record: 2, ciphertext, checked_at: 4 };
    const i = [proxyA, proxyB, proxyC].indexOf(who);
    return fragmentAnswer(i === 0 ? foreign(1) : fragments[i]);
  });
  const got = await fetchWith(ready, keys, s);
  assert.deepEqual(got.plaintext, plaintext, 'opened with B\'s and C\'s fragments');
  assert.deepEqual(got.rejected.map((r) => r.proxy), [proxyA]);
  assert.doesNotMatch(got.rejected[0].why, /second fragment/, 'refused for its proof, not for B\'s id');
});
