import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openDatabase } from './database.ts';
import { loadTemplate, templatePath, useTemplatePath } from './pglite-template.ts';

describe('PGlite initdb template', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-tpl-'));
  const tpl = join(dir, 'cache', 'template.tar');
  useTemplatePath(tpl);
  after(() => {
    useTemplatePath(null);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the first new cluster leaves a template (0600, in a 0700 folder); the next starts from it', async () => {
    assert.equal(templatePath(), tpl);
    assert.equal(loadTemplate(), null);
    const a = await openDatabase({ pgliteDir: join(dir, 'a') });
    await a.close();
    assert.ok(existsSync(tpl), 'template written');
    assert.equal(statSync(tpl).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'cache')).mode & 0o777, 0o700);
    const b = await openDatabase({ pgliteDir: join(dir, 'b') });
    await b.migrate();
    await b.db.insertInto('custos_instance').values({ id: 1, instance_id: 'from-template' }).execute();
    await b.close();
    // the copy is a cluster of its own: data written to b is in b only, and survives a reopen
    const b2 = await openDatabase({ pgliteDir: join(dir, 'b') });
    const row = await b2.db.selectFrom('custos_instance').selectAll().executeTakeFirst();
    assert.equal(row?.instance_id, 'from-template');
    await b2.close();
    const m = await openDatabase({});
    assert.equal((await m.migrate()).applied.length > 0, true, 'in-memory copy starts empty');
    await m.close();
  });

  test('a template that does not load is discarded and the database is initialised normally', async () => {
    useTemplatePath(tpl); // forget the in-process copy
    writeFileSync(tpl, Buffer.alloc(2_000_000, 7), { mode: 0o600 });
    const c = await openDatabase({ pgliteDir: join(dir, 'c') });
    assert.equal((await c.migrate()).applied.length > 0, true);
    await c.close();
    assert.ok(!existsSync(tpl) || statSync(tpl).size !== 2_000_000, 'the broken template is gone');
  });
});
