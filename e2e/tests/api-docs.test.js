// The API reference at /docs: Swagger UI, embedded in the binary, renders the server's own
// OpenAPI document under the page's content security policy, and "Try it out" reaches the server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, screenshot } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('/docs renders every operation of /openapi.json and calls the server', async () => {
  const document = await (await fetch(`${server.url}/openapi.json`)).json();
  const operations = Object.values(document.paths).flatMap((item) =>
    Object.keys(item).filter((key) => ['get', 'post', 'patch', 'put', 'delete'].includes(key)),
  );
  const context = await browser.newContext();
  const page = await context.newPage();
  const refused = [];
  const external = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      refused.push(message.text());
    }
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(server.url) && !request.url().startsWith('data:')) {
      external.push(request.url());
    }
  });
  await page.goto(`${server.url}/docs`);
  await page.locator('.opblock').first().waitFor();
  assert.equal(await page.locator('.opblock').count(), operations.length);
  assert.equal(await page.locator('.info .title').first().isVisible(), true);

  // Try out registration (no sign-in needed): a real call from the page to the server.
  const register = page.locator('.opblock-post', { hasText: '/v1/accounts' }).first();
  await register.locator('.opblock-summary').click();
  await register.locator('button.try-out__btn').click();
  await register.locator('textarea.body-param__text').fill(
    JSON.stringify({ username: 'docs-reader', password: 'a long enough password' }),
  );
  await register.locator('button.execute').click();
  await register.locator('.live-responses-table .response-col_status', { hasText: '201' }).waitFor();
  await screenshot(page, 'api-docs');

  assert.deepEqual(refused, [], 'no resource refused by the content security policy');
  assert.deepEqual(external, [], 'nothing fetched from anywhere but this server');
  await context.close();
});
