// Runs a critical section under a shared-state lock. The lock has a TTL so a crashed holder
// cannot block others forever; work that may outlive it must call `extend` (or use a longer TTL).
import { StateError } from '../errors.ts';
import type { SharedState } from './types.ts';

export interface WithLockOptions {
  /** Lock lifetime. */
  ttlMs: number;
  /** How long to wait for a busy lock. Default 0: fail at once. */
  waitMs?: number;
  retryDelayMs?: number;
}

/**
 * Acquires `name`, runs `fn(token)`, releases. Throws StateError CUSTOS_LOCK_BUSY when the lock
 * stays busy for waitMs, and CUSTOS_LOCK_NOT_HELD when it expired before `fn` finished (another
 * holder may have run concurrently — the caller must treat its work as unprotected).
 */
export async function withLock<T>(
  state: SharedState,
  name: string,
  opts: WithLockOptions,
  fn: (token: string) => Promise<T>,
): Promise<T> {
  const token = await state.acquire(name, opts.ttlMs, {
    ...(opts.waitMs !== undefined ? { waitMs: opts.waitMs } : {}),
    ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
  });
  if (token === null) {
    throw new StateError('CUSTOS_LOCK_BUSY', `state: lock ${name} is busy`, { details: { lock: name } });
  }
  let result: T;
  try {
    result = await fn(token);
  } catch (err) {
    await state.release(name, token).catch(() => {});
    throw err;
  }
  await state.release(name, token);
  return result;
}
