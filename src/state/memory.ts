// In-memory shared state: the embedded default of `custos dev` and tests. JavaScript runs one
// callback at a time, so every operation here is atomic for all users of the same
// MemoryStateStore — the guarantee the Redis implementation gets from Lua scripts. Several
// MemorySharedState instances on one store behave like several processes on one Redis.
import { StateError } from '../errors.ts';
import type {
  AcquireOptions,
  IncrOptions,
  SetOptions,
  SharedState,
  TokenBucketParams,
  TokenBucketResult,
} from './types.ts';
import {
  bucketStep,
  checkBucket,
  checkBy,
  checkKey,
  checkTtl,
  checkValue,
  invalid,
  newToken,
  notHeld,
  retryUntil,
} from './validate.ts';

type Value = string | { tokens: number; ts: number };

interface Entry {
  value: Value;
  expiresAt: number | undefined;
}

const SWEEP_MS = 10_000;

/** The "server" behind in-memory shared state. Expired entries are swept every 10 s. */
export class MemoryStateStore {
  private readonly map = new Map<string, Entry>();
  private sweeper: NodeJS.Timeout | undefined;

  get(key: string, now = Date.now()): Entry | undefined {
    const e = this.map.get(key);
    if (e?.expiresAt !== undefined && e.expiresAt <= now) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }

  put(key: string, value: Value, expiresAt: number | undefined): void {
    this.map.set(key, { value, expiresAt });
    if (expiresAt !== undefined && !this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    }
  }

  delete(key: string): boolean {
    const had = this.get(key) !== undefined;
    this.map.delete(key);
    return had;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.map) if (e.expiresAt !== undefined && e.expiresAt <= now) this.map.delete(k);
    if (this.map.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

export interface MemorySharedStateOptions {
  /** Share a store between instances (several roles in one process). Default: a new store. */
  store?: MemoryStateStore;
  /** Prepended to every key. Default `custos:`. */
  keyPrefix?: string;
}

export class MemorySharedState implements SharedState {
  readonly kind = 'memory' as const;
  readonly store: MemoryStateStore;
  private readonly prefix: string;
  private closed = false;

  constructor(opts: MemorySharedStateOptions = {}) {
    this.store = opts.store ?? new MemoryStateStore();
    this.prefix = opts.keyPrefix ?? 'custos:';
  }

  private open(): void {
    if (this.closed) throw new StateError('CUSTOS_STATE_UNAVAILABLE', 'state: closed');
  }

  private k(space: 'kv' | 'rl' | 'lock', key: string): string {
    return `${this.prefix}${space}:${key}`;
  }

  async get(key: string): Promise<string | null> {
    this.open();
    const e = this.store.get(this.k('kv', checkKey(key)));
    return typeof e?.value === 'string' ? e.value : null;
  }

  async set(key: string, value: string, opts: SetOptions = {}): Promise<void> {
    this.open();
    checkKey(key);
    checkValue(value);
    const ttl = checkTtl(opts.ttlMs);
    this.store.put(this.k('kv', key), value, ttl === undefined ? undefined : Date.now() + ttl);
  }

  async delete(key: string): Promise<boolean> {
    this.open();
    return this.store.delete(this.k('kv', checkKey(key)));
  }

  async setIfAbsent(key: string, value: string, opts: SetOptions = {}): Promise<boolean> {
    this.open();
    checkKey(key);
    checkValue(value);
    const ttl = checkTtl(opts.ttlMs);
    const now = Date.now();
    const k = this.k('kv', key);
    if (this.store.get(k, now)) return false;
    this.store.put(k, value, ttl === undefined ? undefined : now + ttl);
    return true;
  }

  async incr(key: string, opts: IncrOptions = {}): Promise<number> {
    this.open();
    checkKey(key);
    const by = checkBy(opts.by);
    const ttl = checkTtl(opts.ttlMs);
    const now = Date.now();
    const k = this.k('kv', key);
    const e = this.store.get(k, now);
    let current = 0;
    if (e) {
      if (typeof e.value !== 'string' || !/^-?\d+$/.test(e.value))
        invalid(`value of ${key} is not an integer`);
      current = Number(e.value);
    }
    const next = current + by;
    if (!Number.isSafeInteger(next)) invalid(`counter ${key} would overflow`);
    const expiresAt = e?.expiresAt ?? (ttl === undefined ? undefined : now + ttl);
    this.store.put(k, String(next), expiresAt);
    return next;
  }

  async consume(key: string, params: TokenBucketParams): Promise<TokenBucketResult> {
    this.open();
    checkKey(key);
    const p = checkBucket(params);
    const now = Date.now();
    const k = this.k('rl', key);
    const e = this.store.get(k, now);
    const prev = e && typeof e.value !== 'string' ? e.value : undefined;
    const r = bucketStep(prev, p, now);
    this.store.put(k, { tokens: r.tokens, ts: r.ts }, now + r.ttlMs);
    return { allowed: r.allowed, remaining: Math.floor(r.tokens), retryAfterMs: r.retryAfterMs };
  }

  async acquire(name: string, ttlMs: number, opts: AcquireOptions = {}): Promise<string | null> {
    this.open();
    checkKey(name, 'lock name');
    const ttl = checkTtl(ttlMs) ?? invalid('ttlMs is required');
    const waitMs = opts.waitMs ?? 0;
    const retryDelayMs = opts.retryDelayMs ?? 50;
    if (!Number.isInteger(waitMs) || waitMs < 0) invalid('waitMs must be a non-negative integer');
    checkTtl(retryDelayMs, 'retryDelayMs');
    const k = this.k('lock', name);
    return retryUntil(
      async () => {
        this.open();
        const now = Date.now();
        if (this.store.get(k, now)) return null;
        const token = newToken();
        this.store.put(k, token, now + ttl);
        return token;
      },
      waitMs,
      retryDelayMs,
    );
  }

  async release(name: string, token: string): Promise<void> {
    this.open();
    checkKey(name, 'lock name');
    const k = this.k('lock', name);
    if (this.store.get(k)?.value !== token) throw notHeld(name);
    this.store.delete(k);
  }

  async extend(name: string, token: string, ttlMs: number): Promise<void> {
    this.open();
    checkKey(name, 'lock name');
    const ttl = checkTtl(ttlMs) ?? invalid('ttlMs is required');
    const k = this.k('lock', name);
    const now = Date.now();
    if (this.store.get(k, now)?.value !== token) throw notHeld(name);
    this.store.put(k, token, now + ttl);
  }

  async ping(): Promise<number> {
    this.open();
    return 0;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
