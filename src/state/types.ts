// The shared-state contract: small, short-lived, cross-instance state — rate limits, locks and
// caches — kept in memory for `custos dev` and tests, in Redis when several processes must agree
// (API replicas behind a load balancer). Not a database: anything that must survive Redis losing
// its data belongs in PostgreSQL. Both implementations pass test/state-contract.test.ts.

/** Minimal pino-compatible logger; pass the process logger (or a child of it). */
export interface StateLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SetOptions {
  /** Time to live in ms (positive integer). Default: no expiry. */
  ttlMs?: number;
}

export interface IncrOptions {
  /** Integer to add (may be negative). Default 1. */
  by?: number;
  /**
   * TTL applied when the counter has none yet (i.e. when it is created): a fixed window that
   * later increments do not extend.
   */
  ttlMs?: number;
}

export interface TokenBucketParams {
  /** Most tokens the bucket holds (the burst). A new bucket starts full. */
  capacity: number;
  /** Tokens added per second (may be fractional). */
  refillPerSec: number;
  /** Tokens this call takes. Default 1; 0 only looks. Must not exceed capacity. */
  cost?: number;
}

export interface TokenBucketResult {
  allowed: boolean;
  /** Whole tokens left after this call. */
  remaining: number;
  /** 0 when allowed; otherwise ms until `cost` tokens will be available. */
  retryAfterMs: number;
}

export interface AcquireOptions {
  /** Keep trying this long before giving up (returning null). Default 0: one attempt. */
  waitMs?: number;
  /** Pause between attempts. Default 50 ms (with jitter). */
  retryDelayMs?: number;
}

export interface SharedState {
  readonly kind: 'memory' | 'redis';

  // Cache: string values; use JSON for structure.
  get(key: string): Promise<string | null>;
  set(key: string, value: string, opts?: SetOptions): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /** Atomic: stores only if the key does not exist; true when it stored. */
  setIfAbsent(key: string, value: string, opts?: SetOptions): Promise<boolean>;
  /** Atomic add to an integer counter (created at 0); returns the new value. Shares keys with get/set. */
  incr(key: string, opts?: IncrOptions): Promise<number>;

  /** Token bucket, atomic across every process using the same store. */
  consume(key: string, params: TokenBucketParams): Promise<TokenBucketResult>;

  // Locks: advisory, with a TTL so a crashed holder cannot block others forever.
  /** Returns a token proving ownership, or null when someone else holds the lock. */
  acquire(name: string, ttlMs: number, opts?: AcquireOptions): Promise<string | null>;
  /** Throws StateError CUSTOS_LOCK_NOT_HELD when `token` does not hold the lock (anymore). */
  release(name: string, token: string): Promise<void>;
  /** Resets the lock's TTL to ttlMs; throws StateError CUSTOS_LOCK_NOT_HELD like release. */
  extend(name: string, token: string, ttlMs: number): Promise<void>;

  /** Round trip in ms; throws StateError CUSTOS_STATE_UNAVAILABLE. For /readyz. */
  ping(opts?: { timeoutMs?: number }): Promise<number>;
  /** Idempotent; later calls throw CUSTOS_STATE_UNAVAILABLE. */
  close(): Promise<void>;
}
