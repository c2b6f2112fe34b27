import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryNonceStore } from './nonce.ts';

test('reserve: consecutive under concurrency, never below the chain count', async () => {
  const s = new MemoryNonceStore();
  const got = await Promise.all(Array.from({ length: 50 }, () => s.reserve('n', '0xAbC', 3)));
  assert.deepEqual(
    got.sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => 3 + i),
  );
  // The chain moved on (transactions sent elsewhere): jump forward.
  assert.equal(await s.reserve('n', '0xabc', 100), 100);
  // Other networks and addresses are independent.
  assert.equal(await s.reserve('m', '0xabc', 0), 0);
  assert.equal(await s.reserve('n', '0xdef', 0), 0);
});

test('release: the latest folds back, earlier ones are handed out first, stale ones dropped', async () => {
  const s = new MemoryNonceStore();
  for (let i = 0; i < 5; i++) await s.reserve('n', 'a', 0); // 0..4
  await s.release('n', 'a', 4);
  assert.deepEqual(await s.peek('n', 'a'), { next: 4, released: [] });
  await s.release('n', 'a', 1);
  await s.release('n', 'a', 2);
  assert.equal(await s.reserve('n', 'a', 0), 1);
  // Chain says 3 are used: the released 2 was used by someone else and is forgotten.
  assert.equal(await s.reserve('n', 'a', 3), 4);
  assert.deepEqual(await s.peek('n', 'a'), { next: 5, released: [] });
  // Releasing something never reserved is ignored.
  await s.release('n', 'a', 99);
  assert.equal(await s.reserve('n', 'a', 0), 5);
  await assert.rejects(s.reserve('n', 'a', -1), /non-negative/);
});
