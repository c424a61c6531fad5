// Shared by the media tests (uploads, archiving, chained generation): small valid files of every
// accepted kind built in code, GraphQL multipart uploads over real HTTP, a sandbox upstream whose
// result-file answers a test can take over (a slow, dead, lying or expired CDN), and the service
// built in-process on a directory the test chooses (so that two apps, or a restart, share it).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { buildApp, type App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { SandboxUpstream, type SandboxOptions } from '../../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY, sandboxAccounts, type ProviderAccount } from '../../src/upstream/providers.ts';
import { TEST_ENV } from './test-env.ts';

// ---------------------------------------------------------------------------------------------
// Files

const asset = (name: string) => readFileSync(new URL(`../../src/sandbox/assets/${name}`, import.meta.url));

/** The sandbox's result video (what an archive must hold, byte for byte). */
export const SAMPLE_MP4 = asset('sample.mp4');
/** The sandbox's last frame (doubao-seedance-2.0 with return_last_frame). */
export const LAST_FRAME_PNG = asset('last-frame.png');

export const sha256 = (bytes: Buffer | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * A JPEG as file-type and the completeness check see one: SOI, a JFIF APP0 segment, comment
 * segments carrying `padding` filler bytes (to reach a size), EOI.
 */
export function jpeg(padding = 0, fill = 0x20): Buffer {
  const parts: Buffer[] = [
    Buffer.from([0xff, 0xd8]),
    Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]),
  ];
  let left = padding;
  while (left > 0) {
    const size = Math.min(left, 65_533);
    const segment = Buffer.alloc(4 + size, fill);
    segment.writeUInt16BE(0xfffe, 0);
    segment.writeUInt16BE(size + 2, 2);
    parts.push(segment);
    left -= size;
  }
  parts.push(Buffer.from([0xff, 0xd9]));
  return Buffer.concat(parts);
}

/** A real 1x1 lossless WEBP: RIFF header, WEBP, one VP8L chunk. */
export const WEBP = Buffer.from('UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==', 'base64');

/** A real 1x1 GIF (a type this service does not take). */
export const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/** An MP3: an ID3v2.3 tag with a title, then `frames` silent MPEG-1 Layer III frames (128 kb/s, 44.1 kHz, 417 bytes). */
export function mp3(frames = 12): Buffer {
  const title = Buffer.from('\0media test', 'latin1');
  const tit2 = Buffer.alloc(10);
  tit2.write('TIT2', 0, 'latin1');
  tit2.writeUInt32BE(title.length, 4);
  const tagBody = Buffer.concat([tit2, title]);
  const header = Buffer.from([0x49, 0x44, 0x33, 0x03, 0x00, 0x00, 0, 0, 0, 0]);
  const size = tagBody.length; // syncsafe: 7 bits per byte
  header[6] = (size >> 21) & 0x7f;
  header[7] = (size >> 14) & 0x7f;
  header[8] = (size >> 7) & 0x7f;
  header[9] = size & 0x7f;
  const frame = Buffer.alloc(417);
  frame.set([0xff, 0xfb, 0x90, 0x64]);
  return Buffer.concat([header, tagBody, ...Array.from({ length: frames }, () => frame)]);
}

/** A WAV: RIFF/WAVE, a PCM `fmt ` chunk (mono, 8 kHz, 16 bit) and `samples` samples of silence. */
export function wav(samples = 800): Buffer {
  const data = samples * 2;
  const file = Buffer.alloc(44 + data);
  file.write('RIFF', 0, 'latin1');
  file.writeUInt32LE(36 + data, 4);
  file.write('WAVE', 8, 'latin1');
  file.write('fmt ', 12, 'latin1');
  file.writeUInt32LE(16, 16);
  file.writeUInt16LE(1, 20); // PCM
  file.writeUInt16LE(1, 22); // mono
  file.writeUInt32LE(8000, 24);
  file.writeUInt32LE(16_000, 28);
  file.writeUInt16LE(2, 32);
  file.writeUInt16LE(16, 34);
  file.write('data', 36, 'latin1');
  file.writeUInt32LE(data, 40);
  return file;
}

/** MP4 boxes: `ftyp`, an `mdat` of `payloadBytes` (generated, never held whole), `moov`; as chunks. */
export function* mp4Chunks(payloadBytes: number, chunkBytes = 64 * 1024): Generator<Buffer> {
  const ftyp = Buffer.alloc(32);
  ftyp.writeUInt32BE(32, 0);
  ftyp.write('ftypisom', 4, 'latin1');
  ftyp.writeUInt32BE(0x200, 12);
  ftyp.write('isomiso2avc1mp41', 16, 'latin1');
  yield ftyp;
  const mdat = Buffer.alloc(8);
  mdat.writeUInt32BE(8 + payloadBytes, 0);
  mdat.write('mdat', 4, 'latin1');
  yield mdat;
  const chunk = Buffer.alloc(chunkBytes, 0x5a);
  for (let left = payloadBytes; left > 0; left -= chunkBytes) yield left >= chunkBytes ? chunk : chunk.subarray(0, left);
  const moov = Buffer.alloc(16);
  moov.writeUInt32BE(16, 0);
  moov.write('moov', 4, 'latin1');
  moov.writeUInt32BE(8, 8);
  moov.write('free', 12, 'latin1');
  yield moov;
}

export const mp4Size = (payloadBytes: number) => 32 + 8 + payloadBytes + 16;

// ---------------------------------------------------------------------------------------------
// HTTP

export interface GqlResult<T = any> {
  status: number;
  headers: Headers;
  body: { data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

/** A JSON GraphQL request, with the caller's API key when given. */
export async function gql<T = any>(baseUrl: string, query: string, variables: Record<string, unknown> = {}, key?: string): Promise<GqlResult<T>> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, headers: response.headers, body: await response.json() as GqlResult<T>['body'] };
}

export const UPLOAD_MEDIA = `mutation($file: Upload!) {
  uploadMedia(file: $file) {
    asset { id url kind contentType bytes sha256 filename createdAt }
    userErrors { field code message }
  }
}`;

export interface UploadFile {
  bytes: Buffer;
  filename?: string;
  /** The part's declared Content-Type (none: application/octet-stream). */
  type?: string;
}

/**
 * uploadMedia as a GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec):
 * an `operations` field, a `map` field, then the file part, sent by undici's fetch with a real FormData.
 */
export async function uploadMedia(baseUrl: string, file: UploadFile, key?: string): Promise<GqlResult> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: UPLOAD_MEDIA, variables: { file: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([new Uint8Array(file.bytes)], file.type ? { type: file.type } : {}), file.filename ?? 'upload.bin');
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { accept: 'application/graphql-response+json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: form,
  });
  const text = await response.text();
  let body: GqlResult['body'];
  try {
    body = JSON.parse(text) as GqlResult['body'];
  } catch {
    throw new Error(`uploadMedia answered ${response.status} with a body that is not JSON: ${text.slice(0, 300)}`);
  }
  return { status: response.status, headers: response.headers, body };
}

/** The raw id inside a Relay global id ("VideoTask:<uuid>"). */
export const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').replace(/^VideoTask:/, '');

export async function eventually<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Every file below `dir` (relative paths with `/`), hidden ones and `.staging` included. */
export function listFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (at: string) => {
    let entries;
    try {
      entries = readdirSync(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else found.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return found.sort();
}

// ---------------------------------------------------------------------------------------------
// The upstream: a sandbox on its own port, recording requests, with result files a test can intercept

export interface ReceivedRequest {
  method: string;
  path: string;
  at: number;
}

/** Takes over a result-file request; `next()` lets the sandbox answer it as usual. */
export type FileInterceptor = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

export interface MediaUpstream {
  /** Base URL of the sandbox (its provider mounts are below it: /toapis, /odkkk/apiv1). */
  url: string;
  sandbox: SandboxUpstream;
  received: ReceivedRequest[];
  /** Requests for result files (`/files/<task>/<file>`), in arrival order. */
  fileRequests(file?: 'video.mp4' | 'last-frame.png'): ReceivedRequest[];
  /** When set, result-file requests go to it instead of straight to the sandbox. */
  interceptFiles: FileInterceptor | null;
  close(): Promise<void>;
}

export async function startMediaUpstream(options: Partial<SandboxOptions> = {}): Promise<MediaUpstream> {
  const sandbox = new SandboxUpstream({ apiKey: SANDBOX_API_KEY, timeScale: 0.005, allowInternalCallbacks: true, ...options });
  const received: ReceivedRequest[] = [];
  const upstream: MediaUpstream = {
    url: '',
    sandbox,
    received,
    interceptFiles: null,
    fileRequests: (file) => received.filter((r) => r.path.startsWith('/files/') && (!file || r.path.split('?')[0]!.endsWith(`/${file}`))),
    close: async () => {
      sandbox.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    received.push({ method: req.method ?? 'GET', path: req.url ?? '/', at: Date.now() });
    const next = () => {
      if (!sandbox.handle(req, res)) res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"no route"}}');
    };
    const intercept = upstream.interceptFiles;
    if (intercept && (req.url ?? '').startsWith('/files/')) intercept(req, res, next);
    else next();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (!options.publicBaseUrl) sandbox.setPublicBaseUrl(upstream.url);
  return upstream;
}

// ---------------------------------------------------------------------------------------------
// The service, in-process

/** The harness's compressed provider pace (test/support/harness.ts), for fast tests. */
export const FAST_ENV: Readonly<Record<string, string>> = {
  ...TEST_ENV,
  // Tests poll tasks over GraphQL every few ms: the per-key limits are not what they test.
  RATE_LIMIT_REQUESTS_PER_MINUTE: '100000',
  RATE_LIMIT_TASKS_PER_MINUTE: '1000',
};

export interface MediaApp {
  url: string;
  app: App;
  config: Config;
  dir: string;
  mediaDir: string;
  upstream: MediaUpstream;
  gql<T = any>(query: string, variables?: Record<string, unknown>, key?: string): Promise<GqlResult<T>>;
  upload(file: UploadFile, key?: string): Promise<GqlResult>;
  /** Stops the app, then the upstream when this app started it, then removes the directory when this app made it. */
  stop(): Promise<void>;
}

export interface MediaAppOptions {
  env?: Record<string, string>;
  /** A directory (database file and media) to use, e.g. one another app used before; made when absent. */
  dir?: string;
  /** An upstream to use (it is then not closed on stop); one is started when absent. */
  upstream?: MediaUpstream;
  sandbox?: Partial<SandboxOptions>;
  /** The provider accounts; default: the sandbox's, which serve results from a private (loopback) host. */
  accounts?(upstreamUrl: string): ProviderAccount[];
  now?: () => Date;
}

export async function startMediaApp(options: MediaAppOptions = {}): Promise<MediaApp> {
  const ownDir = !options.dir;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'seedance-media-'));
  const mediaDir = join(dir, 'media');
  const config = loadConfig({
    PORT: '0',
    DATABASE_URL: join(dir, 'tasks.sqlite'),
    MEDIA_DIR: mediaDir,
    ...FAST_ENV,
    ...options.env,
  });
  const ownUpstream = !options.upstream;
  const upstream = options.upstream ?? await startMediaUpstream(options.sandbox);
  const accounts = options.accounts?.(upstream.url) ?? sandboxAccounts(upstream.url, { allowsInternalCallbacks: true });
  const app = buildApp({ config, logger: createLogger(config.LOG_LEVEL), accounts, now: options.now });
  const url = await app.start(0, '127.0.0.1');
  let stopped = false;
  return {
    url,
    app,
    config,
    dir,
    mediaDir,
    upstream,
    gql: (query, variables, key) => gql(url, query, variables, key),
    upload: (file, key) => uploadMedia(url, file, key),
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.stop();
      if (ownUpstream) await upstream.close();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
