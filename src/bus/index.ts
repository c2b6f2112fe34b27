// Picks the bus for a role at start-up: NATS JetStream when a URL is configured (production,
// CUSTOS_NATS_URL), the in-process bus otherwise (`custos dev`, tests). The NATS client is loaded
// only when it is used.
import { MemoryBus, type MemoryBusHub } from './memory.ts';
import type { Bus, BusLogger } from './types.ts';

export type * from './types.ts';

export interface CreateBusConfig {
  /** NATS server URL(s), comma-separated; absent = in-process bus. */
  natsUrl?: string | undefined;
  /** NATS connection name (monitoring). Default `custos`. */
  name?: string;
  /** NATS connect timeout. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** In-process only: share a hub between several buses in one process. */
  hub?: MemoryBusHub;
  logger?: BusLogger;
}

/** Throws BusError CUSTOS_BUS_UNAVAILABLE when NATS or its JetStream cannot be reached. */
export async function createBus(config: CreateBusConfig = {}): Promise<Bus> {
  if (config.natsUrl) {
    const { NatsBus } = await import('./nats.ts');
    return NatsBus.connect({
      url: config.natsUrl,
      ...(config.name !== undefined ? { name: config.name } : {}),
      ...(config.connectTimeoutMs !== undefined ? { connectTimeoutMs: config.connectTimeoutMs } : {}),
      ...(config.logger ? { logger: config.logger } : {}),
    });
  }
  return new MemoryBus({
    ...(config.hub ? { hub: config.hub } : {}),
    ...(config.logger ? { logger: config.logger } : {}),
  });
}
