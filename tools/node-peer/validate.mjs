// The bench's peer: POST /validations written the way a Node.js 20 Lambda usually is, so that
// `cargo xtask bench` can show what a user would otherwise deploy next to ours. Same work as
// our validate: the JWT verified against the issuer's JWKS (jose), one SELECT over one
// connection kept per instance (pg, a prepared statement), the same JSON answer.
//
// AWS's managed nodejs20.x runtime polls the Lambda Runtime API with its own runtime interface
// client; that client cannot be installed offline here, so the loop at the end of this file
// does its job over node's http module. It does less than AWS's client (no context object, no
// X-Ray header, no log formatting), so it flatters the peer, if anything.

import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import pg from 'pg';

const env = process.env;
const verifyKey = env.AUTH_HS256_SECRET
  ? new TextEncoder().encode(env.AUTH_HS256_SECRET)
  : createRemoteJWKSet(new URL(env.AUTH_JWKS_URL));
const verifyOptions = {
  issuer: env.AUTH_ISSUER,
  audience: env.AUTH_AUDIENCE,
  algorithms: env.AUTH_HS256_SECRET ? ['HS256'] : ['ES256', 'RS256'],
  requiredClaims: ['exp', 'iss', 'aud', 'sub'],
  clockTolerance: 30,
};

// The caller's guess budget and the code, in one round trip: our validate's query.
const LOOKUP = {
  name: 'validate',
  text: `SELECT g.used, now() AS db_now, code, discount_bp, expires_at, active, max_redemptions, times_redeemed
         FROM (SELECT 1) AS one
         LEFT JOIN (SELECT used FROM guess_budgets
                    WHERE caller = $1 AND window_start > clock_timestamp() - make_interval(secs => $2)) AS g ON true
         LEFT JOIN promo_codes ON code = $3 AND owner = $1`,
};
const GUESS_MAX = 20;
const GUESS_WINDOW_SECS = 60;

const client = new pg.Client({ connectionString: env.DATABASE_URL });
let connecting;
function database() {
  connecting ??= client.connect().then(() => client);
  return connecting;
}

function answer(statusCode, body) {
  return {
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

function failure(statusCode, code, message) {
  return answer(statusCode, { error: { code, message, param: null, request_id: null } });
}

export async function handler(event) {
  const headers = event.headers ?? {};
  const authorization = headers.Authorization ?? headers.authorization ?? '';
  if (!authorization.startsWith('Bearer ')) return failure(401, 'unauthorized', 'missing bearer token');
  let sub;
  try {
    ({ payload: { sub } } = await jwtVerify(authorization.slice(7), verifyKey, verifyOptions));
  } catch {
    return failure(401, 'unauthorized', 'invalid token');
  }
  let code;
  try {
    ({ code } = JSON.parse(event.body ?? ''));
  } catch {
    return failure(400, 'malformed_request', 'the body is not JSON');
  }
  if (typeof code !== 'string') return failure(422, 'validation_failed', 'code must be a string');
  const db = await database();
  const { rows: [row] } = await db.query({ ...LOOKUP, values: [sub, GUESS_WINDOW_SECS, code] });
  if (row.used !== null && row.used >= GUESS_MAX) return failure(429, 'rate_limited', 'too many guesses');
  let reason = null;
  if (row.code === null) reason = 'not_found';
  else if (row.expires_at <= row.db_now) reason = 'expired';
  else if (!row.active) reason = 'inactive';
  else if (row.max_redemptions !== null && row.times_redeemed >= row.max_redemptions) reason = 'exhausted';
  if (reason) return answer(200, { valid: false, code, reason });
  return answer(200, {
    valid: true,
    code,
    discount_percentage: row.discount_bp / 100,
    expires_at: row.expires_at.toISOString().replace('.000Z', 'Z'),
  });
}

// The runtime loop: next invocation, handler, response; forever.
const api = env.AWS_LAMBDA_RUNTIME_API;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: api.split(':')[0], port: api.split(':')[1], method, path, agent }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks).toString() }));
    });
    request.on('error', reject);
    if (body !== undefined) {
      request.setHeader('content-type', 'application/json');
      request.end(body);
    } else {
      request.end();
    }
  });
}

for (;;) {
  const next = await call('GET', '/2018-06-01/runtime/invocation/next');
  const id = next.headers['lambda-runtime-aws-request-id'];
  try {
    const result = await handler(JSON.parse(next.body));
    await call('POST', `/2018-06-01/runtime/invocation/${id}/response`, JSON.stringify(result));
  } catch (error) {
    const report = JSON.stringify({ errorType: error?.name ?? 'Error', errorMessage: String(error?.message ?? error) });
    await call('POST', `/2018-06-01/runtime/invocation/${id}/error`, report);
  }
}
