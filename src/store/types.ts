// Numeric/bigint conversion shared by both dialects: PostgreSQL numeric(78,0) and int8 come back as
// JavaScript bigint (never Number), and bigint parameters go out as decimal text.

export const PG_OID = { INT8: 20, NUMERIC: 1700 } as const;

/** Parses int8/numeric text. Integral values become bigint; a fractional numeric stays a string. */
export function parseBigNumeric(value: string): bigint | string {
  return /^-?[0-9]+$/.test(value) ? BigInt(value) : value;
}
