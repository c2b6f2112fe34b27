// A minimal ERC-20 for the devnet, written directly in EVM assembly and assembled here (no solc is
// available offline, and a dozen instructions per function are easy to review). It is installed
// with `anvil_setCode`, so there is no constructor.
//
// Functions: transfer(address,uint256), balanceOf(address), mint(address,uint256) (anyone may
// mint: devnet faucet only), totalSupply(), decimals(), symbol(), name(). Events: Transfer, also
// from address(0) on mint. No approve/transferFrom (the adapters never need them).
// Storage: balance of `a` at slot `a` (addresses are < 2^160); totalSupply at slot 2^160.
// Reverts on: value sent, short calldata, dirty address high bits, insufficient balance, supply
// overflow (so no balance can overflow either), unknown selector.

const OPS = {
  STOP: 0x00,
  ADD: 0x01,
  SUB: 0x03,
  LT: 0x10,
  EQ: 0x14,
  SHR: 0x1c,
  CALLER: 0x33,
  CALLVALUE: 0x34,
  CALLDATALOAD: 0x35,
  CALLDATASIZE: 0x36,
  CODECOPY: 0x39,
  MSTORE: 0x52,
  SLOAD: 0x54,
  SSTORE: 0x55,
  JUMPI: 0x57,
  JUMPDEST: 0x5b,
  DUP1: 0x80,
  DUP2: 0x81,
  DUP3: 0x82,
  SWAP1: 0x90,
  LOG3: 0xa3,
  RETURN: 0xf3,
  REVERT: 0xfd,
  INVALID: 0xfe,
} as const;
type Op = keyof typeof OPS;

/** keccak256("Transfer(address,address,uint256)") */
export const TRANSFER_TOPIC = 0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3efn;
const TOTAL_SUPPLY_SLOT = 1n << 160n;

type Item =
  | { op: Op }
  | { push: bigint }
  | { pushLabel: string }
  | { dest: string } // JUMPDEST with a label
  | { label: string } // plain position (data)
  | { data: Uint8Array };

const op = (o: Op): Item => ({ op: o });
const push = (v: bigint | number): Item => ({ push: BigInt(v) });
const to = (l: string): Item => ({ pushLabel: l });

function pushBytes(v: bigint): number[] {
  if (v < 0n || v >= 1n << 256n) throw new Error('asm: push value out of range');
  const hex = v === 0n ? '00' : v.toString(16).padStart(Math.ceil(v.toString(16).length / 2) * 2, '0');
  const bytes = Buffer.from(hex, 'hex');
  return [0x5f + bytes.length, ...bytes];
}

/** Two-pass assembler: labels are always PUSH2, so sizes are known in the first pass. */
export function assemble(items: readonly Item[]): Uint8Array {
  const size = (it: Item): number =>
    'op' in it
      ? 1
      : 'push' in it
        ? pushBytes(it.push).length
        : 'pushLabel' in it
          ? 3
          : 'dest' in it
            ? 1
            : 'label' in it
              ? 0
              : it.data.length;
  const labels = new Map<string, number>();
  let pc = 0;
  for (const it of items) {
    if ('dest' in it || 'label' in it) {
      const name = 'dest' in it ? it.dest : it.label;
      if (labels.has(name)) throw new Error(`asm: duplicate label ${name}`);
      labels.set(name, pc);
    }
    pc += size(it);
  }
  const out: number[] = [];
  for (const it of items) {
    if ('op' in it) out.push(OPS[it.op]);
    else if ('push' in it) out.push(...pushBytes(it.push));
    else if ('pushLabel' in it) {
      const at = labels.get(it.pushLabel);
      if (at === undefined) throw new Error(`asm: unknown label ${it.pushLabel}`);
      out.push(0x61, at >> 8, at & 0xff);
    } else if ('dest' in it) out.push(OPS.JUMPDEST);
    else if ('data' in it) out.push(...it.data);
  }
  return Uint8Array.from(out);
}

/** ABI encoding of a `string` return value of at most 32 bytes: offset, length, padded data. */
function abiString(s: string): Uint8Array {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 32) throw new Error('asm: string longer than 32 bytes');
  const out = new Uint8Array(96);
  out[31] = 0x20;
  out[63] = b.length;
  out.set(b, 64);
  return out;
}

const revertIf = (): Item[] => [to('revert'), op('JUMPI')];
/** Address argument at calldata offset 4, reverting unless its top 96 bits are zero. */
const addressArg = (): Item[] => [
  push(4),
  op('CALLDATALOAD'),
  op('DUP1'),
  push(0xa0),
  op('SHR'),
  ...revertIf(),
];
const minCalldata = (n: number): Item[] => [push(n), op('CALLDATASIZE'), op('LT'), ...revertIf()];
const returnTop = (): Item[] => [push(0), op('MSTORE'), push(32), push(0), op('RETURN')];
const emitTransfer = (): Item[] => [push(TRANSFER_TOPIC), push(32), push(0), op('LOG3')];

export interface TestTokenParameters {
  name: string;
  symbol: string;
  decimals: number;
}

export function testTokenRuntime(p: TestTokenParameters): Uint8Array {
  const dispatch = (selector: number, label: string): Item[] => [
    op('DUP1'),
    push(selector),
    op('EQ'),
    to(label),
    op('JUMPI'),
  ];
  return assemble([
    op('CALLVALUE'),
    ...revertIf(),
    push(0),
    op('CALLDATALOAD'),
    push(0xe0),
    op('SHR'),
    ...dispatch(0xa9059cbb, 'transfer'),
    ...dispatch(0x70a08231, 'balanceOf'),
    ...dispatch(0x40c10f19, 'mint'),
    ...dispatch(0x18160ddd, 'totalSupply'),
    ...dispatch(0x313ce567, 'decimals'),
    ...dispatch(0x95d89b41, 'symbol'),
    ...dispatch(0x06fdde03, 'name'),
    { dest: 'revert' },
    push(0),
    op('DUP1'),
    op('REVERT'),

    // transfer(to, amount): stack [sel]
    { dest: 'transfer' },
    ...minCalldata(0x44),
    ...addressArg(), // [sel, to]
    push(0x24),
    op('CALLDATALOAD'), // [sel, to, amt]
    op('CALLER'),
    op('SLOAD'), // [sel, to, amt, balFrom]
    op('DUP2'),
    op('DUP2'),
    op('LT'), // balFrom < amt
    ...revertIf(),
    op('DUP2'),
    op('SWAP1'),
    op('SUB'), // [sel, to, amt, balFrom - amt]
    op('CALLER'),
    op('SSTORE'), // [sel, to, amt]
    op('DUP2'),
    op('SLOAD'),
    op('DUP2'),
    op('ADD'),
    op('DUP3'),
    op('SSTORE'), // balance[to] += amt (after the debit, so a self-transfer is a no-op)
    push(0),
    op('MSTORE'), // mem[0] = amt; [sel, to]
    op('CALLER'),
    ...emitTransfer(), // Transfer(caller, to, amt)
    push(1),
    ...returnTop(),

    // mint(to, amount)
    { dest: 'mint' },
    ...minCalldata(0x44),
    ...addressArg(),
    push(0x24),
    op('CALLDATALOAD'), // [sel, to, amt]
    push(TOTAL_SUPPLY_SLOT),
    op('SLOAD'),
    op('DUP2'),
    op('ADD'), // [sel, to, amt, ts + amt]
    op('DUP2'),
    op('DUP2'),
    op('LT'), // ts + amt < amt: overflow
    ...revertIf(),
    push(TOTAL_SUPPLY_SLOT),
    op('SSTORE'),
    op('DUP2'),
    op('SLOAD'),
    op('DUP2'),
    op('ADD'),
    op('DUP3'),
    op('SSTORE'),
    push(0),
    op('MSTORE'),
    push(0), // from = address(0)
    ...emitTransfer(),
    push(1),
    ...returnTop(),

    { dest: 'balanceOf' },
    ...minCalldata(0x24),
    ...addressArg(),
    op('SLOAD'),
    ...returnTop(),

    { dest: 'totalSupply' },
    push(TOTAL_SUPPLY_SLOT),
    op('SLOAD'),
    ...returnTop(),

    { dest: 'decimals' },
    push(p.decimals),
    ...returnTop(),

    { dest: 'symbol' },
    push(96),
    to('symbolData'),
    push(0),
    op('CODECOPY'),
    push(96),
    push(0),
    op('RETURN'),

    { dest: 'name' },
    push(96),
    to('nameData'),
    push(0),
    op('CODECOPY'),
    push(96),
    push(0),
    op('RETURN'),

    op('INVALID'),
    { label: 'symbolData' },
    { data: abiString(p.symbol) },
    { label: 'nameData' },
    { data: abiString(p.name) },
  ]);
}
