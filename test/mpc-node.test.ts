// MPC node system on the in-process bus: encrypted identity and share files, the signed/encrypted
// channel (replay, forged or unknown sender, tampered ciphertext, cross-session), node + coordinator
// with FROST and DKLs23 (keygen, sign, pools, idempotency, authorisation, fault tolerance, refresh,
// reshare) and a cheating node. The same logic over NATS with node processes: mpc-nats.test.ts.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as osslVerify, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryBus } from '../src/bus/memory.ts';
import { ed25519PrivateKeyObject } from '../src/crypto/ed25519-openssl.ts';
import type { ProtocolMessage } from '../src/crypto/threshold.ts';
import { MpcError } from '../src/errors.ts';
import { p2pSubject } from '../src/mpc/channel.ts';
import { loadClusterFile, readControlPlaneKey } from '../src/mpc/cluster.ts';
import { decodeEnvelope, derivePairKey, encodeBundle, sealEnvelope } from '../src/mpc/envelope.ts';
import type { SecurityEvent } from '../src/mpc/events.ts';
import { initNodeIdentity, loadNodeIdentity, NodeIdentity } from '../src/mpc/identity.ts';
import { type InProcessCluster, nodeSecret, startInProcessCluster } from '../src/mpc/local.ts';
import { availableSchemes } from '../src/mpc/schemes.ts';
import { open, SecretKeyring, seal } from '../src/mpc/secure-file.ts';
import { openBackup, ShareStore } from '../src/mpc/share-store.ts';
import { requestSubject, signBody } from '../src/mpc/wire.ts';
import { runCliAsync } from './helpers/cli.ts';

const KDF = { memoryCost: 1024, timeCost: 1 };
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `custos-${p}-`));
const schemes = await availableSchemes();

test('both signing families are available to the nodes (nothing below is skipped)', () => {
  assert.ok(schemes.has('ecdsa-secp256k1'));
  assert.ok(schemes.has('eddsa-ed25519'));
  assert.ok(schemes.has('schnorr-bip340'));
});

async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 8000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function isMpcError(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof MpcError, `expected MpcError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

/**
 * OpenSSL (node:crypto) verification. Ed25519: the message. ECDSA: the digest is SHA-256 of
 * `preimage`, checked as crypto.verify('sha256', preimage, spki, sig) — OpenSSL hashes it itself.
 */
function opensslVerify(scheme: string, publicKeyHex: string, message: Uint8Array, sigHex: string): boolean {
  const pub = Buffer.from(publicKeyHex, 'hex');
  const sig = Buffer.from(sigHex, 'hex');
  if (scheme === 'eddsa-ed25519') {
    const key = createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub]),
      format: 'der',
      type: 'spki',
    });
    return osslVerify(null, message, key, sig);
  }
  const spki = Buffer.concat([Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex'), pub]);
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  return osslVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, sig);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

describe('encryption at rest', () => {
  test('seal/open round trip; wrong secret, wrong purpose and tampering fail closed', async () => {
    const k = new SecretKeyring('a'.repeat(64), { kdf: KDF });
    const sealed = await seal(k, 'share:k1', new TextEncoder().encode('top secret share'));
    assert.equal(new TextDecoder().decode(await open(k, 'share:k1', sealed)), 'top secret share');
    await assert.rejects(
      open(new SecretKeyring('b'.repeat(64), { kdf: KDF }), 'share:k1', sealed),
      isMpcError('CUSTOS_MPC_SECRET_INVALID'),
    );
    await assert.rejects(open(k, 'share:k2', sealed), isMpcError('CUSTOS_MPC_SECRET_INVALID'));
    const t = sealed.slice();
    t[t.length - 20]! ^= 1;
    await assert.rejects(open(k, 'share:k1', t), isMpcError('CUSTOS_MPC_SECRET_INVALID'));
    const h = sealed.slice();
    h[20]! ^= 1; // argon salt in the header
    await assert.rejects(open(k, 'share:k1', h), isMpcError('CUSTOS_MPC_SECRET_INVALID'));
  });

  test('identity: created once, opened with the right secret, refused with a wrong one', async () => {
    const dir = tmp('ident');
    try {
      const id = await initNodeIdentity(dir, 4, new SecretKeyring('s'.repeat(40), { kdf: KDF }));
      await assert.rejects(
        initNodeIdentity(dir, 4, new SecretKeyring('s'.repeat(40), { kdf: KDF })),
        isMpcError('CUSTOS_MPC_NODE_STATE'),
      );
      const { identity } = await loadNodeIdentity(dir, 4, new SecretKeyring('s'.repeat(40)));
      assert.deepEqual(identity.public, id.public);
      await assert.rejects(loadNodeIdentity(dir, 4, new SecretKeyring('t'.repeat(40))), (e: unknown) => {
        assert.ok(e instanceof MpcError);
        assert.equal(e.code, 'CUSTOS_MPC_SECRET_INVALID');
        assert.match(e.message, /refusing to start/);
        return true;
      });
      assert.ok(!String(identity).includes('secret') && !JSON.stringify(identity).includes('Secret'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function cluster(
  dir: string,
  extra: Partial<Parameters<typeof startInProcessCluster>[0]> = {},
): Promise<InProcessCluster> {
  return startInProcessCluster({ dir, kdf: KDF, poolSize: 0, ...extra });
}

describe('channel security', () => {
  let dir: string;
  let c: InProcessCluster;
  let spy: MemoryBus;
  const captured: Uint8Array[] = [];
  const events = (id: number): SecurityEvent[] => c.nodes.get(id)!.events.recent;
  let keyId: string;
  let node1: NodeIdentity;

  before(async () => {
    dir = tmp('chan');
    c = await cluster(dir, { nodeOptions: () => ({ channel: { bufferMs: 300 } }) });
    spy = new MemoryBus({ hub: c.hub! });
    await spy.subscribe(p2pSubject(2), (m) => {
      captured.push(m.data);
    });
    keyId = (await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true })).keyId;
    await c.coordinator.sign(keyId, new TextEncoder().encode('hello'), { signers: [1, 2] });
    const cl = loadClusterFile(join(dir, 'cluster.json'));
    node1 = (await loadNodeIdentity(join(dir, 'node-1'), 1, new SecretKeyring(nodeSecret(cl, 1, {}))))
      .identity;
  });
  after(async () => {
    await spy.close();
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const inject = (bytes: Uint8Array) => spy.publish(p2pSubject(2), bytes);
  const fromNode1 = captured;

  test('a replayed envelope is rejected as a replay', async () => {
    const env = fromNode1.find((b) => decodeEnvelope(b).from === 1)!;
    assert.ok(env);
    await inject(env);
    await waitFor(() => events(2).some((e) => e.kind === 'replay' && e.peer === 1), 3000, 'replay event');
  });

  test('an envelope from an unknown node is rejected', async () => {
    const stranger = NodeIdentity.generate(9);
    const sid = randomBytes(32).toString('hex');
    await inject(
      sealEnvelope(
        stranger,
        { protocol: 'frost/sign', sessionId: sid, round: 1, from: 9, to: 2, seq: 1 },
        encodeBundle([{ broadcast: true, payload: new Uint8Array(8) }]),
      ),
    );
    await waitFor(
      () => events(2).some((e) => e.kind === 'unknown-sender' && e.peer === 9),
      3000,
      'unknown-sender event',
    );
  });

  test('a forged envelope (claims node 1, signed by another key) is rejected', async () => {
    const forger = NodeIdentity.generate(1);
    const sid = randomBytes(32).toString('hex');
    await inject(
      sealEnvelope(
        forger,
        { protocol: 'frost/sign', sessionId: sid, round: 1, from: 1, to: 2, seq: 1 },
        encodeBundle([{ broadcast: true, payload: new Uint8Array(8) }]),
        randomBytes(32),
      ),
    );
    await waitFor(
      () => events(2).some((e) => e.kind === 'bad-signature' && e.peer === 1),
      3000,
      'bad-signature event',
    );
  });

  test('an envelope moved to another session fails its signature', async () => {
    const env = Uint8Array.from(fromNode1.find((b) => decodeEnvelope(b).from === 1)!);
    const d = decodeEnvelope(env);
    const off = 3 + Buffer.byteLength(d.protocol);
    env[off]! ^= 0xff; // first byte of the session id
    const before = events(2).filter((e) => e.kind === 'bad-signature').length;
    await inject(env);
    await waitFor(
      () => events(2).filter((e) => e.kind === 'bad-signature').length > before,
      3000,
      'bad-signature event',
    );
  });

  test('tampered ciphertext (validly signed by node 1) fails decryption', async () => {
    const sid = randomBytes(32).toString('hex');
    // Encrypted under a key that is not the 1→2 pair key: authentication fails at node 2.
    const wrongKey = derivePairKey(
      node1,
      { id: 3, publicKey: node1.publicKey, dhPublicKey: node1.dhPublicKey },
      'send',
    );
    await inject(
      sealEnvelope(
        node1,
        { protocol: 'frost/sign', sessionId: sid, round: 1, from: 1, to: 2, seq: 7 },
        encodeBundle([{ broadcast: false, payload: new Uint8Array(16) }]),
        wrongKey,
      ),
    );
    await waitFor(
      () => events(2).some((e) => e.kind === 'decrypt-failed' && e.peer === 1),
      3000,
      'decrypt-failed event',
    );
  });

  test('cross-session: an envelope for a session that never starts here is dropped and reported', async () => {
    const sid = randomBytes(32).toString('hex');
    const key = derivePairKey(
      node1,
      {
        id: 2,
        publicKey: Buffer.from(c.cluster.nodes[1]!.publicKey, 'hex'),
        dhPublicKey: Buffer.from(c.cluster.nodes[1]!.dhPublicKey, 'hex'),
      },
      'send',
    );
    await inject(
      sealEnvelope(
        node1,
        { protocol: 'frost/sign', sessionId: sid, round: 1, from: 1, to: 2, seq: 1 },
        encodeBundle([{ broadcast: true, payload: new Uint8Array(8) }]),
        key,
      ),
    );
    await waitFor(
      () => events(2).some((e) => e.kind === 'unknown-session' && e.sessionId === sid),
      4000,
      'unknown-session event',
    );
  });

  test('oversize envelopes are refused', async () => {
    await inject(new Uint8Array(1024 * 1024 + 1));
    await waitFor(() => events(2).some((e) => e.kind === 'oversize'), 3000, 'oversize event');
  });

  test('a control request not signed by the control plane is refused and reported', async () => {
    const body = JSON.stringify({
      v: 1,
      type: 'ping',
      requestId: 'x',
      sessionId: '00'.repeat(32),
      issuedAt: Date.now(),
      expiresAt: Date.now() + 5000,
      timeoutMs: 1000,
    });
    const r = await spy.request(
      requestSubject(2),
      new TextEncoder().encode(JSON.stringify({ body, sig: '00'.repeat(64) })),
    );
    const reply = JSON.parse(JSON.parse(new TextDecoder().decode(r.data)).body);
    assert.equal(reply.ok, false);
    assert.equal(reply.error.code, 'CUSTOS_MPC_UNAUTHORIZED');
    assert.ok(events(2).some((e) => e.kind === 'bad-request'));
  });

  test('signing still works after all that', async () => {
    const s = await c.coordinator.sign(keyId, new TextEncoder().encode('still fine'));
    assert.ok(
      opensslVerify('eddsa-ed25519', s.signingPublicKey, new TextEncoder().encode('still fine'), s.signature),
    );
  });
});

describe('node backup and restore through the CLI', () => {
  let dir: string;
  let c: InProcessCluster;
  before(async () => {
    dir = tmp('restore');
    c = await cluster(dir);
  });
  after(async () => {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('backup → lose the data directory → restore → the node signs again with the same keys', async () => {
    const ecdsa = await c.coordinator.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
    const ed = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    const clusterFile = join(dir, 'cluster.json');
    const backupSecret = join(dir, 'backup-secret');
    writeFileSync(backupSecret, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const backupFile = join(dir, 'node-3.backup');
    const b = await runCliAsync(
      ['mpc-node', 'backup', '--id', '3', '--cluster', clusterFile, '--out', backupFile].concat([
        '--backup-secret-file',
        backupSecret,
        '--json',
      ]),
    );
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.deepEqual(JSON.parse(b.stdout).keys.sort(), [ecdsa.keyId, ed.keyId].sort());
    assert.equal(statSync(backupFile).mode & 0o777, 0o600);

    // Disaster: node 3's disk is gone.
    await c.stopNode(3);
    const dataDir = join(dir, 'node-3');
    rmSync(dataDir, { recursive: true, force: true });
    const cl = loadClusterFile(clusterFile);
    const secretFile = join(dir, cl.nodes.find((n) => n.id === 3)!.secretFile!);
    const restoreArgs = [
      'mpc-node',
      'restore',
      '--id',
      '3',
      '--in',
      backupFile,
      '--data-dir',
      dataDir,
    ].concat(['--secret-file', secretFile]);

    // The wrong backup secret opens nothing and writes nothing.
    const wrong = join(dir, 'wrong-secret');
    writeFileSync(wrong, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const bad = await runCliAsync([...restoreArgs, '--backup-secret-file', wrong, '--json']);
    assert.notEqual(bad.code, 0);
    assert.equal(JSON.parse(bad.stdout).error.code, 'CUSTOS_MPC_SECRET_INVALID');
    assert.ok(!existsSync(join(dataDir, 'identity.enc')));

    const r = await runCliAsync([...restoreArgs, '--backup-secret-file', backupSecret, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).keys.sort(), [ecdsa.keyId, ed.keyId].sort());
    // A second restore over the restored node is refused.
    const again = await runCliAsync([...restoreArgs, '--backup-secret-file', backupSecret, '--json']);
    assert.notEqual(again.code, 0);
    assert.equal(JSON.parse(again.stdout).error.code, 'CUSTOS_MPC_NODE_STATE');

    await c.startNode(3);
    const preimage = randomBytes(64);
    const s1 = await c.coordinator.sign(ecdsa.keyId, sha256(preimage), { signers: [1, 3] });
    assert.ok(opensslVerify('ecdsa-secp256k1', s1.signingPublicKey, preimage, s1.signature));
    assert.equal(s1.publicKey, ecdsa.publicKey);
    const msg = new TextEncoder().encode('restored');
    const s2 = await c.coordinator.sign(ed.keyId, msg, { signers: [2, 3] });
    assert.ok(opensslVerify('eddsa-ed25519', s2.signingPublicKey, msg, s2.signature));
  });
});

describe('cluster file reload (peer key change without a restart)', () => {
  let dir: string;
  let c: InProcessCluster;
  before(async () => {
    dir = tmp('reload');
    c = await cluster(dir, { nodeOptions: () => ({ channel: { bufferMs: 300 } }) });
  });
  after(async () => {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("node 3's keys change in the file: node 2 re-derives the pair keys at once; old keys are refused", async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    const original = loadClusterFile(join(dir, 'cluster.json'));
    const old3 = (
      await loadNodeIdentity(join(dir, 'node-3'), 3, new SecretKeyring(nodeSecret(original, 3, {})))
    ).identity;
    const new3 = NodeIdentity.generate(3);
    const edited = {
      ...original,
      nodes: original.nodes.map((n) =>
        n.id === 3 ? { ...n, publicKey: hex(new3.publicKey), dhPublicKey: hex(new3.dhPublicKey) } : n,
      ),
    };
    const n2 = c.nodes.get(2)!;
    assert.deepEqual(n2.reloadCluster(edited), { added: [], removed: [], rekeyed: [3], controlPlane: false });
    const node2 = {
      id: 2,
      publicKey: Buffer.from(original.nodes[1]!.publicKey, 'hex'),
      dhPublicKey: Buffer.from(original.nodes[1]!.dhPublicKey, 'hex'),
    };
    const spy = new MemoryBus({ hub: c.hub! });
    const send = (who: NodeIdentity) => {
      const sid = randomBytes(32).toString('hex');
      return spy
        .publish(
          p2pSubject(2),
          sealEnvelope(
            who,
            { protocol: 'frost/sign', sessionId: sid, round: 1, from: 3, to: 2, seq: 1 },
            encodeBundle([{ broadcast: false, payload: new Uint8Array(8) }]),
            derivePairKey(who, node2, 'send'),
          ),
        )
        .then(() => sid);
    };
    const ev = () => n2.events.recent;
    // The old identity no longer verifies; the new one passes signature and decryption (the session
    // is unknown here, which is what node 2 then reports).
    await send(old3);
    await waitFor(() => ev().some((e) => e.kind === 'bad-signature' && e.peer === 3), 3000, 'bad-signature');
    const sid = await send(new3);
    await waitFor(
      () => ev().some((e) => e.kind === 'unknown-session' && e.sessionId === sid),
      4000,
      'accepted',
    );
    assert.ok(!ev().some((e) => e.kind === 'decrypt-failed' && e.peer === 3));
    await spy.close();

    // A file that changes this node's own keys is refused and changes nothing.
    const self = {
      ...original,
      nodes: original.nodes.map((n) => (n.id === 2 ? { ...n, publicKey: hex(new3.publicKey) } : n)),
    };
    assert.throws(() => n2.reloadCluster(self), isMpcError('CUSTOS_MPC_NODE_STATE'));
    // Back to the real file: nodes 2 and 3 sign together again.
    assert.deepEqual(n2.reloadCluster(original).rekeyed, [3]);
    const msg = new TextEncoder().encode('reloaded');
    const s = await c.coordinator.sign(key.keyId, msg, { signers: [2, 3] });
    assert.ok(opensslVerify('eddsa-ed25519', s.signingPublicKey, msg, s.signature));
    new3.destroy();
    old3.destroy();
  });
});

describe('per-peer rate limit', () => {
  let dir: string;
  let c: InProcessCluster;
  let spy: MemoryBus;
  let node1: NodeIdentity;
  const RATE = 20;
  before(async () => {
    dir = tmp('rate');
    c = await cluster(dir, {
      nodeOptions: (id) => (id === 2 ? { channel: { messagesPerSecond: RATE, bufferMs: 300 } } : {}),
    });
    spy = new MemoryBus({ hub: c.hub! });
    const cl = loadClusterFile(join(dir, 'cluster.json'));
    node1 = (await loadNodeIdentity(join(dir, 'node-1'), 1, new SecretKeyring(nodeSecret(cl, 1, {}))))
      .identity;
  });
  after(async () => {
    await spy.close();
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a flood of validly signed envelopes from one peer is dropped above the rate, reported once per second, and signing recovers', async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    const pairKey = derivePairKey(
      node1,
      {
        id: 2,
        publicKey: Buffer.from(c.cluster.nodes[1]!.publicKey, 'hex'),
        dhPublicKey: Buffer.from(c.cluster.nodes[1]!.dhPublicKey, 'hex'),
      },
      'send',
    );
    const FLOOD = 300;
    const envelopes = Array.from({ length: FLOOD }, (_, i) =>
      sealEnvelope(
        node1,
        {
          protocol: 'frost/sign',
          sessionId: randomBytes(32).toString('hex'),
          round: 1,
          from: 1,
          to: 2,
          seq: i + 1,
        },
        encodeBundle([{ broadcast: true, payload: new Uint8Array(8) }]),
        pairKey,
      ),
    );
    const events = () =>
      c.nodes.get(2)!.events.recent.filter((e) => e.kind === 'rate-limited' && e.peer === 1);
    const t0 = Date.now();
    for (const e of envelopes) await spy.publish(p2pSubject(2), e);
    const elapsedS = (Date.now() - t0) / 1000;
    // The drops after the first report are flushed within about a second.
    await waitFor(
      () =>
        events().reduce((n, e) => n + Number(/(\d+)( more)? envelope/.exec(e.detail)?.[1] ?? 0), 0) > 0 &&
        Date.now() - t0 > 1500,
      5000,
      'rate-limited reports',
    );
    const reports = events();
    const dropped = reports.reduce(
      (n, e) => n + Number(/(\d+)( more)? envelope/.exec(e.detail)?.[1] ?? 0),
      0,
    );
    // At most the burst plus what refilled while the flood ran got through.
    const admitted = RATE + Math.ceil(elapsedS * RATE) + 5;
    assert.ok(dropped >= FLOOD - admitted, `dropped ${dropped} of ${FLOOD} (admitted at most ${admitted})`);
    assert.ok(dropped <= FLOOD);
    assert.ok(reports.length <= 2 + Math.ceil(elapsedS), `${reports.length} reports for one flood`);
    // The bucket refills: an honest session between nodes 1 and 2 goes through.
    await sleep(1100);
    const msg = new TextEncoder().encode('after the flood');
    const s = await c.coordinator.sign(key.keyId, msg, { signers: [1, 2] });
    assert.ok(opensslVerify('eddsa-ed25519', s.signingPublicKey, msg, s.signature));
  });
});

describe('node + coordinator, Ed25519 (FROST)', () => {
  let dir: string;
  let c: InProcessCluster;
  let garble = false;
  before(async () => {
    dir = tmp('frost');
    c = await cluster(dir, {
      nodeOptions: (id) =>
        id === 1
          ? {
              testHooks: {
                // A faulty (not provably cheating) node: its FROST sign messages are one byte short,
                // so they never decode. (Flipping a bit instead is not deterministic: about one time
                // in sixteen the flipped binding point is still a valid prime-order point, the
                // session goes on, and the wrong signature share is — correctly — a cheating verdict.)
                outgoing: (m: ProtocolMessage) => {
                  if (!garble || !m.protocol.endsWith('/sign')) return m;
                  return { ...m, payload: m.payload.slice(0, -1) };
                },
              },
            }
          : {},
    });
  });
  after(async () => {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('2-of-3 key, signatures verify with OpenSSL, derived paths too', async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    assert.equal(key.parties.length, 3);
    for (let i = 0; i < 5; i++) {
      const msg = randomBytes(40);
      const s = await c.coordinator.sign(key.keyId, msg, i % 2 ? { path: `m/0/${i}` } : {});
      assert.equal(s.signers.length, 2);
      assert.ok(opensslVerify('eddsa-ed25519', s.signingPublicKey, msg, s.signature), 'OpenSSL verifies');
    }
  });

  test('share files hold no plaintext share', async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    const node = c.nodes.get(1)!;
    const stored = (await node.store.loadShare(key.keyId))!;
    const file = readFileSync(join(node.store.dir, 'keys', key.keyId, 'share.enc'));
    const plain = Buffer.from(stored.share);
    assert.ok(plain.length >= 32);
    for (let i = 0; i + 16 <= plain.length; i += 8) {
      assert.equal(
        file.indexOf(plain.subarray(i, i + 16)),
        -1,
        `share bytes ${i}..${i + 16} found in the file`,
      );
    }
    assert.equal(file.indexOf(Buffer.from(plain.toString('base64').slice(0, 24))), -1);
    assert.equal(file.indexOf(Buffer.from(key.publicKey, 'hex')), -1, 'metadata is sealed too');
  });

  test('backup: one sealed file with identity and shares; opens only with the backup secret', async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    const cl = loadClusterFile(join(dir, 'cluster.json'));
    const { identity, keyring } = await loadNodeIdentity(
      join(dir, 'node-3'),
      3,
      new SecretKeyring(nodeSecret(cl, 3, {})),
    );
    const store = new ShareStore(join(dir, 'node-3'), keyring);
    const backupKey = new SecretKeyring('backup-secret-'.repeat(4), { kdf: KDF });
    const sealed = await store.backup(identity, backupKey);
    const original = (await store.loadShare(key.keyId))!;
    assert.equal(Buffer.from(sealed).indexOf(Buffer.from(original.share.subarray(0, 16))), -1);
    const b = await openBackup(sealed, 3, new SecretKeyring('backup-secret-'.repeat(4)));
    assert.deepEqual(b.identity.public, identity.public);
    const restored = b.shares.find((x) => x.meta.keyId === key.keyId)!;
    assert.ok(Buffer.from(restored.share).equals(Buffer.from(original.share)));
    await assert.rejects(
      openBackup(sealed, 3, new SecretKeyring('x'.repeat(40))),
      isMpcError('CUSTOS_MPC_SECRET_INVALID'),
    );
    await assert.rejects(
      openBackup(sealed, 2, new SecretKeyring('backup-secret-'.repeat(4))),
      isMpcError('CUSTOS_MPC_SECRET_INVALID'),
    );
  });

  test('a presignature is taken once: of concurrent takers one gets it, and it is gone from disk', async () => {
    const d = mkdtempSync(join(tmpdir(), 'custos-presig-'));
    try {
      const store = new ShareStore(d, new SecretKeyring('presig-secret-'.repeat(3), { kdf: KDF }));
      const keyId = 'key_presigtest01';
      const id = 'ab'.repeat(16);
      await store.savePresig(keyId, '1-2', id, new Uint8Array([1, 2, 3, 4]));
      assert.deepEqual(store.listPresigs(keyId).get('1-2'), [id]);
      const takes = await Promise.all(Array.from({ length: 8 }, () => store.takePresig(keyId, '1-2', id)));
      const got = takes.filter((t) => t !== null);
      assert.equal(got.length, 1, 'exactly one taker');
      assert.deepEqual([...got[0]!], [1, 2, 3, 4]);
      assert.deepEqual(store.listPresigs(keyId).get('1-2'), []);
      assert.equal(await store.takePresig(keyId, '1-2', id), null);
      assert.deepEqual(readdirSync(join(d, 'presig', keyId, '1-2')), [], 'no file left behind');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('duplicate delivery of one request → one session, same reply; reused id with other body refused', async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    const spy = new MemoryBus({ hub: c.hub! });
    const seen: Uint8Array[] = [];
    const sub = await spy.subscribe(requestSubject(1), (m) => {
      seen.push(m.data);
    });
    await c.coordinator.sign(key.keyId, new Uint8Array([1, 2, 3]), { signers: [1, 2] });
    await sub.unsubscribe();
    const req = seen[0]!;
    const n1 = c.nodes.get(1)!;
    // The session is over; re-delivering the same request returns the cached reply, no new session.
    const [a, b] = await Promise.all([n1.handleRequest(req), n1.handleRequest(req)]);
    assert.equal(a.ok, true);
    assert.deepEqual(a, b);
    // Same request id, different (validly signed) body: refused.
    const body = JSON.parse(JSON.parse(new TextDecoder().decode(req)).body);
    const cpKey = ed25519PrivateKeyObject(readControlPlaneKey(join(dir, 'secrets', 'control-plane.key')));
    const forged = signBody('request', { ...body, message: '0a0b0c' }, cpKey);
    const r = await n1.handleRequest(forged);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'CUSTOS_MPC_BAD_REQUEST');
    await spy.close();
  });

  test('raw signing is refused on a key created without allowRawSigning; evidence needs an authorizer', async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3);
    await assert.rejects(
      c.coordinator.sign(key.keyId, new Uint8Array([1])),
      isMpcError('CUSTOS_MPC_UNAUTHORIZED'),
    );
    await assert.rejects(
      c.coordinator.sign(key.keyId, new Uint8Array([1]), {
        authorization: { kind: 'approvals', approvals: [] },
      }),
      isMpcError('CUSTOS_MPC_UNAUTHORIZED'),
    );
    for (const n of c.nodes.values()) {
      n.addAuthorizer((r) =>
        r.authorization?.kind === 'test-evidence' && r.authorization['ok'] === true
          ? { decision: 'allow', by: 'test' }
          : { decision: 'abstain' },
      );
    }
    const s = await c.coordinator.sign(key.keyId, new Uint8Array([7]), {
      authorization: { kind: 'test-evidence', ok: true },
    });
    assert.ok(opensslVerify('eddsa-ed25519', s.signingPublicKey, new Uint8Array([7]), s.signature));
    assert.ok(c.nodes.get(1)!.events.recent.some((e) => e.kind === 'unauthorized'));
  });

  test('one node down: signing continues with the other two; two down: fails closed; restart: resumes', async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    await c.stopNode(1);
    for (let i = 0; i < 3; i++) {
      const s = await c.coordinator.sign(key.keyId, new Uint8Array([i]));
      assert.deepEqual(s.signers, [2, 3]);
    }
    await c.stopNode(2);
    await assert.rejects(c.coordinator.sign(key.keyId, new Uint8Array([9])), (e: unknown) => {
      assert.ok(e instanceof MpcError);
      assert.equal(e.code, 'CUSTOS_MPC_TIMEOUT');
      assert.match(e.message, /nothing was signed/);
      return true;
    });
    await c.startNode(1);
    await c.startNode(2);
    await waitFor(() => c.coordinator.heartbeats().size >= 3, 5000, 'heartbeats');
    const s = await c.coordinator.sign(key.keyId, new Uint8Array([10]));
    assert.ok(opensslVerify('eddsa-ed25519', s.signingPublicKey, new Uint8Array([10]), s.signature));
  });

  test('a non-cheating abort (bad message) is retried once with another subset', async () => {
    const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
    // The first attempt must include node 1 (the lowest live ids are picked): all three are up.
    await waitFor(async () => (await c.coordinator.liveNodes()).length === 3, 5000, 'all nodes live');
    garble = true;
    try {
      const msg = new Uint8Array([42]);
      const s = await c.coordinator.sign(key.keyId, msg);
      assert.equal(s.attempts, 2);
      assert.deepEqual(s.signers, [2, 3]);
      assert.ok(opensslVerify('eddsa-ed25519', s.signingPublicKey, msg, s.signature));
      assert.equal(
        c.coordinator.registry.get(key.keyId)?.locked,
        undefined,
        'not a cheating verdict: no lock',
      );
    } finally {
      garble = false;
    }
  });
});

describe('node + coordinator, ECDSA (DKLs23) with presignature pools', () => {
  let dir: string;
  let c: InProcessCluster;
  before(async () => {
    dir = tmp('ecdsa');
    c = await cluster(dir, { poolSize: 4 });
  });
  after(async () => {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('2-of-3 key; pools fill; signatures verify with OpenSSL; presignatures are used once', async () => {
    const key = await c.coordinator.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
    assert.ok(key.xpub?.startsWith('xpub'));
    await waitFor(
      () =>
        (c.nodes.get(1)!.keys()[0]?.pools['1-2'] ?? 0) >= 4 &&
        (c.nodes.get(2)!.keys()[0]?.pools['1-2'] ?? 0) >= 4,
      20_000,
      'pool',
    );
    const sources: string[] = [];
    for (let i = 0; i < 6; i++) {
      const preimage = randomBytes(100);
      const s = await c.coordinator.sign(key.keyId, sha256(preimage), i === 5 ? { path: 'm/0/7' } : {});
      sources.push(s.presignature!);
      assert.ok(
        opensslVerify('ecdsa-secp256k1', s.signingPublicKey, preimage, s.signature),
        'OpenSSL verifies',
      );
    }
    assert.equal(sources[0], 'pool');
    // Presignature files are deleted as they are used.
    const files = readdirSync(join(c.nodes.get(1)!.store.dir, 'presig', key.keyId, 'g0-1-2'));
    assert.ok(files.length <= 4 + 2);
  });

  test('refresh keeps the public key; signing works after it', async () => {
    const key = await c.coordinator.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
    const r = await c.coordinator.refresh(key.keyId);
    assert.equal(r.publicKey, key.publicKey);
    assert.equal(r.generation, 1);
    const preimage = randomBytes(50);
    const s = await c.coordinator.sign(key.keyId, sha256(preimage));
    assert.ok(opensslVerify('ecdsa-secp256k1', s.signingPublicKey, preimage, s.signature));
  });
});

describe('reshare to a new committee (4-node cluster)', () => {
  let dir: string;
  let c: InProcessCluster;
  before(async () => {
    dir = tmp('reshare');
    c = await cluster(dir, { nodes: 4, threshold: 2 });
  });
  after(async () => {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const scheme of ['ecdsa-secp256k1', 'eddsa-ed25519'] as const) {
    test(`${scheme}: 2-of-3 {1,2,3} → 2-of-3 {2,3,4} keeps the public key; node 1's share is gone`, {
      skip: !schemes.has(scheme) && `${scheme} not available`,
    }, async () => {
      const key = await c.coordinator.createKey(scheme, 2, 3, { allowRawSigning: true });
      assert.deepEqual(key.parties, [1, 2, 3]);
      const r = await c.coordinator.reshare(key.keyId, { committee: [2, 3, 4], threshold: 2 });
      assert.equal(r.publicKey, key.publicKey);
      assert.deepEqual(r.parties, [2, 3, 4]);
      assert.ok(
        !c.nodes
          .get(1)!
          .keys()
          .some((k) => k.keyId === key.keyId),
        'node 1 dropped its share',
      );
      const pre = randomBytes(32);
      const msg = scheme === 'ecdsa-secp256k1' ? sha256(pre) : pre;
      const s = await c.coordinator.sign(key.keyId, msg, { signers: [3, 4] });
      assert.equal(s.signingPublicKey, key.publicKey);
      assert.ok(opensslVerify(scheme, s.signingPublicKey, pre, s.signature));
    });
  }
});

describe('a cheating node', () => {
  test('corrupted DKLs23 presign message → abort naming it, key locked, no retry', async () => {
    const dir = tmp('cheat');
    let cheating = false;
    const c = await cluster(dir, {
      nodeOptions: (id) =>
        id === 2
          ? {
              testHooks: {
                outgoing: (m: ProtocolMessage) => {
                  if (!cheating || m.protocol !== 'dkls23/presign') return m;
                  const p = m.payload.slice();
                  p[p.length - 1]! ^= 1;
                  return { ...m, payload: p };
                },
              },
            }
          : {},
    });
    try {
      const key = await c.coordinator.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
      const spy = new MemoryBus({ hub: c.hub! });
      const requests = new Set<string>();
      await spy.subscribe('custos.mpc.node.*.req', (m) => {
        const body = JSON.parse(JSON.parse(new TextDecoder().decode(m.data)).body);
        if (body.type === 'sign') requests.add(body.requestId);
      });
      cheating = true;
      await assert.rejects(
        c.coordinator.sign(key.keyId, randomBytes(32), { signers: [1, 2] }),
        (e: unknown) => {
          assert.ok(e instanceof MpcError);
          assert.equal(e.code, 'CUSTOS_MPC_ABORT');
          assert.equal(e.details?.['culprit'], 2);
          assert.equal(e.details?.['cheating'], true);
          return true;
        },
      );
      assert.equal(requests.size, 1, 'no retry after a cheating verdict');
      assert.ok(c.coordinator.registry.get(key.keyId)?.locked, 'locked in the registry');
      assert.equal(c.coordinator.registry.get(key.keyId)?.locked?.culprit, 2);
      assert.ok(c.coordinator.events.recent.some((e) => e.kind === 'key-locked' && e.keyId === key.keyId));
      await waitFor(
        () =>
          c.nodes
            .get(1)!
            .keys()
            .find((k) => k.keyId === key.keyId)?.locked === true,
        3000,
        'node lock',
      );
      await assert.rejects(
        c.coordinator.sign(key.keyId, randomBytes(32)),
        isMpcError('CUSTOS_MPC_KEY_LOCKED'),
      );
      assert.equal(requests.size, 1);
      // Remedy: reshare to a committee without the culprit clears the lock.
      cheating = false;
      await spy.close();
    } finally {
      await c.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('altered DKLs23 online (w, u) → invalid combined signature, no culprit, still a cheating verdict: key locked, no retry', async () => {
    const dir = tmp('cheat-wu');
    let cheating = false;
    let altered = 0;
    const c = await cluster(dir, {
      nodeOptions: (id) =>
        id === 2
          ? {
              testHooks: {
                // The online broadcast: w ‖ u, two 32-byte scalars.
                outgoing: (m: ProtocolMessage) => {
                  if (!cheating || m.protocol !== 'dkls23/sign' || m.to !== null || m.payload.length !== 64)
                    return m;
                  altered++;
                  const p = m.payload.slice();
                  p[63]! ^= 1;
                  return { ...m, payload: p };
                },
              },
            }
          : {},
    });
    try {
      const key = await c.coordinator.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
      const ok = await c.coordinator.sign(key.keyId, randomBytes(32), { signers: [1, 2] });
      assert.equal(ok.signers.length, 2);
      const spy = new MemoryBus({ hub: c.hub! });
      const requests = new Set<string>();
      await spy.subscribe('custos.mpc.node.*.req', (m) => {
        const body = JSON.parse(JSON.parse(new TextDecoder().decode(m.data)).body);
        if (body.type === 'sign') requests.add(body.requestId);
      });
      cheating = true;
      // No fixed signer set: the coordinator would be free to retry with {1,3} or {2,3}; it must not.
      // Node 1 gets the altered (w, u) and finds the combined signature invalid; node 2 (the cheater)
      // combines its own honest values, so its reply may still be a valid signature that wins.
      const preimage = randomBytes(50);
      const digest = createHash('sha256').update(preimage).digest();
      const outcome = await c.coordinator.sign(key.keyId, digest).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      if (outcome.ok) {
        assert.ok(
          opensslVerify('ecdsa-secp256k1', outcome.r.signingPublicKey, preimage, outcome.r.signature),
        );
      } else {
        const e = outcome.e;
        assert.ok(e instanceof MpcError);
        assert.equal(e.code, 'CUSTOS_MPC_ABORT');
        assert.equal(e.details?.['cheating'], true);
        assert.equal(e.details?.['culprit'] ?? null, null, 'DKLs23 cannot attribute (w, u)');
      }
      assert.ok(altered >= 1, 'the hook ran');
      // Node 1's verdict locks the key on node 1 and, when its reply arrives, at the coordinator.
      await waitFor(
        () =>
          c.nodes
            .get(1)!
            .keys()
            .find((k) => k.keyId === key.keyId)?.locked === true,
        3000,
        'node 1 lock',
      );
      await waitFor(() => Boolean(c.coordinator.registry.get(key.keyId)?.locked), 3000, 'coordinator lock');
      await spy.close();
      assert.equal(requests.size, 1, 'no retry after an invalid combined signature');
      const lock = c.coordinator.registry.get(key.keyId)!.locked!;
      assert.equal(lock.culprit, null);
      assert.match(lock.reason, /invalid-signature/);
      assert.ok(
        c.nodes
          .get(1)!
          .events.recent.some((e) => e.kind === 'cheating' && e.keyId === key.keyId && e.peer === undefined),
      );
      await assert.rejects(
        c.coordinator.sign(key.keyId, randomBytes(32), { signers: [1, 3] }),
        isMpcError('CUSTOS_MPC_KEY_LOCKED'),
      );
    } finally {
      await c.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
