// Off-chain services the end-to-end tests and benchmarks start beside a dev
// node: a MongoDB wire-protocol server (SecantusDB, installed by
// scripts/setup.sh) and an institution's record gateway (`medchain-record
// serve`). Both are stopped by the caller with `.stop()`.
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { freePort } from './node.mjs';
import { recordRequestMessage } from '../../../portal/lib/instant.mjs';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const TARGET = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache/medchain/target');
/**
 * The `medchain-record` binary: `MEDCHAIN_RECORD_CLI` (the benchmarks point it
 * at a release build), else the debug build in the shared target dir.
 */
export const RECORD_CLI = process.env.MEDCHAIN_RECORD_CLI || join(TARGET, 'debug', 'medchain-record');
/** SecantusDB's server script in the setup's virtualenv. */
export const SECANTUSD = process.env.MEDCHAIN_SECANTUSD || join(homedir(), '.cache/medchain/venv/bin/secantusd-py');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts SecantusDB in memory on a free port: { port, url, process, stop() }. */
export async function startMongo() {
  const port = await freePort();
  const child = spawn(SECANTUSD, ['--host', '127.0.0.1', '--port', String(port), '--storage-path', ':memory:'],
    { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((res) => {
      const s = connect(port, '127.0.0.1', () => { s.end(); res(true); });
      s.on('error', () => res(false));
    });
    if (ok) {
      return { port, url: `mongodb://127.0.0.1:${port}/?directConnection=true`, process: child,
        stop: () => child.kill('SIGTERM') };
    }
    await sleep(200);
  }
  child.kill('SIGKILL');
  throw new Error('SecantusDB did not start');
}

/**
 * Runs Python `code` against database `database` of the MongoDB at `url`
 * (as `db`, through pymongo from the SecantusDB venv; `json` and `bson`
 * imported) and returns what it prints, parsed as JSON: how a test looks
 * into, or alters, an institution's store and journal behind its gateway.
 */
export function mongoPython(url, code, database = 'medchain') {
  const python = join(dirname(SECANTUSD), 'python');
  const r = spawnSync(python, ['-c', `import sys, json, bson, pymongo\ndb = pymongo.MongoClient(sys.argv[1])[sys.argv[2]]\n${code}`,
    url, database], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Starts `medchain-record serve` for institution `suri`: { port, url, stop() }. */
export async function startGateway({ rpcPort, mongoUrl, suri = '//Alice', storeId = 'hospital-1', maxPerClient = 8,
  extra = [] }) {
  const port = await freePort();
  const child = spawn(RECORD_CLI, ['serve', '--listen', `127.0.0.1:${port}`, '--suri', suri,
    '--node', `127.0.0.1:${rpcPort}`, '--mongo', mongoUrl, '--store-id', storeId,
    '--max-per-client', String(maxPerClient), ...extra],
  { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url, { method: 'POST', body: '{}' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      return {
        port,
        url,
        stop: () => child.kill('SIGTERM'),
        /** SIGKILL, as a crash: resolves once the process is gone. */
        kill: () => { child.kill('SIGKILL'); return exited; },
      };
    } catch { await sleep(200); }
  }
  child.kill('SIGKILL');
  throw new Error('gateway did not start');
}

/**
 * Asks a gateway for a record as keyring pair `who`, signed for the best
 * block of `api` (or `block`); returns the JSON-RPC response.
 */
export async function fetchRecord(api, gatewayUrl, who, record,
  { purpose = 'Treatment', block, signer = who, gateway, grant } = {}) {
  const at = block ?? (await api.rpc.chain.getHeader()).number.toNumber();
  const signature = u8aToHexNode(signer.sign(new TextEncoder().encode(
    await requestMessage(api, record, who.address, purpose, at, gateway))));
  const res = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ehr_getRecord',
      params: { record, accessor: who.address, purpose, block: at, signature, grant } }),
  });
  return res.json();
}

/**
 * What an accessor signs to read `record` through its gateway: this chain's
 * genesis, the gateway's institution (the record's issuer, read from the
 * chain, or `gateway` for a record the chain does not know), the record, the
 * accessor, the purpose and a recent block.
 */
export async function requestMessage(api, record, accessor, purpose, block, gateway) {
  const entry = await api.query.ehrIndex.records(record);
  const institution = entry.isSome ? entry.unwrap().issuer.toString() : gateway;
  return recordRequestMessage(api.genesisHash.toHex(), institution, record, accessor, purpose, block);
}

const u8aToHexNode = (u8a) => '0x' + Buffer.from(u8a).toString('hex');

export { ROOT };
