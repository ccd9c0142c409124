// The instant path's JSON-RPC calls for grantees that run in Node (an
// institution's back end, scripts/bench-pre.mjs): `node:http`/`node:https`,
// connections kept alive where a server allows it (medchain-record's
// gateway closes each). Node's `fetch` (undici) spends about half a
// millisecond more per call on this machine, and a fetch asks several
// servers at once (scripts/bench-pre.mjs prints a lone fetch both ways); a
// browser's `fetch` is its own and `jsonRpc` (instant.mjs) uses it.
//
//   const { plaintext } = await fetchInstant(umbral, ready, { ..., call: nodeJsonRpc });
import http from 'node:http';
import https from 'node:https';

/** Connections kept alive between calls, per protocol (and so per server). */
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

/**
 * A JSON-RPC call over HTTP(S) with `node:http`, as `jsonRpc` makes it:
 * resolves to `result`, rejects with the server's error (its `code` kept).
 * Refuses an answer over `maxAnswer` bytes (a gateway's largest, a record's
 * ciphertext in hex, is far below the default 64 MiB) and gives up when
 * the whole answer is not in within `timeoutMs` (a server that sends a byte
 * now and then is not waited for either).
 */
export function nodeJsonRpcWith({ maxAnswer = 64 * 1024 * 1024, timeoutMs = 30_000 } = {}) {
  return (url, method, params) => new Promise((settled, failed) => {
    // The deadline, cleared as the call settles either way.
    let deadline;
    const resolve = (v) => { clearTimeout(deadline); settled(v); };
    const reject = (e) => { clearTimeout(deadline); failed(e); };
    const target = new URL(url);
    const client = { 'http:': http, 'https:': https }[target.protocol];
    if (!client) {
      reject(new Error(`${method} at ${url}: not an http(s) URL`));
      return;
    }
    const fail = (why) => new Error(`${method} at ${url}: ${why}`);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
    const req = client.request(target, {
      method: 'POST',
      agent: agents[target.protocol],
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (chunk) => {
        size += chunk.length;
        if (size > maxAnswer) res.destroy(fail(`an answer over ${maxAnswer} bytes`));
        else chunks.push(chunk);
      });
      // Destroyed here (too large), or cut off by the server.
      res.on('error', (e) => reject(e.message.startsWith(`${method} at`) ? e : fail(`the answer was cut off (${e.message})`)));
      res.on('end', () => {
        let answer;
        try {
          answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          reject(fail(`HTTP ${res.statusCode}, not a JSON-RPC answer`));
          return;
        }
        if (answer === null || typeof answer !== 'object') reject(fail(`HTTP ${res.statusCode}, not a JSON-RPC answer`));
        else if (answer.error) reject(Object.assign(fail(answer.error.message), { code: answer.error.code }));
        else resolve(answer.result);
      });
      // Cut off before its end (the server gone mid-answer): refused, not
      // left waiting (a settled promise ignores this).
      res.on('close', () => { if (!res.complete) reject(fail('the answer was cut off')); });
    });
    deadline = setTimeout(() => {
      reject(fail(`no whole answer within ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);
    req.on('error', reject);
    req.end(body);
  });
}

/** `nodeJsonRpcWith()`'s call, with its defaults: pass as `fetchInstant`'s `call`. */
export const nodeJsonRpc = nodeJsonRpcWith();
