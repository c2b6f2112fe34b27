// Network configuration for every chain adapter. Networks are data, not code: an EVM chain needs
// a chain id, an RPC URL, a confirmation depth, fee caps and its tokens; a Tron network needs its
// HTTP API URL. Presets carry sensible defaults for the well-known networks; the operator's
// `networks` configuration (CUSTOS_NETWORKS, JSON) picks presets and overrides any field.
import { getAddress, isAddress } from 'viem';
import { z } from 'zod';
import { ChainError } from '../errors.ts';

const amount = z
  .union([
    z.string().regex(/^[0-9]+$/, 'must be a non-negative integer in base units'),
    z.number().int().min(0),
  ])
  .transform((v) => BigInt(v));

const httpUrl = z.string().refine((v) => {
  try {
    return ['http:', 'https:'].includes(new URL(v).protocol);
  } catch {
    return false;
  }
}, 'must be an http(s) URL');

const tokenSchema = z.object({
  symbol: z.string().regex(/^[A-Za-z0-9.-]{1,20}$/),
  contract: z.string().min(1),
  decimals: z.number().int().min(0).max(77),
});

const evmFeesSchema = z.object({
  /** Hard cap on maxFeePerGas (or gasPrice) in wei; building fails above it. */
  maxFeePerGasCap: amount,
  /** Hard cap on maxPriorityFeePerGas in wei. */
  maxPriorityFeePerGasCap: amount,
  /** Floor for the priority fee (some nodes suggest 0). */
  minPriorityFeePerGas: amount,
  /** maxFeePerGas = baseFee × this / 100 + priority: headroom for base-fee rises while pending. */
  baseFeeMultiplierPercent: z.number().int().min(100).max(1000),
  /** Estimated gas × this / 100 for contract calls (token transfers). */
  gasLimitMultiplierPercent: z.number().int().min(100).max(300),
  /** 'fast' multiplies the priority fee by this / 100. */
  fastPriorityPercent: z.number().int().min(100).max(1000),
});

const scanSchema = z.object({
  /** Blocks per scanDeposits call at most. */
  maxBlocks: z.number().int().min(1).max(10_000),
  /** Block requests in flight at once while scanning. */
  concurrency: z.number().int().min(1).max(64),
  /** Block hashes kept in the cursor to find the fork point of a reorg. */
  reorgHistory: z.number().int().min(1).max(1024),
});

export const evmNetworkSchema = z.object({
  id: z.string().regex(/^[a-z0-9-]{1,40}$/),
  family: z.literal('evm'),
  chainId: z.number().int().positive(),
  rpcUrl: httpUrl,
  confirmations: z.number().int().min(1).max(10_000),
  nativeSymbol: z.string().min(1).max(20),
  nativeDecimals: z.number().int().min(0).max(36),
  txType: z.enum(['eip1559', 'legacy']),
  tokens: z.array(tokenSchema),
  fees: evmFeesSchema,
  scan: scanSchema,
  /** Per-request timeout and retries for idempotent RPC calls. */
  rpcTimeoutMs: z.number().int().min(100).max(120_000),
  rpcRetries: z.number().int().min(0).max(10),
});

export const tronNetworkSchema = z.object({
  id: z.string().regex(/^[a-z0-9-]{1,40}$/),
  family: z.literal('tron'),
  /** TronGrid-compatible HTTP API (full node /wallet/* and /walletsolidity/*, TronGrid /v1/*). */
  apiUrl: httpUrl,
  /** Sent as TRON-PRO-API-KEY; never logged. */
  apiKey: z.string().min(1).optional(),
  /** Informational: Tron confirms by solidification (~19 blocks); a deposit is final once solidified. */
  confirmations: z.number().int().min(1).max(10_000),
  tokens: z.array(tokenSchema),
  /** Cap on fee_limit for TRC-20 calls, in sun. */
  maxFeeLimit: amount,
  /** Transaction lifetime from the reference block's timestamp (ms, Tron allows up to 24 h). */
  expirationMs: z
    .number()
    .int()
    .min(10_000)
    .max(24 * 3600_000),
  /** fee_limit = estimated energy × price × this / 100. */
  feeLimitMultiplierPercent: z.number().int().min(100).max(500),
  scan: scanSchema,
  rpcTimeoutMs: z.number().int().min(100).max(120_000),
  rpcRetries: z.number().int().min(0).max(10),
});

export type EvmNetworkConfig = z.infer<typeof evmNetworkSchema>;
export type TronNetworkConfig = z.infer<typeof tronNetworkSchema>;
export type NetworkConfig = EvmNetworkConfig | TronNetworkConfig;

/** What an operator writes: an id, optionally a preset name, and any fields to override. */
export const networkInputSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9-]{1,40}$/, 'lowercase letters, digits and dashes'),
    preset: z.string().optional(),
  })
  .catchall(z.unknown());
export type NetworkInput = z.infer<typeof networkInputSchema>;

const GWEI = 1_000_000_000;
const evmDefaults = {
  family: 'evm',
  nativeDecimals: 18,
  txType: 'eip1559',
  tokens: [],
  fees: {
    maxFeePerGasCap: String(500 * GWEI),
    maxPriorityFeePerGasCap: String(10 * GWEI),
    minPriorityFeePerGas: String(GWEI / 100),
    baseFeeMultiplierPercent: 200,
    gasLimitMultiplierPercent: 130,
    fastPriorityPercent: 200,
  },
  scan: { maxBlocks: 500, concurrency: 8, reorgHistory: 128 },
  rpcTimeoutMs: 15_000,
  rpcRetries: 3,
} as const;

/**
 * Known networks. Confirmation depths are conservative defaults for deposits; L2 depths count L2
 * blocks (L1 finality is a separate, slower guarantee). Token addresses: check before production.
 */
export const NETWORK_PRESETS: Record<string, Record<string, unknown>> = {
  ethereum: {
    ...evmDefaults,
    chainId: 1,
    confirmations: 12,
    nativeSymbol: 'ETH',
    tokens: [
      { symbol: 'USDT', contract: '0xdAC17F958D2ee523a2206206994597C13D831ec7', decimals: 6 },
      { symbol: 'USDC', contract: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48', decimals: 6 },
    ],
  },
  sepolia: { ...evmDefaults, chainId: 11155111, confirmations: 12, nativeSymbol: 'ETH' },
  polygon: { ...evmDefaults, chainId: 137, confirmations: 64, nativeSymbol: 'POL' },
  arbitrum: { ...evmDefaults, chainId: 42161, confirmations: 20, nativeSymbol: 'ETH' },
  optimism: { ...evmDefaults, chainId: 10, confirmations: 20, nativeSymbol: 'ETH' },
  base: { ...evmDefaults, chainId: 8453, confirmations: 20, nativeSymbol: 'ETH' },
  bsc: { ...evmDefaults, chainId: 56, confirmations: 15, nativeSymbol: 'BNB', txType: 'legacy' },
  /** The local devnet `custos dev` starts (src/chains/devnet). */
  anvil: {
    ...evmDefaults,
    chainId: 31337,
    confirmations: 2,
    nativeSymbol: 'ETH',
    rpcUrl: 'http://127.0.0.1:8545',
  },
  tron: {
    family: 'tron',
    apiUrl: 'https://api.trongrid.io',
    confirmations: 19,
    tokens: [{ symbol: 'USDT', contract: 'TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t', decimals: 6 }],
    maxFeeLimit: '100000000',
    expirationMs: 60_000,
    feeLimitMultiplierPercent: 130,
    scan: { maxBlocks: 100, concurrency: 4, reorgHistory: 64 },
    rpcTimeoutMs: 15_000,
    rpcRetries: 3,
  },
};
NETWORK_PRESETS['tron-nile'] = { ...NETWORK_PRESETS['tron'], apiUrl: 'https://nile.trongrid.io', tokens: [] };
NETWORK_PRESETS['tron-shasta'] = {
  ...NETWORK_PRESETS['tron'],
  apiUrl: 'https://api.shasta.trongrid.io',
  tokens: [],
};

/** Merges an operator's network entry over its preset (by `preset`, else by `id`) and validates it. */
export function resolveNetwork(input: NetworkInput): NetworkConfig {
  const { preset, ...rest } = input;
  const base = NETWORK_PRESETS[preset ?? input.id];
  if (preset !== undefined && !base) {
    throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `network ${input.id}: unknown preset "${preset}"`);
  }
  const merged = deepMerge(base ?? {}, rest);
  const family = merged['family'];
  const schema = family === 'tron' ? tronNetworkSchema : evmNetworkSchema;
  const r = schema.safeParse(merged);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ChainError(
      'CUSTOS_CHAIN_UNSUPPORTED',
      `network ${input.id}: ${i.path.join('.') || '(root)'}: ${i.message}`,
      { details: { network: input.id } },
    );
  }
  const net = r.data as NetworkConfig;
  if (net.family === 'evm') {
    for (const t of net.tokens) {
      if (!isAddress(t.contract, { strict: true })) {
        throw new ChainError(
          'CUSTOS_CHAIN_INVALID_ADDRESS',
          `network ${net.id}: token ${t.symbol}: bad contract`,
        );
      }
      t.contract = getAddress(t.contract);
    }
  }
  const symbols = new Set<string>();
  for (const s of [net.family === 'evm' ? net.nativeSymbol : 'TRX', ...net.tokens.map((t) => t.symbol)]) {
    if (symbols.has(s))
      throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `network ${net.id}: duplicate asset ${s}`);
    symbols.add(s);
  }
  return net;
}

export function resolveNetworks(inputs: readonly NetworkInput[]): NetworkConfig[] {
  const seen = new Set<string>();
  return inputs.map((i) => {
    if (seen.has(i.id)) throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `network ${i.id} configured twice`);
    seen.add(i.id);
    return resolveNetwork(i);
  });
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      isPlainObject(cur) && isPlainObject(v)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

function isPlainObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
