// Plants canary secrets in requests, configuration and errors, logs them the careless way, and
// checks that none of them reaches the log output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildApp } from '../src/api/app.ts';
import { loadConfig } from '../src/config.ts';
import { CustosError } from '../src/errors.ts';
import { captureLogger } from './helpers/log-capture.ts';

const CANARIES = {
  bearer: 'CANARYbearer7f3a9c',
  cookie: 'CANARYcookie11b2e',
  apiKey: 'ck_live_CANARYapikey93f0',
  password: 'CANARYpassw0rd!x',
  share: 'CANARYshare0badc0de',
  nonce: 'CANARYnonce5e5e',
  dbPassword: 'CANARYdbpw77a',
  totp: 'CANARYtotpJBSWY3DP',
  queryToken: 'CANARYquerytok42',
  errorSecret: 'CANARYerrsecretZZ',
  refreshToken: 'crt_CANARYrefreshQ9',
  recoveryCode: 'CANARY-recov-77',
};

test('no canary secret reaches the logs', async () => {
  const { logger, text } = captureLogger('trace');

  // configuration: a database URL with a password, logged whole
  const config = loadConfig({
    env: { CUSTOS_DATABASE_URL: `postgres://custos:${CANARIES.dbPassword}@db.internal:5432/custos` },
    cwd: '/nonexistent',
  });
  logger.info({ config }, 'effective configuration');
  logger.info(`connecting to ${config.databaseUrl}`);
  logger.warn(`refresh with ${CANARIES.refreshToken} failed`);

  const app = await buildApp({
    logger,
    version: 't',
    readiness: [],
    routes: [
      async (a) => {
        a.post('/careless', async (req) => {
          // The careless things code does: log the whole body and the headers.
          req.log.info({ body: req.body, headers: req.headers }, 'got request');
          throw new CustosError('CUSTOS_INTERNAL', 'failed', {
            details: { password: CANARIES.password, apiKey: CANARIES.apiKey },
            cause: new Error(`upstream said secret=${CANARIES.errorSecret}`),
          });
        });
      },
    ],
  });
  const r = await app.inject({
    method: 'POST',
    url: `/careless?token=${CANARIES.queryToken}`,
    headers: {
      authorization: `Bearer ${CANARIES.bearer}`,
      cookie: `session=${CANARIES.cookie}`,
      'x-api-key': CANARIES.apiKey,
      'content-type': 'application/json',
    },
    payload: {
      user: 'alice',
      password: CANARIES.password,
      nested: { keyShare: CANARIES.share, deep: [{ secretNonce: CANARIES.nonce }] },
      totpSecret: CANARIES.totp,
      recoveryCodes: [CANARIES.recoveryCode],
    },
  });
  assert.equal(r.statusCode, 500);
  for (const [name, value] of Object.entries(CANARIES)) {
    assert.ok(!r.body.includes(value), `response leaks ${name}`);
  }
  await app.close();

  const out = text();
  assert.match(out, /got request/, 'the careless log line was written');
  assert.match(out, /alice/, 'non-secret fields are still logged');
  for (const [name, value] of Object.entries(CANARIES)) {
    assert.ok(!out.includes(value), `log leaks ${name}`);
  }
  // Base64/hex of a canary must not slip through either.
  assert.ok(!out.includes(Buffer.from(CANARIES.password).toString('base64')));
});
