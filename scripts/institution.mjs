// The consortium steps a demo needs, from the command line: an institution
// applies, is approved, gets roles; anyone reads its status.
//
//   node scripts/institution.mjs apply   --suri //Bob --name "Bob Hospital" --kind hospital --roles producer,validator
//   node scripts/institution.mjs approve --who //Bob                        # dev chain: by sudo (//Alice)
//   node scripts/institution.mjs approve --who //Bob --council //Alice,//Bob --regulators //Dave,//Eve
//   node scripts/institution.mjs set-roles --who //Bob --roles producer,auditor
//   node scripts/institution.mjs status  --who 5FHneW46…
//   node scripts/institution.mjs consent-code --patient //Charlie --issuer //Alice   # dev chains
//
// Options: --rpc URL (default MEDCHAIN_NODE, else ws://127.0.0.1:$RPC_PORT,
// RPC_PORT defaulting to 9944, as for scripts/dev.sh), --help. An account is an
// SS58 address or a secret URI (//Bob). On a chain with a sudo key (`--dev`,
// `local`) approval and roles go through sudo; on a consortium chain
// (`--chain medchain-local`) pass --council and --regulators: the decision is
// carried as a motion of each body (two thirds of the council, a majority of
// the regulators; the regulators only when the decision changes who sits in
// a body). Unknown options are errors.
import { parseArgs } from 'node:util';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, decodeAddress } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { consentMessage } from '../portal/lib/consent.mjs';
import { sendAndWait } from '../tests/e2e/lib/node.mjs';
import { motion, statusOf } from './consortium.mjs';

const USAGE = `usage: node scripts/institution.mjs <command> [options]

commands:
  apply      --suri S --name N --kind K --roles R   apply for membership (bond held)
  approve    --who A [--sudo S | --council S,S --regulators S,S]
  set-roles  --who A --roles R [--sudo S | --council S,S --regulators S,S]
  status     --who A                                 status, roles, credit
  consent-code --patient S --issuer A                the index consent a patient with secret
                                                     URI S signs for issuer A (demos on dev
                                                     chains: patients sign in the portal)

options:
  --rpc URL        node endpoint (default MEDCHAIN_NODE, else
                   ws://127.0.0.1:$RPC_PORT, RPC_PORT defaulting to 9944)
  --kind K         hospital (level 3, grade A; --level/--grade to change),
                   nursing-home, insurer, research, regulator
  --roles R        comma-separated: producer, validator, auditor
  --sudo S         sudo key on dev chains (default //Alice)
  --council S,S    council members that carry the motion
  --regulators S,S regulators that carry the motion
`;

const KINDS = {
  'nursing-home': 'NursingHome',
  insurer: 'Insurer',
  research: 'ResearchInstitute',
  regulator: 'Regulator',
};

/** Parses `argv`; exits with the usage on --help or an unknown option. */
function options(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        rpc: { type: 'string', default: defaultRpc() },
        suri: { type: 'string' },
        who: { type: 'string' },
        patient: { type: 'string' },
        issuer: { type: 'string' },
        name: { type: 'string' },
        kind: { type: 'string', default: 'hospital' },
        level: { type: 'string', default: '3' },
        grade: { type: 'string', default: 'A' },
        roles: { type: 'string' },
        sudo: { type: 'string', default: '//Alice' },
        council: { type: 'string' },
        regulators: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    fail(`${e.message}\n\n${USAGE}`);
  }
  if (parsed.values.help || parsed.positionals.length !== 1) {
    process.stdout.write(USAGE);
    process.exit(parsed.values.help ? 0 : 2);
  }
  return { command: parsed.positionals[0], ...parsed.values };
}

/**
 * The node scripts talk to without --rpc: MEDCHAIN_NODE (`host:port` or a
 * URL), else the port scripts/dev.sh uses (RPC_PORT, 9944).
 */
function defaultRpc() {
  const node = process.env.MEDCHAIN_NODE?.trim();
  if (!node) return `ws://127.0.0.1:${process.env.RPC_PORT || 9944}`;
  if (/^wss?:\/\//.test(node)) return node;
  if (/^https?:\/\//.test(node)) return node.replace(/^http/, 'ws');
  return `ws://${node}`;
}

function fail(message) {
  process.stderr.write(`institution: ${message}\n`);
  process.exit(2);
}

function need(o, name) {
  if (!o[name]) fail(`--${name} is required for ${o.command}`);
  return o[name];
}

/** `{ producer, validator, auditor }` from "producer,validator". */
function roles(list) {
  const names = list.split(',').map((r) => r.trim()).filter(Boolean);
  const known = ['producer', 'validator', 'auditor'];
  for (const r of names) if (!known.includes(r)) fail(`unknown role ${r} (${known.join(', ')})`);
  return Object.fromEntries(known.map((r) => [r, names.includes(r)]));
}

function kind(o) {
  if (o.kind === 'hospital') return { Hospital: { level: Number(o.level), grade: o.grade } };
  if (!KINDS[o.kind]) fail(`unknown kind ${o.kind} (hospital, ${Object.keys(KINDS).join(', ')})`);
  return KINDS[o.kind];
}

/**
 * Carries `call` as the chain requires: by sudo where there is a sudo key,
 * else as motions of the council (and the regulators when given).
 */
async function decide(api, keyring, o, call) {
  if (o.regulators && !o.council) fail('--regulators needs --council: the council proposes every decision');
  if (o.council) {
    const ayes = (list) => list.split(',').map((s) => keyring.addFromUri(s.trim()));
    const results = { council: await motion(api, 'council', ayes(o.council), call) };
    if (o.regulators) results.regulators = await motion(api, 'regulators', ayes(o.regulators), call);
    return results;
  }
  if (!api.tx.sudo || (await api.query.sudo.key()).isNone) {
    fail('this chain has no sudo key: pass --council and --regulators to carry the decision by motions');
  }
  const { events } = await sendAndWait(api, api.tx.sudo.sudo(call), keyring.addFromUri(o.sudo));
  const done = events.find(({ event }) => api.events.sudo.Sudid.is(event));
  const result = done?.event.data.sudoResult;
  if (result?.isErr) {
    const err = result.asErr;
    if (!err.isModule) return { sudo: { ok: false, error: err.toString() } };
    const d = api.registry.findMetaError(err.asModule);
    return { sudo: { ok: false, error: `${d.section}.${d.name}` } };
  }
  return { sudo: { ok: Boolean(result?.isOk) } };
}

async function main() {
  const o = options(process.argv.slice(2));
  if (!['apply', 'approve', 'set-roles', 'status', 'consent-code'].includes(o.command)) fail(`unknown command ${o.command}\n\n${USAGE}`);
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  // A secret URI (//Name, a mnemonic, a 0x seed) or an SS58 address.
  const address = (a) => (a.startsWith('//') || a.includes(' ') || a.startsWith('0x') ? keyring.addFromUri(a).address : a);
  const api = await ApiPromise.create({ provider: new WsProvider(o.rpc), noInitWarn: true });
  try {
    let out;
    if (o.command === 'apply') {
      const signer = keyring.addFromUri(need(o, 'suri'));
      const tx = api.tx.reputation.applyForMembership(need(o, 'name'), kind(o), roles(need(o, 'roles')));
      await sendAndWait(api, tx, signer);
      out = { who: signer.address, status: await statusOf(api, signer.address) };
    } else if (o.command === 'approve') {
      const who = address(need(o, 'who'));
      out = { who, ...(await decide(api, keyring, o, api.tx.reputation.approveInstitution(who))) };
      out.status = await statusOf(api, who);
    } else if (o.command === 'set-roles') {
      const who = address(need(o, 'who'));
      out = { who, ...(await decide(api, keyring, o, api.tx.reputation.setRoles(who, roles(need(o, 'roles'))))) };
    } else if (o.command === 'consent-code') {
      // What the portal has the patient's wallet sign (section 3), signed
      // here with a dev key: for demos and scripts on dev chains.
      const patient = keyring.addFromUri(need(o, 'patient'));
      const issuer = address(need(o, 'issuer'));
      const { generation } = await api.query.ehrIndex.indexConsents(patient.address, issuer);
      const message = consentMessage(api.genesisHash.toU8a(), decodeAddress(issuer), decodeAddress(patient.address),
        generation.toNumber());
      process.stdout.write(u8aToHex(patient.sign(message)) + '\n');
      return;
    } else {
      const who = address(need(o, 'who'));
      const inst = await api.query.reputation.institutions(who);
      const credit = await api.query.reputation.credits(who);
      out = inst.isSome
        ? { who, ...inst.unwrap().toHuman(), credit: credit.isSome ? credit.unwrap().toNumber() : null }
        : { who, status: null };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  } catch (e) {
    fail(e.message);
  } finally {
    await api.disconnect();
  }
}

main();
