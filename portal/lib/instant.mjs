// The instant path, grantee side: a record's data key and ciphertext straight
// from the grant's proxies and the record's gateway, each answering at once
// after checking the grant against the chain and journaling the read (which
// it logs on chain afterwards: `ehrIndex.logReads`).
//
//   const ready = await prepareInstant(api, grant, record);   // once per grant and record
//   const { plaintext } = await fetchInstant(umbral, ready, {
//     accessor, keys, sign, block, servers: { [proxyOrIssuerSs58]: url } });
//
// The grantee trusts no single server: the key fragment id each capsule
// fragment commits to must be the one the chain binds *that* proxy to
// (`keyFragmentIds(grant, proxy)`), so a fragment one proxy copied from
// another is refused, as is a second fragment from the same key fragment.
// The data key is opened with the threshold's first fragments before their
// Umbral proofs are checked: Umbral authenticates the key's ciphertext (from
// the chain, made by the patient) under the key the fragments give, so a key
// that opens is the right key, whatever the fragments were. It proves their
// combination, not each one: a fragment whose proof alone is bad, or bad
// fragments of colluding proxies whose errors cancel, go unreported (they
// cost the grantee nothing). Only if the key does not open is every fragment
// proved against the grant's delegation (and fragments beyond the threshold
// always are). The
// record's ciphertext is authenticated by its data key (AES-GCM). A proxy
// whose fragment fails is reported in `rejected`, with its answer: a fraud
// proof when the proxy signed it.
//
// Works in Node and in the browser: pass the loaded `@nucypher/umbral-pre`.

import { blake2AsU8a, decodeAddress, sr25519Verify } from '@polkadot/util-crypto';
import { bnToU8a, stringToU8a, u8aConcat } from '@polkadot/util';
import { hex, unhex, decryptRecord } from './pre.mjs';

/** What a grantee signs to ask proxy `proxy` (SS58) for a fragment. */
export const fragmentRequestMessage = (genesis, proxy, grant, record, accessor, purpose, block) =>
  `medchain-pre-reencrypt:v1:${genesis}:${proxy}:${grant}:${record}:${accessor}:${purpose}:${block}`;

/**
 * What a proxy signs with its answer (bytes): that it served `fragment` (hex)
 * of `record`'s data key to `accessor` (SS58) under `grant` on the chain with
 * genesis hash `genesis`. The runtime's `fragment_statement`, SCALE of
 * `(b"medchain-pre-fragment:v2", genesis, grant, record, accessor,
 * blake2_256(fragment))`: a grantee's fraud proof (`reportBadFragment`)
 * carries the proxy's signature of it.
 */
export const fragmentMessage = (genesis, grant, record, accessor, fragment) => u8aConcat(
  stringToU8a('medchain-pre-fragment:v2'), unhex(genesis),
  bnToU8a(grant, { bitLength: 64, isLe: true }), bnToU8a(record, { bitLength: 64, isLe: true }),
  decodeAddress(accessor), blake2AsU8a(unhex(fragment)));

/**
 * What a grantee signs once to ask several servers at once: the record's
 * gateway for its ciphertext and the grant's proxies for key fragments.
 * `asks` are the servers' `ask`s, in the grantee's order: each names its
 * method and server in clear (what a wallet shows its user) and commits to a
 * salt of its own. Each server is sent the list and only its own salt, so it
 * can prove it was asked but cannot pass the request on as another server's.
 */
export const instantRequestMessage = (genesis, grant, record, accessor, purpose, block, asks) =>
  `medchain-instant:v1:${genesis}:${grant}:${record}:${accessor}:${purpose}:${block}:${asks.join(',')}`;

/**
 * One server's ask: `<method>@<server SS58>#<digest>`, the digest BLAKE2-256
 * (0x hex) of `<method>:<server SS58>:<salt>`, the salt 16 random bytes in
 * lowercase 0x hex.
 */
export const ask = (method, server, salt) =>
  `${method}@${server}#${hex(blake2AsU8a(stringToU8a(`${method}:${server}:${salt}`)))}`;

/** A fresh salt for one ask. */
const newSalt = () => hex(globalThis.crypto.getRandomValues(new Uint8Array(16)));

/** What a reader signs to read a record at its issuer's gateway (`gateway`, SS58). */
export const recordRequestMessage = (genesis, gateway, record, accessor, purpose, block) =>
  `medchain-ehr-get:v2:${genesis}:${gateway}:${record}:${accessor}:${purpose}:${block}`;

/**
 * The id of the key fragment a capsule fragment was made with, from its wire
 * bytes (MessagePack `[e1, v1, id, precursor, proof]`, points as 33-byte
 * binaries): the 32 bytes at 73..105. `medchain-umbral`'s `cfrag_kfrag_id`
 * reads the same.
 */
export function cfragKfragId(bytes) {
  const expect = (at, want) => {
    if (want.some((b, i) => bytes[at + i] !== b)) throw new Error('not a capsule fragment of @nucypher/umbral-pre 0.10');
  };
  expect(0, [0x95, 0xc4, 33]);
  expect(36, [0xc4, 33]);
  expect(71, [0xc4, 32]);
  return bytes.slice(73, 105);
}

/**
 * What the grantee reads from the chain before it asks (once per grant and
 * record; it changes only when the grant does): the grant's purpose,
 * threshold and acknowledged proxies, the key fragment id each proxy is bound
 * to, the delegation's keys, the record's issuer and the capsule the grant's
 * fragments open.
 */
export async function prepareInstant(api, grant, record) {
  const g = (await api.query.proxyReencrypt.grants(grant)).unwrap();
  const patient = (await api.query.proxyReencrypt.keys(g.patient)).unwrap();
  const scopeKey = (await api.query.proxyReencrypt.grantKeys(grant)).unwrapOr(null);
  const found = await api.call.proxyReencryptApi.capsuleFor(grant, record);
  if (found.isNone) throw new Error(`record ${record} has no capsule grant ${grant} opens`);
  const [capsule, ciphertext] = found.unwrap();
  const proxies = g.acknowledged.map((p) => p.toString());
  const bound = {};
  for (const p of proxies) {
    const id = await api.query.proxyReencrypt.keyFragmentIds(grant, p);
    bound[p] = id.isSome ? id.unwrap().toHex() : null;
  }
  const entry = (await api.query.ehrIndex.records(record)).unwrap();
  // The grantee's key as the chain knows it: what fragments re-encrypt to.
  const grantee = (await api.query.proxyReencrypt.keys(g.grantee)).unwrap();
  // Frozen: what `fetchInstant` parses from it is kept by the object.
  return Object.freeze({
    genesis: api.genesisHash.toHex(),
    grant: Number(grant),
    record: Number(record),
    purpose: g.purpose.toString(),
    threshold: g.threshold.toNumber(),
    proxies: Object.freeze(proxies),
    bound: Object.freeze(bound),
    issuer: entry.issuer.toString(),
    verifyingKey: patient.verifyingKey.toHex(),
    delegatingKey: scopeKey ? scopeKey.publicKey.toHex() : patient.publicKey.toHex(),
    receivingKey: grantee.publicKey.toHex(),
    capsule: Object.freeze({ capsule: capsule.toHex(), ciphertext: ciphertext.toHex() }),
  });
}

/** A JSON-RPC call over HTTP; resolves to `result`, rejects with the server's error. */
export async function jsonRpc(url, method, params) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await res.json();
  if (body.error) {
    const e = new Error(`${method} at ${url}: ${body.error.message}`);
    e.code = body.error.code;
    throw e;
  }
  return body.result;
}

/** The grant's Umbral objects, by the `ready` they were parsed from. */
const parsed = new WeakMap();

/** Frees one `ready`'s parsed Umbral objects (the Wasm build keeps each until freed). */
function freeParsed(p) {
  for (const o of [p.capsule, p.verifying, p.delegating]) o.free();
}

/**
 * Frees a `ready`'s parsed objects once `ready` itself is collected: the
 * Wasm objects have no finalizers of their own, and a grantee that fetches
 * under many grants would otherwise keep every grant's capsule and keys in
 * Wasm memory for good. Each is registered with itself as the token, so an
 * explicit `forgetInstant` frees it once, not twice.
 */
const parsedFreed = new FinalizationRegistry(freeParsed);

/**
 * `ready`'s capsule and delegation keys as Umbral objects, parsed once per
 * `ready` (parsing a capsule checks its points: about 0.4 ms in Wasm, twice
 * per fetch otherwise). `prepareInstant` freezes `ready`, so what was parsed
 * stays what it holds. Freed when `ready` is collected, or by
 * `forgetInstant(ready)`.
 */
function parsedOnce(umbral, ready) {
  let p = parsed.get(ready);
  if (!p || p.umbral !== umbral) {
    if (p) forgetInstant(ready);
    // What was parsed before one that does not parse is freed.
    const made = [];
    const parse = (f) => { const o = f(); made.push(o); return o; };
    try {
      p = {
        umbral,
        capsule: parse(() => umbral.Capsule.fromBytes(unhex(ready.capsule.capsule))),
        verifying: parse(() => umbral.PublicKey.fromCompressedBytes(unhex(ready.verifyingKey))),
        delegating: parse(() => umbral.PublicKey.fromCompressedBytes(unhex(ready.delegatingKey))),
      };
    } catch (e) {
      for (const o of made) o.free();
      throw e;
    }
    parsed.set(ready, p);
    parsedFreed.register(ready, p, p);
  }
  return p;
}

/**
 * Frees what fetches under `ready` parsed (its capsule and keys, in Wasm
 * memory) now, rather than when `ready` is collected: for a grantee done
 * with a grant. `ready` stays usable; a later fetch parses it again.
 */
export function forgetInstant(ready) {
  const p = parsed.get(ready);
  if (!p) return;
  parsed.delete(ready);
  parsedFreed.unregister(p);
  freeParsed(p);
}

/**
 * The answer `a` rejected for `why`: a fraud proof (`fraud: true`) when the
 * failure is the proxy's own doing (`blames`) and the proxy signed the
 * answer for this grant, record and grantee, as the runtime checks a fraud
 * proof (sr25519 over the exact bytes); else it proves nothing against
 * anyone. A good fragment is good whoever signed it, so only rejected
 * answers have their signatures checked.
 */
function rejection(ready, accessor, a, why, blames) {
  let fraud = false;
  if (blames) {
    try {
      const statement = fragmentMessage(ready.genesis, ready.grant, ready.record, accessor, a.fragment);
      fraud = sr25519Verify(statement, unhex(a.signature), decodeAddress(a.proxy));
    } catch {
      fraud = false;
    }
  }
  return { proxy: a.proxy, why: blames && !fraud ? `${why}; not signed by the proxy it names` : why, answer: a, fraud };
}

/**
 * The checks of the proxies' answers that need no proof, in microseconds:
 * each answer is for this grant and record, from one of the grant's
 * proxies, its fragment parses and commits to the key fragment id the chain
 * binds that proxy to. Answers of proxies with a bound id come first.
 * Returns `{ candidates, rejected }`, each candidate `{ answer, cfrag, id }`
 * (an unverified `CapsuleFrag` and the key fragment id it commits to).
 * Two candidates may share an id: which one is good is known only once
 * proved (`proveFragments` keeps the first good one).
 */
function screenFragments(umbral, ready, accessor, answers) {
  const candidates = [];
  const rejected = [];
  const ordered = [...answers].sort((x, y) => (ready.bound[x.proxy] ? 0 : 1) - (ready.bound[y.proxy] ? 0 : 1));
  for (const a of ordered) {
    // Whether a failure below is the proxy's own doing, once it signed.
    let blames = true;
    try {
      if (a.grant !== ready.grant || a.record !== ready.record) {
        blames = false;
        throw new Error('an answer for another grant or record');
      }
      if (ready.bound[a.proxy] === undefined) {
        blames = false;
        throw new Error('not one of the grant\'s proxies');
      }
      const bytes = unhex(a.fragment);
      const id = hex(cfragKfragId(bytes));
      const bound = ready.bound[a.proxy];
      if (bound !== null && id !== bound.toLowerCase()) throw new Error('made with another proxy\'s key fragment (copied)');
      candidates.push({ answer: a, cfrag: umbral.CapsuleFrag.fromBytes(bytes), id });
    } catch (e) {
      rejected.push(rejection(ready, accessor, a, e.message ?? String(e), blames));
    }
  }
  return { candidates, rejected };
}

/**
 * Umbral's proof of each candidate fragment against the grant's delegation
 * to `receivingKey` (about 1.5 ms each in Wasm), in order, each key fragment
 * id used once: a candidate whose id a good fragment (or one in `used`, the
 * ids of fragments known good) already has is a second fragment of it, no
 * fraud. Returns `{ verified, rejected }`; a fragment that fails its proof is
 * the proxy's doing.
 */
function proveFragments(umbral, ready, receivingKey, accessor, candidates, used = new Set()) {
  const { capsule, verifying, delegating } = parsedOnce(umbral, ready);
  const receiving = umbral.PublicKey.fromCompressedBytes(unhex(receivingKey));
  const verified = [];
  const rejected = [];
  try {
    for (const c of candidates) {
      if (used.has(c.id)) {
        // The same proxy's fragment twice: no fraud.
        rejected.push(rejection(ready, accessor, c.answer, 'a second fragment from the same key fragment', false));
        continue;
      }
      // `verify` takes the fragment, verified or not: the candidate is spent.
      const { cfrag } = c;
      c.cfrag = null;
      try {
        verified.push(cfrag.verify(capsule, verifying, delegating, receiving));
        used.add(c.id);
      } catch (e) {
        rejected.push(rejection(ready, accessor, c.answer, e.message ?? String(e), true));
      }
    }
  } finally {
    receiving.free();
  }
  return { verified, rejected };
}

/**
 * Frees Umbral objects (the Wasm build keeps each until freed), and the
 * fragments of candidates not spent.
 */
function release(objects = [], candidates = []) {
  for (const o of objects) o.free();
  for (const c of candidates) {
    if (c.cfrag) c.cfrag.free();
    c.cfrag = null;
  }
}

/**
 * Checks the proxies' answers to `accessor`: each fragment commits to the key
 * fragment id the chain binds the proxy asked to, each id used once, and
 * passes Umbral's proof against the grant's delegation. Answers of proxies
 * with a bound id are checked first. Returns `{ verified, rejected }`; the
 * `VerifiedCapsuleFrag`s in `verified` are the caller's to `free()` (the
 * Wasm build keeps each until freed).
 *
 * A good fragment is good whoever signed it, so signatures are checked only
 * for the answers rejected: one signed by the proxy it came from, for this
 * grant, record and grantee, is `fraud: true`, a fraud proof the grantee
 * reports on chain (`reportBadFragment`), which costs the proxy; one that is
 * not proves nothing against anyone.
 */
export function checkFragments(umbral, ready, receivingKey, accessor, answers) {
  const screened = screenFragments(umbral, ready, accessor, answers);
  try {
    const proved = proveFragments(umbral, ready, receivingKey, accessor, screened.candidates);
    return { verified: proved.verified, rejected: [...screened.rejected, ...proved.rejected] };
  } finally {
    release([], screened.candidates);
  }
}

/**
 * The grant's data key opened with `keys`' secret from `cfrags` (threshold
 * many), or the error that stopped it. Umbral authenticates the key's
 * ciphertext (from the chain) under the key the fragments give (ChaCha20-
 * Poly1305): fragments that are not the grant's re-encryption to this
 * grantee give another key, and the key does not open.
 */
function openDataKey(umbral, ready, keys, cfrags) {
  const { delegating, capsule } = parsedOnce(umbral, ready);
  const secret = umbral.SecretKey.fromBEBytes(unhex(keys.secretKey));
  try {
    return { dataKey: umbral.decryptReencrypted(secret, delegating, capsule, cfrags, unhex(ready.capsule.ciphertext)) };
  } catch (e) {
    return { error: e instanceof Error ? e : new Error(String(e)) };
  } finally {
    secret.free();
  }
}

/**
 * The data key from the proxies' answers, proved no more than it must be.
 * The threshold's first fragments that pass the cheap checks are tried
 * first, unproved: a key that opens is the right one (see `openDataKey`), so
 * Umbral's proofs (1.5 ms each) are skipped on the path every honest fetch
 * takes. Fragments beyond the threshold are proved, so that a bad one is
 * still reported. If the key does not open, every fragment is proved, the
 * bad ones rejected (fraud proofs when signed), and the key opened with the
 * good ones if enough are left. Returns `{ dataKey, rejected }`, or
 * `{ error, rejected }` when the key does not open with enough good
 * fragments, or `{ verified, rejected }` when fewer than the threshold are
 * good (`verified` of them).
 */
function dataKeyFrom(umbral, ready, keys, accessor, answered) {
  const { candidates, rejected } = screenFragments(umbral, ready, accessor, answered);
  const t = ready.threshold;
  const made = [];
  try {
    // The first candidates of `t` different key fragments.
    const ids = new Set();
    const first = candidates.filter((c) => ids.size < t && !ids.has(c.id) && ids.add(c.id));
    if (first.length === t) {
      const unproved = first.map((c) => c.cfrag.skipVerification());
      made.push(...unproved);
      const opened = openDataKey(umbral, ready, keys, unproved);
      if (opened.dataKey) {
        const rest = proveFragments(umbral, ready, ready.receivingKey, accessor,
          candidates.filter((c) => !first.includes(c)), ids);
        made.push(...rest.verified);
        return { dataKey: opened.dataKey, rejected: [...rejected, ...rest.rejected] };
      }
    }
    const { verified, rejected: bad } = proveFragments(umbral, ready, ready.receivingKey, accessor, candidates);
    made.push(...verified);
    rejected.push(...bad);
    if (verified.length < t) return { verified: verified.length, rejected };
    return { ...openDataKey(umbral, ready, keys, verified.slice(0, t)), rejected };
  } finally {
    release(made, candidates);
  }
}

/**
 * Fetches the record's data key from the grant's proxies and its ciphertext
 * from its issuer's gateway, all at once, and decrypts.
 *
 * - `accessor`: the grantee's SS58 address; `keys`: its Umbral keys
 *   (`{ secretKey, publicKey }` hex);
 * - `sign(message) -> Promise<hex>`: the grantee's sr25519 signature of a
 *   string (a keyring pair's `sign`, or a wallet's `signRaw`), asked once per
 *   fetch: one request (`instantRequestMessage`) asks every server;
 * - `block`: a recent block number (the requests expire 20 blocks after);
 * - `servers`: the URL of each proxy's and of the issuer's gateway, by SS58.
 *
 * The gateway is asked first (its answer, the ciphertext, is the largest and
 * takes longest); the proxies' fragments are checked, and the data key
 * opened, while the ciphertext is still on its way. Umbral's proofs of the
 * fragments the key opened with are not checked (see `dataKeyFrom`).
 *
 * Returns `{ plaintext, dataKey, checkedAt, fragments, rejected, answeredIn }`
 * (`answeredIn`: ms from the first signature to the last answer); throws if
 * fewer than the threshold of fragments verify or the gateway refuses, the
 * error carrying `rejected` too (report its fraud proofs either way).
 */
export async function fetchInstant(umbral, ready, { accessor, keys, sign, block, servers, call = jsonRpc }) {
  const started = performance.now();
  // Checked before anything is asked: a read served is logged on chain.
  if (keys.publicKey !== ready.receivingKey) throw new Error('these keys are not the grantee\'s keys on chain');
  const proxies = ready.proxies.filter((p) => servers[p]);
  if (proxies.length < ready.threshold) throw new Error(`only ${proxies.length} of the grant's proxies have a known URL`);
  if (!servers[ready.issuer]) throw new Error('the record\'s gateway has no known URL');
  let answeredIn = 0;
  // Stamped as each answer settles, before any of the grantee's own work
  // on it.
  const stamp = () => { answeredIn = Math.max(answeredIn, performance.now() - started); };
  // One signature for every server: each ask names its method, server and
  // a salt of its own.
  const asked = [{ method: 'ehr_getRecord', server: ready.issuer },
    ...proxies.map((server) => ({ method: 'pre_reencrypt', server }))]
    .map((a) => { const salt = newSalt(); return { ...a, salt, ask: ask(a.method, a.server, salt) }; });
  const asks = asked.map((a) => a.ask);
  const signature = await sign(instantRequestMessage(ready.genesis, ready.grant, ready.record, accessor, ready.purpose,
    block, asks));
  const send = ({ server, method, salt }, params) =>
    call(servers[server], method, { ...params, accessor, block, signature, asks, salt })
      .then((answer) => { stamp(); return answer; }, (error) => { stamp(); throw error; });
  // Settled either way, so that a refusal of one is never left unheard.
  const content = send(asked[0], { record: ready.record, purpose: ready.purpose, grant: ready.grant })
    .then((record) => ({ record }), (error) => ({ error }));
  const fragments = asked.slice(1).map((a) => send(a, { grant: ready.grant, record: ready.record })
    // The proxy is the one asked, whatever the answer says.
    .then((answer) => ({ ...answer, proxy: a.server }), (error) => ({ proxy: a.server, error })));
  const answers = await Promise.all(fragments);
  const answered = answers.filter((a) => !a.error);
  // Opened while the ciphertext is on its way; a failure is thrown after
  // the gateway's answer is in (its refusal first), with `rejected`.
  const { dataKey, error: unopened, verified, rejected } = dataKeyFrom(umbral, ready, keys, accessor, answered);
  for (const a of answers.filter((a) => a.error)) rejected.push({ proxy: a.proxy, why: a.error.message, fraud: false });
  // A failure carries what the proxies answered: fraud proofs among them.
  const fail = (e) => Object.assign(e, { rejected });
  const served = await content;
  if (served.error) throw fail(served.error);
  const { record } = served;
  if (unopened) throw fail(unopened);
  if (!dataKey) {
    throw fail(new Error(`${verified} of ${ready.threshold} fragments verified: ${rejected.map((r) => r.why).join('; ')}`));
  }
  const plaintext = await decryptRecord(dataKey, unhex(record.ciphertext));
  const checkedAt = Math.min(record.checked_at ?? Infinity, ...answered.map((a) => a.checked_at));
  return { plaintext, dataKey, checkedAt, fragments: answered, rejected, answeredIn };
}
