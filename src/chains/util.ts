// Small helpers shared by the chain families.
import type { BlockRef, ScanCursor } from './types.ts';

/** Maps with at most `limit` calls in flight; results keep input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The cursor after processing `blocks` (ascending), keeping the last `history` hashes. */
export function advanceCursor(cursor: ScanCursor, blocks: readonly BlockRef[], history: number): ScanCursor {
  const last = blocks[blocks.length - 1];
  if (!last) return cursor;
  const recent = [
    ...cursor.recent,
    { number: cursor.blockNumber, hash: cursor.blockHash },
    ...blocks.slice(0, -1),
  ];
  return { blockNumber: last.number, blockHash: last.hash, recent: dedupe(recent).slice(-history) };
}

function dedupe(blocks: BlockRef[]): BlockRef[] {
  const byNumber = new Map<bigint, BlockRef>();
  for (const b of blocks) if (b.number >= 0n) byNumber.set(b.number, b);
  return [...byNumber.values()].sort((a, b) => (a.number < b.number ? -1 : a.number > b.number ? 1 : 0));
}

/**
 * Finds where the chain forked from what the cursor saw. `canonicalHash(n)` returns today's hash of
 * block n. Walks the cursor's history newest-first; the first block whose hash still matches is the
 * fork point.
 */
export async function findForkPoint(
  cursor: ScanCursor,
  canonicalHash: (n: bigint) => Promise<string | null>,
): Promise<{ fork: BlockRef | null; orphaned: BlockRef[]; deep: boolean }> {
  const seen = [...cursor.recent, { number: cursor.blockNumber, hash: cursor.blockHash }];
  const orphaned: BlockRef[] = [];
  for (let i = seen.length - 1; i >= 0; i--) {
    const b = seen[i]!;
    const now = await canonicalHash(b.number);
    if (now !== null && now.toLowerCase() === b.hash.toLowerCase()) return { fork: b, orphaned, deep: false };
    orphaned.unshift(b);
  }
  return { fork: null, orphaned, deep: true };
}

export function rewindCursor(cursor: ScanCursor, fork: BlockRef): ScanCursor {
  return {
    blockNumber: fork.number,
    blockHash: fork.hash,
    recent: cursor.recent.filter((b) => b.number < fork.number),
  };
}
