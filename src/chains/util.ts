// Small helpers shared by the chain families.
import { ChainError } from '../errors.ts';
import type { Asset, BlockRef, NetworkId, ScanCursor } from './types.ts';

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

/** A token registered at run time (`POST /v1/assets`), before the adapter has canonicalised it. */
export interface TokenRegistration {
  readonly symbol: string;
  readonly decimals: number;
  /** Canonical contract address (the adapter's `validateAddress` form). */
  readonly contract: string;
}

/**
 * Adds a run-time registered token to an adapter's mutable asset list. The same (symbol, contract,
 * decimals) again returns the known asset; a symbol or contract already used differently (a
 * configured token, the native coin, an earlier registration) is refused, so one contract never
 * has two names and one name never points at two contracts.
 */
export function registerTokenIn(assets: Asset[], network: NetworkId, token: TokenRegistration): Asset {
  const same = assets.find((a) => a.symbol === token.symbol);
  if (same) {
    if (same.kind === 'token' && same.contract === token.contract && same.decimals === token.decimals)
      return same;
    throw new ChainError(
      'CUSTOS_CHAIN_UNSUPPORTED',
      `${network}: asset ${token.symbol} is already defined with another contract or decimals`,
    );
  }
  if (assets.some((a) => a.contract === token.contract)) {
    throw new ChainError(
      'CUSTOS_CHAIN_UNSUPPORTED',
      `${network}: contract ${token.contract} is already registered`,
    );
  }
  if (!Number.isInteger(token.decimals) || token.decimals < 0 || token.decimals > 36) {
    throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `${network}: token decimals must be 0..36`);
  }
  const asset: Asset = {
    network,
    symbol: token.symbol,
    decimals: token.decimals,
    kind: 'token',
    contract: token.contract,
  };
  assets.push(asset);
  return asset;
}
