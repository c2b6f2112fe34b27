// `custos chain-watcher` as real processes, the way production runs it: two replicas (CUSTOS_ENV
// production, key files 0600, CUSTOS_NETWORKS naming an anvil devnet) on one fresh PostgreSQL
// database. Exactly one holds the network's lease and advances the scan cursor as anvil mines; a
// deposit to an address created here through the custody service (vault key by DKG on in-process
// MPC nodes) is credited exactly once; SIGKILL of the holder hands the lease to the other replica
// only once it has run out, and the cursor and crediting carry on; SIGTERM stops the survivor with
// exit code 0 within 5 s and releases the lease. Misconfiguration exits 2 with one line.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { AuditLog } from '../src/audit/log.ts';
import { type Anvil, anvilNetwork, deployTestToken, startAnvil } from '../src/chains/devnet/anvil.ts';
import { decodeCursor } from '../src/chains/types.ts';
import { custodyChains } from '../src/custody/chains.ts';
import { CustodyService } from '../src/custody/service.ts';
import type { Principal } from '../src/identity/principal.ts';
import { permissionsOf } from '../src/identity/rbac.ts';
import { createSecurityServices, type SecurityServices } from '../src/identity/services.ts';
import { type InProcessCluster, startInProcessCluster } from '../src/mpc/local.ts';
import { type DatabaseHandle, openDatabase } from '../src/store/database.ts';
import { runCli, spawnCli, waitExit } from './helpers/cli.ts';
import { testConfig } from './helpers/identity-harness.ts';
import { captureLogger } from './helpers/log-capture.ts';

const TEST_URL = process.env['CUSTOS_TEST_DATABASE_URL'];
const NETWORK = 'anvil';
const LEASE = `chain-watcher:${NETWORK}`;
/** The watcher's default lease lifetime at --interval-ms 200: max(30 s, 10 × 200 ms). */
const LEASE_TTL_MS = 30_000;
const ETH = 10n ** 18n;

interface Replica {
  proc: ChildProcess;
  pid: number;
  out: () => string;
}

function startReplica(env: Record<string, string>, cwd: string): Replica {
  const proc = spawnCli(['chain-watcher', '--migrate', '--interval-ms', '200'], env, cwd);
  let text = '';
  const keep = (d: Buffer) => {
    text += d.toString();
    if (text.length > 2_000_000) text = text.slice(-1_000_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { proc, pid: proc.pid!, out: () => text };
}

/** The pid in a lease holder id (`chain-watcher@host:pid:random`, src/custody/leases.ts). */
function holderPid(holder: string): number {
  const m = /^chain-watcher@(.+):(\d+):[0-9a-f]{8}$/.exec(holder);
  assert.ok(m, `unexpected lease holder id ${holder}`);
  assert.equal(m[1], hostname());
  return Number(m[2]);
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

describe('custos chain-watcher: misconfiguration', () => {
  test('without CUSTOS_NETWORKS it exits 2 with one line naming the variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-cw-bad-'));
    try {
      const r = runCli(
        ['chain-watcher', '--interval-ms', '200'],
        {
          CUSTOS_ENV: 'production',
          CUSTOS_DATA_DIR: dir,
          CUSTOS_DATABASE_URL: 'postgres://custos@127.0.0.1:1/none',
        },
        dir,
      );
      assert.equal(r.code, 2, r.stderr + r.stdout);
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^custos: .*CUSTOS_NETWORKS.*\(CUSTOS_CONFIG_INVALID\)$/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a malformed CUSTOS_NETWORKS exits 2 naming the variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-cw-bad-'));
    try {
      const r = runCli(['chain-watcher'], { CUSTOS_DATA_DIR: dir, CUSTOS_NETWORKS: '{"id":"anvil"}' }, dir);
      assert.equal(r.code, 2, r.stderr + r.stdout);
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /CUSTOS_NETWORKS: must be a JSON array/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('custos chain-watcher: two replicas on one PostgreSQL database and an anvil devnet', {
  skip: TEST_URL ? undefined : 'CUSTOS_TEST_DATABASE_URL not set (needs PostgreSQL)',
}, () => {
  const dbName = `custos_cw_${randomBytes(6).toString('hex')}`;
  let dir: string;
  let dbUrl: string;
  let env: Record<string, string>;
  let anvil: Anvil;
  let db: DatabaseHandle;
  let cluster: InProcessCluster | undefined;
  let security: SecurityServices | undefined;
  let custody: CustodyService;
  let owner: Principal;
  let walletId: string;
  let address: string;
  const replicas: Replica[] = [];
  let holder: Replica;
  let survivor: Replica;
  const deposits: { hash: string; amount: bigint }[] = [];

  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: TEST_URL });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };

  /** Lease row and cursor in one statement (one snapshot), with the database clock. */
  const state = async () => {
    const r = await sql<{
      holder: string | null;
      expires_at: Date | null;
      acquired_at: Date | null;
      cursor: string | null;
      now: Date;
    }>`select l.holder, l.expires_at, l.acquired_at, c.cursor, now() as now
           from (select 1) one
           left join chain_leases l on l.name = ${LEASE}
           left join chain_cursors c on c.network = ${NETWORK}`.execute(db.db);
    const row = r.rows[0]!;
    return { ...row, block: row.cursor ? decodeCursor(row.cursor).blockNumber : null };
  };
  const head = async () => BigInt(await anvil.rpc<string>('eth_blockNumber'));
  const diagnostics = () =>
    replicas
      .map(
        (r) => `--- pid ${r.pid} (exit ${r.proc.exitCode ?? r.proc.signalCode}) ---\n${r.out().slice(-4000)}`,
      )
      .join('\n');

  /** One deposit row per transaction, credited, with exactly one detected and one credited entry. */
  async function assertCreditedOnce(hash: string, amount: bigint): Promise<void> {
    const rows = await db.db.selectFrom('deposits').selectAll().where('tx_id', '=', hash).execute();
    assert.equal(rows.length, 1, `deposit rows for ${hash}`);
    const d = rows[0]!;
    assert.equal(d.status, 'credited');
    assert.equal(BigInt(d.amount), amount);
    assert.equal(d.address_id !== null, true);
    assert.equal(d.wallet_id, walletId);
    const entries = await db.db
      .selectFrom('journal_entries')
      .select('kind')
      .where('ref_type', '=', 'deposit')
      .where('ref_id', '=', d.id)
      .orderBy('kind')
      .execute();
    assert.deepEqual(
      entries.map((e) => e.kind),
      ['deposit.credited', 'deposit.detected'],
    );
    const audit = await db.db
      .selectFrom('audit_log')
      .select('action')
      .where('target_id', '=', d.id)
      .orderBy('action')
      .execute();
    assert.deepEqual(
      audit.map((a) => a.action),
      ['deposit.credited', 'deposit.detected'],
    );
  }

  async function ethBalance(): Promise<{ available: bigint; pending: bigint }> {
    const b = (await custody.walletBalances(owner, walletId)).find((x) => x.assetId === `${NETWORK}:ETH`);
    return { available: BigInt(b?.available ?? 0), pending: BigInt(b?.pending ?? 0) };
  }

  async function deposit(amount: bigint): Promise<string> {
    const hash = await anvil.rpc<string>('eth_sendTransaction', [
      { from: anvil.accounts[1], to: address, value: `0x${amount.toString(16)}` },
    ]);
    deposits.push({ hash, amount });
    return hash;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custos-cw-'));
    await admin((c) => c.query(`create database ${dbName}`));
    const u = new URL(TEST_URL!);
    u.pathname = `/${dbName}`;
    dbUrl = u.toString();
    // Production refuses to generate secrets: the operator's key files, 0600.
    const keyFiles: Record<string, string> = {};
    for (const [v, name] of [
      ['CUSTOS_IDENTITY_KEY_FILE', 'identity-key'],
      ['CUSTOS_AUDIT_HMAC_KEY_FILE', 'audit-hmac-key'],
      ['CUSTOS_AUDIT_CHECKPOINT_KEY_FILE', 'audit-checkpoint-key'],
    ] as const) {
      const p = join(dir, name);
      writeFileSync(p, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      keyFiles[v] = p;
    }
    anvil = await startAnvil({ blockTime: 1 });
    await deployTestToken(anvil);
    env = {
      CUSTOS_ENV: 'production',
      CUSTOS_DATA_DIR: join(dir, 'data'),
      CUSTOS_DATABASE_URL: dbUrl,
      CUSTOS_DATABASE_POOL_SIZE: '4',
      CUSTOS_LOG_LEVEL: 'info',
      CUSTOS_NETWORKS: JSON.stringify([anvilNetwork(anvil)]),
      ...keyFiles,
    };
    db = await openDatabase({ databaseUrl: dbUrl, poolSize: 4 });
  });

  after(async () => {
    for (const r of replicas) {
      if (r.proc.exitCode === null && r.proc.signalCode === null) {
        r.proc.kill('SIGKILL');
        await waitExit(r.proc);
      }
    }
    await cluster?.stop();
    security?.stop();
    await db?.close();
    await anvil?.stop();
    await admin((c) => c.query(`drop database if exists ${dbName} with (force)`)).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('both replicas start on a fresh database (migrating concurrently); exactly one holds the lease', async () => {
    replicas.push(startReplica(env, dir), startReplica(env, dir));
    for (const r of replicas) {
      await waitFor(
        `pid ${r.pid} to start`,
        async () => {
          assert.equal(r.proc.exitCode, null, diagnostics());
          return /"msg":"chain watcher started"/.test(r.out());
        },
        90_000,
      );
    }
    const first = await waitFor('the lease to be taken', async () => (await state()).holder, 30_000);
    const pid = holderPid(first);
    const found = replicas.find((r) => r.pid === pid);
    assert.ok(found, `lease holder pid ${pid} is one of ${replicas.map((r) => r.pid)}`);
    holder = found;
    survivor = replicas.find((r) => r !== holder)!;
    // For the next ~3 s: the same holder, never re-acquired, renewed at every pass with a 30 s ttl.
    const s0 = await state();
    let lastExpiry = s0.expires_at!.getTime();
    let renewals = 0;
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      const s = await state();
      assert.equal(s.holder, first, 'the lease never changes hands while its holder lives');
      assert.equal(s.acquired_at!.getTime(), s0.acquired_at!.getTime());
      const ttl = s.expires_at!.getTime() - s.now.getTime();
      assert.ok(ttl > LEASE_TTL_MS - 5000 && ttl <= LEASE_TTL_MS, `lease ttl ${ttl} ms`);
      if (s.expires_at!.getTime() > lastExpiry) renewals++;
      lastExpiry = s.expires_at!.getTime();
    }
    assert.ok(renewals >= 4, `lease renewed ${renewals}/6 times`);
    for (const r of replicas) assert.equal(r.proc.exitCode, null, diagnostics());
    // Both migrated the same database at once: each migration applied exactly once.
    const migs = await sql<{ n: number; d: number }>`
        select count(*)::int as n, count(distinct name)::int as d from custos_migrations`.execute(db.db);
    assert.equal(migs.rows[0]!.n, migs.rows[0]!.d);
    assert.ok(migs.rows[0]!.n >= 4);
  });

  test('the scan cursor follows anvil as it mines', async () => {
    const c0 = await waitFor('a cursor', async () => (await state()).block, 30_000);
    const h0 = await head();
    const target = (h0 > c0 ? h0 : c0) + 3n;
    const s = await waitFor(
      `cursor >= ${target}`,
      async () => {
        const x = await state();
        return x.block !== null && x.block >= target ? x : undefined;
      },
      60_000,
    );
    assert.ok(s.block! <= (await head()), 'never ahead of the chain');
    assert.equal(holderPid(s.holder!), holder.pid, 'the holder is the one scanning');
  });

  test('a deposit to an address made through the custody service is credited exactly once', async () => {
    // Organisation and owner (identity service), a 2-of-3 vault whose ECDSA key is made by DKG on
    // three in-process MPC nodes, a wallet on the network and an address: what the API does.
    const log = captureLogger('info');
    const keyOf = (v: string) => Buffer.from(readFileSync(env[v]!, 'utf8').trim(), 'hex');
    const config = testConfig();
    const keys = {
      identityKek: randomBytes(32),
      auditHmacKey: keyOf('CUSTOS_AUDIT_HMAC_KEY_FILE'),
      auditCheckpointKey: keyOf('CUSTOS_AUDIT_CHECKPOINT_KEY_FILE'),
      generated: [],
    };
    security = await createSecurityServices(config, db.db, log.logger, { keys, startTimers: false });
    const b = await security.identity.bootstrap({ orgName: 'watcher-process', email: 'owner@cw.test' });
    owner = {
      kind: 'user',
      orgId: b.org.id,
      environment: 'production',
      userId: b.user.id,
      role: 'owner',
      apiKeyId: null,
      sessionId: null,
      permissions: permissionsOf('owner'),
      mfa: true,
      rateLimit: null,
      actor: { type: 'user', id: b.user.id },
    };
    cluster = await startInProcessCluster({
      dir: join(dir, 'mpc'),
      kdf: { memoryCost: 1024, timeCost: 1 },
      poolSize: 0,
    });
    const chains = custodyChains({ db: db.db, networks: [anvilNetwork(anvil)] });
    custody = new CustodyService({
      db: db.db,
      audit: new AuditLog({
        hmacKey: keys.auditHmacKey,
        checkpointKey: keys.auditCheckpointKey,
        checkpointEvery: config.auditCheckpointEvery,
      }),
      coordinator: cluster.coordinator,
      chains: new Map(chains.map((c) => [c.network, c])),
      logger: log.logger,
    });
    const ctx = { requestId: 'cw-test', ip: null };
    const vault = await custody.createVault(owner, ctx, {
      name: 'hot',
      tier: 'hot',
      threshold: 2,
      parties: 3,
      schemes: ['ecdsa-secp256k1'],
    });
    const wallet = await custody.createWallet(owner, ctx, { vaultId: vault.id, network: NETWORK });
    walletId = wallet.id;
    address = (await custody.createAddress(owner, ctx, walletId, { label: 'deposits' })).address;
    assert.match(address, /^0x[0-9a-fA-F]{40}$/);

    const amount = 3n * ETH;
    const hash = await deposit(amount);
    const credited = await waitFor(
      'the deposit to be credited',
      async () => {
        const d = await db.db.selectFrom('deposits').selectAll().where('tx_id', '=', hash).execute();
        return d.length > 0 && d.every((x) => x.status === 'credited') ? d : undefined;
      },
      60_000,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${diagnostics()}`);
    });
    assert.equal(credited.length, 1);
    // Both replicas keep passing over those blocks for a while: still once.
    const c = (await state()).block!;
    await waitFor('three more blocks scanned', async () => ((await state()).block ?? 0n) >= c + 3n, 30_000);
    await assertCreditedOnce(hash, amount);
    assert.deepEqual(await ethBalance(), { available: amount, pending: 0n });
    const onChain = BigInt(await anvil.rpc<string>('eth_getBalance', [address, 'latest']));
    assert.equal(onChain, amount, 'ledger = chain');
  });

  test('SIGKILL of the holder: the other replica takes over once the lease has run out; scanning and crediting carry on', async (t) => {
    const before_ = await state();
    assert.equal(holderPid(before_.holder!), holder.pid);
    const killedAt = Date.now();
    holder.proc.kill('SIGKILL');
    assert.equal((await waitExit(holder.proc)).signal, 'SIGKILL');
    // A deposit while nobody works the network.
    const amount = ETH / 2n;
    const hash = await deposit(amount);
    await sleep(1000);
    const frozen = await state();
    // Until the survivor takes over, the cursor stands still: it respects the dead holder's lease.
    const taken = await waitFor(
      'the survivor to take the lease',
      async () => {
        const s = await state();
        if (s.holder === before_.holder) {
          assert.equal(s.block, frozen.block, 'nobody scans while the expired holder still has the lease');
          assert.equal(survivor.proc.exitCode, null, diagnostics());
          return undefined;
        }
        return s;
      },
      LEASE_TTL_MS + 30_000,
      250,
    );
    const tookMs = Date.now() - killedAt;
    t.diagnostic(`survivor took the lease ${tookMs} ms after SIGKILL`);
    assert.equal(holderPid(taken.holder!), survivor.pid);
    assert.ok(
      taken.acquired_at!.getTime() >= before_.expires_at!.getTime(),
      `taken over at ${taken.acquired_at!.toISOString()}, before the lease ran out at ${before_.expires_at!.toISOString()}`,
    );
    assert.ok(tookMs <= LEASE_TTL_MS + 15_000, `took over after ${tookMs} ms`);
    // The survivor catches up with the chain and goes on following it.
    const target = (await head()) + 2n;
    await waitFor(
      `the cursor to reach ${target}`,
      async () => ((await state()).block ?? 0n) >= target,
      60_000,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${diagnostics()}`);
    });
    await waitFor(
      'the deposit sent while nobody held the lease to be credited',
      async () =>
        (await db.db.selectFrom('deposits').select('status').where('tx_id', '=', hash).execute()).some(
          (d) => d.status === 'credited',
        ),
      60_000,
    );
    for (const d of deposits) await assertCreditedOnce(d.hash, d.amount);
    assert.deepEqual(await ethBalance(), { available: 3n * ETH + amount, pending: 0n });
    assert.equal(
      BigInt(await anvil.rpc<string>('eth_getBalance', [address, 'latest'])),
      3n * ETH + amount,
      'ledger = chain',
    );
    assert.equal((await state()).holder, taken.holder, 'still the survivor');
  });

  test('SIGTERM: the survivor exits 0 within 5 s and gives its lease up', async (t) => {
    const t0 = Date.now();
    survivor.proc.kill('SIGTERM');
    const exit = await waitExit(survivor.proc, 15_000).catch(() => 'timeout' as const);
    const ms = Date.now() - t0;
    t.diagnostic(`exited ${ms} ms after SIGTERM`);
    assert.notEqual(exit, 'timeout', `still running 15 s after SIGTERM\n${diagnostics()}`);
    assert.deepEqual(exit, { code: 0, signal: null }, diagnostics());
    assert.ok(ms < 5000, `exited after ${ms} ms`);
    assert.match(survivor.out(), /"msg":"stopped"/);
    const s = await state();
    assert.equal(s.holder, null, 'lease released on a clean stop');
    assert.ok(s.block !== null);
    // No pass failed in either replica, and the audit chain written by both replicas and this
    // process verifies.
    for (const r of replicas) {
      const errors = r
        .out()
        .split('\n')
        .filter((l) => /"level":(50|60)/.test(l));
      assert.deepEqual(errors, [], `pid ${r.pid} logged errors`);
    }
    const v = runCli(['audit', 'verify', '--json'], env, dir);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    const report = JSON.parse(v.stdout) as { ok: boolean; checked: number };
    assert.equal(report.ok, true);
    const entries = await sql<{ n: number }>`select count(*)::int as n from audit_log`.execute(db.db);
    assert.equal(report.checked, entries.rows[0]!.n, 'every audit entry verified');
    // bootstrap, vault, wallet, address, and one detected + one credited entry per deposit at least
    assert.ok(report.checked >= 4 + 2 * deposits.length, `audit entries checked: ${report.checked}`);
  });
});
