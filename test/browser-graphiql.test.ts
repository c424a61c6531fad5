// Started as a new user would (npm start, no key), GraphiQL loads in a browser and a createVideoTask
// for each of the six models succeeds against the sandbox.
//
// Everything goes through the user's path: `npm start` in a child process, a real Chromium (Debian's,
// at /usr/bin/chromium) opening the GraphiQL page, each mutation typed into GraphiQL's editor (through
// its `?query=` URL parameter) and run with GraphiQL's own execute button, the answer read from its
// result pane. The browser reaches nothing but this machine: this machine, developers' and CI's have no
// internet, so GraphiQL must come whole from the service itself.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { VIDEO_MODELS } from '../src/tasks/catalog.ts';
import { startService, type StartedService } from './support/start-service.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync',
];
const SCREENSHOT = '/tmp/graphiql.png';

// Stable hooks of GraphiQL's own markup (the `graphiql-*` class names GraphiQL 2+ documents for theming,
// which Yoga's GraphiQL keeps): the root container, the execute button (it also carries aria-label
// "Execute query (Ctrl-Enter)"), the operation editor and the result pane.
const CONTAINER = '.graphiql-container';
const EXECUTE = '.graphiql-execute-button';
const RESULT = '.graphiql-response';
const QUERY_EDITOR = '.graphiql-query-editor';

/** One valid createVideoTask input per model (GraphQL literals), using what sets each model apart. */
const INPUTS: Record<string, string> = {
  'doubao-seedance-1-0-pro-fast':
    '{ model: "doubao-seedance-1-0-pro-fast", prompt: "Sunset at the beach", duration: 5, aspectRatio: "16:9", resolution: "720p" }',
  'doubao-seedance-1-0-pro-quality':
    '{ model: "doubao-seedance-1-0-pro-quality", prompt: "A transition", images: [{ url: "https://example.com/start.png", role: FIRST_FRAME }, { url: "https://example.com/end.png", role: LAST_FRAME }] }',
  'seedance-2': '{ model: "seedance-2", prompt: "A calm sunrise", duration: 10, aspectRatio: "16:9" }',
  'seedance-2-fast': '{ model: "seedance-2-fast", prompt: "Keep the person", images: [{ url: "asset://asset_img_01K", role: REFERENCE }] }',
  'doubao-seedance-2.0':
    '{ model: "doubao-seedance-2.0", videos: ["https://example.com/reference.mp4"], audios: ["https://example.com/speech.wav"], generateAudio: true }',
  'doubao-seedance-1.0-pro-fast':
    '{ model: "doubao-seedance-1.0-pro-fast", prompt: "A cat playing piano", imageUrls: ["https://example.com/cat.jpg"] }',
};

const mutation = (input: string) =>
  `mutation {\n  createVideoTask(input: ${input}) {\n    task { id model status provider upstreamTaskId }\n    userErrors { field code message }\n  }\n}\n`;

interface CreatePayload {
  data?: {
    createVideoTask?: {
      task: { id: string; model: string; status: string; provider: string; upstreamTaskId: string | null } | null;
      userErrors: { field: string[] | null; code: string; message: string }[];
    };
  };
  errors?: unknown[];
}

async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    assert.fail(`${CHROMIUM} is missing: this specification needs Debian's Chromium; install it with \`apt-get install -y chromium\``);
  }
  try {
    return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  } catch (error) {
    assert.fail(`${CHROMIUM} did not start (reinstall it with \`apt-get install -y chromium\`): ${(error as Error).message}`);
  }
}

const isLocal = (url: string) => {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'data:' || protocol === 'blob:') return true;
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
};

/** A fresh browser context (so no GraphiQL tabs or history carry over) that can reach only this machine. */
async function localOnlyContext(browser: Browser, outside: string[]): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    outside.push(url);
    return route.abort('internetdisconnected');
  });
  return context;
}

/** The text the result pane shows, as a person would read it (the editor draws spaces as U+00A0). */
async function resultText(page: Page): Promise<string> {
  return (await page.locator(RESULT).innerText()).replace(/\u00a0/g, ' ');
}

describe('Started as a new user would (npm start, no key), GraphiQL in a browser', () => {
  let service: StartedService;
  let browser: Browser;

  before(async () => {
    browser = await launchChromium();
    service = await startService({ timeoutMs: 60_000 });
  });

  after(async () => {
    await browser?.close();
    await service?.stop();
  });

  it('logs at start-up that the built-in sandbox serves every model', () => {
    const line = service.logs.find((l) => typeof l.msg === 'string' && /sandbox upstream serves every model/.test(l.msg));
    assert.ok(line, `no start-up log line says the sandbox serves every model; the output was:\n${service.output()}`);
    assert.match(String(line.msg), /no provider key configured/);
    assert.match(String(line.msg), /provider "sandbox"/);
  });

  it('has an example input for each of the six models', () => {
    assert.deepEqual(Object.keys(INPUTS).sort(), VIDEO_MODELS.map((m) => m.id).sort());
    assert.equal(VIDEO_MODELS.length, 6);
  });

  for (const [model, input] of Object.entries(INPUTS)) {
    it(`runs createVideoTask for ${model} from GraphiQL and gets a queued sandbox task`, async () => {
      const outside: string[] = [];
      const context = await localOnlyContext(browser, outside);
      try {
        const page = await context.newPage();
        const query = mutation(input);
        const pageUrl = `${service.graphqlUrl}?query=${encodeURIComponent(query)}`;
        const response = await page.goto(pageUrl, { waitUntil: 'load' });
        assert.equal(response?.status(), 200, `GET ${pageUrl} answered ${response?.status()}`);
        assert.match(response.headers()['content-type'] ?? '', /text\/html/);

        try {
          // Yoga wraps GraphiQL's own container in a second one: either shows that GraphiQL rendered.
          await page.locator(CONTAINER).first().waitFor({ state: 'visible', timeout: 20_000 });
          await page.locator(EXECUTE).waitFor({ state: 'visible', timeout: 10_000 });
        } catch {
          const body = (await page.locator('body').innerText().catch(() => '')).slice(0, 500);
          assert.fail(
            `GraphiQL did not render at ${service.graphqlUrl} (no ${CONTAINER} with an ${EXECUTE}); the page shows: ${JSON.stringify(body)}. `
            + (outside.length
              ? `The page tried to load from outside this machine, which has no internet: ${[...new Set(outside)].join(', ')}. `
                + 'The service must serve GraphiQL\'s scripts and styles itself.'
              : 'It requested nothing from outside this machine.'),
          );
        }

        // GraphiQL took the mutation from the URL into its editor.
        await assert.doesNotReject(
          page.waitForFunction((selector) => document.querySelector(selector)?.textContent?.includes('createVideoTask'), QUERY_EDITOR, { timeout: 10_000 }),
          'GraphiQL\'s query editor does not show the mutation passed in ?query=',
        );

        const sent = page.waitForResponse((r) => r.request().method() === 'POST'
          && r.url().startsWith(service.graphqlUrl) && (r.request().postData() ?? '').includes('createVideoTask'), { timeout: 15_000 });
        await page.locator(EXECUTE).click();
        const answer = await sent;
        const payload = await answer.json() as CreatePayload;

        // What GraphiQL shows in its result pane (compared without whitespace: the pane wraps long lines).
        try {
          await page.waitForFunction((selector) => document.querySelector(selector)?.textContent?.includes('"userErrors"'), RESULT, { timeout: 15_000 });
        } catch {
          assert.fail(`GraphiQL's result pane never showed the answer ${JSON.stringify(payload)}; it shows: ${await resultText(page).catch(() => '?')}`);
        }
        const shown = await resultText(page);
        const compact = shown.replace(/\s+/g, '');
        assert.ok(compact.includes('"userErrors":[]'), `the result pane shows userErrors:\n${shown}`);
        assert.match(compact, /"status":"(QUEUED|IN_PROGRESS)"/, `the result pane shows no QUEUED/IN_PROGRESS status:\n${shown}`);
        assert.ok(compact.includes('"provider":"sandbox"'), `the result pane shows another provider:\n${shown}`);
        assert.ok(compact.includes(`"model":"${model}"`), `the result pane does not show model ${model}:\n${shown}`);

        // And the answer it got over HTTP, field by field.
        assert.equal(payload.errors, undefined, `GraphQL errors: ${JSON.stringify(payload.errors)}`);
        const created = payload.data?.createVideoTask;
        assert.ok(created, `no createVideoTask in ${JSON.stringify(payload)}`);
        assert.deepEqual(created.userErrors, []);
        assert.ok(created.task, 'no task created');
        assert.equal(created.task.model, model);
        assert.equal(created.task.provider, 'sandbox');
        assert.ok(['QUEUED', 'IN_PROGRESS'].includes(created.task.status), `status ${created.task.status}`);
        assert.ok(created.task.id.length > 0);
        assert.ok(created.task.upstreamTaskId, 'the sandbox gave no upstream task id');
        assert.ok(compact.includes(`"id":"${created.task.id}"`), 'the result pane does not show the created task\'s id');

        if (model === 'doubao-seedance-2.0') await page.screenshot({ path: SCREENSHOT });
      } finally {
        await context.close();
      }
    });
  }
});

describe('Watching a task in GraphiQL (subscription over WebSocket)', () => {
  let service: StartedService;
  let browser: Browser;

  before(async () => {
    browser = await launchChromium();
    // The same `npm start`, with the sandbox's clock and the poll pace compressed so a video is made in seconds.
    service = await startService({
      timeoutMs: 60_000,
      env: {
        SANDBOX_TIME_SCALE: '0.02', POLL_FIRST_MS: '100', POLL_MIN_MS: '100',
        POLL_QUEUED_MIN_MS: '200', POLL_QUEUED_MAX_MS: '300', POLL_IN_PROGRESS_MIN_MS: '200', POLL_IN_PROGRESS_MAX_MS: '300',
      },
    });
  });

  after(async () => {
    await browser?.close();
    await service?.stop();
  });

  it('runs videoTaskUpdated and the page shows the task reach COMPLETED', async () => {
    const created = await fetch(service.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { createVideoTask(input: { model: "seedance-2-fast", prompt: "Watched from GraphiQL" }) { task { id } userErrors { code } } }' }),
    }).then((r) => r.json()) as { data: { createVideoTask: { task: { id: string } } } };
    const id = created.data.createVideoTask.task.id;

    const outside: string[] = [];
    const context = await localOnlyContext(browser, outside);
    try {
      const page = await context.newPage();
      const sockets: string[] = [];
      page.on('websocket', (socket) => sockets.push(socket.url()));
      const subscription = `subscription {\n  videoTaskUpdated(id: "${id}") {\n    status\n    progress\n    videoUrl\n  }\n}\n`;
      await page.goto(`${service.graphqlUrl}?query=${encodeURIComponent(subscription)}`, { waitUntil: 'load' });
      await page.locator(CONTAINER).first().waitFor({ state: 'visible', timeout: 20_000 });
      await page.locator(EXECUTE).waitFor({ state: 'visible', timeout: 10_000 });
      await page.waitForFunction((selector) => document.querySelector(selector)?.textContent?.includes('videoTaskUpdated'), QUERY_EDITOR, { timeout: 10_000 });
      await page.locator(EXECUTE).click();

      try {
        await page.waitForFunction((selector) => /"status":\s*"COMPLETED"/.test((document.querySelector(selector)?.textContent ?? '').replace(/\u00a0/g, ' ')), RESULT, { timeout: 45_000 });
      } catch {
        assert.fail(`the result pane never showed COMPLETED; it shows: ${await resultText(page).catch(() => '?')}`);
      }
      const compact = (await resultText(page)).replace(/\s+/g, '');
      assert.match(compact, /"progress":100/);
      assert.match(compact, /"videoUrl":"http[^"]+\.mp4/);
      assert.ok(sockets.some((url) => url.startsWith(service.graphqlUrl.replace('http', 'ws'))), `GraphiQL used no WebSocket to /graphql: ${sockets.join(', ')}`);
      assert.deepEqual(outside, [], 'the page reached outside this machine');
    } finally {
      await context.close();
    }
  });
});
