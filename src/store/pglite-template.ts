// A freshly initialised, empty PGlite cluster kept as a tar archive, so new embedded databases start
// from a copy instead of running initdb again (initdb in WebAssembly costs seconds of CPU; loading
// the copy well under one). The archive holds no data and no secrets — only what initdb writes — and
// is keyed by the PGlite version. It lives in node_modules/.cache/custos/ next to the installed
// packages (mode 0700), so it is exactly as trustworthy as the code that uses it. When the cache is
// not writable, or an archive does not load, databases are initialised the ordinary way.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';

const require = createRequire(import.meta.url);

let cached: Blob | null | undefined;

function pgliteVersion(): string {
  try {
    // The package's exports hide package.json: walk up from its entry point instead.
    let d = dirname(require.resolve('@electric-sql/pglite'));
    for (let i = 0; i < 4; i++, d = dirname(d)) {
      const f = join(d, 'package.json');
      if (!existsSync(f)) continue;
      const pkg = JSON.parse(readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@electric-sql/pglite' && pkg.version) return pkg.version;
    }
  } catch {
    // fall through
  }
  return 'unknown';
}

let overridePath: string | null = null;

/** Tests: keep the template somewhere else (null: back to the default). */
export function useTemplatePath(path: string | null): void {
  overridePath = path;
  cached = undefined;
}

/** <package root>/node_modules/.cache/custos/pglite-<version>-template.tar */
export function templatePath(): string {
  if (overridePath) return overridePath;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const version = pgliteVersion().replace(/[^0-9A-Za-z.-]/g, '_');
  return join(root, 'node_modules', '.cache', 'custos', `pglite-${version}-template.tar`);
}

/** The template archive, or null when there is none yet (or it cannot be read). */
export function loadTemplate(): Blob | null {
  if (cached !== undefined) return cached;
  const p = templatePath();
  try {
    if (!existsSync(p)) return null;
    const bytes = readFileSync(p);
    // A tar archive of a cluster is tens of MB with the ustar magic at offset 257; anything else is
    // a broken write or not ours, and is dropped rather than fed to the engine.
    if (bytes.length < 1_000_000 || bytes.subarray(257, 262).toString('latin1') !== 'ustar') {
      discardTemplate();
      return null;
    }
    cached = new Blob([bytes]);
    return cached;
  } catch {
    return null;
  }
}

/** Forgets a template that failed to load (and removes it, so the next start makes a new one). */
export function discardTemplate(): void {
  cached = null;
  try {
    rmSync(templatePath(), { force: true });
  } catch {
    // read-only cache: nothing to do
  }
}

/**
 * Saves `pglite` (a cluster that initdb just created, before anything else ran in it) as the
 * template. Best effort: an unwritable cache only costs speed.
 */
export async function saveTemplate(pglite: PGlite): Promise<void> {
  const p = templatePath();
  if (existsSync(p)) return;
  try {
    const blob = await pglite.dumpDataDir('none');
    const bytes = new Uint8Array(await blob.arrayBuffer());
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    // Several processes may race to write it: each writes its own temp file, the rename is atomic.
    const tmp = `${p}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, bytes, { mode: 0o600 });
    renameSync(tmp, p);
    cached = new Blob([bytes]);
  } catch {
    // no cache, no harm
  }
}
