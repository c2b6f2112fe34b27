// Tron encoding checked against TronWeb (an independent implementation, used only here, offline):
// our raw_data protobuf and txID equal TronWeb's byte for byte for randomized TRX
// (TransferContract) and TRC-20 (TriggerSmartContract transfer) transactions; our T-addresses equal
// TronWeb's; and a DKLs23 threshold signature over the txID recovers (in TronWeb) to the wallet's
// address.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { utils as tronUtils } from 'tronweb';
import {
  tronAddressBytes,
  tronAddressFromBytes,
  tronAddressFromPublicKey,
  validateTronAddress,
} from '../src/chains/tron/address.ts';
import {
  decodeRawData,
  encodeRawData,
  rawDataJson,
  refBlock,
  signatureHex,
  type TronRawData,
  trc20TransferData,
  txIdOf,
} from '../src/chains/tron/transaction.ts';
import { type MpcSigner, startMpcSigner } from './helpers/mpc-signer.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// Deterministic PRNG (xorshift64*) so a failure is reproducible from the seed.
function prng(seed: bigint) {
  let s = seed;
  const next = () => {
    s ^= s >> 12n;
    s ^= (s << 25n) & 0xffffffffffffffffn;
    s ^= s >> 27n;
    return (s * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
  };
  return {
    big: (bits: number) => {
      let x = 0n;
      for (let i = 0; i < bits; i += 64) x = (x << 64n) | next();
      return x & ((1n << BigInt(bits)) - 1n);
    },
    bytes: (n: number) => Uint8Array.from({ length: n }, () => Number(next() & 0xffn)),
    int: (n: number) => Number(next() % BigInt(n)),
  };
}

const SEED = 0x5eed_c057_05n;
const r = prng(SEED);

function randomAddress(): Uint8Array {
  const a = r.bytes(21);
  a[0] = 0x41;
  return a;
}

function randomTx(i: number): TronRawData {
  const blockNum = r.big(40);
  const { refBlockBytes, refBlockHash } = refBlock(blockNum, r.bytes(32));
  const timestamp = 1_700_000_000_000n + r.big(36);
  const memo = i % 3 === 0 ? r.bytes(1 + r.int(40)) : new Uint8Array(0);
  const owner = randomAddress();
  if (i % 2 === 0) {
    return {
      refBlockBytes,
      refBlockHash,
      expiration: timestamp + 60_000n + BigInt(r.int(3_600_000)),
      timestamp,
      feeLimit: 0n,
      data: memo,
      // TronWeb's protobuf setter takes a JS number: keep TRX amounts below 2^53 here.
      contract: { type: 'TransferContract', owner, to: randomAddress(), amount: 1n + r.big(52) },
    };
  }
  return {
    refBlockBytes,
    refBlockHash,
    expiration: timestamp + 60_000n,
    timestamp,
    feeLimit: 1n + r.big(30),
    data: memo,
    contract: {
      type: 'TriggerSmartContract',
      owner,
      contract: randomAddress(),
      data: trc20TransferData(randomAddress(), r.big(i % 4 === 1 ? 250 : 64)),
      callValue: 0n,
    },
  };
}

/** The same transaction as TronWeb's JSON (what /wallet/createtransaction returns), numbers as JS numbers. */
function tronwebJson(tx: TronRawData): Record<string, unknown> {
  const json = rawDataJson(tx) as Record<string, unknown>;
  const toNumbers = (v: unknown): unknown =>
    typeof v === 'bigint'
      ? Number(v)
      : Array.isArray(v)
        ? v.map(toNumbers)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toNumbers(x)]))
          : v;
  return { visible: false, raw_data: toNumbers(json) };
}

describe('tron raw_data and txID equal TronWeb', () => {
  for (let i = 0; i < 24; i++) {
    const tx = randomTx(i);
    const kind = tx.contract.type === 'TransferContract' ? 'TRX' : 'TRC-20';
    test(`#${i} ${kind}${tx.data.length ? ' with memo' : ''}`, () => {
      const ours = encodeRawData(tx);
      const pb = tronUtils.transaction.txJsonToPb(tronwebJson(tx));
      assert.equal(hex(ours), tronUtils.transaction.txPbToRawDataHex(pb).toLowerCase());
      assert.equal(hex(txIdOf(ours)), tronUtils.transaction.txPbToTxID(pb).replace(/^0x/, ''));
      // And our decoder reads back exactly what was encoded.
      assert.deepEqual(decodeRawData(ours), tx);
    });
  }
});

describe('tron addresses and threshold signatures', () => {
  let signer: MpcSigner;
  before(async () => {
    signer = await startMpcSigner({ signers: [2, 3] });
  });
  after(async () => {
    await signer?.stop();
  });

  test('T-addresses from public keys equal TronWeb for 20 random keys and the threshold key', () => {
    const keys: Uint8Array[] = Array.from({ length: 20 }, () =>
      secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false),
    );
    keys.push(signer.publicKey('m/0/5'));
    for (const pk of keys) {
      const ours = tronAddressFromPublicKey(pk);
      const full = pk.length === 65 ? pk : secp256k1.Point.fromBytes(pk).toBytes(false);
      const theirs = tronUtils.crypto.getBase58CheckAddress(
        tronUtils.crypto.computeAddress(Array.from(full)),
      );
      assert.equal(ours, theirs);
      assert.match(ours, /^T[1-9A-HJ-NP-Za-km-z]{33}$/);
      assert.equal(validateTronAddress(ours).valid, true);
    }
  });

  test('validation: checksum, hex form, prefix', () => {
    const a = tronAddressFromBytes(randomAddress());
    assert.equal(validateTronAddress(`41${hex(tronAddressBytes(a).subarray(1))}`).address, a);
    const flipped = a.slice(0, 10) + (a[10] === 'A' ? 'B' : 'A') + a.slice(11);
    assert.equal(validateTronAddress(flipped).valid, false);
    assert.equal(validateTronAddress('0x1234').valid, false);
    assert.equal(validateTronAddress(`T${'1'.repeat(33)}`).valid, false);
  });

  test('threshold signatures over txIDs recover (TronWeb) to the wallet address, TRX and TRC-20', async () => {
    const path = 'm/0/5';
    const wallet = tronAddressFromPublicKey(signer.publicKey(path));
    for (let i = 0; i < 4; i++) {
      const base = randomTx(i);
      const tx: TronRawData = { ...base, contract: { ...base.contract, owner: tronAddressBytes(wallet) } };
      const txId = txIdOf(encodeRawData(tx));
      const sig = await signer.sign(txId, path);
      const sigHex = signatureHex(sig.signature, sig.recovery!);
      const recovered = tronUtils.crypto.ecRecover(hex(txId), sigHex);
      assert.equal(recovered.toLowerCase(), hex(tronAddressBytes(wallet)));
    }
  });

  test('the decoder refuses foreign fields and non-canonical encodings', () => {
    const ours = encodeRawData(randomTx(1));
    // field 3 (ref_block_num) is valid Tron but never ours
    assert.throws(() => decodeRawData(Uint8Array.from([...ours, 0x18, 0x01])), /unexpected field 3/);
    // an explicit zero fee_limit (proto3 default written out) is not canonical
    assert.throws(
      () => decodeRawData(Uint8Array.from([...encodeRawData({ ...randomTx(0) }), 0x90, 0x01, 0x00])),
      /canonical/,
    );
  });
});
