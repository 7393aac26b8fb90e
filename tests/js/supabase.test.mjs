// supabase-js and functions-js (pinned in package.json) against a real aerofn
// binary, started by internal/e2e/js_test.go, which passes AEROFN_URL,
// AEROFN_ANON_KEY and AEROFN_SERVICE_KEY and has deployed:
//   http-api  examples/http-api (verify_jwt on)
//   postonly  the same module with "methods": ["POST"]
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, FunctionsHttpError, FunctionsRelayError } from '@supabase/supabase-js';
import { FunctionsClient, FunctionsRelayError as FnRelayError } from '@supabase/functions-js';
import ws from 'ws';

const url = process.env.AEROFN_URL;
const anonKey = process.env.AEROFN_ANON_KEY;
const serviceKey = process.env.AEROFN_SERVICE_KEY;
assert.ok(url && anonKey && serviceKey, 'AEROFN_URL, AEROFN_ANON_KEY and AEROFN_SERVICE_KEY must be set');

// Node 20 has no WebSocket of its own; supabase-js's realtime client wants one
// at construction (unused here).
const opts = { auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false }, realtime: { transport: ws } };
const anon = createClient(url, anonKey, opts);
const service = createClient(url, serviceKey, opts);

test('JSON body, every query value, headers passed through', async () => {
  const { data, error, response } = await anon.functions.invoke('http-api/echo?x=1&x=2', {
    body: { name: 'Ada', n: [1, 2] },
    headers: { 'x-custom': 'from-node' },
  });
  assert.equal(error, null);
  assert.equal(data.method, 'POST');
  assert.equal(data.path, '/echo');
  assert.deepEqual(data.body, { name: 'Ada', n: [1, 2] });
  assert.deepEqual(data.query.x, ['1', '2']);
  assert.equal(data.headers['x-custom'], 'from-node');
  assert.ok(data.headers['x-client-info'], 'supabase-js x-client-info reaches the function');
  assert.equal(data.headers.authorization, undefined, 'credentials never reach the function');
  assert.equal(data.headers.apikey, undefined);
  assert.equal(data.role, 'anon');
  assert.equal(response.headers.get('x-echo'), 'from-node');
  assert.match(response.headers.get('x-request-id'), /.+/);
});

test('text body both ways', async () => {
  const { data, error, response } = await anon.functions.invoke('http-api/text', { body: 'plain words' });
  assert.equal(error, null);
  assert.equal(data, 'you sent: plain words');
  assert.match(response.headers.get('content-type'), /^text\/plain/);
});

test('binary body both ways', async () => {
  const sent = new Uint8Array([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x00]);
  const { data, error, response } = await anon.functions.invoke('http-api/binary', { body: sent.buffer });
  assert.equal(error, null);
  assert.equal(response.headers.get('content-type'), 'application/octet-stream');
  const got = new Uint8Array(await data.arrayBuffer());
  assert.deepEqual([...got], [...sent].reverse());
});

test('GET, PUT and DELETE on a sub-path', async () => {
  let r = await anon.functions.invoke('http-api/users/7', { method: 'GET' });
  assert.equal(r.error, null);
  assert.deepEqual(r.data, { id: '7', method: 'GET' });

  r = await anon.functions.invoke('http-api/users/7', { method: 'PUT', body: { name: 'Grace' } });
  assert.equal(r.error, null);
  assert.deepEqual(r.data, { id: '7', method: 'PUT', body: { name: 'Grace' } });

  r = await anon.functions.invoke('http-api/users/7', { method: 'DELETE' });
  assert.equal(r.error, null);
  assert.equal(r.response.status, 204);
});

test('several Set-Cookie headers', async () => {
  const { error, response } = await anon.functions.invoke('http-api/cookies', { method: 'GET' });
  assert.equal(error, null);
  assert.deepEqual(response.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/']);
});

test("a 4xx the function returns is the function's error, not a relay error", async () => {
  const { data, error } = await anon.functions.invoke('http-api/no/such/route', { method: 'GET' });
  assert.equal(data, null);
  assert.ok(error instanceof FunctionsHttpError, `got ${error?.name}`);
  assert.equal(error.context.status, 404);
  assert.equal(error.context.headers.get('x-relay-error'), null);
  assert.deepEqual(await error.context.json(), { error: 'no route for GET /no/such/route' });
});

test("aerofn's own errors are relay errors with a readable message", async () => {
  // 404: no such function.
  let { error } = await anon.functions.invoke('nosuch', { body: {} });
  assert.ok(error instanceof FunctionsRelayError, `got ${error?.name}`);
  assert.equal(error.context.status, 404);
  let body = await error.context.json();
  assert.equal(body.code, 'not_found');
  assert.match(body.error, /nosuch/);

  // 405: the function allows only POST.
  ({ error } = await anon.functions.invoke('postonly', { method: 'GET' }));
  assert.ok(error instanceof FunctionsRelayError, `got ${error?.name}`);
  assert.equal(error.context.status, 405);
  body = await error.context.json();
  assert.equal(body.code, 'method_not_allowed');
  assert.match(body.error, /GET is not allowed/);

  // 401 through functions-js itself, with a bad token.
  const fc = new FunctionsClient(`${url}/functions/v1`, { headers: { Authorization: 'Bearer not-a-token' } });
  ({ error } = await fc.invoke('http-api', { body: {} }));
  assert.ok(error instanceof FnRelayError, `got ${error?.name}`);
  assert.equal(error.context.status, 401);
  assert.equal((await error.context.json()).code, 'invalid_token');
});

test('functions-js on its own', async () => {
  const fc = new FunctionsClient(`${url}/functions/v1`, { headers: { Authorization: `Bearer ${anonKey}` } });
  const { data, error } = await fc.invoke('http-api/users/42', { method: 'GET' });
  assert.equal(error, null);
  assert.deepEqual(data, { id: '42', method: 'GET' });
});

test('no management action is reachable through functions.invoke', async () => {
  const admin = async (path, init = {}) =>
    fetch(`${url}/admin/v1/functions/${path}`, { ...init, headers: { Authorization: `Bearer ${serviceKey}`, ...(init.headers || {}) } });
  const before = await (await admin('http-api')).json();

  // With the service-role key, every method on the function's path invokes it.
  for (const method of ['GET', 'PATCH', 'DELETE', 'PUT']) {
    const body = method === 'GET' ? undefined : { enabled: false, config: { timeout: 1 } };
    const { data, error } = await service.functions.invoke('http-api', { method, body });
    assert.equal(error, null, `${method}: ${error}`);
    assert.equal(data.method, method);
    assert.equal(data.role, 'service_role');
  }
  for (const sub of ['versions', 'logs', 'stats', 'rollback', 'events', 'runs', 'run']) {
    const { error } = await service.functions.invoke(`http-api/${sub}`, { method: 'POST', body: { version: 1 } });
    assert.ok(error instanceof FunctionsHttpError, `${sub}: the function answers, got ${error?.name}`);
    assert.equal(error.context.status, 404);
  }

  // The function still exists, enabled, unchanged.
  const res = await admin('http-api');
  assert.equal(res.status, 200);
  const after = await res.json();
  assert.equal(after.enabled, true);
  assert.equal(after.version, before.version);
  assert.deepEqual(after.config, before.config);
});
