// Starts a `medchain-node --dev` on free ports for a test and stops it by PID
// whatever happens.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, existsSync, createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiPromise, WsProvider } from '@polkadot/api';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);

/** Path of the node binary: $MEDCHAIN_NODE_BIN, else the shared target dir. */
export function nodeBinary() {
  const bin = process.env.MEDCHAIN_NODE_BIN
    ?? join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/medchain/target'), 'debug/medchain-node');
  if (!existsSync(bin)) throw new Error(`medchain-node not found at ${bin}: run scripts/build.sh`);
  return bin;
}

/** A TCP port nothing listens on right now. */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

const running = new Set();
function killAll() {
  for (const child of running) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });

/**
 * Starts a dev node. Returns { api, rpcPort, p2pPort, pid, logPath, stop(),
 * alive(), restart() }. `args` are extra CLI arguments. `restart({ signal })` stops
 * the process (SIGTERM by default) and starts it again on the same database,
 * keystore and ports; `api` is then a new connection.
 */
export async function startDevNode({ name = 'dev', args = [], blockTimeMs = 1000 } = {}) {
  const rpcPort = await freePort();
  const p2pPort = await freePort();
  const base = mkdtempSync(join(tmpdir(), 'medchain-e2e-'));
  const logDir = join(ROOT, 'tests/artifacts');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `node-${name}-${rpcPort}.log`);
  const log = createWriteStream(logPath);
  const cli = [
    '--dev', '--dev-block-time', String(blockTimeMs),
    '--base-path', base,
    '--rpc-port', String(rpcPort), '--port', String(p2pPort),
    '--no-prometheus', '--no-telemetry', '--no-mdns', '--no-hardware-benchmarks',
    ...args,
  ];
  const node = { rpcPort, p2pPort, logPath, api: null, pid: null };
  let child;
  let exited = null;

  const launch = () => {
    child = spawn(nodeBinary(), cli, { stdio: ['ignore', 'pipe', 'pipe'] });
    const me = child;
    exited = null;
    running.add(me);
    me.on('exit', (code, signal) => { if (child === me) exited = { code, signal }; running.delete(me); });
    me.stdout.pipe(log, { end: false });
    me.stderr.pipe(log, { end: false });
    node.pid = me.pid;
  };
  const kill = async (signal = 'SIGTERM') => {
    if (exited !== null) return;
    process.kill(child.pid, signal);
    const t0 = Date.now();
    while (exited === null && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
    if (exited === null) process.kill(child.pid, 'SIGKILL');
    while (exited === null) await new Promise((r) => setTimeout(r, 50));
  };
  const fail = async (why) => {
    await kill();
    rmSync(base, { recursive: true, force: true });
    throw new Error(`${why}; see ${logPath}`);
  };
  // This node's own RPC server up, as its log says (once per launch): only
  // then is the port surely its own. Until it binds, the port is free, and
  // under another test file running beside this one an RPC server there
  // could be someone else's.
  const listening = `Running JSON-RPC server: addr=127.0.0.1:${rpcPort}`;
  const launches = () => {
    try { return readFileSync(logPath, 'utf8').split(listening).length - 1; } catch { return 0; }
  };
  // Waits for the RPC server (a debug node compiles the runtime first).
  const connect = async (nth) => {
    const deadline = Date.now() + 180_000;
    let api;
    while (!api) {
      if (exited !== null) await fail(`medchain-node exited early (${JSON.stringify(exited)})`);
      if (Date.now() > deadline) await fail('medchain-node RPC not up after 180 s');
      if (launches() < nth) {
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      try {
        const provider = new WsProvider(`ws://127.0.0.1:${rpcPort}`, false);
        await provider.connect();
        await new Promise((res, rej) => {
          const t = setTimeout(() => rej(new Error('ws connect timeout')), 2000);
          provider.on('connected', () => { clearTimeout(t); res(); });
          provider.on('error', () => { clearTimeout(t); rej(new Error('ws error')); });
        });
        api = await ApiPromise.create({ provider, throwOnConnect: true, noInitWarn: true });
      } catch {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    node.api = api;
  };
  const disconnect = async () => {
    try { await node.api?.disconnect(); } catch { /* ignore */ }
  };

  let started = 0;
  launch();
  await connect(++started);
  node.alive = () => exited === null;
  node.stop = async () => {
    await disconnect();
    await kill();
    rmSync(base, { recursive: true, force: true });
  };
  node.restart = async ({ signal = 'SIGTERM' } = {}) => {
    await disconnect();
    await kill(signal);
    launch();
    await connect(++started);
  };
  return node;
}

/** Resolves once the best block number reaches `n`. */
export async function waitForBlock(api, n, timeoutMs = 60_000) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => { unsub.then((u) => u()); rej(new Error(`block ${n} not reached in ${timeoutMs} ms`)); }, timeoutMs);
    const unsub = api.rpc.chain.subscribeNewHeads((h) => {
      if (h.number.toNumber() >= n) {
        clearTimeout(t);
        unsub.then((u) => u());
        res(h.number.toNumber());
      }
    });
  });
}

/**
 * Resolves with the grant once `threshold` of its proxies acknowledged it
 * (requests are refused before). Proxies running in a node acknowledge by
 * themselves a block or two after the grant; others must send
 * `proxyReencrypt.acknowledgeGrant`. Rejects if a proxy disputed the grant.
 */
export async function waitForAcknowledged(api, grantId, timeoutMs = 60_000) {
  const t0 = Date.now();
  for (;;) {
    const g = (await api.query.proxyReencrypt.grants(grantId)).unwrap();
    if (g.disputedBy.isSome) throw new Error(`grant ${grantId} disputed by ${g.disputedBy.unwrap()}`);
    if (g.acknowledged.length >= g.threshold.toNumber()) return g;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`grant ${grantId}: ${g.acknowledged.length} of ${g.threshold} proxies acknowledged in time`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Signs and sends `tx`, resolving with { blockHash, events } once it is in a
 * block; rejects with the decoded module error if dispatch failed.
 *
 * A transaction the pool refuses as of an "ancient birth block" is signed
 * and sent again (up to three times, a block apart): the signer dated its
 * mortal era by a block the pool had not imported yet, a race between
 * transactions sent at once; the refused one never entered the pool, so
 * nothing ran twice.
 */
export async function sendAndWait(api, tx, signer, timeoutMs = 60_000) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await sendOnce(api, tx, signer, timeoutMs);
    } catch (e) {
      // Refused by the pool outright, so never in it: signing again is safe.
      // (A nonce another signer of the account took: the node's offchain
      // workers sign as dev accounts too.)
      const cured = /ancient birth block|Priority is too low|Transaction is outdated|1014/.test(String(e?.message));
      if (attempt >= 5 || !cured) throw e;
      await new Promise((r) => setTimeout(r, 1_500));
    }
  }
}

function sendOnce(api, tx, signer, timeoutMs) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('transaction not included in time')), timeoutMs);
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (dispatchError) {
        clearTimeout(t);
        if (dispatchError.isModule) {
          const d = api.registry.findMetaError(dispatchError.asModule);
          rej(new Error(`${d.section}.${d.name}`));
        } else rej(new Error(dispatchError.toString()));
        return;
      }
      // Dev mode seals and finalizes at once: the pool may report
      // `Finalized` without an `InBlock` first.
      if (status.isInBlock || status.isFinalized) {
        clearTimeout(t);
        res({ blockHash: status.isInBlock ? status.asInBlock : status.asFinalized, events });
      }
    }).catch((e) => { clearTimeout(t); rej(e); });
  });
}
