// Picks the bus for a role at start-up: NATS JetStream when a URL is configured (production,
// CUSTOS_NATS_URL), the in-process bus otherwise (`custos dev`, tests). The NATS client is loaded
// only when it is used.

import type { Config } from '../config.ts';
import { MemoryBus, type MemoryBusHub } from './memory.ts';
import type { NatsTlsFiles } from './nats.ts';
import type { Bus, BusLogger } from './types.ts';

export type { NatsTlsFiles } from './nats.ts';
export type * from './types.ts';

export interface CreateBusConfig {
  /** NATS server URL(s), comma-separated; absent = in-process bus. */
  natsUrl?: string | undefined;
  /** NATS connection name (monitoring). Default `custos`. */
  name?: string;
  /** PEM files for TLS towards NATS (CUSTOS_NATS_TLS_*); any of them makes TLS mandatory. */
  natsTls?: NatsTlsFiles | undefined;
  /** NATS `.creds` file (CUSTOS_NATS_CREDS_FILE). */
  natsCredsFile?: string | undefined;
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
      ...(config.natsTls ? { tls: config.natsTls } : {}),
      ...(config.natsCredsFile ? { credsFile: config.natsCredsFile } : {}),
    });
  }
  return new MemoryBus({
    ...(config.hub ? { hub: config.hub } : {}),
    ...(config.logger ? { logger: config.logger } : {}),
  });
}

/** The NATS connection settings of a loaded configuration, for `createBus`. */
export function natsOptionsOf(
  cfg: Pick<Config, 'natsUrl' | 'natsTlsCaFile' | 'natsTlsCertFile' | 'natsTlsKeyFile' | 'natsCredsFile'>,
): Pick<CreateBusConfig, 'natsUrl' | 'natsTls' | 'natsCredsFile'> {
  if (!cfg.natsUrl) return {};
  const tls =
    cfg.natsTlsCaFile || cfg.natsTlsCertFile || cfg.natsTlsKeyFile
      ? { caFile: cfg.natsTlsCaFile, certFile: cfg.natsTlsCertFile, keyFile: cfg.natsTlsKeyFile }
      : undefined;
  return {
    natsUrl: cfg.natsUrl,
    ...(tls ? { natsTls: tls } : {}),
    ...(cfg.natsCredsFile ? { natsCredsFile: cfg.natsCredsFile } : {}),
  };
}

/**
 * A warning when production traffic to NATS would travel in plaintext. MPC envelopes are signed and
 * their point-to-point payloads encrypted end to end regardless, but TLS also protects NATS
 * credentials, subjects and timing; docs/operations/nats-tls.md shows how to turn it on.
 */
export function plaintextNatsWarning(
  cfg: Pick<Config, 'env' | 'natsUrl' | 'natsTlsCaFile' | 'natsTlsCertFile'>,
): string | undefined {
  if (cfg.env !== 'production' || !cfg.natsUrl) return undefined;
  if (cfg.natsTlsCaFile || cfg.natsTlsCertFile) return undefined;
  if (cfg.natsUrl.split(',').every((u) => /^(tls|wss):/i.test(u.trim()))) return undefined;
  return 'NATS connection without TLS in production: set CUSTOS_NATS_TLS_CA_FILE (and a client certificate) or use tls:// URLs';
}
