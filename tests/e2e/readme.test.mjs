// The README's commands, run as written. Every ```sh block of README.md is
// marked `<!-- readme-test: run -->` or `<!-- readme-test: skip (why) -->`.
// This test starts the dev chain as the README's first set-up command does
// (`scripts/dev.sh`, its ports moved with RPC_PORT / STORE_PORT / MONGO_PORT
// as the README documents, so a developer's own dev chain may keep running),
// then runs the blocks marked `run`, in order, in one fresh bash (no
// variables but HOME, PATH and those ports), in a scratch directory that
// mirrors the clone so the files the commands write land there.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, existsSync, symlinkSync, rmSync, openSync,
  closeSync, writeFileSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './lib/node.mjs';
import { ROOT } from './lib/services.mjs';

const ARTIFACTS = join(ROOT, 'tests/artifacts');
const MARK = /^<!-- readme-test: (run|skip \(.+\)) -->$/;

/** The README's shell blocks: { line, mark, body }, `mark` null when unmarked. */
function shellBlocks() {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i].match(/^(\s*)```sh\s*$/);
    if (!fence) continue;
    const end = lines.indexOf(`${fence[1]}\`\`\``, i + 1);
    const mark = i > 0 ? lines[i - 1].trim().match(MARK) : null;
    blocks.push({ line: i + 1, mark: mark ? mark[1] : null, body: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

let dev;
let commands;
let scratch;

/** Stops the process group `child` leads (dev.sh became the node, its stores are in the group). */
function stopGroup(child, signal = 'SIGTERM') {
  if (child && child.exitCode === null && child.signalCode === null) {
    try { process.kill(-child.pid, signal); } catch { /* gone */ }
  }
}
// Whatever ends this process (Ctrl-C included) ends the dev chain too.
process.on('exit', () => { stopGroup(commands, 'SIGKILL'); stopGroup(dev, 'SIGKILL'); });

after(async () => {
  if (dev) {
    const exited = new Promise((res) => (dev.exitCode !== null || dev.signalCode !== null ? res() : dev.on('exit', res)));
    stopGroup(dev);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    stopGroup(dev, 'SIGKILL');
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('every shell block of the README is marked to run or to skip, with a reason', () => {
  const blocks = shellBlocks();
  assert.ok(blocks.length >= 10, `${blocks.length} shell blocks found`);
  const unmarked = blocks.filter((b) => !b.mark).map((b) => `README.md:${b.line}`);
  assert.deepEqual(unmarked, [], 'each ```sh block needs <!-- readme-test: run --> or <!-- readme-test: skip (why) -->');
  assert.ok(blocks.filter((b) => b.mark === 'run').length >= 5);
});

/** Resolves once `file` holds `text`; rejects if `child` exits first or after `ms`. */
async function waitForLog(file, text, child, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (readFileSync(file, 'utf8').includes(text)) return;
    if (child.exitCode !== null) throw new Error(`dev.sh exited (${child.exitCode}); see ${file}`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
  throw new Error(`no "${text}" in ${file} after ${ms / 1000} s`);
}

test('the README\'s commands run as written against scripts/dev.sh', async () => {
  const ports = Object.fromEntries(await Promise.all(['RPC_PORT', 'STORE_PORT', 'MONGO_PORT']
    .map(async (name) => [name, String(await freePort())])));
  // Nothing scripts/env.sh set up for this test run: no Medchain variables,
  // its wrappers not on PATH.
  const path = (process.env.PATH || '').split(':').filter((p) => !p.endsWith('/scripts/bin')).join(':');
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MEDCHAIN_') &&
    !['CARGO_TARGET_DIR', 'WASM_BUILD_WORKSPACE_HINT'].includes(k)));
  // dev.sh builds with cargo: it keeps the machine's toolchain variables.
  const devEnv = { ...clean, PATH: path, ...ports };
  // The README's commands run in a fresh shell: HOME, PATH, the ports.
  const env = { HOME: homedir(), PATH: path, LANG: 'C.UTF-8', ...ports };
  for (const e of [env, devEnv]) if (process.env.MEDCHAIN_TARGET_DIR) e.MEDCHAIN_TARGET_DIR = process.env.MEDCHAIN_TARGET_DIR;

  mkdirSync(ARTIFACTS, { recursive: true });
  const devLog = join(ARTIFACTS, 'readme-dev.log');
  const devFd = openSync(devLog, 'w');
  scratch = mkdtempSync(join(tmpdir(), 'medchain-readme-'));
  // dev.sh runs from the clone itself (its build must see the real paths);
  // 1 s blocks ("extra arguments go to the node") keep the demo short.
  dev = spawn('bash', [join(ROOT, 'scripts/dev.sh'), '--dev-block-time', '1000',
    '--base-path', join(scratch, 'chain')], { cwd: ROOT, env: { ...devEnv, MEDCHAIN_MODEL_STORE: join(scratch, 'models') },
    detached: true, stdio: ['ignore', devFd, devFd] });
  closeSync(devFd);
  await waitForLog(devLog, '[dev] ready', dev, 600_000);
  assert.doesNotMatch(readFileSync(devLog, 'utf8'), /set-up incomplete/);

  for (const entry of readdirSync(ROOT)) {
    if (entry !== '.git') symlinkSync(join(ROOT, entry), join(scratch, entry));
  }
  const script = shellBlocks().filter((b) => b.mark === 'run').map((b) => `# README.md:${b.line}\n${b.body}`)
    .join('\n');
  const outLog = join(ARTIFACTS, 'readme-commands.log');
  const outFd = openSync(outLog, 'w');
  const run = commands = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: scratch, env,
    detached: true, stdio: ['ignore', 'pipe', outFd] });
  let out = '';
  run.stdout.on('data', (chunk) => { out += chunk; });
  // The demo takes about two minutes; a stalled one is stopped, group and all.
  const limit = setTimeout(() => stopGroup(run, 'SIGKILL'), 15 * 60_000);
  const code = await new Promise((res) => run.on('exit', (c, signal) => res(signal ?? c)));
  clearTimeout(limit);
  closeSync(outFd);
  writeFileSync(join(ARTIFACTS, 'readme-commands.out'), out);
  assert.equal(code, 0, `the README's commands failed; stderr in ${outLog}, stdout:\n${out}`);

  // What the commands printed and wrote: the chain spec, the record stored,
  // published and read back (the block compares the bytes), the institutions
  // approved, the federated model evaluated, the poisoner caught.
  const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.ok(existsSync(join(scratch, 'region-raw.json')), 'raw chain spec written');
  assert.ok(lines.some((l) => l.record === 0 && l.key_file === 'scan.key'), 'record 0 published');
  assert.ok(existsSync(join(scratch, 'scan-copy.dcm')), 'record read back');
  assert.ok(lines.some((l) => l.who && l.status === 'Active'), 'institutions approved');
  const evaluation = lines.find((l) => typeof l.federated_accuracy === 'number');
  assert.ok(evaluation?.federated_accuracy >= 0.9, `federated model evaluated: ${JSON.stringify(evaluation)}`);
  assert.ok(existsSync(join(scratch, 'round-accuracy.png')), 'accuracy plot written');
  assert.ok(lines.some((l) => l.flagged_hospitals?.includes(4)), 'the simulated poisoner is flagged');
});
