// Argument checks and the token-bucket arithmetic shared by both shared-state implementations, so
// both reject the same inputs the same way and compute the same answers.
import { randomBytes } from 'node:crypto';
import { StateError } from '../errors.ts';
import type { TokenBucketParams } from './types.ts';

const MAX_KEY = 1024;

export function invalid(message: string): never {
  throw new StateError('CUSTOS_STATE_INVALID_ARGUMENT', `state: ${message}`);
}

export function checkKey(key: string, what = 'key'): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY) {
    invalid(`${what} must be a string of 1–${MAX_KEY} characters`);
  }
  return key;
}

export function checkValue(value: string): string {
  if (typeof value !== 'string') invalid('value must be a string');
  return value;
}

export function checkTtl(ttlMs: number | undefined, what = 'ttlMs'): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) invalid(`${what} must be a positive integer (ms)`);
  return ttlMs;
}

export function checkBy(by: number | undefined): number {
  if (by === undefined) return 1;
  if (!Number.isSafeInteger(by)) invalid('by must be a safe integer');
  return by;
}

export interface BucketParams {
  capacity: number;
  /** tokens per ms */
  rate: number;
  cost: number;
}

export function checkBucket(p: TokenBucketParams): BucketParams {
  const { capacity, refillPerSec } = p;
  const cost = p.cost ?? 1;
  if (!Number.isFinite(capacity) || capacity <= 0) invalid('capacity must be a positive number');
  if (!Number.isFinite(refillPerSec) || refillPerSec <= 0) invalid('refillPerSec must be a positive number');
  if (!Number.isFinite(cost) || cost < 0) invalid('cost must be a non-negative number');
  if (cost > capacity) invalid(`cost ${cost} exceeds capacity ${capacity}: it could never be allowed`);
  return { capacity, rate: refillPerSec / 1000, cost };
}

/**
 * One step of the token bucket. Mirrors the Lua script in ./redis.ts line by line: refill for the
 * time elapsed (never past capacity), take `cost` if there is enough.
 */
export function bucketStep(
  state: { tokens: number; ts: number } | undefined,
  p: BucketParams,
  now: number,
): { tokens: number; ts: number; allowed: boolean; retryAfterMs: number; ttlMs: number } {
  let tokens = state?.tokens ?? p.capacity;
  const ts = state?.ts ?? now;
  if (now > ts) tokens = Math.min(p.capacity, tokens + (now - ts) * p.rate);
  if (tokens > p.capacity) tokens = p.capacity;
  let allowed = false;
  let retryAfterMs = 0;
  if (tokens >= p.cost) {
    tokens -= p.cost;
    allowed = true;
  } else {
    retryAfterMs = Math.ceil((p.cost - tokens) / p.rate);
  }
  const ttlMs = Math.ceil((p.capacity - tokens) / p.rate) + 1000;
  return { tokens, ts: Math.max(now, ts), allowed, retryAfterMs, ttlMs };
}

/** An unguessable lock token. */
export function newToken(): string {
  return randomBytes(16).toString('hex');
}

/** Retries `attempt` until it returns non-null or waitMs has passed. */
export async function retryUntil<T>(
  attempt: () => Promise<T | null>,
  waitMs: number,
  retryDelayMs: number,
): Promise<T | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const r = await attempt();
    if (r !== null) return r;
    const left = deadline - Date.now();
    if (left <= 0) return null;
    const pause = Math.min(left, retryDelayMs / 2 + Math.random() * retryDelayMs);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

export function notHeld(name: string): StateError {
  return new StateError('CUSTOS_LOCK_NOT_HELD', `state: lock ${name} is not held with this token`, {
    details: { lock: name },
  });
}
