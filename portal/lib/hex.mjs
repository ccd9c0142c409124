// Hex strings ('0x'-prefixed, as the chain and the record tools write them)
// to and from bytes, for the portal and the grantee's tools alike. A record's
// ciphertext arrives as 128 KiB of hex per 64 KiB, so both directions work
// on byte tables (no per-byte strings), and decoding refuses anything that
// is not hex instead of reading it as zeros.
//
// Works in Node and in the browser.

const DIGITS = new TextEncoder().encode('0123456789abcdef');
const VALUES = new Int8Array(128).fill(-1);
for (let d = 0; d < 16; d++) {
  VALUES[DIGITS[d]] = d;
  VALUES['0123456789ABCDEF'.charCodeAt(d)] = d;
}
const ascii = new TextDecoder();

/** `bytes` (a Uint8Array; anything else throws) as lower-case hex with a `0x` prefix. */
export function hex(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('expected a Uint8Array');
  const out = new Uint8Array(2 + 2 * bytes.length);
  out[0] = 0x30; // '0'
  out[1] = 0x78; // 'x'
  for (let i = 0; i < bytes.length; i++) {
    out[2 + 2 * i] = DIGITS[bytes[i] >> 4];
    out[3 + 2 * i] = DIGITS[bytes[i] & 15];
  }
  return ascii.decode(out);
}

/**
 * The bytes of hex string `text` (with or without a `0x` prefix, either
 * case). Throws on anything else: an odd number of digits, a character that
 * is not a hex digit, a value that is not a string.
 */
export function unhex(text) {
  if (typeof text !== 'string') throw new TypeError(`expected a hex string, got ${typeof text}`);
  const start = text.startsWith('0x') ? 2 : 0;
  if ((text.length - start) % 2 !== 0) throw new Error('not hex: an odd number of digits');
  const out = new Uint8Array((text.length - start) / 2);
  for (let i = 0, at = start; i < out.length; i++, at += 2) {
    const high = text.charCodeAt(at);
    const low = text.charCodeAt(at + 1);
    const value = (high < 128 ? VALUES[high] : -1) << 4 | (low < 128 ? VALUES[low] : -1);
    if (value < 0) throw new Error(`not hex: ${JSON.stringify(text.slice(at, at + 2))} at ${at}`);
    out[i] = value;
  }
  return out;
}
