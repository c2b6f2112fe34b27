// Pure EVM transaction encoding: the unsigned serialization whose keccak256 the MPC nodes sign,
// decoding it back into a transfer summary, and attaching a threshold signature (r, s, yParity).
import {
  decodeFunctionData,
  encodeFunctionData,
  getAddress,
  keccak256,
  parseTransaction,
  serializeTransaction,
  type TransactionSerializable,
} from 'viem';
import { ChainError } from '../../errors.ts';
import { findRecovery } from '../keys.ts';
import type {
  Asset,
  ChainSignature,
  SignedTransaction,
  TransferSummary,
  UnsignedTransaction,
} from '../types.ts';
import { evmAddressFromPublicKey } from './address.ts';

export const ERC20_ABI = [
  {
    type: 'function',
    name: 'transfer',
    stateMutability: 'nonpayable',
    inputs: [
      { name: 'to', type: 'address' },
      { name: 'amount', type: 'uint256' },
    ],
    outputs: [{ name: '', type: 'bool' }],
  },
  {
    type: 'function',
    name: 'balanceOf',
    stateMutability: 'view',
    inputs: [{ name: 'owner', type: 'address' }],
    outputs: [{ name: '', type: 'uint256' }],
  },
  {
    type: 'event',
    name: 'Transfer',
    inputs: [
      { name: 'from', type: 'address', indexed: true },
      { name: 'to', type: 'address', indexed: true },
      { name: 'value', type: 'uint256', indexed: false },
    ],
  },
] as const;

export type Hex = `0x${string}`;

export interface EvmTxFields {
  chainId: number;
  nonce: number;
  to: Hex;
  value: bigint;
  data: Hex;
  gas: bigint;
  type: 'eip1559' | 'legacy';
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
  gasPrice?: bigint;
}

export function transferCall(to: Hex, amount: bigint): Hex {
  return encodeFunctionData({ abi: ERC20_ABI, functionName: 'transfer', args: [to, amount] });
}

export function toSerializable(f: EvmTxFields): TransactionSerializable {
  const common = { chainId: f.chainId, nonce: f.nonce, to: f.to, value: f.value, data: f.data, gas: f.gas };
  return f.type === 'legacy'
    ? { ...common, type: 'legacy', gasPrice: f.gasPrice! }
    : {
        ...common,
        type: 'eip1559',
        maxFeePerGas: f.maxFeePerGas!,
        maxPriorityFeePerGas: f.maxPriorityFeePerGas!,
      };
}

export function serializeUnsigned(f: EvmTxFields): Hex {
  return serializeTransaction(toSerializable(f));
}

export function digestOf(payload: Hex): Uint8Array {
  return hexBytes(keccak256(payload));
}

/** Decodes an unsigned payload back into fields; only the two shapes we build are accepted. */
export function parseUnsigned(payload: string): EvmTxFields {
  let p: ReturnType<typeof parseTransaction>;
  try {
    p = parseTransaction(payload as Hex);
  } catch (cause) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'evm: payload is not a serialized transaction', {
      cause,
    });
  }
  if (p.type !== 'eip1559' && p.type !== 'legacy') {
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', `evm: unsupported transaction type ${p.type}`);
  }
  if (
    p.r !== undefined ||
    p.chainId === undefined ||
    p.to == null ||
    p.nonce === undefined ||
    p.gas === undefined
  ) {
    throw new ChainError(
      'CUSTOS_CHAIN_INVALID_TRANSACTION',
      'evm: payload must be unsigned with chainId, to, nonce, gas',
    );
  }
  const base = {
    chainId: p.chainId,
    nonce: p.nonce,
    to: getAddress(p.to),
    value: p.value ?? 0n,
    data: (p.data ?? '0x') as Hex,
    gas: p.gas,
  };
  if (p.type === 'legacy') return { ...base, type: 'legacy', gasPrice: p.gasPrice ?? 0n };
  if ('accessList' in p && p.accessList && p.accessList.length > 0) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'evm: access lists are not used by transfers');
  }
  return {
    ...base,
    type: 'eip1559',
    maxFeePerGas: p.maxFeePerGas ?? 0n,
    maxPriorityFeePerGas: p.maxPriorityFeePerGas ?? 0n,
  };
}

export function maxFeeOf(f: EvmTxFields): bigint {
  return f.gas * (f.type === 'legacy' ? f.gasPrice! : f.maxFeePerGas!);
}

/**
 * What the transaction does: a native transfer (empty data), an ERC-20 `transfer` on a configured
 * token with zero value, or a cancel (0 to ourselves). Anything else is refused.
 */
export function summarize(
  network: string,
  from: string,
  f: EvmTxFields,
  native: Asset,
  tokens: readonly Asset[],
): TransferSummary {
  const common = { network, from, nonce: f.nonce, maxFee: maxFeeOf(f) };
  if (f.data === '0x') return { ...common, to: f.to, asset: native, amount: f.value };
  const token = tokens.find((t) => t.contract === f.to);
  if (!token || f.value !== 0n) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'evm: call data on a non-token or with value');
  }
  let decoded: ReturnType<typeof decodeFunctionData<typeof ERC20_ABI>>;
  try {
    decoded = decodeFunctionData({ abi: ERC20_ABI, data: f.data });
  } catch (cause) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'evm: call data is not an ERC-20 transfer', {
      cause,
    });
  }
  if (decoded.functionName !== 'transfer' || f.data.length !== 2 + 8 + 128) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'evm: call data is not an ERC-20 transfer');
  }
  const [to, amount] = decoded.args as readonly [Hex, bigint];
  return { ...common, to: getAddress(to), asset: token, amount };
}

/** Adds the threshold signature after checking it recovers to the expected signer. */
export function attachSignature(
  tx: UnsignedTransaction,
  signatures: readonly ChainSignature[],
  summary: TransferSummary,
): SignedTransaction {
  const d = tx.digests[0];
  const sig = signatures[0];
  if (!d || !sig || tx.digests.length !== 1 || signatures.length !== 1) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'evm: exactly one signature per transaction');
  }
  const recovery = findRecovery(d.digest, sig.signature, sig.recovery, evmAddressFromPublicKey, d.signer);
  if (recovery === null) {
    throw new ChainError('CUSTOS_CHAIN_SIGNATURE_MISMATCH', 'evm: signature does not recover to the sender', {
      details: { signer: d.signer },
    });
  }
  const fields = parseUnsigned(tx.payload);
  const r = `0x${Buffer.from(sig.signature.subarray(0, 32)).toString('hex')}` as Hex;
  const s = `0x${Buffer.from(sig.signature.subarray(32, 64)).toString('hex')}` as Hex;
  const raw = serializeTransaction(toSerializable(fields), {
    r,
    s,
    v: 27n + BigInt(recovery),
    yParity: recovery,
  });
  return { network: tx.network, family: 'evm', txId: keccak256(raw), raw, summary };
}

export function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h.replace(/^0x/, ''), 'hex'));
}
