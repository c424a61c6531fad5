// Memory while media streams through the service: (a) a 200 MB MP4 result archived from a local result
// host, (b) a 10 MB image uploaded over a GraphQL multipart request. Both files are generated on the fly
// and streamed with backpressure, never held whole, by the client side either, so what grows is the
// service's own buffering. Each case runs in a fresh child process (so one case's freed pages do not
// hide the next one's growth) holding the service, the sandbox, the result host and the client: the
// numbers are an upper bound on what the service adds.
//
//   npx tsx bench/media-memory.ts            (ARCHIVE_MB=200 UPLOAD_BYTES=10484736 to change the sizes)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mp4Chunks, mp4Size, rawId, startMediaApp, type MediaApp } from '../test/support/media-kit.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MB = 1024 * 1024;
const ARCHIVE_PAYLOAD = Number(process.env.ARCHIVE_MB ?? 200) * MB;
// Just under the 10 MB image limit (UPLOAD_MAX_IMAGE_BYTES's default, 10 * 1024 * 1024).
const UPLOAD_BYTES = Number(process.env.UPLOAD_BYTES ?? 10 * MB - 1024);
// A larger upload as a reference: if memory followed the file, it would show here.
const UPLOAD_MP4_PAYLOAD = Number(process.env.UPLOAD_MP4_MB ?? 90) * MB;
const SAMPLE_MS = 50;

interface Sample { at: number; rss: number; heapUsed: number; external: number }

interface Measurement {
  name: string;
  fileBytes: number;
  seconds: number;
  samples: number;
  baseline: Sample;
  peak: { rss: number; heapUsed: number; external: number };
}

const mb = (bytes: number) => (bytes / MB).toFixed(1);

/** Settles the heap, takes a baseline, then samples every 50 ms while `work` runs. */
async function measure(name: string, fileBytes: number, work: () => Promise<void>): Promise<Measurement> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const take = (): Sample => {
    const usage = process.memoryUsage();
    return { at: performance.now(), rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external };
  };
  const baseline = take();
  const samples: Sample[] = [baseline];
  const timer = setInterval(() => samples.push(take()), SAMPLE_MS);
  const started = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  samples.push(take());
  return {
    name,
    fileBytes,
    seconds: (performance.now() - started) / 1000,
    samples: samples.length,
    baseline,
    peak: {
      rss: Math.max(...samples.map((s) => s.rss)),
      heapUsed: Math.max(...samples.map((s) => s.heapUsed)),
      external: Math.max(...samples.map((s) => s.external)),
    },
  };
}

async function waitFor<T>(probe: () => T | undefined | null | false, what: string, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function archiveOnce(h: MediaApp): Promise<{ bytes: number; sha256: string }> {
  const { body } = await h.gql(`mutation { createVideoTask(input: { model: "doubao-seedance-1-0-pro-fast", prompt: "Memory bench" }) { task { id } userErrors { code message } } }`);
  const id = rawId(body.data.createVideoTask.task.id);
  const row = await waitFor(() => {
    const task = h.app.tasks.get(id);
    if (task?.archiveStatus === 'FAILED') throw new Error(`archive failed: ${task.archiveError}`);
    return task?.archiveStatus === 'ARCHIVED' && task;
  }, 'the result is archived', 600_000);
  return { bytes: row.archivedVideoBytes!, sha256: row.archivedVideoSha256! };
}

/** The bytes of a JPEG of exactly `size` bytes (SOI, APP0, comment segments, EOI), in chunks. */
function* jpegChunks(size: number): Generator<Buffer> {
  const head = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  yield head;
  let left = size - head.length - 2;
  const full = Buffer.alloc(4 + 65_533, 0x20);
  full.writeUInt16BE(0xfffe, 0);
  full.writeUInt16BE(65_535, 2);
  while (left > 0) {
    // A segment is at least 4 bytes (marker and length); the last one takes what is left.
    const segment = left >= full.length + 4 || left === full.length ? full : Buffer.alloc(Math.min(left, full.length), 0x20);
    if (segment !== full) {
      segment.writeUInt16BE(0xfffe, 0);
      segment.writeUInt16BE(segment.length - 2, 2);
    }
    yield segment;
    left -= segment.length;
  }
  yield Buffer.from([0xff, 0xd9]);
}

/** uploadMedia over multipart, the file part streamed from a generator with backpressure. */
async function streamUpload(h: MediaApp, size: number, file: { name: string; type: string; chunks: Iterable<Buffer> } = { name: 'big.jpg', type: 'image/jpeg', chunks: jpegChunks(size) }): Promise<{ status: number; body: any; sha256: string }> {
  const boundary = '----media-memory-bench';
  const head = Buffer.from([
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n`,
    JSON.stringify({ query: 'mutation($file: Upload!) { uploadMedia(file: $file) { asset { url kind bytes sha256 } userErrors { code message } } }', variables: { file: null } }),
    `\r\n--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n`,
    `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="${file.name}"\r\nContent-Type: ${file.type}\r\n\r\n`,
  ].join(''));
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const url = new URL(`${h.url}/graphql`);
  const hash = createHash('sha256');
  return new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + size + tail.length) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), sha256: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const parts = (function* () {
      yield head;
      for (const chunk of file.chunks) {
        hash.update(chunk);
        yield chunk;
      }
      yield tail;
    })();
    Readable.from(parts, { objectMode: false }).pipe(req);
  });
}

type Phase = 'archive' | 'upload' | 'upload-mp4';

interface PhaseResult { measurement: Measurement; check: string }

async function runPhase(phase: Phase): Promise<PhaseResult> {
  if (phase === 'archive') {
    // (a) A 200 MB result archived: the result host streams ftyp + mdat + moov in 64 KB chunks.
    const h = await startMediaApp();
    try {
      await archiveOnce(h); // warm-up: the sandbox's small sample, every code path loaded once
      let served = 0;
      h.upstream.interceptFiles = (req, res, next) => {
        if (!req.url?.includes('/video.mp4')) return next();
        served += 1;
        res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(mp4Size(ARCHIVE_PAYLOAD)) });
        Readable.from(mp4Chunks(ARCHIVE_PAYLOAD)).pipe(res);
      };
      let archived = { bytes: 0, sha256: '' };
      const measurement = await measure(`archive a ${mb(mp4Size(ARCHIVE_PAYLOAD))} MB MP4 result`, mp4Size(ARCHIVE_PAYLOAD), async () => {
        archived = await archiveOnce(h);
      });
      const expected = createHash('sha256');
      for (const chunk of mp4Chunks(ARCHIVE_PAYLOAD)) expected.update(chunk);
      const check = `archive: ${archived.bytes} bytes stored (expected ${mp4Size(ARCHIVE_PAYLOAD)}), sha256 ${archived.sha256 === expected.digest('hex') ? 'matches' : 'DIFFERS'}, ${served} download(s)`;
      return { measurement, check };
    } finally {
      await h.stop();
    }
  }
  // (b) A 10 MB image uploaded over multipart (graphql-upload spools it to a temp file; it is streamed to storage).
  const h = await startMediaApp();
  try {
    await streamUpload(h, 64 * 1024); // warm-up
    let outcome: Awaited<ReturnType<typeof streamUpload>> | null = null;
    const mp4 = phase === 'upload-mp4';
    const size = mp4 ? mp4Size(UPLOAD_MP4_PAYLOAD) : UPLOAD_BYTES;
    const name = mp4 ? `upload a ${mb(size)} MB MP4 (multipart, reference)` : `upload a ${mb(size)} MB JPEG (multipart)`;
    const measurement = await measure(name, size, async () => {
      outcome = await streamUpload(h, size, mp4 ? { name: 'big.mp4', type: 'video/mp4', chunks: mp4Chunks(UPLOAD_MP4_PAYLOAD) } : undefined);
    });
    const done = outcome as Awaited<ReturnType<typeof streamUpload>> | null;
    const asset = done?.body?.data?.uploadMedia?.asset;
    const check = `upload: HTTP ${done?.status}, ${asset ? `${asset.kind} ${asset.bytes} bytes, sha256 ${asset.sha256 === done!.sha256 ? 'matches' : 'DIFFERS'}` : `refused: ${JSON.stringify(done?.body)}`}`;
    return { measurement, check };
  } finally {
    await h.stop();
  }
}

const PHASE_MARK = 'PHASE_RESULT ';
const phaseArg = process.argv[2] as Phase | undefined;
if (phaseArg) {
  const result = await runPhase(phaseArg);
  console.log(PHASE_MARK + JSON.stringify(result));
} else {
  const here = fileURLToPath(import.meta.url);
  const results: PhaseResult[] = [];
  for (const phase of ['archive', 'upload', 'upload-mp4'] as const) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', here, phase], {
      cwd: join(dirname(here), '..'), encoding: 'utf8', env: process.env, maxBuffer: 16 * MB,
    });
    const line = child.stdout.split('\n').find((l) => l.startsWith(PHASE_MARK));
    if (child.status !== 0 || !line) throw new Error(`the ${phase} case failed (${child.status}):\n${child.stdout}\n${child.stderr}`);
    results.push(JSON.parse(line.slice(PHASE_MARK.length)) as PhaseResult);
  }
  const rows = results.map(({ measurement: r }) => ({
    case: r.name,
    'file MB': mb(r.fileBytes),
    seconds: r.seconds.toFixed(2),
    samples: r.samples,
    'RSS base MB': mb(r.baseline.rss),
    'RSS peak MB': mb(r.peak.rss),
    'RSS +MB': mb(r.peak.rss - r.baseline.rss),
    'heap base MB': mb(r.baseline.heapUsed),
    'heap peak MB': mb(r.peak.heapUsed),
    'heap +MB': mb(r.peak.heapUsed - r.baseline.heapUsed),
    'external +MB': mb(r.peak.external - r.baseline.external),
  }));
  console.log(`\nMemory while media streams (process.memoryUsage() every ${SAMPLE_MS} ms, one fresh process per case; node ${process.version})\n`);
  console.table(rows);
  for (const { check } of results) console.log(`  ${check}`);
  const growth = (r: Measurement) => r.peak.rss - r.baseline.rss;
  const verdicts = results.map(({ measurement: r }) => `${r.name.replace(/ \(.*\)$/, '')}: +${mb(growth(r))} MB`);
  // Flat: the growth is bounded buffering (stream high-water marks, socket and file buffers, garbage
  // Buffers awaiting a GC), not the file: well under the large files' sizes, and not following size.
  const bound = 48 * MB;
  const flat = results.every(({ measurement: r }) => growth(r) < bound);
  const largest = Math.max(...results.map(({ measurement: r }) => growth(r)));
  console.log(`\nVerdict: ${flat ? 'FLAT' : 'NOT FLAT'}: peak RSS growth ${flat ? 'stays under' : 'exceeds'} ${mb(bound)} MB whatever the file size`
    + ` (largest +${mb(largest)} MB, while 200 MB are archived): ${verdicts.join('; ')}.`);
  process.exitCode = flat ? 0 : 1;
}
