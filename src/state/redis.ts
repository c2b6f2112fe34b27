// Shared state in Redis, for several processes (API replicas, workers) that must agree on rate
// limits and locks. Every read-modify-write runs as one Lua script, so it is atomic across all
// clients; time for token buckets comes from the Redis server (TIME), so replicas with skewed
// clocks still share one bucket. Mirrors ./memory.ts; test/state-contract.test.ts runs on both.
import { Redis, type RedisOptions } from 'ioredis';
import { CustosError, redactUrl, StateError } from '../errors.ts';
import type {
  AcquireOptions,
  IncrOptions,
  SetOptions,
  SharedState,
  StateLogger,
  TokenBucketParams,
  TokenBucketResult,
} from './types.ts';
import {
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

// KEYS[1] counter; ARGV: by, ttlMs (0 = none). TTL only when the key has none (fixed window).
const INCR_LUA = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return v
`;

// KEYS[1] bucket hash {tokens, ts}; ARGV: capacity, refill per second, cost.
// Same steps as bucketStep() in ./validate.ts. Returns {allowed 0/1, tokens as string, retryAfterMs}.
const BUCKET_LUA = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2]) / 1000
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1])
local ts = tonumber(s[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then tokens = math.min(capacity, tokens + (now - ts) * rate) end
if tokens > capacity then tokens = capacity end
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', tostring(math.max(now, ts)))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
return { allowed, string.format('%.17g', tokens), retry }
`;

// KEYS[1] lock; ARGV[1] token. Compare-and-delete: only the holder releases.
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

// KEYS[1] lock; ARGV: token, ttlMs. Compare-and-expire: only the holder extends.
const EXTEND_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`;

interface Scripts {
  custosIncr(key: string, by: number, ttlMs: number): Promise<number>;
  custosBucket(
    key: string,
    capacity: number,
    refillPerSec: number,
    cost: number,
  ): Promise<[number, string, number]>;
  custosRelease(key: string, token: string): Promise<number>;
  custosExtend(key: string, token: string, ttlMs: number): Promise<number>;
}

export interface RedisSharedStateOptions {
  /** redis:// or rediss:// URL (credentials and database number in the URL). */
  url: string;
  /** Prepended to every key. Default `custos:`. */
  keyPrefix?: string;
  logger?: StateLogger;
  /** Default 5000 ms. */
  connectTimeoutMs?: number;
  /** A command not answered within this fails with CUSTOS_STATE_UNAVAILABLE. Default 2000 ms. */
  commandTimeoutMs?: number;
  /** Passed through to ioredis; wins over the options above. */
  redisOptions?: RedisOptions;
}

export class RedisSharedState implements SharedState {
  readonly kind = 'redis' as const;
  private closing: Promise<void> | undefined;
  private readonly scripts: Scripts;

  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    const defs: [keyof Scripts, string][] = [
      ['custosIncr', INCR_LUA],
      ['custosBucket', BUCKET_LUA],
      ['custosRelease', RELEASE_LUA],
      ['custosExtend', EXTEND_LUA],
    ];
    for (const [name, lua] of defs) redis.defineCommand(name, { numberOfKeys: 1, lua });
    this.scripts = redis as unknown as Scripts;
  }

  /** Connects and checks the server answers; throws StateError CUSTOS_STATE_UNAVAILABLE. */
  static async connect(opts: RedisSharedStateOptions): Promise<RedisSharedState> {
    const safeUrl = redactUrl(opts.url);
    const logger = opts.logger;
    let lastLogged = '';
    let lastLoggedAt = 0;
    const redis = new Redis(opts.url, {
      lazyConnect: true,
      connectionName: 'custos',
      connectTimeout: opts.connectTimeoutMs ?? 5000,
      commandTimeout: opts.commandTimeoutMs ?? 2000,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      ...opts.redisOptions,
    });
    // Without a listener ioredis prints connection errors itself; log them, at most every 10 s.
    redis.on('error', (err: Error) => {
      const now = Date.now();
      if (err.message === lastLogged && now - lastLoggedAt < 10_000) return;
      lastLogged = err.message;
      lastLoggedAt = now;
      logger?.warn({ err, url: safeUrl }, 'state: Redis connection error');
    });
    redis.on('reconnecting', () => logger?.debug({ url: safeUrl }, 'state: reconnecting to Redis'));
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      redis.disconnect();
      throw new StateError('CUSTOS_STATE_UNAVAILABLE', `state: cannot connect to Redis at ${safeUrl}`, {
        details: { url: safeUrl },
        cause: err,
      });
    }
    return new RedisSharedState(redis, opts.keyPrefix ?? 'custos:');
  }

  private k(space: 'kv' | 'rl' | 'lock', key: string): string {
    return `${this.prefix}${space}:${key}`;
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closing) throw new StateError('CUSTOS_STATE_UNAVAILABLE', 'state: closed');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof CustosError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (/not an integer|out of range|overflow/i.test(message)) invalid(`${what}: ${message}`);
      throw new StateError('CUSTOS_STATE_UNAVAILABLE', `state: ${what} failed`, { cause: err });
    }
  }

  get(key: string): Promise<string | null> {
    checkKey(key);
    return this.run('get', () => this.redis.get(this.k('kv', key)));
  }

  async set(key: string, value: string, opts: SetOptions = {}): Promise<void> {
    checkKey(key);
    checkValue(value);
    const ttl = checkTtl(opts.ttlMs);
    await this.run('set', () =>
      ttl === undefined
        ? this.redis.set(this.k('kv', key), value)
        : this.redis.set(this.k('kv', key), value, 'PX', ttl),
    );
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    return (await this.run('delete', () => this.redis.del(this.k('kv', key)))) > 0;
  }

  async setIfAbsent(key: string, value: string, opts: SetOptions = {}): Promise<boolean> {
    checkKey(key);
    checkValue(value);
    const ttl = checkTtl(opts.ttlMs);
    const r = await this.run('setIfAbsent', () =>
      ttl === undefined
        ? this.redis.set(this.k('kv', key), value, 'NX')
        : this.redis.set(this.k('kv', key), value, 'PX', ttl, 'NX'),
    );
    return r === 'OK';
  }

  async incr(key: string, opts: IncrOptions = {}): Promise<number> {
    checkKey(key);
    const by = checkBy(opts.by);
    const ttl = checkTtl(opts.ttlMs) ?? 0;
    const v = await this.run('incr', () => this.scripts.custosIncr(this.k('kv', key), by, ttl));
    return Number(v);
  }

  async consume(key: string, params: TokenBucketParams): Promise<TokenBucketResult> {
    checkKey(key);
    const p = checkBucket(params);
    const [allowed, tokens, retry] = await this.run('consume', () =>
      this.scripts.custosBucket(this.k('rl', key), p.capacity, p.rate * 1000, p.cost),
    );
    return { allowed: allowed === 1, remaining: Math.floor(Number(tokens)), retryAfterMs: Number(retry) };
  }

  async acquire(name: string, ttlMs: number, opts: AcquireOptions = {}): Promise<string | null> {
    checkKey(name, 'lock name');
    const ttl = checkTtl(ttlMs) ?? invalid('ttlMs is required');
    const waitMs = opts.waitMs ?? 0;
    const retryDelayMs = opts.retryDelayMs ?? 50;
    if (!Number.isInteger(waitMs) || waitMs < 0) invalid('waitMs must be a non-negative integer');
    checkTtl(retryDelayMs, 'retryDelayMs');
    const k = this.k('lock', name);
    return retryUntil(
      async () => {
        const token = newToken();
        const r = await this.run('acquire', () => this.redis.set(k, token, 'PX', ttl, 'NX'));
        return r === 'OK' ? token : null;
      },
      waitMs,
      retryDelayMs,
    );
  }

  async release(name: string, token: string): Promise<void> {
    checkKey(name, 'lock name');
    const r = await this.run('release', () =>
      this.scripts.custosRelease(this.k('lock', name), String(token)),
    );
    if (r !== 1) throw notHeld(name);
  }

  async extend(name: string, token: string, ttlMs: number): Promise<void> {
    checkKey(name, 'lock name');
    const ttl = checkTtl(ttlMs) ?? invalid('ttlMs is required');
    const r = await this.run('extend', () =>
      this.scripts.custosExtend(this.k('lock', name), String(token), ttl),
    );
    if (r !== 1) throw notHeld(name);
  }

  async ping(opts: { timeoutMs?: number } = {}): Promise<number> {
    const timeoutMs = checkTtl(opts.timeoutMs, 'timeoutMs') ?? 2000;
    return this.run('ping', async () => {
      const t0 = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          this.redis.ping(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
      return Math.round((performance.now() - t0) * 100) / 100;
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          this.redis.quit(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('quit timed out')), 2000);
          }),
        ]);
      } catch {
        this.redis.disconnect();
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.closing;
  }
}

export function connectRedisSharedState(opts: RedisSharedStateOptions): Promise<RedisSharedState> {
  return RedisSharedState.connect(opts);
}
