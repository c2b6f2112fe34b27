// Runs the real `custos` command as a child process.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CUSTOS_BIN = fileURLToPath(new URL('../../bin/custos.js', import.meta.url));

/** Environment without any CUSTOS_* variable of the developer's shell or CI. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CUSTOS_')) env[k] = v;
  return { ...env, CUSTOS_LOG_FORMAT: 'json', ...extra };
}

export function runCli(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const r = spawnSync(process.execPath, [CUSTOS_BIN, ...args], {
    env: cleanEnv(env),
    encoding: 'utf8',
    timeout: 120_000,
    ...(cwd ? { cwd } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function spawnCli(args: string[], env: Record<string, string> = {}, cwd?: string): ChildProcess {
  return spawn(process.execPath, [CUSTOS_BIN, ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
}

/**
 * The child's exit. A child that has not exited within `timeoutMs` is killed and the promise
 * rejects, so a hang fails the test that caused it instead of the whole file's timeout.
 */
export function waitExit(
  p: ChildProcess,
  timeoutMs = 60_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (p.exitCode !== null || p.signalCode !== null) {
      resolve({ code: p.exitCode, signal: p.signalCode });
      return;
    }
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`process ${p.pid} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/**
 * `runCli` without blocking this process: for tests whose in-process MPC nodes, servers or timers
 * must keep running while the child works.
 */
export async function runCliAsync(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d) => {
    stdout += String(d);
  });
  p.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  const { code } = await waitExit(p, timeoutMs);
  return { code, stdout, stderr };
}

/**
 * Starts a long-running `custos` command and resolves once its output contains `marker` (e.g. a
 * node's `"event":"ready"` line); a child that exits or takes longer than `timeoutMs` is killed
 * and the promise rejects with what it printed.
 */
export async function spawnCliUntil(
  args: string[],
  env: Record<string, string>,
  marker: string,
  timeoutMs = 60_000,
): Promise<{ proc: ChildProcess; output: () => string }> {
  const p = spawnCli(args, env);
  let out = '';
  p.stdout!.on('data', (d) => {
    out += d;
  });
  p.stderr!.on('data', (d) => {
    out += d;
  });
  const end = Date.now() + timeoutMs;
  while (!out.includes(marker)) {
    if (p.exitCode !== null || Date.now() > end) {
      p.kill('SIGKILL');
      throw new Error(`custos ${args.slice(0, 2).join(' ')} did not print ${marker}: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { proc: p, output: () => out };
}
