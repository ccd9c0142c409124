// Hex to and from bytes (`portal/lib/hex.mjs`), what the portal and the
// grantee's tools read every key, fragment and ciphertext with: anything
// that is not hex is refused, never read as zeros or cut short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { hex, unhex } from '../../portal/lib/hex.mjs';

test('what is not hex is refused, not read as zero bytes or cut short', () => {
  for (const bad of ['0xzz', '0x0g', 'g0', '0xabc', 'abc', '0x12 4', '0x1é', '0x\u{1F600}', '0x-1']) {
    assert.throws(() => unhex(bad), /not hex/, bad);
  }
  for (const bad of [undefined, null, 12, new Uint8Array(2)]) {
    assert.throws(() => unhex(bad), TypeError);
  }
  // Nor is anything but bytes written as hex (an ArrayBuffer would be '0x').
  for (const bad of [new ArrayBuffer(2), [1, 2], '0102', undefined]) {
    assert.throws(() => hex(bad), TypeError);
  }
});

test('bytes survive the trip through hex, with or without 0x, in either case', () => {
  for (const length of [0, 1, 31, 64 * 1024]) {
    const bytes = new Uint8Array(randomBytes(length));
    const text = hex(bytes);
    assert.equal(text, `0x${Buffer.from(bytes).toString('hex')}`);
    assert.deepEqual(unhex(text), bytes);
    assert.deepEqual(unhex(text.slice(2)), bytes);
    assert.deepEqual(unhex(`0x${text.slice(2).toUpperCase()}`), bytes);
  }
  assert.deepEqual(unhex('0x00ff10Ab'), new Uint8Array([0, 255, 16, 171]));
});
