// Adapters by network id, built from the resolved network configuration. A role creates one
// registry at start-up and passes it to whatever needs chains (custody, chain watcher).
import { ChainError } from '../errors.ts';
import { createEvmAdapter } from './evm/adapter.ts';
import type { NonceStore } from './evm/nonce.ts';
import { type NetworkConfig, type NetworkInput, resolveNetworks } from './networks.ts';
import { createTronAdapter } from './tron/adapter.ts';
import type { ChainAdapter, NetworkId } from './types.ts';

export class ChainRegistry {
  readonly #adapters = new Map<NetworkId, ChainAdapter>();

  constructor(adapters: Iterable<ChainAdapter>) {
    for (const a of adapters) {
      if (this.#adapters.has(a.network)) {
        throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `network ${a.network} registered twice`);
      }
      this.#adapters.set(a.network, a);
    }
  }

  /** The adapter for a network; CUSTOS_CHAIN_UNSUPPORTED when it is not configured. */
  get(network: NetworkId): ChainAdapter {
    const a = this.#adapters.get(network);
    if (!a)
      throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `network ${network} is not configured`, {
        details: { network },
      });
    return a;
  }

  has(network: NetworkId): boolean {
    return this.#adapters.has(network);
  }

  list(): ChainAdapter[] {
    return [...this.#adapters.values()];
  }
}

export interface CreateChainRegistryParameters {
  /** `config.networks` (operator input, merged over presets) or already resolved networks. */
  networks: readonly (NetworkInput | NetworkConfig)[];
  /** Shared nonce store for every EVM network (production: one backed by PostgreSQL/Redis). */
  nonceStore?: NonceStore;
}

export function createChainRegistry(p: CreateChainRegistryParameters): ChainRegistry {
  const resolved = resolveNetworks(p.networks as NetworkInput[]);
  return new ChainRegistry(
    resolved.map((n) =>
      n.family === 'evm'
        ? createEvmAdapter({ network: n, ...(p.nonceStore ? { nonceStore: p.nonceStore } : {}) })
        : createTronAdapter({ network: n }),
    ),
  );
}
