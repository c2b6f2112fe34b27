// MPC cluster benchmark over NATS on loopback with three `custos mpc-node` processes on this machine:
// warm-pool sign latency p50/p99 for 2-of-3 ECDSA (DKLs23) and Ed25519 (FROST) as the coordinator
// sees it (request → verified signature), and sustained signatures/s with concurrent requests.
// Run: node --import tsx bench/mpc-cluster.ts
// Env: CUSTOS_BENCH_NATS_URL (default CUSTOS_TEST_NATS_URL or nats://127.0.0.1:4222),
//      CUSTOS_BENCH_DURATION_S (sustained phase per scheme, default 60), CUSTOS_BENCH_SIGS (latency
//      samples, default 180, at most 3/4 of the pool), CUSTOS_BENCH_CONCURRENCY (default 8), CUSTOS_BENCH_POOL (default 256).
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createBus } from '../src/bus/index.ts';
import type { MpcCoordinator } from '../src/mpc/client.ts';
import { createLocalCluster } from '../src/mpc/cluster.ts';
import { openCoordinator } from '../src/mpc/local.ts';

const NATS =
  process.env['CUSTOS_BENCH_NATS_URL'] ?? process.env['CUSTOS_TEST_NATS_URL'] ?? 'nats://127.0.0.1:4222';
const DURATION_S = Number(process.env['CUSTOS_BENCH_DURATION_S'] ?? 60);
const SIGS = Number(process.env['CUSTOS_BENCH_SIGS'] ?? 180);
const CONCURRENCY = Number(process.env['CUSTOS_BENCH_CONCURRENCY'] ?? 8);
const POOL = Number(process.env['CUSTOS_BENCH_POOL'] ?? 256);
const BIN = fileURLToPath(new URL('../bin/custos.js', import.meta.url));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const r2 = (x: number) => Math.round(x * 100) / 100;
const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const log = (s: string) => process.stdout.write(`${s}\n`);

function startNode(clusterFile: string, id: number): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CUSTOS_')) env[k] = v;
  const p = spawn(
    process.execPath,
    [BIN, 'mpc-node', 'start', '--id', String(id), '--cluster', clusterFile],
    {
      env: { ...env, CUSTOS_NATS_URL: NATS, CUSTOS_LOG_LEVEL: 'warn', CUSTOS_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('"event":"ready"')) resolve(p);
    });
    p.once('exit', (code) => reject(new Error(`node ${id} exited with ${code}`)));
  });
}

async function waitPool(
  c: MpcCoordinator,
  keyId: string,
  set: string,
  leaders: number[],
  size: number,
): Promise<void> {
  const end = Date.now() + 600_000;
  for (;;) {
    const hb = c.heartbeats();
    const sizes = leaders.map((id) => hb.get(id)?.pools[keyId]?.[set] ?? 0);
    if (sizes.every((s) => s >= size)) return;
    if (Date.now() > end) throw new Error(`pool did not fill: ${sizes.join(',')}`);
    await sleep(250);
  }
}

async function latency(c: MpcCoordinator, keyId: string, ecdsa: boolean, n: number) {
  const times: number[] = [];
  const sources: Record<string, number> = {};
  const phases: Record<string, number[]> = {};
  for (let i = 0; i < n; i++) {
    const msg = ecdsa ? sha256(randomBytes(32)) : randomBytes(32);
    const t = performance.now();
    const s = await c.sign(keyId, msg);
    times.push(performance.now() - t);
    const src = s.presignature ?? 'none';
    sources[src] = (sources[src] ?? 0) + 1;
    for (const [k, v] of Object.entries(s.nodePhasesMs ?? {})) {
      phases[k] = [...(phases[k] ?? []), v];
    }
  }
  return {
    p50: r2(pct(times, 50)),
    p99: r2(pct(times, 99)),
    mean: r2(times.reduce((a, b) => a + b, 0) / n),
    sources,
    nodePhasesP50Ms: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, r2(pct(v, 50))])),
  };
}

/** CPU seconds (user + system) used so far by the node processes and this process. */
function cpuSeconds(): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const p of procs) {
    try {
      const f = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / tick;
    } catch {
      // not Linux, or the process is gone
    }
  }
  const u = process.cpuUsage();
  return total + (u.user + u.system) / 1e6;
}

async function sustained(c: MpcCoordinator, keyId: string, ecdsa: boolean, seconds: number) {
  const cpu0 = cpuSeconds();
  const end = performance.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  const times: number[] = [];
  const sources: Record<string, number> = {};
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const msg = ecdsa ? sha256(randomBytes(32)) : randomBytes(32);
        const t = performance.now();
        try {
          const s = await c.sign(keyId, msg);
          ok++;
          times.push(performance.now() - t);
          const src = s.presignature ?? 'none';
          sources[src] = (sources[src] ?? 0) + 1;
        } catch {
          failed++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const cpuMsPerSignature = ok > 0 ? r2(((cpuSeconds() - cpu0) * 1000) / ok) : Number.NaN;
  return {
    seconds: r2(elapsed),
    // All processes of the cluster (3 nodes + coordinator): CPU per signature, including presigning,
    // and the rate that would allow on the idle cores of this machine.
    cpuMsPerSignature,
    cpuBoundPerSecond: r2((cpus().length * 1000) / cpuMsPerSignature),
    concurrency: CONCURRENCY,
    signatures: ok,
    failed,
    perSecond: r2(ok / elapsed),
    p50: r2(pct(times, 50)),
    p99: r2(pct(times, 99)),
    sources,
  };
}

const LOAD_START = r2(loadavg()[0]!);
const dir = mkdtempSync(join(tmpdir(), 'custos-bench-mpc-'));
const procs: ChildProcess[] = [];
try {
  const cluster = await createLocalCluster({
    dir,
    nodes: 3,
    threshold: 2,
    poolSize: POOL,
    // Refill below a quarter: the latency phase (SIGS < 3/4 of the pool) then measures a warm pool
    // without presigning alongside; the sustained phase includes the refill cost.
    poolLowWater: 0.25,
    namespace: `bench${randomBytes(4).toString('hex')}`,
  });
  for (const id of [1, 2, 3]) procs.push(await startNode(cluster.path!, id));
  const bus = await createBus({ natsUrl: NATS, name: 'custos-bench-mpc' });
  const c = openCoordinator({ cluster, bus });
  await c.start();
  await sleep(1500);

  log(
    `nodes up; NATS ${NATS}; ${cpus().length} CPUs; pool ${POOL}; sustained ${DURATION_S} s x2 at concurrency ${CONCURRENCY}`,
  );
  const ed = await c.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
  await latency(c, ed.keyId, false, 20); // warm-up (JIT, connections)
  const edLat = await latency(c, ed.keyId, false, SIGS);
  log(`ed25519 latency p50 ${edLat.p50} ms p99 ${edLat.p99} ms`);

  let t = performance.now();
  const ec = await c.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
  const dkgMs = r2(performance.now() - t);
  t = performance.now();
  await waitPool(c, ec.keyId, '1-2', [1, 2], POOL);
  const fillS = (performance.now() - t) / 1000;
  const presignsPerSecond = r2(POOL / fillS);
  await sleep(500);
  log(`ecdsa keygen ${dkgMs} ms; pool filled at ${presignsPerSecond} presignatures/s`);
  await latency(c, ec.keyId, true, 20); // warm-up
  const ecLat = await latency(c, ec.keyId, true, SIGS);
  log(
    `ecdsa warm-pool latency p50 ${ecLat.p50} ms p99 ${ecLat.p99} ms (${JSON.stringify(ecLat.sources)}; node phases p50 ${JSON.stringify(ecLat.nodePhasesP50Ms)})`,
  );

  // Refill starts below the low-water mark only (hysteresis): drain to it if the latency phase did
  // not, so the sustained phase starts from a full pool whatever CUSTOS_BENCH_SIGS was.
  for (;;) {
    const hb = c.heartbeats();
    const ready = Math.min(...[1, 2].map((id) => hb.get(id)?.pools[ec.keyId]?.['1-2'] ?? 0));
    if (ready < POOL * 0.25) break;
    await c.sign(ec.keyId, sha256(randomBytes(32)));
  }
  await waitPool(c, ec.keyId, '1-2', [1, 2], POOL);
  const ecSus = await sustained(c, ec.keyId, true, DURATION_S);
  log(
    `ecdsa sustained ${ecSus.perSecond} sig/s (${JSON.stringify(ecSus.sources)}; ${ecSus.cpuMsPerSignature} CPU ms/signature → ${ecSus.cpuBoundPerSecond}/s on ${cpus().length} idle cores)`,
  );
  const edSus = await sustained(c, ed.keyId, false, DURATION_S);
  log(
    `ed25519 sustained ${edSus.perSecond} sig/s (${edSus.cpuMsPerSignature} CPU ms/signature → ${edSus.cpuBoundPerSecond}/s on ${cpus().length} idle cores)`,
  );

  const rows = [
    [
      '2-of-3 ECDSA (DKLs23)',
      ecLat.p50,
      ecLat.p99,
      ecSus.perSecond,
      ecSus.p50,
      ecSus.p99,
      '<= 15 ms, >= 50/s',
    ],
    ['2-of-3 Ed25519 (FROST)', edLat.p50, edLat.p99, edSus.perSecond, edSus.p50, edSus.p99, '<= 30 ms'],
  ];
  log('');
  log('| key | sign p50 (ms) | sign p99 (ms) | sustained sig/s | p50 under load | p99 under load | goal |');
  log('|---|---|---|---|---|---|---|');
  for (const r of rows) log(`| ${r.join(' | ')} |`);

  const result = {
    bench: 'mpc-cluster',
    node: process.version,
    cpus: cpus().length,
    // Other work on the machine skews every figure; recorded at the start and the end of the run.
    loadAverage1m: { start: LOAD_START, end: r2(loadavg()[0]!) },
    date: new Date().toISOString(),
    setup:
      'three custos mpc-node processes + the coordinator in the bench process, NATS on loopback; latency = coordinator request to verified signature, sequential',
    params: { signatures: SIGS, sustainedSeconds: DURATION_S, concurrency: CONCURRENCY, poolSize: POOL },
    goals: { ecdsaP50Ms: 15, ecdsaPerSecond: 50, ed25519P50Ms: 30 },
    ecdsa: {
      keygenMs: dkgMs,
      presignaturesPerSecondFill: presignsPerSecond,
      latency: ecLat,
      sustained: ecSus,
    },
    ed25519: { latency: edLat, sustained: edSus },
    anchor:
      'fystack/mpcium (Go, tss-lib): ECDSA 434 ms - 1.81 s per signing, ~267/min; EdDSA 164-590 ms, ~900/min',
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/mpc-cluster.json', `${JSON.stringify(result, null, 2)}\n`);
  log('\nwrote bench/results/mpc-cluster.json');
  await c.stop();
  await bus.close();
} finally {
  for (const p of procs) p.kill('SIGTERM');
  await sleep(500);
  rmSync(dir, { recursive: true, force: true });
}
