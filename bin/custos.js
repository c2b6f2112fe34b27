#!/usr/bin/env node
// Entry point of the `custos` command: loads the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

// Ctrl-C while the CLI is still loading: nothing has been opened yet, so stopping is clean (exit 0).
// The CLI releases this as soon as it is loaded; commands install their own handlers after that.
const early = () => process.exit(0);
process.on('SIGINT', early);
process.on('SIGTERM', early);
globalThis.custosReleaseEarlySignals = () => {
  process.off('SIGINT', early);
  process.off('SIGTERM', early);
};

register();
await import('../src/cli/main.ts');
