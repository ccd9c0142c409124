// The dev chain end to end: blocks, a signed transfer, a malformed extrinsic,
// dev.sh's port check, and a private consortium node (reserved peers, safe RPC).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, mnemonicGenerate } from '@polkadot/util-crypto';
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startDevNode, waitForBlock, sendAndWait, freePort, nodeBinary } from './lib/node.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

let node;
let keyring;

/** A consortium member's peer id (the node below lists it as its only
 * peer), from the node key in `memberKey`. */
let MEMBER;
let memberKey;
let scratch;
/** The arguments scripts/consortium-node.sh gives a consortium node. */
let consortiumFlags;

before(async () => {
  await cryptoWaitReady();
  keyring = new Keyring({ type: 'sr25519' });
  scratch = mkdtempSync(join(tmpdir(), 'medchain-dev-chain-'));
  memberKey = join(scratch, 'member.key');
  MEMBER = await new Promise((res, rej) => execFile(nodeBinary(), ['key', 'generate-node-key', '--file', memberKey],
    (err, out, errOut) => (err ? rej(err) : res(`${out}${errOut}`.trim().split('\n').pop().trim()))));
  assert.match(MEMBER, /^12D3KooW/, 'generate-node-key prints the peer id');
  consortiumFlags = await new Promise((res, rej) => execFile('bash',
    [join(ROOT, 'scripts/consortium-node.sh'), '--print-flags', '--peer', `/ip4/127.0.0.1/tcp/9/p2p/${MEMBER}`],
    (err, out) => (err ? rej(err) : res(out.trim().split('\n')))));
  // startDevNode turns mDNS and telemetry off already. Everything below runs
  // on a node configured as a private consortium member.
  const args = consortiumFlags.filter((f) => f !== '--no-mdns' && f !== '--no-telemetry');
  node = await startDevNode({ name: 'dev-chain', args });
});

after(async () => {
  if (node) await node.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('the dev node produces blocks and names the chain', async () => {
  const { api } = node;
  const reached = await waitForBlock(api, 2);
  assert.ok(reached >= 2);
  assert.equal((await api.rpc.system.chain()).toString(), 'Medchain Development');
  assert.equal(api.runtimeVersion.specName.toString(), 'medchain');
  const props = await api.rpc.system.properties();
  assert.equal(props.tokenSymbol.unwrap()[0].toString(), 'MED');
});

test('a transfer signed by //Alice is included and moves the balance', async () => {
  const { api } = node;
  const alice = keyring.addFromUri('//Alice');
  const dest = keyring.addFromUri(mnemonicGenerate());
  const amount = 5n * 10n ** 12n;
  const before = (await api.query.system.account(alice.address)).data.free.toBigInt();

  const { blockHash, events } = await sendAndWait(
    api, api.tx.balances.transferKeepAlive(dest.address, amount), alice);

  assert.ok(events.some(({ event }) => api.events.system.ExtrinsicSuccess.is(event)));
  const transfer = events.find(({ event }) => api.events.balances.Transfer.is(event));
  assert.ok(transfer, 'Transfer event emitted');
  assert.equal(transfer.event.data[2].toBigInt(), amount);

  const at = await api.at(blockHash);
  const destFree = (await at.query.system.account(dest.address)).data.free.toBigInt();
  assert.equal(destFree, amount);
  const after = (await at.query.system.account(alice.address)).data.free.toBigInt();
  // Alice paid the amount plus a non-zero fee.
  assert.ok(before - after > amount, `alice paid ${before - after}`);
});

test('a malformed extrinsic is rejected and the node keeps producing', async () => {
  const { api } = node;
  // Raw bytes straight to the node's RPC, bypassing client-side encoding.
  const raw = (hex) => api._rpcCore.provider.send('author_submitExtrinsic', [hex]);
  await assert.rejects(raw('0xdeadbeef'), (err) => /decode|invalid/i.test(String(err.message)));
  // A well-formed but unsigned balance transfer is refused too.
  const unsigned = api.tx.balances.transferKeepAlive(
    keyring.addFromUri('//Bob').address, 1n).toHex();
  await assert.rejects(raw(unsigned), (err) => /invalid|unsigned|bad signature|transaction/i.test(String(err.message)));

  const now = (await api.rpc.chain.getHeader()).number.toNumber();
  await waitForBlock(api, now + 2);
  assert.ok(node.alive(), 'node still running');
});

test('dev.sh refuses a taken RPC port instead of configuring whatever answers there', async () => {
  // This test's node holds its RPC port.
  const env = { ...process.env, RPC_PORT: String(node.rpcPort), STORE_PORT: String(await freePort()) };
  const r = await new Promise((res) => {
    execFile('bash', [join(ROOT, 'scripts/dev.sh')], { encoding: 'utf8', timeout: 60_000, env },
      (error, stdout, stderr) => res({ status: error ? error.code : 0, stderr }));
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`port ${node.rpcPort} is already in use`));
  // Nothing was started or configured: the node still answers, unchanged.
  assert.equal((await node.api.rpc.system.chain()).toString(), 'Medchain Development');
});

test('the node runs with a consortium member\'s flags and refuses unsafe RPC', async () => {
  const { api } = node;
  // The node of this file was started with scripts/consortium-node.sh's
  // flags (reserved peers only, safe RPC, rate limits). No key goes into its
  // keystore, no peer or reserved peer is added, no peer list is read over
  // RPC; safe methods answer.
  await assert.rejects(api.rpc.author.insertKey('prx0', '//Alice', '0x' + '00'.repeat(32)), /unsafe/i);
  await assert.rejects(api.rpc.system.addReservedPeer(`/ip4/127.0.0.1/tcp/9/p2p/${MEMBER}`), /unsafe/i);
  await assert.rejects(api.rpc.system.peers(), /unsafe/i);
  assert.ok((await api.rpc.chain.getHeader()).number.toNumber() >= 0);
  // The script refuses what would open the node's RPC, on either side of
  // `--`, and a node with no consortium peer.
  const script = (args) => new Promise((res) => execFile('bash', [join(ROOT, 'scripts/consortium-node.sh'), ...args],
    (err, stdout, stderr) => res({ code: err ? err.code : 0, stderr })));
  const peer = `/ip4/127.0.0.1/tcp/9/p2p/${MEMBER}`;
  for (const args of [['--peer', peer, '--rpc-external'], ['--peer', peer, '--rpc-methods=unsafe'],
    ['--peer', peer, '--', '--unsafe-rpc-external'], ['--peer', peer, '--experimental-rpc-endpoint', 'x']]) {
    const r = await script(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /not for a consortium node/);
  }
  assert.match((await script(['--peer', '/ip4/127.0.0.1/tcp/9'])).stderr, /ends in \/p2p\/<peer id>/);
  assert.match((await script([])).stderr, /name the consortium's nodes with --peer/);
});

test('a stranger cannot peer with a consortium node; a listed member can', async () => {
  // Two more nodes dial this file's node (reserved peers only, one member
  // listed): the member, with the node key the list names, and a stranger
  // with a key of its own. Both run the same chain (the same genesis) with
  // the same flags, each keeping to this node alone (so neither can meet
  // the other through discovery): only the node key tells them apart, and
  // the member connecting shows the stranger's dial would have too.
  const self = (await node.api.rpc.system.localPeerId()).toString();
  const only = ['--reserved-only', '--reserved-nodes', `/ip4/127.0.0.1/tcp/${node.p2pPort}/p2p/${self}`];
  const [member, stranger] = await Promise.all([
    startDevNode({ name: 'member', args: ['--node-key-file', memberKey, ...only] }),
    startDevNode({ name: 'stranger', args: only }),
  ]);
  try {
    const peers = async (n) => (await n.api.rpc.system.health()).peers.toNumber();
    const deadline = Date.now() + 60_000;
    while (await peers(member) === 0) {
      assert.ok(Date.now() < deadline, 'the listed member never connected');
      await new Promise((r) => setTimeout(r, 500));
    }
    // The stranger dialled at the same time and has had as long; a few
    // more seconds for a connection in flight.
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(await peers(stranger), 0, 'the stranger is refused');
    assert.equal(await peers(node), 1, 'the consortium node has the member and no one else');
  } finally {
    await Promise.all([member.stop(), stranger.stop()]);
  }
});
