// The ChainAdapter interface: everything the custody engine (withdrawal lifecycle, chain watcher,
// ledger) needs from a chain family, and nothing chain-specific leaks past it. One adapter instance
// serves one configured network (e.g. 'ethereum', 'polygon', 'tron'); `src/chains/registry.ts`
// finds it by network id.
//
// Rules every adapter follows:
// - Money is `bigint` in base units (wei, sun, token units) everywhere; never Number.
// - The adapter never signs. `buildTransfer` returns the exact 32-byte digest(s) the MPC nodes sign;
//   `attachSignatures` checks that each signature recovers to the sending address before it builds
//   the broadcastable bytes, so a wrong key or a wrong digest fails here, not on chain.
// - An UnsignedTransaction is self-describing: `payload` holds the chain's own encoding and
//   `explainTransaction` decodes it again (verifiers and nodes re-check the intent from the bytes,
//   never from the `summary` the control plane wrote).
// - Addresses cross this boundary in the chain's canonical text form (EIP-55 for EVM, base58 `T…`
//   for Tron); `validateAddress` normalises user input into that form.

/** Configured network id, e.g. 'ethereum', 'polygon', 'arbitrum', 'optimism', 'bsc', 'anvil', 'tron'. */
export type NetworkId = string;

/** 'test': the in-memory test chain of the custody engine (src/custody/test-chain.ts). */
export type ChainFamily = 'evm' | 'tron' | 'test';

/** A coin or token on one network. */
export interface Asset {
  readonly network: NetworkId;
  /** Unique per network, e.g. 'ETH', 'USDT', 'TRX', 'USDT-TEST'. */
  readonly symbol: string;
  readonly decimals: number;
  readonly kind: 'native' | 'token';
  /** Token contract address (canonical form); null for the native coin. */
  readonly contract: string | null;
}

/** Fee preferences for one transfer; the network's configured caps always apply on top. */
export interface FeeOptions {
  /** 'normal' uses the node's suggestion; 'fast' adds the configured premium. */
  readonly speed?: 'normal' | 'fast';
  /** EVM: explicit fee fields (still checked against the caps). */
  readonly maxFeePerGas?: bigint;
  readonly maxPriorityFeePerGas?: bigint;
  readonly gasPrice?: bigint;
  /** EVM: explicit gas limit (otherwise estimated). */
  readonly gasLimit?: bigint;
  /** Tron: fee_limit in sun for TRC-20 calls (otherwise estimated, capped by the network's maxFeeLimit). */
  readonly feeLimit?: bigint;
  /**
   * EVM (EIP-1559): the most this transfer may cost in fees, base units. maxFeePerGas is raised to
   * budget / gasLimit (never above the network's cap, never below today's figure), so a transaction
   * signed now and broadcast much later still pays the base fee of then: only base fee + tip are
   * charged. Cold-vault withdrawals pass their reserved maximum. Ignored for legacy gas and Tron.
   */
  readonly budget?: bigint;
}

export interface TransferRequest {
  /** One of our addresses (the signer), canonical form. */
  readonly from: string;
  readonly to: string;
  readonly asset: Asset;
  /** Base units, > 0. */
  readonly amount: bigint;
  readonly fee?: FeeOptions;
  /** Tron: optional memo bytes written to raw_data.data (UTF-8). Ignored on EVM. */
  readonly memo?: string;
  /**
   * How long the signed transaction must stay valid, ms (signing offline). Tron: raw_data.expiration
   * = reference block time + max(network expirationMs, this), at most 24 h (the protocol's limit).
   * EVM transactions do not expire (ignored).
   */
  readonly validForMs?: number;
}

export interface FeeEstimate {
  /** Always the network's native asset. */
  readonly asset: Asset;
  /** What the transfer is expected to cost, base units of the native asset. */
  readonly expected: bigint;
  /** The most it can cost (gasLimit × maxFeePerGas; Tron: fee_limit + bandwidth). Reserve this. */
  readonly max: bigint;
  /** Chain-specific parameters that produced the figures (all bigint). */
  readonly evm?: {
    readonly type: 'eip1559' | 'legacy';
    readonly gasLimit: bigint;
    readonly baseFeePerGas?: bigint;
    readonly maxFeePerGas?: bigint;
    readonly maxPriorityFeePerGas?: bigint;
    readonly gasPrice?: bigint;
  };
  readonly tron?: {
    readonly bandwidth: bigint;
    readonly energy: bigint;
    readonly feeLimit: bigint;
    /** Sun per energy unit and per bandwidth byte at estimation time. */
    readonly energyPrice: bigint;
    readonly bandwidthPrice: bigint;
    /** Whether the recipient account does not exist yet (TRX transfers pay activation). */
    readonly activatesAccount: boolean;
  };
}

/** What a transaction does, decoded from its bytes. */
export interface TransferSummary {
  readonly network: NetworkId;
  readonly from: string;
  readonly to: string;
  readonly asset: Asset;
  readonly amount: bigint;
  /** EVM nonce; null on Tron (no account nonce). */
  readonly nonce: number | null;
  /** Upper bound of the fee in native base units. */
  readonly maxFee: bigint;
}

/** One digest for the MPC nodes to sign (ECDSA secp256k1 over exactly these 32 bytes). */
export interface SigningDigest {
  readonly digest: Uint8Array;
  /** Canonical address that must result from recovering the signature. */
  readonly signer: string;
}

export interface UnsignedTransaction {
  readonly network: NetworkId;
  readonly family: ChainFamily;
  /** Chain encoding: EVM = 0x-hex of the serialized unsigned tx; Tron = hex of raw_data protobuf. */
  readonly payload: string;
  /** Exactly what to sign, in order: EVM keccak256(payload); Tron sha256(raw_data) (= txID). */
  readonly digests: readonly SigningDigest[];
  /** Tron txID is known before signing; EVM hashes are only known once signed (null here). */
  readonly txId: string | null;
  readonly summary: TransferSummary;
  readonly fee: FeeEstimate;
  /** Tron: unix ms after which the transaction can never be included. */
  readonly expiresAt?: number;
}

/** A threshold signature as src/crypto produces it (SchemeSignature-compatible). */
export interface ChainSignature {
  /** 64 bytes r||s (low-s). */
  readonly signature: Uint8Array;
  /** 0 or 1; when absent the adapter tries both against the expected signer. */
  readonly recovery?: number;
}

export interface SignedTransaction {
  readonly network: NetworkId;
  readonly family: ChainFamily;
  /** The id the chain will know it by (EVM tx hash 0x…, Tron txID hex without 0x). */
  readonly txId: string;
  /** Broadcastable form: EVM 0x-hex raw tx; Tron JSON text for /wallet/broadcasttransaction. */
  readonly raw: string;
  readonly summary: TransferSummary;
}

export interface BroadcastResult {
  readonly txId: string;
  /** The node already had it (a retry after a lost reply) — not an error. */
  readonly alreadyKnown: boolean;
}

export type TxState = 'pending' | 'confirmed' | 'failed' | 'dropped' | 'reorged';

/**
 * Where a transaction stands. `pending`: in the mempool or mined but shallower than the network's
 * confirmation depth. `confirmed`: mined, succeeded and at least depth deep (Tron: solidified).
 * `failed`: mined but reverted (fee spent, value not moved) — final once deep enough, see
 * confirmations. `dropped`: the node does not know it; `nonceConsumed` says whether another
 * transaction took its nonce (then it can never be mined) or a rebroadcast is safe.
 * `reorged`: it was in `knownBlockHash` and that block left the canonical chain; blockNumber and
 * confirmations describe where it is now (null/0 when back in the mempool).
 */
export interface TxStatus {
  readonly state: TxState;
  readonly confirmations: number;
  readonly blockNumber: bigint | null;
  readonly blockHash: string | null;
  /** Fee actually paid, native base units, once mined. */
  readonly fee?: bigint;
  readonly nonceConsumed?: boolean;
  /** Node's reason for `failed`, when it gives one. */
  readonly reason?: string;
}

/** Identifies a sent transaction for status queries. */
export interface TxRef {
  readonly txId: string;
  /** EVM: sender and nonce let the adapter tell a replaced transaction from a lost one. */
  readonly from?: string;
  readonly nonce?: number;
  /** The block it was last seen in; a different answer now means a reorg. */
  readonly knownBlockHash?: string;
  /** Tron: expiration (unix ms) — after it, an unknown transaction is definitely dropped. */
  readonly expiresAt?: number;
}

export interface Deposit {
  readonly network: NetworkId;
  readonly txId: string;
  /** Unique within the transaction: log index for tokens, -1 for a native value transfer. */
  readonly index: number;
  readonly from: string;
  /** One of the watched addresses (canonical form). */
  readonly to: string;
  readonly asset: Asset;
  readonly amount: bigint;
  readonly blockNumber: bigint;
  readonly blockHash: string;
  /** At scan time: head − blockNumber + 1 (Tron: solidified head decides `confirmed`). */
  readonly confirmations: number;
  readonly confirmed: boolean;
}

export interface BlockRef {
  readonly number: bigint;
  readonly hash: string;
}

/**
 * Where a scan stopped: the last block fully processed, plus the hashes of a few blocks before it
 * (newest last) so a reorg can be traced back to the last common block. Store it as JSON via
 * `encodeCursor`/`decodeCursor` (bigints as strings).
 */
export interface ScanCursor {
  readonly blockNumber: bigint;
  readonly blockHash: string;
  readonly recent: readonly BlockRef[];
}

export interface ReorgSignal {
  /** Last block that is still canonical; everything above it from earlier scans is void. */
  readonly forkBlockNumber: bigint;
  readonly forkBlockHash: string | null;
  /** Blocks we had processed that are no longer canonical. */
  readonly orphaned: readonly BlockRef[];
  /** The reorg went deeper than the cursor's history: forkBlockNumber is a conservative guess. */
  readonly deep: boolean;
}

export interface ScanResult {
  readonly deposits: readonly Deposit[];
  /** Resume from here next time (already rewound to the fork point after a reorg). */
  readonly cursor: ScanCursor;
  /**
   * Set when the chain no longer contains blocks we processed. Deposits with blockNumber above
   * forkBlockNumber must go back to pending (and be re-credited only when found again); this call
   * returns no deposits, the next one rescans from the fork point.
   */
  readonly reorg: ReorgSignal | null;
  readonly head: bigint;
}

export interface ScanParameters {
  /** Canonical addresses we own (any case accepted on EVM). */
  readonly addresses: Iterable<string>;
  /** null = start at `startBlock` (or the head). */
  readonly cursor: ScanCursor | null;
  readonly startBlock?: bigint;
  /** Cap on blocks per call (default from network config). */
  readonly maxBlocks?: number;
  /** Restrict to these assets (default: the native coin and every configured token). */
  readonly assets?: readonly Asset[];
}

export interface AddressValidation {
  readonly valid: boolean;
  /** Canonical form when valid. */
  readonly address?: string;
  readonly reason?: string;
}

export interface ReplacementParameters {
  /** 'speed-up' resends the same transfer; 'cancel' sends 0 to ourselves at the same nonce. */
  readonly mode: 'speed-up' | 'cancel';
  /** Raise both fee fields by at least this percentage (>= 10, what nodes require). Default 15. */
  readonly bumpPercent?: number;
}

/**
 * One network. The custody engine calls only these methods; every method may throw ChainError with
 * a CUSTOS_CHAIN_* code (docs/errors.md).
 */
export interface ChainAdapter {
  readonly network: NetworkId;
  readonly family: ChainFamily;
  /** The native coin and the configured tokens. */
  readonly assets: readonly Asset[];
  /** Blocks (Tron: solidification) required before a deposit is credited or a withdrawal completed. */
  readonly confirmations: number;
  /**
   * The threshold scheme whose signatures this network accepts; absent = 'ecdsa-secp256k1'
   * (EVM, Tron). The test chain can also be configured for 'eddsa-ed25519'.
   */
  readonly signingScheme?: 'ecdsa-secp256k1' | 'eddsa-ed25519' | 'schnorr-bip340';

  /** Address of a secp256k1 public key (33-byte compressed or 65-byte uncompressed). */
  deriveAddress(publicKey: Uint8Array): string;
  /** Format and checksum check; returns the canonical form. Never touches the network. */
  validateAddress(address: string): AddressValidation;
  asset(symbol: string): Asset;
  /**
   * Adds a token registered at run time (`POST /v1/assets`): from then on it can be sent, scanned
   * for and decoded like a configured one. Idempotent; refuses a symbol or contract already used
   * differently. `contract` must be valid for this network (`validateAddress`).
   */
  registerToken(token: { symbol: string; decimals: number; contract: string }): Asset;

  estimateFee(request: TransferRequest): Promise<FeeEstimate>;
  /** Builds the transaction and its digests; on EVM this reserves the nonce (see NonceStore). */
  buildTransfer(request: TransferRequest): Promise<UnsignedTransaction>;
  /** Decodes `payload` and recomputes the digests; throws if they differ from `tx.digests`. */
  explainTransaction(tx: UnsignedTransaction): TransferSummary;
  /**
   * Gives back an EVM nonce reserved by buildTransfer when the transaction will never be signed or
   * sent (rejected, expired, signing failed). No-op on Tron.
   */
  releaseTransfer(tx: UnsignedTransaction): Promise<void>;
  /** Signatures in `digests` order; each must recover to its digest's signer. */
  attachSignatures(tx: UnsignedTransaction, signatures: readonly ChainSignature[]): SignedTransaction;
  /** Sends with retry; idempotent (a transaction the node already has is a success). */
  broadcast(tx: SignedTransaction): Promise<BroadcastResult>;
  getTransactionStatus(ref: TxRef): Promise<TxStatus>;
  /** EVM only: a same-nonce replacement with bumped fees for a stuck transaction. */
  buildReplacement?(
    original: UnsignedTransaction,
    params: ReplacementParameters,
  ): Promise<UnsignedTransaction>;
  scanDeposits(params: ScanParameters): Promise<ScanResult>;
  getBalance(address: string, asset: Asset): Promise<bigint>;
  getHead(): Promise<BlockRef>;
}

/** JSON-safe cursor encoding for storage. */
export function encodeCursor(c: ScanCursor): string {
  return JSON.stringify({
    n: c.blockNumber.toString(),
    h: c.blockHash,
    r: c.recent.map((b) => [b.number.toString(), b.hash]),
  });
}

export function decodeCursor(text: string): ScanCursor {
  const o = JSON.parse(text) as { n: string; h: string; r: [string, string][] };
  if (typeof o?.n !== 'string' || typeof o.h !== 'string' || !Array.isArray(o.r)) {
    throw new TypeError('chains: bad scan cursor');
  }
  return {
    blockNumber: BigInt(o.n),
    blockHash: o.h,
    recent: o.r.map(([n, h]) => ({ number: BigInt(n), hash: String(h) })),
  };
}
