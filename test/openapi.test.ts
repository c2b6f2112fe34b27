// The OpenAPI document of the full platform (as `custos dev` serves it) is complete: every route has
// a summary, typed success responses and documented path parameters, and every feature area is there.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { type DevHandle, startDev } from '../src/roles/dev.ts';
import { captureLogger } from './helpers/log-capture.ts';

type Op = {
  summary?: string;
  description?: string;
  'x-custos-permission'?: string;
  tags?: string[];
  parameters?: { in: string; name: string }[];
  requestBody?: unknown;
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  security?: unknown[];
};

let dev: DevHandle;
let doc: { openapi: string; paths: Record<string, Record<string, Op>>; components?: unknown };
const dir = mkdtempSync(join(tmpdir(), 'custos-openapi-'));

before(async () => {
  const config = loadConfig({ env: { CUSTOS_DATA_DIR: dir, CUSTOS_PORT: '0' }, cwd: '/nonexistent' });
  dev = await startDev(config, captureLogger('info').logger, { handleSignals: false });
  doc = (await (await fetch(`${dev.api}/docs/json`)).json()) as typeof doc;
});
after(async () => {
  await dev?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('OpenAPI 3.1 document describes every route completely', () => {
  assert.equal(doc.openapi, '3.1.0');
  const problems: string[] = [];
  let ops = 0;
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      if (path.startsWith('/docs')) continue;
      ops++;
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.summary) problems.push(`${where}: no summary`);
      if ((path.startsWith('/v1/') || path.startsWith('/.well-known/')) && !op['x-custos-permission'])
        problems.push(`${where}: no x-custos-permission`);
      const perm = op['x-custos-permission'];
      if (perm && perm !== 'public' && perm !== 'authenticated' && !op.description?.includes(`\`${perm}\``))
        problems.push(`${where}: the description does not name its permission`);
      const responses = Object.entries(op.responses ?? {});
      const ok = responses.filter(([code]) => code.startsWith('2'));
      if (ok.length === 0) problems.push(`${where}: no success response`);
      for (const [code, r] of ok) {
        if (code === '204') continue;
        if (!r.content) problems.push(`${where}: ${code} has no schema`);
      }
      for (const name of path.matchAll(/\{([^}]+)\}/g)) {
        if (!(op.parameters ?? []).some((p) => p.in === 'path' && p.name === name[1])) {
          problems.push(`${where}: path parameter ${name[1]} undocumented`);
        }
      }
    }
  }
  assert.ok(ops >= 20, `only ${ops} operations documented`);
  assert.deepEqual(problems, []);
});

test('the documented paths include every feature area', () => {
  const paths = Object.keys(doc.paths);
  for (const prefix of [
    '/healthz',
    '/readyz',
    '/v1/auth/login',
    '/v1/users',
    '/v1/api-keys',
    '/v1/audit',
    '/v1/security-events',
    '/v1/vaults',
    '/v1/keys',
    '/v1/wallets',
    '/v1/transactions',
  ]) {
    assert.ok(
      paths.some((p) => p === prefix || p.startsWith(`${prefix}/`)),
      `${prefix} missing from OpenAPI`,
    );
  }
});
