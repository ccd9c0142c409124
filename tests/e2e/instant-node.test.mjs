// `portal/lib/instant-node.mjs`: the Node grantee's JSON-RPC calls against
// servers that answer, refuse, send too much, send no JSON, stop mid-answer,
// send a byte now and then or nothing at all.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { nodeJsonRpc, nodeJsonRpcWith } from '../../portal/lib/instant-node.mjs';
import { jsonRpc } from '../../portal/lib/instant.mjs';

const seen = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const asked = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    seen.push({ asked, socket: req.socket.remotePort });
    const answer = (o) => { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify(o)); };
    switch (asked.method) {
      case 'echo': return answer({ jsonrpc: '2.0', id: asked.id, result: asked.params });
      case 'refuse': return answer({ jsonrpc: '2.0', id: asked.id, error: { code: 1, message: 'grant revoked' } });
      case 'big': return answer({ jsonrpc: '2.0', id: asked.id, result: 'ab'.repeat(4096) });
      case 'html': res.statusCode = 413; return res.end('<html>too large</html>');
      case 'null': res.setHeader('Content-Type', 'application/json'); return res.end('null');
      case 'cut':
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Content-Length', '1000');
        res.write('{"jsonrpc":"2.0","id":1,"result":"');
        return setTimeout(() => res.destroy(), 50);
      case 'drip': { // a byte every 50 ms, never the whole answer
        res.setHeader('Content-Type', 'application/json');
        const drip = setInterval(() => res.write(' '), 50);
        res.on('close', () => clearInterval(drip));
        return undefined;
      }
      default: return undefined; // never answers
    }
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}`;
after(() => { server.closeAllConnections(); server.close(); });

test('a call gets the result, sends what fetch-based jsonRpc sends, and reuses its connection', async () => {
  const params = { grant: 1, record: 2, asks: ['a', 'b'] };
  assert.deepEqual(await nodeJsonRpc(url, 'echo', params), params);
  assert.deepEqual(await jsonRpc(url, 'echo', params), params);
  const [mine, theirs] = seen.slice(-2).map((s) => s.asked);
  assert.deepEqual(mine, theirs, 'the same JSON-RPC request');
  await nodeJsonRpc(url, 'echo', params);
  const sockets = seen.filter((s) => s.asked.method === 'echo').map((s) => s.socket);
  assert.equal(sockets[0], sockets[2], 'kept alive');
});

test('a refusal rejects as jsonRpc does, with the server\'s code', async () => {
  const mine = await nodeJsonRpc(url, 'refuse', {}).then(() => null, (e) => e);
  const theirs = await jsonRpc(url, 'refuse', {}).then(() => null, (e) => e);
  assert.equal(mine.message, theirs.message);
  assert.equal(mine.code, 1);
});

test('an answer too large, not JSON, cut off, too late or to a URL that is not HTTP is refused, not waited for', async () => {
  await assert.rejects(nodeJsonRpcWith({ maxAnswer: 1024 })(url, 'big', {}), /an answer over 1024 bytes/);
  assert.equal((await nodeJsonRpc(url, 'big', {})).length, 8192, 'within the default');
  await assert.rejects(nodeJsonRpc(url, 'html', {}), /HTTP 413, not a JSON-RPC answer/);
  await assert.rejects(nodeJsonRpc(url, 'null', {}), /HTTP 200, not a JSON-RPC answer/);
  await assert.rejects(nodeJsonRpc(url, 'cut', {}), /the answer was cut off/);
  await assert.rejects(nodeJsonRpcWith({ timeoutMs: 200 })(url, 'silent', {}), /no whole answer within 200 ms/);
  const dripped = Date.now();
  await assert.rejects(nodeJsonRpcWith({ timeoutMs: 300 })(url, 'drip', {}), /no whole answer within 300 ms/);
  assert.ok(Date.now() - dripped < 2000, 'not kept waiting byte by byte');
  await assert.rejects(nodeJsonRpc('ftp://127.0.0.1/', 'echo', {}), /not an http\(s\) URL/);
});
