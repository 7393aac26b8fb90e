// supabase-js in headless Chromium (Debian's chromium package, driven by
// playwright-core). internal/e2e/js_test.go starts aerofn with
// AEROFN_CORS_ORIGINS set to PAGE_ALLOWED only and serves the same page
// (page/index.html plus supabase-js's UMD build) from two other loopback
// ports: PAGE_ALLOWED and PAGE_FOREIGN.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { AEROFN_URL: url, AEROFN_ANON_KEY: anonKey, PAGE_ALLOWED: allowed, PAGE_FOREIGN: foreign } = process.env;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
assert.ok(url && anonKey && allowed && foreign, 'AEROFN_URL, AEROFN_ANON_KEY, PAGE_ALLOWED and PAGE_FOREIGN must be set');

let context;
let profile;
before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'aerofn-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
});

// call loads the page from origin and returns what its supabase-js call gave.
async function call(origin, fn, invokeOptions) {
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  const preflights = [];
  page.on('request', (r) => { if (r.method() === 'OPTIONS') preflights.push(r.url()); });
  try {
    await page.goto(`${origin}/`);
    const result = await page.evaluate(
      ([url, key, fn, opts]) => window.callFunction(url, key, fn, opts),
      [url, anonKey, fn, invokeOptions],
    );
    return { ...result, consoleLines, pageOrigin: await page.evaluate(() => location.origin) };
  } finally {
    await page.close();
  }
}

test('a page on an allowed origin calls a JWT-protected function with the anon key', async () => {
  const r = await call(allowed, 'http-api/echo?from=browser', { body: { hello: 'from chromium' }, headers: { 'x-custom': 'b' } });
  assert.equal(r.pageOrigin, allowed);
  assert.notEqual(new URL(allowed).port, new URL(url).port, 'the page is cross-origin');
  assert.equal(r.error, null, JSON.stringify(r));
  assert.equal(r.status, 200);
  assert.deepEqual(r.data.body, { hello: 'from chromium' });
  assert.equal(r.data.role, 'anon');
  assert.equal(r.data.headers.origin, allowed);
  assert.equal(r.data.query.from, 'browser');
  assert.match(r.requestId, /.+/, 'X-Request-Id is exposed to the page');
});

test('other methods and a binary body from the browser', async () => {
  let r = await call(allowed, 'http-api/users/9', { method: 'DELETE' });
  assert.equal(r.error, null, JSON.stringify(r));
  assert.equal(r.status, 204);
  r = await call(allowed, 'http-api/binary', { bytes: [1, 2, 3, 255] });
  assert.equal(r.error, null, JSON.stringify(r));
  assert.deepEqual(r.bytes, [255, 3, 2, 1]);
});

test("aerofn's own error reaches the page as a relay error", async () => {
  const r = await call(allowed, 'nosuch', { body: {} });
  assert.equal(r.error?.name, 'FunctionsRelayError', JSON.stringify(r));
  assert.equal(r.status, 404);
  assert.match(r.errorBody.error, /nosuch/);
});

test('a page on an origin that is not allowed cannot call the function', async () => {
  const r = await call(foreign, 'http-api/echo', { body: { hello: 'from elsewhere' } });
  assert.equal(r.pageOrigin, foreign);
  assert.equal(r.data, null);
  assert.equal(r.error?.name, 'FunctionsFetchError', JSON.stringify(r));
  assert.ok(r.consoleLines.some((l) => /CORS/.test(l)), `Chromium reports a CORS failure: ${r.consoleLines.join('\n')}`);
});
