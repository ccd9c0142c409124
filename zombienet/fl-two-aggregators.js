// Zombienet custom check (CommonJS, loaded by `js-script` in
// medchain-fl.zndsl): runs scripts/zombienet-fl.mjs against the two
// collators and returns 1 when it passed, 0 otherwise.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

async function run(_nodeName, networkInfo) {
  const alice = networkInfo.nodesByName.alice.wsUri;
  const bob = networkInfo.nodesByName.bob.wsUri;
  const script = path.resolve(__dirname, '../scripts/zombienet-fl.mjs');
  const r = spawnSync(process.execPath, [script, alice, bob], { stdio: 'inherit' });
  return r.status === 0 ? 1 : 0;
}

module.exports = { run };
