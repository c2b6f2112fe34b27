// docs/errors.md lists every error code of the code base, with its status, and nothing else.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ENV_VARS, isToolVariable } from '../src/config.ts';
import { ERROR_CODES } from '../src/errors.ts';
import { renderErrorsDoc } from '../src/errors-doc.ts';

function sources(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (n.endsWith('.ts') && !n.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

test('docs/errors.md is up to date with ERROR_CODES', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  assert.equal(doc, renderErrorsDoc(), 'run: node --import tsx scripts/gen-docs.ts');
  for (const code of Object.keys(ERROR_CODES)) assert.ok(doc.includes(`\`${code}\``), code);
});

test('every CUSTOS_* error code used in src/ is registered', () => {
  const used = new Set<string>();
  for (const f of sources('src')) {
    for (const m of readFileSync(f, 'utf8').matchAll(/['"](CUSTOS_[A-Z0-9_]+)['"]/g)) used.add(m[1]!);
  }
  // Environment variable names and code prefixes ('CUSTOS_MPC_') share the prefix; they are not codes.
  const envVars = new Set<string>(Object.values(ENV_VARS));
  const unknown = [...used].filter(
    (c) =>
      !(c in ERROR_CODES) &&
      !envVars.has(c) &&
      !isToolVariable(c) &&
      c !== 'CUSTOS_CONFIG_FILE' &&
      !c.endsWith('_'),
  );
  assert.deepEqual(unknown, []);
});
