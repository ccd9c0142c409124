#!/usr/bin/env node
// Serves the patient portal (portal/): bundles portal/src/app.mjs with
// esbuild from the repository's npm packages (no CDN) and serves it with the
// Umbral Wasm module on localhost.
//
//   node scripts/portal.mjs [--port 8080] [--rpc ws://127.0.0.1:9944] [--genesis 0x…]
//
// The portal is pinned to one chain: config.json (served beside the page)
// holds the node to use and the chain's genesis hash, and the page refuses
// a node of any other chain, `?rpc=` included. Pass the genesis hash you
// trust with --genesis; without it, it is read from --rpc at start (trust
// on first use: run it against your own node). Open the printed address in a
// browser with a Polkadot wallet extension.
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { join, resolve, extname } from 'node:path';
import { homedir } from 'node:os';
import { build } from 'esbuild';

const ROOT = resolve(new URL('..', import.meta.url).pathname);

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** Bundles the portal into `outDir`; returns the bundle's path. */
export async function bundlePortal(outDir = join(homedir(), '.cache/medchain/portal')) {
  await mkdir(outDir, { recursive: true });
  const outfile = join(outDir, 'app.js');
  await build({
    entryPoints: [join(ROOT, 'portal/src/app.mjs')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };

/** The genesis hash of the node at `rpc` (ws:// or http://). */
export async function genesisOf(rpc) {
  const url = rpc.replace(/^ws/, 'http');
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_getBlockHash', params: [0] }) });
  return (await res.json()).result;
}

/**
 * Starts the HTTP server for the portal pinned to `genesisHash`, using node
 * `rpc` by default; resolves with { port, close() }.
 */
export async function servePortal({ port = 8080, host = '127.0.0.1', rpc = 'ws://127.0.0.1:9944', genesisHash } = {}) {
  if (!/^0x[0-9a-f]{64}$/.test(genesisHash || '')) throw new Error('the portal needs the genesis hash it is pinned to');
  const config = JSON.stringify({ rpc, genesisHash });
  const bundle = await bundlePortal();
  const files = {
    '/': join(ROOT, 'portal/index.html'),
    '/index.html': join(ROOT, 'portal/index.html'),
    '/portal.css': join(ROOT, 'portal/portal.css'),
    '/app.js': bundle,
    '/umbral_pre_wasm_bg.wasm': join(ROOT, 'node_modules/@nucypher/umbral-pre/pkg-bundler/umbral_pre_wasm_bg.wasm'),
  };
  const server = createServer(async (req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    if (pathname === '/config.json') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(config);
      return;
    }
    const path = files[pathname];
    if (!path) {
      res.writeHead(404).end('not found');
      return;
    }
    try {
      const body = await readFile(path);
      let text = body;
      if (path.endsWith('index.html')) {
        text = body.toString().replace('</body>', '  <script type="module" src="app.js"></script>\n</body>');
      }
      res.writeHead(200, { 'Content-Type': TYPES[extname(path)] || 'application/octet-stream' }).end(text);
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  await new Promise((ok, fail) => server.listen(port, host, ok).on('error', fail));
  return { port: server.address().port, close: () => new Promise((ok) => server.close(ok)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rpc = option('rpc', 'ws://127.0.0.1:9944');
  const genesisHash = option('genesis', null) || await genesisOf(rpc);
  const { port } = await servePortal({ port: Number(option('port', '8080')), rpc, genesisHash });
  console.log(`patient portal: http://127.0.0.1:${port}/ (node ${rpc}, pinned to genesis ${genesisHash})`);
}
