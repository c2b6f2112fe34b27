// End-to-end withdrawals per second through the API on the in-memory test chain with three
// in-process MPC nodes (hot vault, no approvals, owner-signed policy): POST /v1/transactions →
// screening → signing by 2 of 3 nodes (each node runs the custody authorizer) → broadcast → blocks
// every 100 ms → confirmations (depth 2) → completed. Latency is request start → the row's
// `completed` time. The load generator keeps at most --inflight withdrawals uncompleted, so the
// figure is sustained throughput, not queueing.
// Run: node --import tsx bench/withdrawals.ts [--seconds 20] [--inflight 48] [--networks test,test-ed25519] [--wallets 1]
//      [--database-url postgres://…]  (PostgreSQL; default the embedded PGlite)
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { Kysely, sql } from 'kysely';
import { buildApp } from '../src/api/app.ts';
import { rateLimiterFrom, securityRoutes } from '../src/api/auth/index.ts';
import { custodyRoutes } from '../src/api/routes/custody/routes.ts';
import { loadConfig } from '../src/config.ts';
import { createCustody } from '../src/custody/runtime.ts';
import { TestChain } from '../src/custody/test-chain.ts';
import {
  generateApproverKey,
  signApproverProof,
  signWithApproverKey,
} from '../src/identity/approver-keys.ts';
import { permissionsOf } from '../src/identity/rbac.ts';
import { createSecurityServices } from '../src/identity/services.ts';
import { createLogger } from '../src/log/logger.ts';
import { custodyApprovalAuthorizer, MemoryOwnerTrust } from '../src/mpc/authorizers/custody-approvals.ts';
import { statementMessage } from '../src/mpc/authorizers/custody-evidence.ts';
import { startInProcessCluster } from '../src/mpc/local.ts';
import { createSharedState } from '../src/state/index.ts';
import { openDatabase } from '../src/store/database.ts';
import { PGliteDialect } from '../src/store/pglite-dialect.ts';
import type { Database } from '../src/store/schema.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? String(process.argv[i + 1]) : dflt;
};
const SECONDS = Number(arg('seconds', '20'));
const INFLIGHT = Number(arg('inflight', '48'));
/** Hot vaults (one wallet and source address each) the load is spread over; 1 = every withdrawal from one address. */
const WALLETS = Math.max(1, Number(arg('wallets', '1')));
const NETWORKS = arg('networks', 'test,test-ed25519').split(',');
/** PostgreSQL instead of PGlite (the database then runs outside this process, as in production). */
const DATABASE_URL = arg('database-url', '');
/** --query-log: print each statement's count per withdrawal (PGlite only). */
const QUERY_LOG = process.argv.includes('--query-log');
const queryLog = new Map<string, number>();

/** Wraps a Kysely instance so that every statement (builder or raw sql) and transaction is counted. */
function countQueries(base: Kysely<Database>) {
  const counts = { statements: 0, transactions: 0 };
  const db = base.withPlugin({
    transformQuery: (a) => {
      counts.statements++;
      return a.node;
    },
    transformResult: async (a) => a.result,
  });
  const transaction = db.transaction.bind(db);
  db.transaction = () => {
    counts.transactions++;
    return transaction();
  };
  return { db, counts };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : Number.NaN;
};

async function run(network: string) {
  const scheme = network === 'test-ed25519' ? 'eddsa-ed25519' : 'ecdsa-secp256k1';
  const dir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
  const dbSchema = `bench_${randomBytes(4).toString('hex')}`;
  const handle = DATABASE_URL
    ? await openDatabase({ databaseUrl: DATABASE_URL, schema: dbSchema, poolSize: 20 })
    : await openDatabase({});
  await handle.migrate();
  // Every statement and transaction the platform sends is counted (the bench's own poller is not).
  const counted = countQueries(
    QUERY_LOG && handle.pglite
      ? new Kysely<Database>({
          dialect: new PGliteDialect(handle.pglite),
          log: (e) => {
            const k = e.query.sql.replace(/\s+/g, ' ').slice(0, 160);
            queryLog.set(k, (queryLog.get(k) ?? 0) + 1);
          },
        })
      : handle.db,
  );
  const db = { db: counted.db };
  const config = loadConfig({
    env: {
      CUSTOS_ENV: 'test',
      CUSTOS_ARGON2_MEMORY_KIB: '1024',
      CUSTOS_ARGON2_TIME_COST: '1',
      CUSTOS_RATE_LIMIT_BURST: '1000000',
      CUSTOS_RATE_LIMIT_PER_MINUTE: '100000000',
      CUSTOS_LOG_LEVEL: 'error',
    },
    cwd: '/nonexistent',
  });
  const logger = createLogger({ level: 'error', format: 'json', destination: process.stderr });
  const state = await createSharedState({ keyPrefix: `b${randomUUID()}:` });
  const trust = new MemoryOwnerTrust();
  const cluster = await startInProcessCluster({
    dir,
    kdf: { memoryCost: 1024, timeCost: 1 },
    poolSize: 64,
    nodeOptions: () => {
      const mine = new TestChain({ network, scheme });
      return {
        authorizers: [
          custodyApprovalAuthorizer({ trust, chains: (n) => (n === network ? mine : undefined) }),
        ],
      };
    },
  });
  const chain = new TestChain({ network, scheme, blockTimeMs: 100 });
  const services = await createSecurityServices(config, db.db, logger, {
    keys: {
      identityKek: randomBytes(32),
      auditHmacKey: randomBytes(32),
      auditCheckpointKey: randomBytes(32),
      generated: [],
    },
  });
  const custody = await createCustody({
    db: db.db,
    audit: services.audit,
    coordinator: cluster.coordinator,
    chains: [chain],
    logger,
    watchIntervalMs: 50,
    serialDatabase: handle.pglite !== undefined,
  });
  const limiter = rateLimiterFrom(config, state, services);
  const app = await buildApp({
    logger,
    version: 'bench',
    readiness: [],
    routes: [...securityRoutes({ db: db.db, services, limiter }), custodyRoutes(custody)],
  });
  await app.ready();
  const b = await services.identity.bootstrap({
    orgName: `bench-${randomUUID().slice(0, 6)}`,
    email: 'o@bench.test',
  });
  const { token } = await services.tokens.issue({
    sub: b.user.id,
    org: b.org.id,
    role: 'owner',
    env: 'production',
    sid: randomUUID(),
    mfa: true,
  });
  void permissionsOf;
  const call = async (
    method: 'GET' | 'POST',
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const r = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, ...headers },
      ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
    });
    const j = r.json();
    if (r.statusCode >= 300) throw new Error(`${method} ${url}: ${r.statusCode} ${JSON.stringify(j)}`);
    return j;
  };
  const ownerKey = generateApproverKey();
  await call('POST', '/v1/approver-keys', {
    publicKey: ownerKey.publicKey,
    label: 'owner',
    proof: signApproverProof(ownerKey, b.org.id, b.user.id),
  });
  trust.trust(b.org.id, ownerKey.publicKey);
  const wallets: { id: string }[] = [];
  for (let i = 0; i < WALLETS; i++) {
    const vault = await call('POST', '/v1/vaults', { name: `hot-${i}`, tier: 'hot', schemes: [scheme] });
    await call('POST', `/v1/vaults/${vault.id}/policy-signature`, {
      publicKey: ownerKey.publicKey,
      signature: signWithApproverKey(ownerKey, statementMessage(vault.policy)),
    });
    const wallet = await call('POST', '/v1/wallets', { vaultId: vault.id, network });
    const addr = await call('POST', `/v1/wallets/${wallet.id}/addresses`, {});
    chain.faucet(addr.address, 'TST', 10n ** 15n);
    wallets.push(wallet);
  }
  await new Promise((r) => setTimeout(r, 600));
  await custody.tick();
  const dest = chain.deriveAddress(
    scheme === 'eddsa-ed25519'
      ? ed25519.getPublicKey(ed25519.utils.randomSecretKey())
      : secp256k1.getPublicKey(secp256k1.utils.randomSecretKey()),
  );
  // Let presignature pools fill before timing.
  await new Promise((r) => setTimeout(r, 3000));

  const started = new Map<string, number>();
  const latencies: number[] = [];
  let done = 0;
  let failed = 0;
  let lastDone = 0;
  const t0 = performance.now();
  const wallStart = Date.now();
  const until = t0 + SECONDS * 1000;
  let seq = 0;
  const q0 = { ...counted.counts };
  const cpu0 = process.cpuUsage();
  queryLog.clear();
  const poller = setInterval(async () => {
    const rows = await handle.db
      .selectFrom('transactions')
      .select(['id', 'state', 'updated_at'])
      .where('state', 'in', ['completed', 'failed'])
      .where('id', 'in', started.size ? [...started.keys()] : ['-'])
      .execute();
    for (const r of rows) {
      const s = started.get(r.id);
      if (s === undefined) continue;
      started.delete(r.id);
      if (r.state === 'completed') {
        done++;
        latencies.push(r.updated_at.getTime() - s);
        lastDone = performance.now();
      } else failed++;
    }
  }, 25);
  const worker = async () => {
    while (performance.now() < until) {
      if (started.size >= INFLIGHT) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const startWall = Date.now();
      const tx = await call(
        'POST',
        '/v1/transactions',
        { walletId: wallets[seq % WALLETS]!.id, asset: 'TST', destination: dest, amount: '1000' },
        { 'idempotency-key': `bench-${seq++}` },
      );
      started.set(tx.id, startWall);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const drainDeadline = performance.now() + 60_000;
  while (started.size > 0 && performance.now() < drainDeadline) await new Promise((r) => setTimeout(r, 50));
  clearInterval(poller);
  const q1 = { ...counted.counts };
  const cpu1 = process.cpuUsage(cpu0);
  if (QUERY_LOG) {
    process.stdout.write(`${network}: statements per completed withdrawal, by text\n`);
    for (const [k, n] of [...queryLog].sort((a, b) => b[1] - a[1]))
      process.stdout.write(`${(n / Math.max(1, done)).toFixed(2).padStart(7)}  ${k}\n`);
  }
  const elapsed = (lastDone - t0) / 1000;
  const rec = await call('GET', '/v1/reconciliation');
  // Where the time goes: p50 of each stage, from the audit entries of completed withdrawals.
  const audit = await db.db
    .selectFrom('audit_log')
    .select(['target_id', 'action', 'occurred_at'])
    .where('action', 'like', 'transaction.%')
    .orderBy('seq')
    .execute();
  const byTx = new Map<string, Map<string, number>>();
  for (const e of audit) {
    const m = byTx.get(e.target_id!) ?? new Map<string, number>();
    m.set(e.action.slice('transaction.'.length), e.occurred_at.getTime());
    byTx.set(e.target_id!, m);
  }
  const stages = [
    ['create', 'approved'],
    ['approved', 'signing'],
    ['signing', 'broadcast'],
    ['broadcast', 'confirming'],
    ['confirming', 'completed'],
  ] as const;
  const stageP50: Record<string, number> = {};
  for (const [a, z] of stages) {
    const xs = [...byTx.values()].filter((m) => m.has(a) && m.has(z)).map((m) => m.get(z)! - m.get(a)!);
    stageP50[`${a}→${z}`] = pct(xs, 50);
  }
  const result = {
    network,
    scheme,
    seconds: Number(elapsed.toFixed(2)),
    completed: done,
    failed,
    unfinished: started.size,
    withdrawalsPerSecond: Number((done / elapsed).toFixed(1)),
    latencyMs: { p50: pct(latencies, 50), p99: pct(latencies, 99), max: pct(latencies, 100) },
    stageP50Ms: stageP50,
    /** Process CPU time (user + system) per completed withdrawal while timing: less sensitive to other load than wall-clock rates. */
    cpuMsPerWithdrawal: Number(((cpu1.user + cpu1.system) / 1000 / Math.max(1, done)).toFixed(1)),
    /** Statements and transactions per completed withdrawal (everything the platform sent while timing). */
    perWithdrawal: {
      statements: Number(((q1.statements - q0.statements) / Math.max(1, done)).toFixed(1)),
      transactions: Number(((q1.transactions - q0.transactions) / Math.max(1, done)).toFixed(1)),
    },
    ledgerOk: rec.ledger.ok,
    reconciliationDifferences: rec.differences.length,
    database: DATABASE_URL ? 'postgres' : 'pglite',
    /** Other work on the machine distorts the figures: the 1-minute load average at the end. */
    loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
    startedAt: new Date(wallStart).toISOString(),
  };
  await custody.stop();
  chain.stop();
  services.stop();
  await app.close();
  await cluster.stop();
  await state.close();
  if (DATABASE_URL)
    await sql`drop schema if exists ${sql.raw(dbSchema)} cascade`.execute(db.db).catch(() => {});
  await handle.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

const results = [];
for (const n of NETWORKS) results.push(await run(n));
const lines = [
  `network        scheme           completed  failed  seconds  withdrawals/s  p50 ms  p99 ms  cpu ms/w  stmts/w  ledger  (load ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`,
  ...results.map(
    (r) =>
      `${r.network.padEnd(14)} ${r.scheme.padEnd(16)} ${String(r.completed).padStart(9)}  ${String(r.failed).padStart(6)}  ${String(r.seconds).padStart(7)}  ${String(r.withdrawalsPerSecond).padStart(13)}  ${String(r.latencyMs.p50).padStart(6)}  ${String(r.latencyMs.p99).padStart(6)}  ${String(r.cpuMsPerWithdrawal).padStart(8)}  ${String(r.perWithdrawal.statements).padStart(7)}  ${r.ledgerOk && r.reconciliationDifferences === 0 ? 'ok' : 'DIFF'}`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
for (const r of results)
  process.stdout.write(`${r.network} stage p50 (ms): ${JSON.stringify(r.stageP50Ms)}\n`);
mkdirSync('bench/results', { recursive: true });
// One file per database: withdrawals.json (PGlite, the default) and withdrawals-postgres.json.
writeFileSync(
  DATABASE_URL ? 'bench/results/withdrawals-postgres.json' : 'bench/results/withdrawals.json',
  `${JSON.stringify(
    {
      benchmark: 'withdrawals',
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      goalPerSecond: 50,
      notes:
        'End to end through the API (app.inject), 3 in-process MPC nodes (2-of-3) on the in-process bus, hot vault, test chain with 100 ms blocks and confirmation depth 2; latency = request start → completed.',
      settings: { seconds: SECONDS, maxInflight: INFLIGHT, wallets: WALLETS },
      results,
    },
    null,
    2,
  )}\n`,
);
process.exit(0);
