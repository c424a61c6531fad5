// Which URLs createVideoTask passes on to a provider, as a table, through GraphQL over HTTP: media
// URLs must be public http(s) (or asset:// where the model allows it), without credentials, and not
// aimed at a private, loopback, link-local or otherwise internal host. Every refused form is tried in
// every media field of every model that takes one (imageUrls, images[].url, videos, audios); each is
// refused with the field's exact path and INVALID_URL (UPLOAD_REQUIRED for inline data), leaving no row
// and making no upstream call. The callback URL follows seed 003: HTTPS, no internal host, at most
// 2048 characters, checked per provider route (acceptsCallbackTo).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { VIDEO_MODELS, type VideoModel } from '../src/tasks/catalog.ts';
import { ProviderDirectory, SANDBOX_API_KEY, SANDBOX_MOUNTS, type ProviderAccount } from '../src/upstream/providers.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { startCustomApp, type CustomApp } from './support/custom-app.ts';
import { postGraphql, taskRowId } from './support/hardening.ts';

const CREATE = `mutation($input: CreateVideoTaskInput!) {
  createVideoTask(input: $input) { task { id upstreamTaskId imageUrls images { url role } videos audios } userErrors { field code message } }
}`;

/** A refused URL, why, and the code expected. */
interface RefusedCase {
  url: string;
  why: string;
  code?: 'INVALID_URL' | 'UPLOAD_REQUIRED';
}

const REFUSED: RefusedCase[] = [
  // Loopback, in the spellings the URL parser folds to 127.0.0.1 or ::1.
  { url: 'http://localhost/a.png', why: 'localhost' },
  { url: 'http://LOCALHOST./a.png', why: 'localhost, upper case with a trailing dot' },
  { url: 'http://foo.localhost/a.png', why: 'a name under .localhost' },
  { url: 'http://127.1/a.png', why: 'short IPv4 form of 127.0.0.1' },
  { url: 'http://0x7f000001/a.png', why: 'hexadecimal IPv4 of 127.0.0.1' },
  { url: 'http://2130706433/a.png', why: 'decimal IPv4 of 127.0.0.1' },
  { url: 'http://0177.0.0.1/a.png', why: 'octal IPv4 of 127.0.0.1' },
  { url: 'http://127.0.0.1:8080/a.png', why: 'loopback with a port' },
  { url: 'http://[::1]/a.png', why: 'IPv6 loopback' },
  { url: 'http://[::ffff:127.0.0.1]/', why: 'IPv4-mapped IPv6 loopback' },
  { url: 'http://[0:0:0:0:0:ffff:7f00:1]/', why: 'IPv4-mapped IPv6 loopback, long hex form' },
  // Unspecified.
  { url: 'http://0.0.0.0/', why: 'unspecified IPv4' },
  { url: 'http://0/', why: 'unspecified IPv4, short form' },
  { url: 'http://[::]/', why: 'unspecified IPv6' },
  // Link-local, and the cloud metadata service on it.
  { url: 'http://169.254.169.254/latest/meta-data', why: 'cloud metadata service (link-local)' },
  { url: 'http://[::ffff:169.254.169.254]/latest/meta-data', why: 'metadata service, IPv4-mapped' },
  { url: 'http://[fe80::1]/', why: 'IPv6 link-local' },
  { url: 'http://[ff02::1]/', why: 'IPv6 multicast' },
  { url: 'http://[fec0::1]/', why: 'IPv6 site-local (deprecated)' },
  { url: 'http://[::127.0.0.1]/', why: 'IPv4-compatible IPv6 loopback' },
  { url: 'http://[64:ff9b::7f00:1]/', why: 'NAT64 of loopback' },
  { url: 'http://[2002:7f00:1::]/', why: '6to4 of loopback' },
  { url: 'http://192.0.0.8/', why: 'IETF protocol assignments (192.0.0.0/24)' },
  { url: 'http://metadata.google.internal/', why: 'cloud-internal DNS name' },
  // Private networks.
  { url: 'http://10.0.0.1/a.png', why: '10/8' },
  { url: 'http://172.16.0.1/', why: '172.16/12' },
  { url: 'http://172.31.255.255/', why: 'top of 172.16/12' },
  { url: 'http://192.168.1.1/a.png', why: '192.168/16' },
  { url: 'http://100.64.0.1/', why: 'carrier-grade NAT 100.64/10' },
  { url: 'http://[fc00::1]/', why: 'IPv6 unique local fc00::/7' },
  { url: 'http://[fd12:3456::1]/', why: 'IPv6 unique local, fd half' },
  { url: 'http://224.0.0.1/', why: 'IPv4 multicast' },
  { url: 'http://printer.local/', why: 'mDNS name' },
  // Schemes other than http(s).
  { url: 'file:///etc/passwd', why: 'file:' },
  { url: 'ftp://example.com/a.png', why: 'ftp:' },
  { url: 'gopher://example.com/', why: 'gopher:' },
  { url: 'javascript:alert(1)', why: 'javascript:' },
  { url: 'data:image/png;base64,AAAA', why: 'inline data', code: 'UPLOAD_REQUIRED' },
  { url: 'DATA:image/png;base64,AAAA', why: 'inline data, upper-case scheme', code: 'UPLOAD_REQUIRED' },
  // Credentials.
  { url: 'https://user:pass@example.com/a.png', why: 'user and password' },
  { url: 'https://user@example.com/a.png', why: 'user only' },
  { url: 'https://:pass@example.com/a.png', why: 'password only' },
  // Not URLs.
  { url: 'not a url', why: 'words' },
  { url: 'example.com/a.png', why: 'no scheme' },
  { url: '//example.com/a.png', why: 'scheme-relative' },
  { url: '   ', why: 'blank' },
  // Padding does not hide an internal host: URLs are checked as sent, trimmed.
  { url: '  http://localhost/a.png\n', why: 'localhost with surrounding whitespace' },
];

/** Where a media URL can go, per model: a field path and how to put one URL there. */
interface MediaSlot {
  model: VideoModel;
  name: string;
  path: string[];
  input(url: string): Record<string, unknown>;
}

function mediaSlots(): MediaSlot[] {
  const slots: MediaSlot[] = [];
  for (const model of VIDEO_MODELS) {
    const base = { model: model.id, prompt: 'A lighthouse at dusk' };
    if (model.imageUrls) slots.push({ model, name: 'imageUrls', path: ['input', 'imageUrls', '0'], input: (url) => ({ ...base, imageUrls: [url] }) });
    if (model.imageRoles) {
      slots.push({ model, name: 'images', path: ['input', 'images', '0', 'url'], input: (url) => ({ ...base, images: [{ url, role: 'FIRST_FRAME' }] }) });
    }
    if (model.referenceVideos) slots.push({ model, name: 'videos', path: ['input', 'videos', '0'], input: (url) => ({ ...base, videos: [url] }) });
    if (model.referenceAudios) slots.push({ model, name: 'audios', path: ['input', 'audios', '0'], input: (url) => ({ ...base, audios: [url] }) });
  }
  return slots;
}

const SLOTS = mediaSlots();

describe('media URL policy, through createVideoTask', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      env: {
        RATE_LIMIT_REQUESTS_PER_MINUTE: '100000', RATE_LIMIT_TASKS_PER_MINUTE: '100000', MAX_UNFINISHED_TASKS_PER_KEY: '100000',
        UPSTREAM_TIMEOUT_MS: '4000', POLL_LEASE_MS: '6000',
      },
    });
  });
  after(async () => { await h.stop(); });

  const rowCount = () => (h.app.db.$client.prepare('SELECT count(*) AS n FROM video_tasks').get() as { n: number }).n;
  const createRequests = () => h.sandbox!.stats().requests.create;

  it('covers every media field of every model', () => {
    assert.deepEqual(new Set(SLOTS.map((s) => s.name)), new Set(['imageUrls', 'images', 'videos', 'audios']));
    assert.ok(SLOTS.length >= 10, `${SLOTS.length} slots`);
  });

  for (const refused of REFUSED) {
    const code = refused.code ?? 'INVALID_URL';
    it(`refuses ${JSON.stringify(refused.url)} (${refused.why}) in every media field with ${code}`, async () => {
      const rows = rowCount();
      const calls = createRequests();
      for (const slot of SLOTS) {
        const where = `${slot.model.id} ${slot.name}`;
        const response = await postGraphql(h.url, CREATE, { input: slot.input(refused.url) });
        assert.equal(response.status, 200, `${where}: ${response.raw}`);
        assert.equal(response.body.errors, undefined, `${where}: ${response.raw}`);
        const { task, userErrors } = response.body.data.createVideoTask;
        assert.equal(task, null, where);
        assert.deepEqual(userErrors.map((e: { field: string[]; code: string }) => ({ field: e.field, code: e.code })), [{ field: slot.path, code }], where);
        assert.ok(userErrors[0].message.length > 0, where);
      }
      assert.equal(rowCount(), rows, 'no row written');
      assert.equal(createRequests(), calls, 'no upstream call');
    });
  }

  it('names the exact index of the bad URL among good ones', async () => {
    const response = await postGraphql(h.url, CREATE, {
      input: { model: 'doubao-seedance-2.0', prompt: 'x', videos: ['https://example.com/a.mp4', 'http://10.0.0.1/b.mp4'], audios: ['http://[::1]/c.wav', 'https://example.com/d.wav'] },
    });
    assert.deepEqual(
      response.body.data.createVideoTask.userErrors.map((e: { field: string[]; code: string }) => [e.field.join('.'), e.code]),
      [['input.videos.1', 'INVALID_URL'], ['input.audios.0', 'INVALID_URL']],
    );
  });

  it('refuses asset:// on every model that does not accept it, in every field', async () => {
    const calls = createRequests();
    const slots = SLOTS.filter((s) => !s.model.acceptsAssetUrls);
    assert.ok(slots.length > 0);
    for (const slot of slots) {
      const response = await postGraphql(h.url, CREATE, { input: slot.input('asset://asset_img_01') });
      const { task, userErrors } = response.body.data.createVideoTask;
      assert.equal(task, null);
      assert.deepEqual(userErrors.map((e: { field: string[]; code: string }) => [e.field, e.code]), [[slot.path, 'INVALID_URL']], `${slot.model.id} ${slot.name}`);
      assert.match(userErrors[0].message, /asset:\/\//);
    }
    assert.equal(createRequests(), calls);
  });

  it('refuses a malformed asset URL even where assets are accepted', async () => {
    for (const url of ['asset://', 'asset:asset_img_01', 'asset:///etc/passwd', 'asset://a/b', 'asset://asset.img', 'asset://a b']) {
      const response = await postGraphql(h.url, CREATE, { input: { model: 'seedance-2', prompt: 'x', imageUrls: [url] } });
      assert.deepEqual(response.body.data.createVideoTask.userErrors.map((e: { code: string }) => e.code), ['INVALID_URL'], url);
    }
  });

  const ACCEPTED: { url: string; slots: MediaSlot[] }[] = [
    { url: 'https://example.com/a.png', slots: SLOTS },
    { url: 'http://8.8.8.8/a.png', slots: SLOTS },
    { url: 'https://[2606:4700:4700::1111]/a.png', slots: SLOTS },
    { url: 'asset://asset_img_01', slots: SLOTS.filter((s) => s.model.acceptsAssetUrls) },
  ];
  for (const accepted of ACCEPTED) {
    it(`accepts ${accepted.url} and hands it to the provider unchanged`, async () => {
      assert.ok(accepted.slots.length > 0);
      for (const slot of accepted.slots) {
        const where = `${slot.model.id} ${slot.name}`;
        const response = await postGraphql(h.url, CREATE, { input: slot.input(accepted.url) });
        assert.equal(response.status, 200, response.raw);
        const { task, userErrors } = response.body.data.createVideoTask;
        assert.deepEqual(userErrors, [], where);
        assert.ok(task.upstreamTaskId, where);
        const upstream = h.sandbox!.tasks().find((t) => t.id === task.upstreamTaskId);
        assert.ok(upstream, `${where}: the sandbox has the task`);
        assert.ok(JSON.stringify(upstream.body).includes(JSON.stringify(accepted.url)), `${where}: body ${JSON.stringify(upstream.body)}`);
        const row = h.app.tasks.get(taskRowId(task.id));
        assert.ok(row, where);
      }
    });
  }

  it('accepts asset:// on seedance-2 in images, videos and audios', async () => {
    const response = await postGraphql(h.url, CREATE, {
      input: {
        model: 'seedance-2', prompt: 'Keep the person',
        images: [{ url: 'asset://asset_img_01', role: 'REFERENCE' }], videos: ['asset://asset_vid_01'], audios: ['asset://asset_aud_01'],
      },
    });
    const { task, userErrors } = response.body.data.createVideoTask;
    assert.deepEqual(userErrors, []);
    assert.deepEqual(task.videos, ['asset://asset_vid_01']);
    assert.deepEqual(task.audios, ['asset://asset_aud_01']);
  });
});

describe('callback URLs (seed 003)', () => {
  /** A real provider's account: no exception for internal callbacks. */
  const realAccount = (baseUrl: string): ProviderAccount => ({ name: 'odkkk', kind: 'odkkk', baseUrl, apiKey: 'key' });
  const callbackModel = VIDEO_MODELS.find((m) => m.callback)!;
  /** What task-service appends to PUBLIC_URL: /webhooks/upstream/<uuid>/<43-character token>. */
  const SUFFIX = `/webhooks/upstream/${randomUUID()}/${'t'.repeat(43)}`;

  describe('acceptsCallbackTo on a real provider\'s route', () => {
    const route = new ProviderDirectory([realAccount('https://ai.odkkk.com/apiv1')]).route(callbackModel.id)!;

    it('accepts a public HTTPS base URL', () => {
      for (const url of ['https://api.example.com', 'https://api.example.com/seedance', 'https://8.8.8.8', 'https://api.example.com:8443']) {
        assert.equal(route.acceptsCallbackTo(url), true, url);
      }
    });

    it('refuses plain HTTP, even to a public host', () => {
      for (const url of ['http://api.example.com', 'http://8.8.8.8']) assert.equal(route.acceptsCallbackTo(url), false, url);
    });

    it('refuses HTTPS to internal hosts', () => {
      for (const url of [
        'https://localhost', 'https://127.0.0.1', 'https://127.1', 'https://0x7f000001', 'https://[::1]', 'https://[::ffff:127.0.0.1]',
        'https://10.0.0.1', 'https://172.16.0.1', 'https://192.168.1.1', 'https://169.254.169.254', 'https://[fe80::1]', 'https://[fc00::1]',
        'https://0.0.0.0', 'https://metadata.google.internal', 'https://printer.local',
      ]) {
        assert.equal(route.acceptsCallbackTo(url), false, url);
      }
    });

    it('refuses what is not a URL or has another scheme', () => {
      for (const url of ['', 'api.example.com', 'ftp://api.example.com', 'wss://api.example.com']) assert.equal(route.acceptsCallbackTo(url), false, url);
    });

    it('refuses a base URL whose callback URLs would exceed 2048 characters, and accepts one whose would not', () => {
      const base = (length: number) => `https://api.example.com/${'p'.repeat(length - 'https://api.example.com/'.length)}`;
      assert.equal(route.acceptsCallbackTo(base(2049)), false, '2049 characters');
      assert.equal(route.acceptsCallbackTo(base(2048)), false, 'a 2048-character base leaves no room for the callback path');
      assert.equal(route.acceptsCallbackTo(base(5000)), false);
      // Whatever base is accepted, the full callback URL built on it stays within seed 003's limit.
      for (let length = 30; length <= 2100; length += 1) {
        if (route.acceptsCallbackTo(base(length))) assert.ok((base(length) + SUFFIX).length <= 2048, `base of ${length} accepted, callback URL ${(base(length) + SUFFIX).length} long`);
      }
      assert.equal(route.acceptsCallbackTo(base(1800)), true, 'a long but fitting base is accepted');
    });

    it('only the sandbox account (allowsInternalCallbacks) may call back to loopback over HTTP', () => {
      const sandboxRoute = new ProviderDirectory([{ ...realAccount('http://127.0.0.1:1/odkkk/apiv1'), allowsInternalCallbacks: true }]).route(callbackModel.id)!;
      assert.equal(sandboxRoute.acceptsCallbackTo('http://127.0.0.1:4000'), true);
      assert.equal(route.acceptsCallbackTo('http://127.0.0.1:4000'), false);
    });
  });

  describe('what a real-provider-style account sends upstream', () => {
    const apps: CustomApp[] = [];
    after(async () => { await Promise.all(apps.map((a) => a.stop())); });

    async function createOn(publicUrl: string): Promise<{ body: Record<string, unknown>; callbackTokenHash: string | null }> {
      const app = await startCustomApp({
        env: { PUBLIC_URL: publicUrl },
        // The sandbox behaves as seed 003's provider: internal callback hosts are refused.
        sandbox: { allowInternalCallbacks: false, timeScale: 1 },
        accounts: (sandboxUrl) => [{ name: 'odkkk', kind: 'odkkk', baseUrl: sandboxUrl + SANDBOX_MOUNTS.odkkk, apiKey: SANDBOX_API_KEY }],
      });
      apps.push(app);
      const response = await postGraphql(app.url, CREATE, { input: { model: callbackModel.id, prompt: 'A cat playing piano' } });
      assert.equal(response.status, 200, response.raw);
      const { task, userErrors } = response.body.data.createVideoTask;
      assert.deepEqual(userErrors, []);
      const upstream = app.upstream.sandbox.tasks().find((t) => t.id === task.upstreamTaskId);
      assert.ok(upstream);
      return { body: upstream.body, callbackTokenHash: app.app.tasks.get(taskRowId(task.id))!.callbackTokenHash };
    }

    it('a PUBLIC_URL of http://127.0.0.1 sends no callback_url (and the task is polled instead)', async () => {
      const { body, callbackTokenHash } = await createOn('http://127.0.0.1:4000');
      assert.equal('callback_url' in body, false, JSON.stringify(body));
      assert.equal(callbackTokenHash, null);
    });

    it('a public HTTPS PUBLIC_URL sends a callback_url under it, within 2048 characters', async () => {
      const { body, callbackTokenHash } = await createOn('https://seedance.example.com');
      const callbackUrl = String(body.callback_url);
      assert.match(callbackUrl, /^https:\/\/seedance\.example\.com\/webhooks\/upstream\/[^/]+\/[A-Za-z0-9_-]+$/);
      assert.ok(callbackUrl.length <= 2048);
      assert.ok(callbackTokenHash, 'the token\'s hash is kept to authenticate the callback');
    });
  });
});
