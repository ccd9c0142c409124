#!/usr/bin/env node
// Serves the patient portal (portal/): bundles portal/src/app.mjs with
// esbuild from the repository's npm packages (no CDN) and serves it with the
// Umbral Wasm module on localhost.
//
//   node scripts/portal.mjs [--port 8080] [--rpc ws://127.0.0.1:9944]
//
// Open http://127.0.0.1:8080/?rpc=ws://127.0.0.1:9944 in a browser with a
// Polkadot wallet extension.
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

/** Starts the HTTP server; resolves with { port, close() }. */
export async function servePortal({ port = 8080, host = '127.0.0.1' } = {}) {
  const bundle = await bundlePortal();
  const files = {
    '/': join(ROOT, 'portal/index.html'),
    '/index.html': join(ROOT, 'portal/index.html'),
    '/portal.css': join(ROOT, 'portal/portal.css'),
    '/app.js': bundle,
    '/umbral_pre_wasm_bg.wasm': join(ROOT, 'node_modules/@nucypher/umbral-pre/pkg-bundler/umbral_pre_wasm_bg.wasm'),
  };
  const server = createServer(async (req, res) => {
    const path = files[new URL(req.url, 'http://x').pathname];
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
  const { port } = await servePortal({ port: Number(option('port', '8080')) });
  console.log(`patient portal: http://127.0.0.1:${port}/?rpc=${encodeURIComponent(rpc)}`);
}
