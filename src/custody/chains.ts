// The chain adapters custody runs on: the configured networks (config.networks, CUSTOS_NETWORKS —
// plus, in `custos dev`, the 'anvil' network pointing at the local devnet with USDT-TEST) from the
// chain registry, sharing one PostgreSQL-backed nonce store so every replica hands out EVM nonces
// from the same rows; and, outside production, the in-memory test chains. MPC nodes get their own
// decoder instances (`nodeChainDecoders`): they never share an object with the control plane.
import type { Kysely } from 'kysely';
import { createEvmAdapter } from '../chains/evm/adapter.ts';
import { PgNonceStore } from '../chains/evm/nonce-store-pg.ts';
import { type NetworkConfig, type NetworkInput, resolveNetworks } from '../chains/networks.ts';
import { createChainRegistry } from '../chains/registry.ts';
import { createTronAdapter } from '../chains/tron/adapter.ts';
import type { ChainAdapter } from '../chains/types.ts';
import type { Database } from '../store/schema.ts';

/** The local devnet as `custos dev` describes it in dev.json (src/roles/devnet.ts). */
export interface DevnetDescription {
  rpcUrl: string;
  chainId: number;
  tokens: readonly { symbol: string; address: string; decimals: number }[];
}

/** The 'anvil' network entry for a running devnet. */
export function devnetNetwork(d: DevnetDescription): NetworkInput {
  return {
    id: 'anvil',
    preset: 'anvil',
    chainId: d.chainId,
    rpcUrl: d.rpcUrl,
    tokens: d.tokens.map((t) => ({ symbol: t.symbol, contract: t.address, decimals: t.decimals })),
  } as NetworkInput;
}

/** Configured networks plus extra ones (e.g. the devnet), the configured entry winning on an id clash. */
export function mergeNetworks(
  configured: readonly NetworkInput[],
  extra: readonly NetworkInput[] = [],
): NetworkInput[] {
  const ids = new Set(configured.map((n) => n.id));
  return [...configured, ...extra.filter((n) => !ids.has(n.id))];
}

export interface CustodyChainsParameters {
  db: Kysely<Database>;
  networks: readonly NetworkInput[];
  /** In-memory test chains to serve alongside (dev, tests; never production). */
  testChains?: readonly ChainAdapter[];
}

export function custodyChains(p: CustodyChainsParameters): ChainAdapter[] {
  const registry = createChainRegistry({ networks: p.networks, nonceStore: new PgNonceStore(p.db) });
  return [...(p.testChains ?? []), ...registry.list()];
}

/**
 * Fresh decoders for an MPC node (explainTransaction is local: no RPC, no nonce store involved).
 * Returns a lookup by network id.
 */
export function nodeChainDecoders(
  networks: readonly NetworkInput[],
  testChains: readonly ChainAdapter[] = [],
): NodeChainDecoders {
  const resolved: NetworkConfig[] = resolveNetworks(networks as NetworkInput[]);
  const byId = new Map(resolved.map((n) => [n.id, n]));
  const create = (n: NetworkConfig) =>
    n.family === 'evm' ? createEvmAdapter({ network: n }) : createTronAdapter({ network: n });
  const m = new Map<string, Pick<ChainAdapter, 'explainTransaction'>>(testChains.map((c) => [c.network, c]));
  for (const n of resolved) m.set(n.id, create(n));
  // One decoder per endorsed token (its own adapter instance: an endorsement of one organisation
  // never changes how another request decodes). Bounded: decoders are cheap to rebuild.
  const withToken = new Map<string, Pick<ChainAdapter, 'explainTransaction'>>();
  return (network, token) => {
    if (!token) return m.get(network);
    const n = byId.get(network);
    if (!n) return undefined; // test chains: configured tokens only
    const k = `${network}\0${token.symbol}\0${token.decimals}\0${token.contract}`;
    let d = withToken.get(k);
    if (!d) {
      const a = create(n);
      a.registerToken(token); // throws on a clash with the node's own configuration
      if (withToken.size >= 256) withToken.clear();
      withToken.set(k, a);
      d = a;
    }
    return d;
  };
}

/**
 * A node's own transaction decoders per network; with `token`, one that also knows an owner-endorsed
 * registered token (throws if it clashes with a configured asset).
 */
export type NodeChainDecoders = (
  network: string,
  token?: { symbol: string; decimals: number; contract: string },
) => Pick<ChainAdapter, 'explainTransaction'> | undefined;
