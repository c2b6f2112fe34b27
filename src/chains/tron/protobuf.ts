// Minimal protobuf (proto3) writer and reader for exactly the Tron messages we build:
// Transaction.raw, Transaction.Contract, google.protobuf.Any, TransferContract and
// TriggerSmartContract (java-tron protocol/core/Tron.proto and contract/*.proto). Fields are written
// in field-number order and proto3 defaults (0, empty) are omitted — what java-tron and
// google-protobuf (TronWeb) produce, so our bytes and txID equal theirs.

const VARINT = 0;
const LEN = 2;

export class ProtoWriter {
  readonly #parts: number[] = [];

  /** int64/uint64/enum as a varint; negative int64 as 10-byte two's complement. Omitted when 0. */
  int64(field: number, value: bigint | number): this {
    let v = BigInt(value);
    if (v === 0n) return this;
    if (v < -(1n << 63n) || v >= 1n << 64n)
      throw new RangeError(`protobuf: field ${field} out of int64 range`);
    if (v < 0n) v += 1n << 64n;
    this.#tag(field, VARINT);
    this.#varint(v);
    return this;
  }

  /** bytes / embedded message. Omitted when empty (proto3). */
  bytes(field: number, value: Uint8Array): this {
    if (value.length === 0) return this;
    this.#tag(field, LEN);
    this.#varint(BigInt(value.length));
    for (const b of value) this.#parts.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }

  #tag(field: number, wire: number): void {
    this.#varint(BigInt((field << 3) | wire));
  }

  #varint(v: bigint): void {
    while (v >= 0x80n) {
      this.#parts.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#parts.push(Number(v));
  }
}

export type ProtoValue = { wire: 0; value: bigint } | { wire: 2; value: Uint8Array };

/** Reads a message into field → values (in order). Only varint and length-delimited wire types. */
export function readMessage(buf: Uint8Array, ctx: string): Map<number, ProtoValue[]> {
  const out = new Map<number, ProtoValue[]>();
  let o = 0;
  const varint = (): bigint => {
    let x = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (o >= buf.length) throw new Error(`${ctx}: truncated varint`);
      const b = buf[o++]!;
      x |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return x;
      shift += 7n;
    }
    throw new Error(`${ctx}: varint too long`);
  };
  while (o < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new Error(`${ctx}: field 0`);
    let v: ProtoValue;
    if (wire === VARINT) v = { wire: 0, value: varint() };
    else if (wire === LEN) {
      const len = Number(varint());
      if (o + len > buf.length) throw new Error(`${ctx}: truncated field ${field}`);
      v = { wire: 2, value: buf.slice(o, o + len) };
      o += len;
    } else throw new Error(`${ctx}: unsupported wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(v);
    out.set(field, list);
  }
  return out;
}

export function oneBytes(m: Map<number, ProtoValue[]>, field: number, ctx: string): Uint8Array {
  const v = m.get(field);
  if (!v) return new Uint8Array(0);
  if (v.length !== 1 || v[0]!.wire !== 2) throw new Error(`${ctx}: field ${field} must be one bytes value`);
  return v[0]!.value as Uint8Array;
}

export function oneInt(m: Map<number, ProtoValue[]>, field: number, ctx: string): bigint {
  const v = m.get(field);
  if (!v) return 0n;
  if (v.length !== 1 || v[0]!.wire !== 0) throw new Error(`${ctx}: field ${field} must be one varint`);
  const x = v[0]!.value as bigint;
  return x >= 1n << 63n ? x - (1n << 64n) : x;
}
