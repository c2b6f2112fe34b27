// A logger that writes JSON lines into memory, so tests can search everything that was logged.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log/logger.ts';

export function captureLogger(level: 'trace' | 'debug' | 'info' = 'trace'): {
  logger: Logger;
  text(): string;
} {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { logger: createLogger({ level, destination: stream }), text: () => chunks.join('') };
}
