#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with Node's built-in runner (TypeScript through tsx).
// Node 20 has no glob support in `--test`, so the file list is collected here.
// Usage: node scripts/test.mjs [path-filter ...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function collect(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const FIRST = ['test/dev-process.test.ts'];
const filters = process.argv.slice(2);
const files = [...collect('src', []), ...collect('test', [])]
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
  // Files that time a whole process start-up go first, before the machine is busy with the rest.
  .sort((a, b) => Number(FIRST.some((x) => b.includes(x))) - Number(FIRST.some((x) => a.includes(x))));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.CUSTOS_TEST_CONCURRENCY ?? '2';
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
