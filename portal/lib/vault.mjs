// The patient's Umbral keys at rest: sealed under a passphrase with the Web
// Crypto API (PBKDF2-SHA-256 → AES-256-GCM), so what the browser stores (and
// what an export writes) reveals nothing secret without the passphrase. The
// public parts stay readable (they are on chain anyway) and are bound to the
// ciphertext as associated data, so they cannot be swapped unnoticed.
// Works in browsers and in Node.js ≥ 20 (globalThis.crypto).

import { hex, unhex } from './hex.mjs';

/** PBKDF2 iterations for new envelopes (OWASP's figure for SHA-256). */
export const ITERATIONS = 600_000;
/** Shortest passphrase accepted. */
export const MIN_PASSPHRASE = 8;

const bound = (publicKey, verifyingKey) => new TextEncoder().encode(`medchain-umbral:${publicKey}:${verifyingKey}`);

async function derive(passphrase, salt, iterations) {
  const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false,
    ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base,
    { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** Whether `value` is a sealed envelope (rather than plaintext keys). */
export const isSealed = (value) => !!value && value.version === 1 && typeof value.ciphertext === 'string';

/**
 * Seals `keys` ({ publicKey, verifyingKey, secretKey, signingKey, … }) under
 * `passphrase`; returns the envelope to store or export.
 */
export async function seal(keys, passphrase, iterations = ITERATIONS) {
  if (typeof passphrase !== 'string' || passphrase.length < MIN_PASSPHRASE) {
    throw new Error(`the passphrase must have at least ${MIN_PASSPHRASE} characters`);
  }
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await derive(passphrase, salt, iterations);
  const plain = new TextEncoder().encode(JSON.stringify(keys));
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: bound(keys.publicKey, keys.verifyingKey) }, key, plain));
  return {
    version: 1, kdf: 'PBKDF2-SHA-256', iterations, cipher: 'AES-256-GCM',
    salt: hex(salt), iv: hex(iv), ciphertext: hex(ciphertext),
    publicKey: keys.publicKey, verifyingKey: keys.verifyingKey,
  };
}

/** Opens an envelope; throws `wrong passphrase` if it does not open. */
export async function open(envelope, passphrase) {
  if (!isSealed(envelope)) throw new Error('not a sealed Medchain key');
  const key = await derive(passphrase || '', unhex(envelope.salt), envelope.iterations);
  let plain;
  try {
    plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unhex(envelope.iv),
      additionalData: bound(envelope.publicKey, envelope.verifyingKey) }, key, unhex(envelope.ciphertext));
  } catch {
    throw new Error('wrong passphrase (or a damaged key file)');
  }
  return JSON.parse(new TextDecoder().decode(plain));
}
