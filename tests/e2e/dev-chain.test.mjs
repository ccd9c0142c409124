// The dev chain end to end: blocks, a signed transfer, a malformed extrinsic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, mnemonicGenerate } from '@polkadot/util-crypto';
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevNode, waitForBlock, sendAndWait, freePort } from './lib/node.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

let node;
let keyring;

before(async () => {
  await cryptoWaitReady();
  keyring = new Keyring({ type: 'sr25519' });
  node = await startDevNode({ name: 'dev-chain' });
});

after(async () => {
  if (node) await node.stop();
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
