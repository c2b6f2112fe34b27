// Picks the shared-state store for a role at start-up: Redis when a URL is configured
// (production, CUSTOS_REDIS_URL), process memory otherwise (`custos dev`, tests). The Redis client
// is loaded only when it is used.
import { MemorySharedState, type MemoryStateStore } from './memory.ts';
import type { SharedState, StateLogger } from './types.ts';

export type * from './types.ts';

export interface CreateSharedStateConfig {
  /** redis:// or rediss:// URL; absent = in-process memory. */
  redisUrl?: string | undefined;
  /** Prepended to every key, to share one Redis between deployments. Default `custos:`. */
  keyPrefix?: string;
  /** Redis connect timeout. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Redis per-command timeout. Default 2000 ms. */
  commandTimeoutMs?: number;
  /** Memory only: share a store between several instances in one process. */
  store?: MemoryStateStore;
  logger?: StateLogger;
}

/** Throws StateError CUSTOS_STATE_UNAVAILABLE when Redis cannot be reached. */
export async function createSharedState(config: CreateSharedStateConfig = {}): Promise<SharedState> {
  if (config.redisUrl) {
    const { RedisSharedState } = await import('./redis.ts');
    return RedisSharedState.connect({
      url: config.redisUrl,
      ...(config.keyPrefix !== undefined ? { keyPrefix: config.keyPrefix } : {}),
      ...(config.connectTimeoutMs !== undefined ? { connectTimeoutMs: config.connectTimeoutMs } : {}),
      ...(config.commandTimeoutMs !== undefined ? { commandTimeoutMs: config.commandTimeoutMs } : {}),
      ...(config.logger ? { logger: config.logger } : {}),
    });
  }
  return new MemorySharedState({
    ...(config.store ? { store: config.store } : {}),
    ...(config.keyPrefix !== undefined ? { keyPrefix: config.keyPrefix } : {}),
  });
}
