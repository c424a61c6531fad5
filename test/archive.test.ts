// Archiving: a completed task's result is copied to this service's storage before the provider's link
// expires (streamed, size-capped, type-checked, checksummed, retried with backoff), served with Range
// requests behind signed links, announced on the subscription, resumed after a crash, reported honestly
// when it cannot be done (expired link, too large, wrong type, private address), deleted by retention
// or with its task.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, utimesSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { DownloadHttpError, DownloadRefusedError, SafeDownloader, type DownloadPermission } from '../src/media/safe-download.ts';
import { UrlSigner } from '../src/media/url-signer.ts';
import { isInternalHost } from '../src/net/internal-address.ts';
import { SANDBOX_API_KEY, type ProviderAccount } from '../src/upstream/providers.ts';
import {
  LAST_FRAME_PNG, SAMPLE_MP4, eventually, listFiles, rawId, sha256, startMediaApp, startMediaUpstream,
  type MediaApp, type MediaUpstream,
} from './support/media-kit.ts';
import { startServiceProcess, tempDatabase, type ServiceProcess } from './support/service-process.ts';

const TASK_FIELDS = `id status completedAt videoUrl upstreamVideoUrl lastFrameUrl upstreamLastFrameUrl expiresAt
  archive { status reason attempts archivedAt bytes sha256 }`;
const CREATE = `mutation($input: CreateVideoTaskInput!) { createVideoTask(input: $input) { task { id status } userErrors { code message } } }`;
const TASK = `query($id: ID!) { videoTask(id: $id) { ${TASK_FIELDS} } }`;
const DELETE = `mutation($id: ID!) { deleteVideoTask(id: $id) { deletedTaskId userErrors { field code message } } }`;
const WATCH = `subscription($id: ID!) { videoTaskUpdated(id: $id) { id status videoUrl archive { status reason } } }`;

interface Task {
  id: string;
  status: string;
  completedAt: string | null;
  videoUrl: string | null;
  upstreamVideoUrl: string | null;
  lastFrameUrl: string | null;
  upstreamLastFrameUrl: string | null;
  expiresAt: string | null;
  archive: { status: string; reason: string | null; attempts: number; archivedAt: string | null; bytes: number | null; sha256: string | null } | null;
}

type Querier = { gql: MediaApp['gql'] } | ServiceProcess;

/** A GraphQL request to an in-process app (answers { status, body }) or a service process (answers the body). */
async function call(h: Querier, query: string, variables: Record<string, unknown>, key?: string): Promise<{ data?: any; errors?: unknown[] }> {
  const result = await (h.gql as (q: string, v: Record<string, unknown>, k?: string) => Promise<any>)(query, variables, key);
  return 'body' in result ? result.body : result;
}

async function createTask(h: Querier, input: Record<string, unknown>, key?: string): Promise<string> {
  const body = await call(h, CREATE, { input: { model: 'doubao-seedance-1-0-pro-fast', prompt: 'A lighthouse at dusk', ...input } }, key);
  assert.deepEqual(body.data?.createVideoTask.userErrors, [], JSON.stringify(body));
  return body.data.createVideoTask.task.id;
}

async function readTask(h: Querier, id: string, key?: string): Promise<Task> {
  const body = await call(h, TASK, { id }, key);
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data.videoTask;
}

/** The task once it has ended and its archive (if any) is no longer PENDING. */
async function settled(h: Querier, id: string, key?: string, timeoutMs = 15_000): Promise<Task> {
  return eventually(async () => {
    const task = await readTask(h, id, key);
    return task && ['COMPLETED', 'FAILED', 'CANCELLED'].includes(task.status) && task.archive?.status !== 'PENDING' && task;
  }, `task ${rawId(id)} settled`, timeoutMs);
}

/** A graphql-sse stream (Yoga's SSE) until `complete`. */
async function collectSse(url: string, query: string, variables: Record<string, unknown>, key: string): Promise<Record<string, any>[]> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(20_000),
  });
  assert.equal(response.status, 200);
  const events: Record<string, any>[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body!) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(message)?.[1];
      const data = /^data: (.*)$/m.exec(message)?.[1];
      if (event === 'complete') return events;
      if (event === 'next' && data) {
        const payload = JSON.parse(data);
        if (payload.errors) throw new Error(JSON.stringify(payload.errors));
        events.push(payload.data.videoTaskUpdated);
      }
    }
  }
  return events;
}

/** The provider as a real one is configured: its API host, no result host allowed to be private. */
const realProviderAccounts = (url: string): ProviderAccount[] => [
  { name: 'toapis', kind: 'toapis', baseUrl: `${url}/toapis`, apiKey: SANDBOX_API_KEY },
];

const archiveFiles = (h: MediaApp, taskId: string) => listFiles(join(h.mediaDir, 'archives', rawId(taskId)));

// The suites are independent (each has its own app, upstream and directory) and mostly wait on I/O:
// they run side by side; the tests inside the first one build on each other and run in order.
describe('results archived', { concurrency: true }, () => {
  describe('archiving a completed task\'s result', { concurrency: false }, () => {
    const SECRET = 'archive-test-signing-secret';
    let h: MediaApp;
    let a: string;
    let b: string;
    let sandboxSkewMs = 0;
    let done: Task;

    before(async () => {
      const upstream = await startMediaUpstream({ now: () => Date.now() + sandboxSkewMs });
      h = await startMediaApp({ upstream, env: { ANONYMOUS_ACCESS: 'false', MEDIA_SIGNING_SECRET: SECRET } });
      a = h.app.apiKeys.create('client-a', 'client').key;
      b = h.app.apiKeys.create('client-b', 'client').key;
    });
    after(async () => {
      await h?.stop();
      await h?.upstream.close();
    });

    it('archives the video and the last frame, says so on the subscription, and points videoUrl at the copy', async () => {
      const id = await createTask(h, { model: 'doubao-seedance-2.0', prompt: 'A kite over the dunes', returnLastFrame: true }, a);
      const events = await collectSse(h.url, WATCH, { id }, a);
      const completedAt = events.findIndex((e) => e.status === 'COMPLETED');
      assert.ok(completedAt >= 0, `saw COMPLETED: ${JSON.stringify(events)}`);
      assert.equal(events[completedAt]!.archive?.status, 'PENDING', 'the archive starts when the task completes');
      assert.match(events[completedAt]!.videoUrl, /\/files\//, 'until then videoUrl is the provider\'s');
      const last = events.at(-1)!;
      assert.equal(last.archive?.status, 'ARCHIVED', 'an event is sent when the archive lands, and ends the subscription');
      assert.match(last.videoUrl, /\/media\/archives\/[\w-]+\/video\.mp4\?expires=\d+&signature=/);

      done = await readTask(h, id, a);
      const raw = rawId(id);
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.archive?.status, 'ARCHIVED');
      assert.equal(done.archive?.reason, null);
      assert.equal(done.archive?.attempts, 0, 'archived on the first attempt');
      assert.equal(done.archive?.bytes, SAMPLE_MP4.length);
      assert.equal(done.archive?.sha256, sha256(SAMPLE_MP4));
      assert.ok(done.archive?.archivedAt && Date.parse(done.archive.archivedAt) >= Date.parse(done.completedAt!));
      assert.match(done.videoUrl!, new RegExp(`^${h.url}/media/archives/${raw}/video\\.mp4\\?expires=\\d+&signature=[\\w-]+$`));
      assert.match(done.lastFrameUrl!, new RegExp(`^${h.url}/media/archives/${raw}/last-frame\\.png\\?expires=\\d+&signature=[\\w-]+$`));
      // The provider's URLs and expiry stay available.
      assert.match(done.upstreamVideoUrl!, new RegExp(`^${h.upstream.url}/files/[^/]+/video\\.mp4\\?expires=\\d+&sig=`));
      assert.match(done.upstreamLastFrameUrl!, new RegExp(`^${h.upstream.url}/files/[^/]+/last-frame\\.png\\?`));
      const expiresIn = Date.parse(done.expiresAt!) - Date.now();
      assert.ok(expiresIn > 23 * 3600_000 && expiresIn <= 24 * 3600_000, `the provider's link expires in ~24 h (${expiresIn} ms)`);

      assert.deepEqual(archiveFiles(h, id), ['last-frame.png', 'video.mp4']);
      assert.ok(readFileSync(join(h.mediaDir, 'archives', raw, 'video.mp4')).equals(SAMPLE_MP4));
      assert.ok(readFileSync(join(h.mediaDir, 'archives', raw, 'last-frame.png')).equals(LAST_FRAME_PNG));
      assert.deepEqual(listFiles(join(h.mediaDir, '.staging')), []);

      const video = await fetch(done.videoUrl!);
      assert.equal(video.status, 200);
      assert.equal(video.headers.get('content-type'), 'video/mp4');
      assert.equal(video.headers.get('content-length'), String(SAMPLE_MP4.length));
      assert.equal(video.headers.get('accept-ranges'), 'bytes');
      assert.match(video.headers.get('cache-control') ?? '', /^private, max-age=\d+$/);
      assert.ok(video.headers.get('etag'));
      assert.ok(video.headers.get('last-modified'));
      assert.ok(Buffer.from(await video.arrayBuffer()).equals(SAMPLE_MP4));
      const frame = await fetch(done.lastFrameUrl!);
      assert.equal(frame.headers.get('content-type'), 'image/png');
      assert.ok(Buffer.from(await frame.arrayBuffer()).equals(LAST_FRAME_PNG));
    });

    it('serves the archive with Range requests (206, suffix, 416), HEAD and revalidation', async () => {
      const url = done.videoUrl!;
      const size = SAMPLE_MP4.length;

      const first = await fetch(url, { headers: { range: 'bytes=0-99' } });
      assert.equal(first.status, 206);
      assert.equal(first.headers.get('content-range'), `bytes 0-99/${size}`);
      assert.equal(first.headers.get('content-length'), '100');
      assert.equal(first.headers.get('content-type'), 'video/mp4');
      const firstBytes = Buffer.from(await first.arrayBuffer());
      assert.equal(firstBytes.length, 100);
      assert.ok(firstBytes.equals(SAMPLE_MP4.subarray(0, 100)));

      const suffix = await fetch(url, { headers: { range: 'bytes=-10' } });
      assert.equal(suffix.status, 206);
      assert.equal(suffix.headers.get('content-range'), `bytes ${size - 10}-${size - 1}/${size}`);
      assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(SAMPLE_MP4.subarray(size - 10)));

      const open = await fetch(url, { headers: { range: `bytes=${size - 50}-` } });
      assert.equal(open.status, 206);
      assert.ok(Buffer.from(await open.arrayBuffer()).equals(SAMPLE_MP4.subarray(size - 50)));

      const beyond = await fetch(url, { headers: { range: `bytes=${size}-` } });
      assert.equal(beyond.status, 416);
      assert.equal(beyond.headers.get('content-range'), `bytes */${size}`);
      await beyond.arrayBuffer();

      const head = await fetch(url, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(size));
      assert.equal(head.headers.get('content-type'), 'video/mp4');
      assert.equal((await head.arrayBuffer()).byteLength, 0);

      const etag = head.headers.get('etag')!;
      const cached = await fetch(url, { headers: { 'if-none-match': etag } });
      assert.equal(cached.status, 304);
      await cached.arrayBuffer();
      const staleIfRange = await fetch(url, { headers: { range: 'bytes=0-99', 'if-range': '"stale"' } });
      assert.equal(staleIfRange.status, 200, 'a stale If-Range gets the whole file');
      assert.equal((await staleIfRange.arrayBuffer()).byteLength, size);
    });

    it('refuses a tampered or expired signature with 403', async () => {
      const link = new URL(done.videoUrl!);
      const path = link.pathname;
      const signature = link.searchParams.get('signature')!;
      const expires = link.searchParams.get('expires')!;
      const flip = (text: string) => text.slice(0, -1) + (text.endsWith('A') ? 'B' : 'A');
      const refused = [
        `${path}?expires=${expires}&signature=${flip(signature)}`,
        `${path}?expires=${Number(expires) + 3600}&signature=${signature}`,
        `${path}?expires=${expires}`,
        path,
        // Another file of the same task, with this file's signature.
        `${path.replace('video.mp4', 'last-frame.png')}?expires=${expires}&signature=${signature}`,
        // Signed with the right key, but expired an hour ago.
        new UrlSigner(Buffer.from(SECRET), 60, () => Date.now() - 2 * 3600_000).sign(path),
      ];
      for (const target of refused) {
        const response = await fetch(h.url + target);
        assert.equal(response.status, 403, target);
        assert.match(await response.text(), /invalid or has expired/);
      }
      // The same key, a fresh expiry: served.
      const fresh = await fetch(h.url + new UrlSigner(Buffer.from(SECRET), 60).sign(path));
      assert.equal(fresh.status, 200);
      await fresh.arrayBuffer();
    });

    it('retries failed downloads with backoff, then archives', async () => {
      h.upstream.sandbox.setFaults({ errorRate: { media: 1 } });
      let failing: { attempts: number; reason: string | null };
      try {
        const id = await createTask(h, {}, a);
        failing = await eventually(() => {
          const row = h.app.tasks.get(rawId(id));
          return row && row.archiveAttempts >= 3 && { attempts: row.archiveAttempts, reason: row.archiveError };
        }, 'three attempts failed', 10_000);
        h.upstream.sandbox.setFaults({ errorRate: { media: 0 } });
        const task = await settled(h, id, a);
        assert.equal(task.archive?.status, 'ARCHIVED');
        assert.ok(task.archive!.attempts >= 3, `failed attempts are counted: ${task.archive!.attempts}`);
        assert.equal(task.archive?.reason, null, 'no reason left once archived');
        assert.equal(task.archive?.sha256, sha256(SAMPLE_MP4));
        assert.match(failing.reason ?? '', /^HTTP_50[023]: answered 50[023]/, 'the retried failure is recorded');
        assert.doesNotMatch(failing.reason ?? '', /sig=/, 'the signed query string is not recorded');
        // Backoff: base 50 ms doubling (jitter 0.8-1.2), so attempts 1..4 span at least 0.8 * (50 + 100 + 200) ms.
        const times = h.upstream.fileRequests('video.mp4').filter((r) => r.path.includes(h.app.tasks.get(rawId(id))!.upstreamTaskId!)).map((r) => r.at);
        assert.ok(times.length >= 4, `${times.length} downloads`);
        assert.ok(times[3]! - times[0]! >= 280, `attempts spaced by backoff: ${times.map((t) => t - times[0]!).join(', ')} ms`);
        assert.ok(times[2]! - times[1]! >= 80 && times[3]! - times[2]! >= 160, `the wait grows: ${times.map((t) => t - times[0]!).join(', ')} ms`);
      } finally {
        h.upstream.sandbox.setFaults({ errorRate: { media: 0 } });
      }
    });

    it('retries a download cut short, then archives', async () => {
      let cut = 0;
      h.upstream.interceptFiles = (req, res, next) => {
        if (cut > 0 || !req.url?.includes('/video.mp4')) return next();
        cut += 1;
        res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(SAMPLE_MP4.length) });
        res.write(SAMPLE_MP4.subarray(0, 3000), () => res.destroy());
      };
      try {
        const id = await createTask(h, {}, a);
        const task = await settled(h, id, a);
        assert.equal(cut, 1);
        assert.equal(task.archive?.status, 'ARCHIVED');
        assert.equal(task.archive?.attempts, 1);
        assert.equal(task.archive?.sha256, sha256(SAMPLE_MP4));
        assert.deepEqual(listFiles(join(h.mediaDir, '.staging')), []);
      } finally {
        h.upstream.interceptFiles = null;
      }
    });

    it('reports a link that expired before it could be archived as FAILED (EXPIRED), not as success', async () => {
      // The provider's link dies early (its clock says a day passed): the result host answers 403.
      h.upstream.interceptFiles = (_req, res) => { res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"busy"}}'); };
      try {
        const id = await createTask(h, {}, a);
        await eventually(() => (h.app.tasks.get(rawId(id))?.archiveAttempts ?? 0) >= 1, 'a first attempt failed');
        sandboxSkewMs = 25 * 3600_000;
        h.upstream.interceptFiles = null;
        const task = await settled(h, id, a);
        assert.equal(task.status, 'COMPLETED');
        assert.equal(task.archive?.status, 'FAILED');
        assert.match(task.archive!.reason!, /^EXPIRED: the provider no longer serves the result \(HTTP_403: answered 403 for /);
        assert.equal(task.videoUrl, task.upstreamVideoUrl, 'videoUrl does not claim an archived copy');
        assert.doesNotMatch(task.videoUrl!, /\/media\/archives\//);
        assert.deepEqual(archiveFiles(h, id), []);
        assert.deepEqual(listFiles(join(h.mediaDir, '.staging')), []);
      } finally {
        sandboxSkewMs = 0;
        h.upstream.interceptFiles = null;
      }
    });

    it('refuses content of the wrong type (HTML from the result host): FAILED WRONG_TYPE', async () => {
      h.upstream.interceptFiles = (_req, res) => {
        res.writeHead(200, { 'content-type': 'video/mp4' }).end('<!doctype html><html><body>Please log in</body></html>');
      };
      try {
        const id = await createTask(h, {}, a);
        const task = await settled(h, id, a);
        assert.equal(task.archive?.status, 'FAILED');
        assert.match(task.archive!.reason!, /^WRONG_TYPE: expected an MP4 video, got unknown content/);
        assert.equal(task.archive?.attempts, 1, 'not retried');
        assert.equal(task.videoUrl, task.upstreamVideoUrl);
        assert.deepEqual(archiveFiles(h, id), []);
        assert.deepEqual(listFiles(join(h.mediaDir, '.staging')), []);
      } finally {
        h.upstream.interceptFiles = null;
      }
    });

    it('deleteVideoTask deletes a finished task with its files; refuses another key\'s, and an unfinished one until cancelled', async () => {
      const id = done.id;
      const raw = rawId(id);
      assert.deepEqual(archiveFiles(h, id), ['last-frame.png', 'video.mp4']);

      const theirs = await h.gql(DELETE, { id }, b);
      assert.deepEqual(theirs.body.data.deleteVideoTask.userErrors.map((e: { code: string }) => e.code), ['NOT_FOUND']);
      assert.equal(theirs.body.data.deleteVideoTask.deletedTaskId, null);
      assert.ok(h.app.tasks.get(raw), 'still there');
      assert.deepEqual(archiveFiles(h, id), ['last-frame.png', 'video.mp4']);

      const mine = await h.gql(DELETE, { id }, a);
      assert.deepEqual(mine.body.data.deleteVideoTask, { deletedTaskId: id, userErrors: [] });
      assert.equal(await readTask(h, id, a), null);
      assert.equal(h.app.tasks.get(raw), undefined);
      assert.deepEqual(archiveFiles(h, id), [], 'its archived files are gone');
      const link = await fetch(done.videoUrl!);
      assert.equal(link.status, 404, 'a link handed out before no longer serves the file');
      await link.arrayBuffer();
      const again = await h.gql(DELETE, { id }, a);
      assert.deepEqual(again.body.data.deleteVideoTask.userErrors.map((e: { code: string }) => e.code), ['NOT_FOUND']);

      // An unfinished task (a sandbox at the seeds' real pace, so it surely is): refused until cancelled.
      const slow = await startMediaApp({ sandbox: { timeScale: 1 } });
      try {
        const running = await createTask(slow, { model: 'doubao-seedance-1-0-pro-quality' });
        const unfinished = await slow.gql(DELETE, { id: running });
        assert.deepEqual(unfinished.body.data.deleteVideoTask.userErrors, [{ field: ['id'], code: 'NOT_FINISHED', message: 'The task has not finished: cancel it first.' }]);
        assert.ok(slow.app.tasks.get(rawId(running)));
        const cancelled = await slow.gql(`mutation($id: ID!) { cancelVideoTask(id: $id) { task { status } } }`, { id: running });
        assert.equal(cancelled.body.data.cancelVideoTask.task.status, 'CANCELLED');
        assert.deepEqual((await slow.gql(DELETE, { id: running })).body.data.deleteVideoTask, { deletedTaskId: running, userErrors: [] });
        assert.equal(slow.app.tasks.get(rawId(running)), undefined);
      } finally {
        await slow.stop();
      }
    });
  });

  describe('archive limits', () => {
    it('caps the size: FAILED TOO_LARGE by Content-Length, and while streaming when none is given', async () => {
      const h = await startMediaApp({ env: { ARCHIVE_MAX_BYTES: '4000' } });
      try {
        const declared = await settled(h, await createTask(h, {}));
        assert.equal(declared.archive?.status, 'FAILED');
        assert.equal(declared.archive?.reason, `TOO_LARGE: ${SAMPLE_MP4.length} bytes, more than ARCHIVE_MAX_BYTES (4000)`);
        assert.equal(declared.videoUrl, declared.upstreamVideoUrl);

        // No Content-Length: the stream is cut at the cap.
        h.upstream.interceptFiles = (_req, res) => {
          res.writeHead(200, { 'content-type': 'video/mp4' });
          let at = 0;
          const more = () => {
            while (at < SAMPLE_MP4.length) {
              const chunk = SAMPLE_MP4.subarray(at, at + 1000);
              at += 1000;
              if (!res.write(chunk)) return void res.once('drain', more);
            }
            res.end();
          };
          more();
        };
        const streamed = await settled(h, await createTask(h, {}));
        assert.equal(streamed.archive?.status, 'FAILED');
        assert.equal(streamed.archive?.reason, 'TOO_LARGE: more than ARCHIVE_MAX_BYTES (4000)');
        assert.equal(streamed.archive?.attempts, 1, 'not retried');
        assert.deepEqual(listFiles(join(h.mediaDir, 'archives')), []);
        assert.deepEqual(listFiles(join(h.mediaDir, '.staging')), [], 'the partial file is removed');
      } finally {
        await h.stop();
      }
    });

    it('reports a result whose link expired before archiving (short result TTL) as FAILED EXPIRED, without downloading', async () => {
      const h = await startMediaApp({ sandbox: { resultTtlSeconds: 0 } });
      try {
        const task = await settled(h, await createTask(h, {}));
        assert.equal(task.status, 'COMPLETED');
        assert.ok(Date.parse(task.expiresAt!) <= Date.parse(task.completedAt!), 'the provider gave a link already expired');
        assert.equal(task.archive?.status, 'FAILED');
        assert.match(task.archive!.reason!, /^EXPIRED: the provider's link expired at \S+, before it could be archived$/);
        assert.equal(task.videoUrl, task.upstreamVideoUrl, 'videoUrl is still the provider\'s (dead) URL, not an archive');
        assert.equal(h.upstream.fileRequests().length, 0, 'no download was tried');
      } finally {
        await h.stop();
      }
    });
  });

  describe('downloads only from allowed hosts', () => {
    it('refuses a result on a loopback address from a real-style provider, without connecting', async () => {
      const h = await startMediaApp({ accounts: realProviderAccounts });
      try {
        const task = await settled(h, await createTask(h, {}));
        assert.equal(task.status, 'COMPLETED');
        assert.equal(task.archive?.status, 'FAILED');
        assert.match(task.archive!.reason!, /127\.0\.0\.1 is a private, loopback or link-local address$/);
        assert.equal(task.archive?.attempts, 1, 'refused, not retried');
        assert.equal(h.upstream.fileRequests().length, 0, 'no request reached the result host');
        assert.equal(task.videoUrl, task.upstreamVideoUrl);
      } finally {
        await h.stop();
      }
    });

    it('refuses a result host that is neither the provider\'s nor configured as trusted', async () => {
      const h = await startMediaApp({ accounts: realProviderAccounts, sandbox: { publicBaseUrl: 'http://cdn.untrusted.test' } });
      try {
        const task = await settled(h, await createTask(h, {}));
        assert.match(task.upstreamVideoUrl!, /^http:\/\/cdn\.untrusted\.test\/files\//);
        assert.equal(task.archive?.status, 'FAILED');
        assert.match(task.archive!.reason!, /cdn\.untrusted\.test is neither a result host of the provider nor a trusted host$/);
        assert.equal(task.archive?.attempts, 1, 'refused, not retried');
      } finally {
        await h.stop();
      }
    });

    it('refuses the cloud metadata address even when configured as trusted', async () => {
      const h = await startMediaApp({
        accounts: realProviderAccounts,
        sandbox: { publicBaseUrl: 'http://169.254.169.254/latest/meta-data' },
        env: { MEDIA_TRUSTED_HOSTS: '169.254.169.254' },
      });
      try {
        const task = await settled(h, await createTask(h, {}));
        assert.match(task.upstreamVideoUrl!, /^http:\/\/169\.254\.169\.254\//);
        assert.equal(task.archive?.status, 'FAILED');
        assert.match(task.archive!.reason!, /169\.254\.169\.254 is a private, loopback or link-local address$/);
        assert.equal(task.archive?.attempts, 1, 'refused, not retried');
      } finally {
        await h.stop();
      }
    });

    describe('SafeDownloader', { concurrency: false }, () => {
      let server: Server;
      let port: number;
      let connections = 0;
      const downloader = new SafeDownloader(2000);
      const permit = (trustedHosts: string[], privateHostsAllowed: string[] = []): DownloadPermission => ({ trustedHosts, privateHostsAllowed });
      const read = async (url: string, permission: DownloadPermission) => {
        const response = await downloader.open(url, permission);
        return response.body.text();
      };

      before(async () => {
        server = createServer((req: IncomingMessage, res: ServerResponse) => {
          if (req.url === '/ok') return void res.end('ok');
          if (req.url?.startsWith('/redirect?to=')) return void res.writeHead(302, { location: decodeURIComponent(req.url.slice('/redirect?to='.length)) }).end();
          res.writeHead(410).end();
        });
        server.on('connection', () => { connections += 1; });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
        port = (server.address() as AddressInfo).port;
      });
      after(async () => {
        await downloader.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      });

      it('refuses hosts that are neither the provider\'s nor trusted, credentials and other schemes', async () => {
        await assert.rejects(downloader.open(`http://cdn.evil.test:${port}/ok`, permit(['cdn.provider.test'])),
          (e: Error) => e instanceof DownloadRefusedError && /cdn\.evil\.test is neither a result host of the provider nor a trusted host/.test(e.message));
        await assert.rejects(downloader.open(`http://user:secret@127.0.0.1:${port}/ok`, permit(['127.0.0.1'], ['127.0.0.1'])),
          (e: Error) => e instanceof DownloadRefusedError && /credentials/.test(e.message));
        await assert.rejects(downloader.open('file:///etc/passwd', permit(['127.0.0.1'])),
          (e: Error) => e instanceof DownloadRefusedError && /file: is not downloadable/.test(e.message));
        assert.equal(connections, 0);
      });

      it('refuses private, loopback and link-local literals unless that host is allowed', async () => {
        for (const host of ['127.0.0.1', '0x7f000001', '[::1]', '169.254.169.254', '10.0.0.8', '192.168.1.1', 'localhost', '[::ffff:127.0.0.1]']) {
          const url = `http://${host}:${port}/ok`;
          const name = new URL(url).hostname.replace(/^\[|\]$/g, '');
          await assert.rejects(downloader.open(url, permit([name])),
            (e: Error) => e instanceof DownloadRefusedError && /is a private, loopback or link-local address/.test(e.message), host);
        }
        assert.equal(connections, 0, 'no connection was made');
        assert.equal(await read(`http://127.0.0.1:${port}/ok`, permit(['127.0.0.1'], ['127.0.0.1'])), 'ok', 'allowed when listed');
      });

      it('checks every redirect hop', async () => {
        const allowed = permit(['127.0.0.1', '127.0.0.2'], ['127.0.0.1']);
        await assert.rejects(downloader.open(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(`http://127.0.0.2:${port}/ok`)}`, allowed),
          (e: Error) => e instanceof DownloadRefusedError && /127\.0\.0\.2 is a private/.test(e.message));
        await assert.rejects(downloader.open(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent('http://elsewhere.test/x')}`, allowed),
          (e: Error) => e instanceof DownloadRefusedError && /elsewhere\.test is neither/.test(e.message));
        assert.equal(await read(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent('/ok')}`, allowed), 'ok');
        await assert.rejects(downloader.open(`http://127.0.0.1:${port}/gone`, allowed),
          (e: Error) => e instanceof DownloadHttpError && e.httpStatus === 410);
      });

      it('refuses, at connect time, a name that resolves to a private address (DNS guard)', async (t) => {
        // A name the URL check cannot judge (not `localhost`, not an IP) that resolves to loopback on this
        // machine: the host name is the usual one (/etc/hosts), else a few common aliases.
        const candidates = [hostname(), 'ip6-localhost', 'ip6-loopback', 'localhost.localdomain'];
        let alias: { name: string; address: string } | null = null;
        for (const name of candidates) {
          if (isInternalHost(name)) continue;
          try {
            const found = await lookup(name);
            if (isInternalHost(found.address) && (found.address === '127.0.0.1' || found.address.startsWith('127.'))) {
              alias = { name, address: found.address };
              break;
            }
          } catch { /* not resolvable here */ }
        }
        if (!alias) return t.skip(`none of ${candidates.join(', ')} resolves to 127.x here`);
        const before = connections;
        await assert.rejects(downloader.open(`http://${alias.name}:${port}/ok`, permit([alias.name])),
          (e: Error) => /resolves to a private address \(127\./.test(`${e.message} ${(e as { cause?: Error }).cause?.message ?? ''}`), alias.name);
        assert.equal(connections, before, 'refused before connecting');
        assert.equal(await read(`http://${alias.name}:${port}/ok`, permit([alias.name], [alias.name])), 'ok', 'allowed when the host is in privateHostsAllowed');
      });
    });
  });

  describe('retention', () => {
    it('deletes archived files older than ARCHIVE_RETENTION_DAYS and marks the archive DELETED', async () => {
      let skewMs = 0;
      const h = await startMediaApp({ env: { ARCHIVE_RETENTION_DAYS: '1' }, now: () => new Date(Date.now() + skewMs) });
      try {
        const id = await createTask(h, {});
        const archived = await settled(h, id);
        assert.equal(archived.archive?.status, 'ARCHIVED');
        assert.deepEqual(archiveFiles(h, id), ['video.mp4']);

        // Half a day later: a sweep runs (they run at most once a minute of the service's clock) and keeps it.
        skewMs = 12 * 3600_000;
        await new Promise((resolve) => setTimeout(resolve, 400));
        assert.equal((await readTask(h, id)).archive?.status, 'ARCHIVED');
        assert.deepEqual(archiveFiles(h, id), ['video.mp4']);

        // A day and an hour later: gone.
        skewMs = 25 * 3600_000;
        const deleted = await eventually(async () => {
          const task = await readTask(h, id);
          return task.archive?.status === 'DELETED' && task;
        }, 'the archive is deleted');
        assert.match(deleted.archive!.reason!, /^RETENTION: archived files are kept 1 days/);
        assert.deepEqual(archiveFiles(h, id), []);
        assert.equal(deleted.videoUrl, deleted.upstreamVideoUrl, 'videoUrl falls back to the provider\'s URL');
        const link = await fetch(archived.videoUrl!);
        assert.equal(link.status, 404);
        await link.arrayBuffer();
      } finally {
        await h.stop();
      }
    });
  });

  describe('an archive interrupted by a crash', () => {
    let upstream: MediaUpstream;
    const db = tempDatabase();
    const mediaDir = join(dirname(db.file), 'media');
    const processes: ServiceProcess[] = [];
    const env = { MEDIA_PRIVATE_HOSTS_ALLOWED: '127.0.0.1', ARCHIVE_TIMEOUT_MS: '20000' };

    before(async () => { upstream = await startMediaUpstream(); });
    after(async () => {
      for (const service of processes) await service.stop();
      await upstream.close();
      db.remove();
    });

    it('is done again after a restart, exactly once, and the stale partial file is cleaned up', async () => {
      // The result host sends the first 4 KB of the video, then nothing, while the first process lives.
      let crashed = false;
      const held: ServerResponse[] = [];
      let sentWhileAlive = 0;
      upstream.interceptFiles = (req, res, next) => {
        if (crashed || !req.url?.includes('/video.mp4')) return next();
        sentWhileAlive += 1;
        res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(SAMPLE_MP4.length) });
        res.write(SAMPLE_MP4.subarray(0, 4096));
        held.push(res);
      };

      const first = await startServiceProcess({ databaseFile: db.file, upstreamUrl: upstream.url, env });
      processes.push(first);
      const id = await createTask(first, {});
      const staged = await eventually(() => {
        const files = listFiles(join(mediaDir, '.staging'));
        const path = files[0] && join(mediaDir, '.staging', files[0]);
        return path && existsSync(path) && readFileSync(path).length >= 4096 && path;
      }, 'the download is half-way in a staging file', 15_000);
      first.kill('SIGKILL');
      await first.exited;
      crashed = true;
      for (const res of held) res.destroy();

      // What the crash left: the archive claimed but PENDING, and the partial file.
      const sqlite = new Database(db.file, { readonly: true });
      try {
        const row = sqlite.prepare('SELECT archive_status AS status, archive_attempts AS attempts, lease_owner AS owner FROM video_tasks WHERE id = ?').get(rawId(id)) as { status: string; attempts: number; owner: string | null };
        assert.equal(row.status, 'PENDING');
        assert.ok(row.owner, 'still leased to the dead process');
      } finally {
        sqlite.close();
      }
      assert.ok(existsSync(staged), 'the partial download is left behind');
      // Leftovers are removed at startup once older than an hour (younger ones may be another process's).
      const old = new Date(Date.now() - 2 * 3600_000);
      for (const name of listFiles(join(mediaDir, '.staging'))) utimesSync(join(mediaDir, '.staging', name), old, old);
      const requestsBeforeRestart = upstream.fileRequests('video.mp4').length;
      assert.equal(requestsBeforeRestart, sentWhileAlive);

      const second = await startServiceProcess({ databaseFile: db.file, upstreamUrl: upstream.url, env });
      processes.push(second);
      const task = await settled(second, id, undefined, 20_000);
      assert.equal(task.archive?.status, 'ARCHIVED');
      assert.equal(task.archive?.sha256, sha256(SAMPLE_MP4));
      assert.equal(task.archive?.bytes, SAMPLE_MP4.length);
      assert.ok(task.archive!.attempts <= 1, `attempts: ${task.archive!.attempts}`);
      assert.match(task.videoUrl!, new RegExp(`^${second.url}/media/archives/${rawId(id)}/video\\.mp4\\?`));

      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(upstream.fileRequests('video.mp4').length - requestsBeforeRestart, 1, 'downloaded once more after the restart, no more');
      assert.deepEqual(listFiles(join(mediaDir, 'archives')), [`${rawId(id)}/video.mp4`], 'one committed file');
      assert.ok(readFileSync(join(mediaDir, 'archives', rawId(id), 'video.mp4')).equals(SAMPLE_MP4));
      assert.deepEqual(listFiles(join(mediaDir, '.staging')), [], 'no staging leftovers');
      const served = await fetch(task.videoUrl!, { headers: { range: 'bytes=0-99' } });
      assert.equal(served.status, 206);
      assert.ok(Buffer.from(await served.arrayBuffer()).equals(SAMPLE_MP4.subarray(0, 100)));
    });
  });
});
