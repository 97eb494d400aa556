// Headless Chromium (Debian's, through playwright-core) on pages of the server under test.
//
//   node browser.mjs <scenario> '<options as JSON>'
//
// Every host but the server's is blocked, as behind a firewall without internet access: a page that needs a CDN
// fails here. Prints one JSON object per line, like clients.mjs.
import { chromium } from 'playwright-core';

const [scenario, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions || '{}');
const { base, executablePath = '/usr/bin/chromium', timeoutMs = 20000 } = options;

function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // No name resolves but the loopback address: the page has no internet.
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  ],
});
const local = new URL(base).host;
const context = await browser.newContext();
const blocked = [];
await context.route('**/*', (route) => {
  const url = new URL(route.request().url());
  if (url.host === local || url.protocol === 'data:') return route.continue();
  blocked.push(url.href);
  return route.abort('internetdisconnected');
});
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));
page.on('pageerror', (error) => consoleErrors.push(String(error)));

async function finish(code, message) {
  emit({ ...message, blocked, consoleErrors });
  await browser.close();
  process.exit(code);
}
setTimeout(() => finish(1, { type: 'error', error: `timed out after ${timeoutMs} ms` }), timeoutMs);

const scenarios = {
  // An H5 page of ours loads the served graphql-ws build and subscribes to a product's stock.
  'graphql-ws-page': async () => {
    const { scriptTag, query, variables, events = 1 } = options;
    let received = 0;
    await page.exposeFunction('report', async (message) => {
      emit(message);
      if (message.type === 'next' && ++received >= events) await finish(0, { type: 'done' });
      if (message.type === 'error') await finish(1, message);
    });
    await page.goto(`${base}/healthz`); // any page of the server: the script below runs on its origin
    await page.setContent(`<!doctype html><html><head>${scriptTag}</head><body></body></html>`, {
      waitUntil: 'load',
    });
    await page.evaluate(
      ({ query, variables }) => {
        const url = location.origin.replace(/^http/, 'ws') + '/graphql';
        const client = graphqlWs.createClient({
          url,
          retryAttempts: 0,
          on: { connected: () => window.report({ type: 'connected' }) },
        });
        client.subscribe(
          { query, variables },
          {
            next: (payload) => window.report({ type: 'next', payload }),
            error: (error) =>
              window.report({ type: 'error', error: String((error && (error.reason || error.message)) || error) }),
            complete: () => {},
          },
        );
      },
      { query, variables },
    );
  },
  // The H5 live-sale page: report what it shows whenever that changes; click the buttons named in `click` once
  // each as soon as they show.
  'live-page': async () => {
    const { path, click = [] } = options;
    const clicked = new Set();
    await page.goto(`${base}${path}`);
    await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 15000 });
    emit({ type: 'ready' });
    let last = '';
    for (;;) {
      const shown = await page.evaluate(() => {
        const text = (id) => {
          const element = document.getElementById(id);
          return element && !element.closest('[hidden]') ? element.textContent : null;
        };
        return {
          title: text('title'),
          status: text('status'),
          viewers: text('viewers'),
          pinnedTitle: text('pinned-title'),
          price: text('pinned-price'),
          stock: text('pinned-stock'),
          comments: [...document.querySelectorAll('#comments li')].map((li) => li.textContent),
          rain: text('rain-count'),
          rainResult: text('rain-result'),
          auction: text('auction-amount'),
          auctionResult: text('auction-result'),
        };
      });
      const text = JSON.stringify([shown, consoleErrors.length]);
      if (text !== last) {
        last = text;
        emit({ type: 'shown', shown, blocked, consoleErrors });
      }
      for (const selector of click) {
        if (!clicked.has(selector) && (await page.locator(selector).isVisible())) {
          clicked.add(selector);
          await page.locator(selector).click();
        }
      }
      await page.waitForTimeout(20);
    }
  },
  // GraphiQL shows its editor and, from introspection, the schema's documentation.
  graphiql: async () => {
    const response = await page.goto(`${base}/graphql`);
    await page.locator('.graphiql-query-editor .CodeMirror').first().waitFor({ state: 'visible' });
    const editor = await page.locator('.graphiql-query-editor').first().innerText();
    await page.locator('button[aria-label="Show Documentation Explorer"]').click();
    const explorer = page.locator('.graphiql-doc-explorer');
    await explorer.getByText('Query', { exact: true }).first().click();
    await explorer.getByText('products', { exact: true }).first().waitFor({ state: 'visible' });
    const docs = await explorer.innerText();
    if (options.screenshot) await page.screenshot({ path: options.screenshot });
    await finish(0, { type: 'done', status: response.status(), editor, docs });
  },
};

if (!scenarios[scenario]) await finish(1, { type: 'error', error: `unknown scenario ${scenario}` });
try {
  await scenarios[scenario]();
} catch (error) {
  await finish(1, { type: 'error', error: String(error) });
}
