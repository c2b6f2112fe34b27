// Regenerates docs/errors.md from the ERROR_CODES table (the test errors-doc.test.ts fails when the
// two disagree). Run: node --import tsx scripts/gen-docs.ts
import { writeFileSync } from 'node:fs';
import { renderErrorsDoc } from '../src/errors-doc.ts';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
console.log('wrote docs/errors.md');
