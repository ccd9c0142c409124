// Throughput of publish_record against transfer_keep_alive on one dev node,
// measured in the same run: N pre-signed transactions of each kind are
// submitted at once and timed until the last is in a block.
//
//   node scripts/bench-throughput.mjs [N]      (scripts/bench-throughput.sh builds first)
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, blake2AsU8a } from '@polkadot/util-crypto';
import { startDevNode } from '../tests/e2e/lib/node.mjs';
import { registerPatient } from '../tests/e2e/lib/record-index.mjs';

const N = Number(process.argv[2] || 400);

async function run(api, signer, label, makeTx) {
  const start = (await api.rpc.system.accountNextIndex(signer.address)).toNumber();
  const txs = [];
  for (let i = 0; i < N; i++) {
    txs.push(await makeTx(i).signAsync(signer, { nonce: start + i, era: 0 }));
  }
  const firstBlock = (await api.rpc.chain.getHeader()).number.toNumber();
  const t0 = performance.now();
  await Promise.all(txs.map((tx) => api.rpc.author.submitExtrinsic(tx)));
  let blocks = 0;
  for (;;) {
    const { nonce } = await api.query.system.account(signer.address);
    if (nonce.toNumber() >= start + N) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - t0) / 1000;
  blocks = (await api.rpc.chain.getHeader()).number.toNumber() - firstBlock;
  const perSecond = N / seconds;
  console.log(`${label.padEnd(22)} ${N} tx in ${seconds.toFixed(2)} s over ${blocks} blocks: ${perSecond.toFixed(1)} tx/s`);
  return perSecond;
}

await cryptoWaitReady();
const keyring = new Keyring({ type: 'sr25519' });
const alice = keyring.addFromUri('//Alice');
const bob = keyring.addFromUri('//Bob');
const node = await startDevNode({ name: 'bench-throughput', blockTimeMs: 1000 });
try {
  const { api } = node;
  const transfer = await run(api, alice, 'transfer_keep_alive',
    () => api.tx.balances.transferKeepAlive(bob.address, 1_000_000_000n));
  // Bob, the patient, consents to be indexed by Alice's hospital.
  await registerPatient(api, alice, bob);
  const publish = await run(api, alice, 'publish_record', (i) => api.tx.ehrIndex.publishRecord(
    bob.address, 'LabResult',
    { algorithm: 'Sm3', digest: blake2AsU8a(`bench-${i}`) },
    { storeId: 'hospital-1', collection: 'records', objectId: blake2AsU8a(`id-${i}`).slice(0, 12) },
    4096, blake2AsU8a(`key-${i}`)));
  console.log(`ratio publish_record / transfer_keep_alive = ${(publish / transfer).toFixed(2)}`);
} finally {
  await node.stop();
}
