// Tron transactions built locally: Transaction.raw encoded with our protobuf writer,
// txID = sha256(raw_data), the JSON form java-tron's /wallet/broadcasttransaction takes, decoding
// for explainTransaction, and the 65-byte signature r||s||v (v = 27 + recovery, as TronWeb writes it).
import { sha256 } from '@noble/hashes/sha2.js';
import { tronAddressFromBytes } from './address.ts';
import { oneBytes, oneInt, ProtoWriter, readMessage } from './protobuf.ts';

export const CONTRACT_TYPE = { TransferContract: 1, TriggerSmartContract: 31 } as const;
const TYPE_URL_PREFIX = 'type.googleapis.com/protocol.';
/** transfer(address,uint256) */
export const TRC20_TRANSFER_SELECTOR = 'a9059cbb';

export type TronContract =
  | { type: 'TransferContract'; owner: Uint8Array; to: Uint8Array; amount: bigint }
  | {
      type: 'TriggerSmartContract';
      owner: Uint8Array;
      contract: Uint8Array;
      data: Uint8Array;
      callValue: bigint;
    };

export interface TronRawData {
  /** Bytes 6..8 of the reference block number (big-endian). */
  refBlockBytes: Uint8Array;
  /** Bytes 8..16 of the reference block id. */
  refBlockHash: Uint8Array;
  /** Unix ms. */
  expiration: bigint;
  timestamp: bigint;
  /** Sun; TriggerSmartContract only (0 = omitted). */
  feeLimit: bigint;
  /** raw_data.data (memo). */
  data: Uint8Array;
  contract: TronContract;
}

/** Reference-block fields from a block number and its 32-byte block id. */
export function refBlock(
  number: bigint,
  blockId: Uint8Array,
): { refBlockBytes: Uint8Array; refBlockHash: Uint8Array } {
  if (blockId.length !== 32) throw new TypeError('tron: block id must be 32 bytes');
  const n = new Uint8Array(8);
  new DataView(n.buffer).setBigUint64(0, number);
  return { refBlockBytes: n.slice(6, 8), refBlockHash: blockId.slice(8, 16) };
}

/** ABI call data of transfer(to, amount): selector, 20-byte address left-padded, uint256. */
export function trc20TransferData(to: Uint8Array, amount: bigint): Uint8Array {
  if (to.length !== 21) throw new TypeError('tron: recipient must be 21 bytes');
  if (amount < 0n || amount >= 1n << 256n) throw new RangeError('tron: amount out of uint256 range');
  const out = new Uint8Array(4 + 64);
  out.set(Buffer.from(TRC20_TRANSFER_SELECTOR, 'hex'), 0);
  out.set(to.subarray(1), 4 + 12);
  out.set(Buffer.from(amount.toString(16).padStart(64, '0'), 'hex'), 36);
  return out;
}

export function decodeTrc20Transfer(data: Uint8Array): { to: Uint8Array; amount: bigint } | null {
  if (data.length !== 68 || Buffer.from(data.subarray(0, 4)).toString('hex') !== TRC20_TRANSFER_SELECTOR)
    return null;
  if (data.subarray(4, 16).some((b) => b !== 0)) return null;
  const to = new Uint8Array(21);
  to[0] = 0x41;
  to.set(data.subarray(16, 36), 1);
  return { to, amount: BigInt(`0x${Buffer.from(data.subarray(36, 68)).toString('hex')}`) };
}

function encodeContract(c: TronContract): Uint8Array {
  const value =
    c.type === 'TransferContract'
      ? new ProtoWriter().bytes(1, c.owner).bytes(2, c.to).int64(3, c.amount).finish()
      : new ProtoWriter()
          .bytes(1, c.owner)
          .bytes(2, c.contract)
          .int64(3, c.callValue)
          .bytes(4, c.data)
          .finish();
  const any = new ProtoWriter()
    .string(1, TYPE_URL_PREFIX + c.type)
    .bytes(2, value)
    .finish();
  return new ProtoWriter().int64(1, CONTRACT_TYPE[c.type]).bytes(2, any).finish();
}

/** Transaction.raw in field order: 1 ref_block_bytes, 4 ref_block_hash, 8 expiration, 10 data, 11 contract, 14 timestamp, 18 fee_limit. */
export function encodeRawData(r: TronRawData): Uint8Array {
  return new ProtoWriter()
    .bytes(1, r.refBlockBytes)
    .bytes(4, r.refBlockHash)
    .int64(8, r.expiration)
    .bytes(10, r.data)
    .bytes(11, encodeContract(r.contract))
    .int64(14, r.timestamp)
    .int64(18, r.feeLimit)
    .finish();
}

export function txIdOf(rawData: Uint8Array): Uint8Array {
  return sha256(rawData);
}

/** Decodes raw_data we built; anything outside the two contract shapes throws. */
export function decodeRawData(bytes: Uint8Array): TronRawData {
  const ctx = 'tron/raw_data';
  const m = readMessage(bytes, ctx);
  for (const f of m.keys()) {
    if (![1, 4, 8, 10, 11, 14, 18].includes(f)) throw new Error(`${ctx}: unexpected field ${f}`);
  }
  const contracts = m.get(11) ?? [];
  if (contracts.length !== 1 || contracts[0]!.wire !== 2)
    throw new Error(`${ctx}: exactly one contract expected`);
  const cm = readMessage(contracts[0]!.value as Uint8Array, `${ctx}/contract`);
  for (const f of cm.keys())
    if (f !== 1 && f !== 2) throw new Error(`${ctx}/contract: unexpected field ${f}`);
  const type = Number(oneInt(cm, 1, ctx));
  const any = readMessage(oneBytes(cm, 2, ctx), `${ctx}/any`);
  const typeUrl = new TextDecoder().decode(oneBytes(any, 1, ctx));
  const value = readMessage(oneBytes(any, 2, ctx), `${ctx}/value`);
  let contract: TronContract;
  if (type === CONTRACT_TYPE.TransferContract && typeUrl === `${TYPE_URL_PREFIX}TransferContract`) {
    for (const f of value.keys())
      if (f > 3) throw new Error(`${ctx}/TransferContract: unexpected field ${f}`);
    contract = {
      type: 'TransferContract',
      owner: oneBytes(value, 1, ctx),
      to: oneBytes(value, 2, ctx),
      amount: oneInt(value, 3, ctx),
    };
  } else if (
    type === CONTRACT_TYPE.TriggerSmartContract &&
    typeUrl === `${TYPE_URL_PREFIX}TriggerSmartContract`
  ) {
    for (const f of value.keys())
      if (f > 4) throw new Error(`${ctx}/TriggerSmartContract: unexpected field ${f}`);
    contract = {
      type: 'TriggerSmartContract',
      owner: oneBytes(value, 1, ctx),
      contract: oneBytes(value, 2, ctx),
      callValue: oneInt(value, 3, ctx),
      data: oneBytes(value, 4, ctx),
    };
  } else {
    throw new Error(`${ctx}: unsupported contract type ${type} ${typeUrl}`);
  }
  const raw: TronRawData = {
    refBlockBytes: oneBytes(m, 1, ctx),
    refBlockHash: oneBytes(m, 4, ctx),
    expiration: oneInt(m, 8, ctx),
    data: oneBytes(m, 10, ctx),
    contract,
    timestamp: oneInt(m, 14, ctx),
    feeLimit: oneInt(m, 18, ctx),
  };
  // Canonical encoding only: re-encoding must give the same bytes (no reordered or default fields).
  if (!Buffer.from(encodeRawData(raw)).equals(Buffer.from(bytes)))
    throw new Error(`${ctx}: not canonically encoded`);
  return raw;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * The JSON transaction java-tron's HTTP API and TronWeb use (visible: false, hex addresses).
 * Values are bigint; serialise with `tronJson` (bigints as exact number literals).
 */
export function rawDataJson(r: TronRawData): Record<string, unknown> {
  const c = r.contract;
  const value =
    c.type === 'TransferContract'
      ? { amount: c.amount, owner_address: hex(c.owner), to_address: hex(c.to) }
      : {
          data: hex(c.data),
          owner_address: hex(c.owner),
          contract_address: hex(c.contract),
          ...(c.callValue !== 0n ? { call_value: c.callValue } : {}),
        };
  return {
    contract: [{ parameter: { value, type_url: TYPE_URL_PREFIX + c.type }, type: c.type }],
    ref_block_bytes: hex(r.refBlockBytes),
    ref_block_hash: hex(r.refBlockHash),
    expiration: r.expiration,
    ...(r.feeLimit !== 0n ? { fee_limit: r.feeLimit } : {}),
    ...(r.data.length > 0 ? { data: hex(r.data) } : {}),
    timestamp: r.timestamp,
  };
}

/** JSON.stringify that writes bigints as exact integer literals (java-tron parses int64 exactly). */
export function tronJson(v: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(v, (_k, x) => {
    if (typeof x === 'bigint') {
      marks.push(x.toString());
      return `\u0000big${marks.length - 1}\u0000`;
    }
    return x;
  });
  return text.replace(/"\\u0000big(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]!);
}

export function signatureHex(rs: Uint8Array, recovery: number): string {
  const out = new Uint8Array(65);
  out.set(rs, 0);
  out[64] = 27 + recovery;
  return hex(out);
}

export function ownerOf(c: TronContract): string {
  return tronAddressFromBytes(c.owner);
}
