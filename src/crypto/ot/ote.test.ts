import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { _internal } from './ote.ts';

const words = (b: Uint8Array) => new Uint32Array(new Uint8Array(b).buffer);

test('OTE check hash: the table-driven GF(2^128) products equal the bit-serial reference', () => {
  const { gfMulAcc, chiTables, hashColumn } = _internal;
  for (let t = 0; t < 100; t++) {
    const chi = words(randomBytes(80));
    const col = words(randomBytes(240));
    if (t < 8) {
      chi.fill(0);
      chi[t] = 1 << ((t * 7) % 32);
      col.fill(t === 0 ? 0 : 0xffffffff);
    }
    const off = 20 * (t % 3);
    const ref = new Uint32Array(4);
    for (let c = 0; c < 5; c++) gfMulAcc(ref, col, off + 4 * c, chi, 4 * c);
    assert.deepEqual(hashColumn(chiTables(chi), col, off), ref);
  }
});
