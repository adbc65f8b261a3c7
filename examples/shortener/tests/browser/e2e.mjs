// End-to-end test of the shortener's web pages in headless Chromium.
//
//   BASE_URL=http://127.0.0.1:8080 node e2e.mjs
//
// Starts its own target site (node's http module, 127.0.0.1, random port),
// then drives `/` and `/links` like a user: shorten, copy, scan (QR), follow,
// count the click; the live page counting clicks as they happen; a
// protected link through its password page; the error
// shown for a refused URL; the 404 page; "Load more" on the list. Any CSP
// violation or script error on our pages fails the run.
//
// Environment: BASE_URL (required), CHROMIUM (default /usr/bin/chromium),
// API_KEY (when the server has keys configured), E2E_ARTIFACTS (a folder for
// a screenshot of the page when a step fails).

import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.BASE_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const API_KEY = process.env.API_KEY || '';
const ARTIFACTS = process.env.E2E_ARTIFACTS || '';
const STEP_TIMEOUT_MS = 15_000;
// The live page reads GET /api/links/:slug/live, which issue 13 wires in
// keel's streamed responses: set to true once that route answers, and the
// live page's step runs (until then it is reported as skipped, not passed).
const LIVE_STREAM_ROUTED = true;

if (!/^https?:\/\//.test(BASE_URL)) {
  console.error('e2e: set BASE_URL, e.g. BASE_URL=http://127.0.0.1:8080');
  process.exit(2);
}
const origin = new URL(BASE_URL).origin;

// ---- the target site the short links point at ----

const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
const TARGET_TITLE = `Shortener e2e target ${runId}`;
let targetHits = 0; // page loads, not the browser's /favicon.ico
const target = http.createServer((req, res) => {
  if (req.url !== '/favicon.ico') targetHits += 1;
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><title>${TARGET_TITLE}</title><h1>You arrived</h1></html>`);
});
await new Promise((resolve, reject) => {
  target.once('error', reject);
  target.listen(0, '127.0.0.1', resolve);
});
const targetBase = `http://127.0.0.1:${target.address().port}`;

// ---- helpers ----

let browser;
let page;
const problems = []; // CSP violations and script errors seen on our pages

async function finish(code) {
  try {
    if (browser) await browser.close();
  } catch {
    // The browser may already be gone; the exit code says what matters.
  }
  target.close();
  process.exit(code);
}

async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    console.error(`FAIL ${name}: ${err && err.message ? err.message : err}`);
    if (page) {
      console.error(`     at ${page.url()}`);
      if (ARTIFACTS) {
        try {
          mkdirSync(ARTIFACTS, { recursive: true });
          const file = `${ARTIFACTS}/failure.png`;
          await page.screenshot({ path: file, fullPage: true });
          console.error(`     screenshot: ${file}`);
        } catch {
          // A screenshot is a convenience; the failure is already reported.
        }
      }
    }
    if (problems.length) console.error(`     console: ${problems.join('\n              ')}`);
    await finish(1);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// Waits for the next answer of our API to `method path*` and returns it.
function apiAnswer(method, pathPrefix) {
  return page.waitForResponse(
    (r) => r.request().method() === method && r.url().startsWith(`${origin}${pathPrefix}`),
    { timeout: STEP_TIMEOUT_MS }
  );
}

async function shorten(url, options = {}) {
  await page.goto(`${BASE_URL}/`);
  await page.fill('#url', url);
  if (options.password) {
    await page.click('#options summary');
    await page.fill('#password', options.password);
  }
  const answer = apiAnswer('POST', '/api/links');
  await page.click('#shorten-button');
  return answer;
}

async function apiCall(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (API_KEY) headers.Authorization = `Bearer ${API_KEY}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${BASE_URL}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: res.status, data };
}

async function noSideScroll(what) {
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  check(scroll <= inner, `${what} scrolls sideways on a phone: ${scroll}px wide in a ${inner}px window`);
}

async function everyInputLabelled(what) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input')]
      .filter((i) => i.type !== 'hidden' && i.labels.length === 0 && !i.getAttribute('aria-label'))
      .map((i) => i.id || i.name || i.outerHTML)
  );
  check(unlabelled.length === 0, `${what}: inputs without a label: ${unlabelled.join(', ')}`);
}

// ---- the run ----

try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
} catch (err) {
  console.error(`FAIL launching Chromium at ${CHROMIUM}: ${err.message}`);
  await finish(1);
}
// A phone-sized window: the pages must work at this width.
const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
if (API_KEY) {
  // The pages read the key from localStorage, as if the user had saved it.
  await context.addInitScript(
    (args) => {
      if (location.origin === args.origin) localStorage.setItem('shortener.apiKey', args.key);
    },
    { origin, key: API_KEY }
  );
}
context.setDefaultTimeout(STEP_TIMEOUT_MS);
page = await context.newPage();
page.on('console', (msg) => {
  // Error answers the page expects (400 for the refused URL, 401 for a wrong
  // password) are logged by Chromium as "Failed to load resource": not ours.
  if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text()) && page.url().startsWith(origin)) {
    problems.push(msg.text());
  }
});
page.on('pageerror', (err) => problems.push(`script error: ${err.message}`));

console.log(`e2e: shortener ${BASE_URL}, target ${targetBase}, Chromium ${browser.version()}`);

const targetUrl = `${targetBase}/landing/${runId}?utm=e2e`;
let shortUrl = '';
let slug = '';

await step('GET / is the page, with the CSP', async () => {
  const res = await page.goto(`${BASE_URL}/`);
  check(res.status() === 200, `status ${res.status()}`);
  const csp = res.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && csp.includes("frame-ancestors 'none'"), `CSP is "${csp}"`);
  check((await page.title()) === 'Shorten a link', `title "${await page.title()}"`);
  await everyInputLabelled('/');
  await noSideScroll('/');
});

await step('shorten a URL and see the short link', async () => {
  const answer = await shorten(targetUrl);
  check(answer.status() === 201, `POST /api/links answered ${answer.status()}: ${await answer.text()}`);
  const link = await answer.json();
  await page.waitForSelector('#result:not([hidden])');
  shortUrl = (await page.textContent('#short-link')).trim();
  slug = link.slug;
  check(shortUrl === link.short_url, `shown "${shortUrl}", API said "${link.short_url}"`);
  check(new URL(shortUrl).origin === origin, `short link ${shortUrl} is not on ${origin}`);
  check(new URL(shortUrl).pathname === `/${slug}`, `short link ${shortUrl} does not end in /${slug}`);
  check((await page.textContent('#result-target')).trim() === link.url, 'the target URL is not shown');
  check(
    (await page.getAttribute('#short-link', 'href')) === shortUrl,
    'the short link is not a link to itself'
  );
});

await step('the QR code loads', async () => {
  const qr = await page.waitForFunction(
    () => {
      const img = document.getElementById('qr');
      return img && img.complete && img.naturalWidth > 0 ? img.getAttribute('src') : null;
    },
    null,
    { timeout: STEP_TIMEOUT_MS }
  );
  const src = await qr.jsonValue();
  // Fetched with the key (an <img src> could not send it), shown inline.
  check(src.startsWith('data:image/svg+xml'), `QR src is ${src.slice(0, 60)}`);
});

await step('Copy puts the short link on the clipboard and says so', async () => {
  await page.click('#copy-button');
  await page.waitForFunction(() => document.getElementById('copy-status').textContent === 'Copied');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === shortUrl, `clipboard holds "${copied}"`);
});

await step('following the short link lands on the target', async () => {
  const hitsBefore = targetHits;
  await Promise.all([page.waitForURL(`${targetBase}/**`), page.click('#short-link')]);
  check(page.url() === targetUrl, `landed on ${page.url()}, expected ${targetUrl}`);
  const title = await page.title();
  check(title === TARGET_TITLE, `target title "${title}"`);
  check(targetHits === hitsBefore + 1, `the target was hit ${targetHits - hitsBefore} times`);
});

await step('/links shows the link with 1 click', async () => {
  // Clicks reach the store about once a second.
  await page.waitForTimeout(2000);
  const deadline = Date.now() + 8000;
  let clicks = null;
  for (;;) {
    const res = await page.goto(`${BASE_URL}/links`);
    check(res.status() === 200, `GET /links answered ${res.status()}`);
    const row = `#links-body tr[data-slug="${slug}"]`;
    await page.waitForSelector(`${row}, #list-error:not([hidden])`);
    const error = await page.$('#list-error:not([hidden])');
    if (error) throw new Error(`the list shows an error: ${await error.textContent()}`);
    clicks = await page.getAttribute(`${row} td.clicks`, 'data-clicks');
    if (clicks === '1' || Date.now() > deadline) break;
    await page.waitForTimeout(500);
  }
  check(clicks === '1', `the link shows ${clicks} clicks, expected 1`);
  const shown = await page.textContent(`#links-body tr[data-slug="${slug}"]`);
  check(shown.includes(targetUrl), 'the row does not show the target URL');
  check((await page.title()) === 'Recent links', `title "${await page.title()}"`);
  await everyInputLabelled('/links');
  await noSideScroll('/links');
});

await step('a refused URL shows the API error message', async () => {
  const answer = await shorten('ftp://x');
  check(answer.status() === 400, `POST /api/links answered ${answer.status()}`);
  const body = await answer.json();
  check(body && body.error && body.error.message, `error body ${JSON.stringify(body)}`);
  await page.waitForSelector('#form-error:not([hidden])');
  const shown = (await page.textContent('#form-error')).trim();
  check(shown.includes(body.error.message), `shown "${shown}", API said "${body.error.message}"`);
  check(await page.$eval('#result', (r) => r.hidden), 'a result is shown for a refused URL');
});

await step('a protected link asks for its password, then redirects', async () => {
  const password = `pw-${runId}`;
  const protectedTarget = `${targetBase}/protected/${runId}`;
  const answer = await shorten(protectedTarget, { password });
  check(answer.status() === 201, `POST /api/links answered ${answer.status()}: ${await answer.text()}`);
  const link = await answer.json();
  check(link.protected === true, 'the link is not protected');
  const prompt = await page.goto(link.short_url);
  check(prompt.status() === 200, `the password page answered ${prompt.status()}`);
  check((await page.title()) === 'Password needed', `title "${await page.title()}"`);
  check(await page.$eval('#password-error', (e) => getComputedStyle(e).display === 'none'), 'an error shows before any try');
  await page.fill('#password', 'wrong password');
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(wrong.status() === 401, `a wrong password answered ${wrong.status()}`);
  const error = (await page.textContent('#password-error')).trim();
  check(error.length > 0, 'no error shown after a wrong password');
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(protectedTarget), page.click('button[type=submit]')]);
  check((await page.title()) === TARGET_TITLE, `landed on "${await page.title()}"`);
});

await step('an unknown short link shows the 404 page', async () => {
  const res = await page.goto(`${BASE_URL}/no-such-${runId}`);
  check(res.status() === 404, `status ${res.status()}`);
  check((await page.title()) === 'Link not found', `title "${await page.title()}"`);
});

await step('"Load more" pages through the list', async () => {
  const links = Array.from({ length: 55 }, (_, i) => ({ url: `${targetBase}/bulk/${runId}/${i}` }));
  const bulk = await apiCall('POST', '/api/links/bulk', { links });
  check(bulk.status === 200, `POST /api/links/bulk answered ${bulk.status}: ${JSON.stringify(bulk.data)}`);
  await page.goto(`${BASE_URL}/links`);
  await page.waitForSelector('#load-more:not([hidden])');
  const first = await page.$$eval('#links-body tr', (rows) => rows.length);
  check(first === 50, `the first page has ${first} rows`);
  await page.click('#load-more');
  await page.waitForSelector(`#links-body tr[data-slug="${slug}"]`);
  const slugs = await page.$$eval('#links-body tr', (rows) => rows.map((r) => r.dataset.slug));
  check(new Set(slugs).size === slugs.length, 'a link is listed twice');
  check(slugs.length >= 57, `${slugs.length} rows after "Load more", expected at least 57`);
});

async function liveClicks() {
  return page.getAttribute('#live-clicks', 'data-clicks');
}

if (!LIVE_STREAM_ROUTED) {
  console.log('skip the live page counts clicks as they happen (pending: GET /api/links/:slug/live is not routed yet)');
} else {
  await step('the live page counts clicks as they happen', async () => {
    const created = await apiCall('POST', '/api/links', { url: `${targetBase}/live/${runId}` });
    check(created.status === 201, `POST /api/links answered ${created.status}: ${JSON.stringify(created.data)}`);
    const { slug: liveSlug, short_url: liveShortUrl } = created.data;
    const res = await page.goto(`${BASE_URL}/links/${encodeURIComponent(liveSlug)}/live`);
    check(res.status() === 200, `GET /links/${liveSlug}/live answered ${res.status()}`);
    check((res.headers()['content-security-policy'] || '').includes("script-src 'self'"), 'the live page has no CSP');
    check((await page.textContent('#live-slug')) === liveSlug, 'the page does not name the link');
    if (API_KEY) {
      // run.sh's key is a write key: the stream needs admin, and the page
      // must say so rather than wait forever.
      await page.waitForSelector('#live-error:not([hidden])');
      const text = await page.textContent('#live-error');
      check(/key/i.test(text), `the refusal reads "${text}"`);
      return;
    }
    await page.waitForSelector('#live-clicks[data-clicks="0"]');
    await page.waitForFunction(() => document.getElementById('live-status').textContent === 'Live');
    // Followed from another tab, as a visitor would, while this one watches.
    const visitor = await context.newPage();
    const hitsBefore = targetHits;
    for (let i = 0; i < 2; i += 1) {
      await visitor.goto(liveShortUrl);
      check(visitor.url().startsWith(`${targetBase}/live/`), `the short link led to ${visitor.url()}`);
    }
    await visitor.close();
    check(targetHits === hitsBefore + 2, `the target was hit ${targetHits - hitsBefore} times`);
    await page.waitForSelector('#live-clicks[data-clicks="2"]');
    const listed = await page.$$eval('#live-list li', (items) => items.map((li) => li.textContent));
    check(listed.length >= 1 && listed.length <= 2, `the recent clicks list shows ${JSON.stringify(listed)}`);
    check(listed.every((text) => /click/i.test(text)), `the recent clicks list shows ${JSON.stringify(listed)}`);
    // A new page starts from the totals the server has, clicks not yet
    // flushed to the store included.
    await page.reload();
    await page.waitForSelector('#live-clicks[data-clicks="2"]');
    check((await liveClicks()) === '2', `after a reload the page shows ${await liveClicks()} clicks`);
    await everyInputLabelled('/links/:slug/live');
    await noSideScroll('/links/:slug/live');
  });
}

await step('no CSP violation or script error on our pages', async () => {
  check(problems.length === 0, problems.join('; '));
});

console.log('e2e: all passed');
await finish(0);
