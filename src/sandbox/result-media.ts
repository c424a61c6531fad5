// Result files behind signed, expiring links, as the providers' CDNs serve them: the seeds say links
// live 24 hours, so the service must download (archive) in time, and the sandbox makes late downloads fail.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

const RESULT_FILES = {
  'video.mp4': { asset: 'sample.mp4', contentType: 'video/mp4' },
  'last-frame.png': { asset: 'last-frame.png', contentType: 'image/png' },
} as const;

export type ResultFile = keyof typeof RESULT_FILES;

export function isResultFile(name: string): name is ResultFile {
  return Object.hasOwn(RESULT_FILES, name);
}

const assetBytes = new Map<ResultFile, Buffer>();

function fileBytes(file: ResultFile): Buffer {
  let bytes = assetBytes.get(file);
  if (!bytes) {
    bytes = readFileSync(new URL(`./assets/${RESULT_FILES[file].asset}`, import.meta.url));
    assetBytes.set(file, bytes);
  }
  return bytes;
}

export type LinkCheck = 'valid' | 'invalid' | 'expired';

/** Signs links with a secret of its own, so links of one sandbox instance never open another's files. */
export class ResultLinkSigner {
  private readonly secret = randomBytes(32);

  /** Path and query below the base path. */
  path(taskId: string, file: ResultFile, expiresAtS: number): string {
    const sig = this.signature(taskId, file, String(expiresAtS));
    return `/files/${encodeURIComponent(taskId)}/${file}?expires=${expiresAtS}&sig=${sig}`;
  }

  check(taskId: string, file: ResultFile, expires: string | null, sig: string | null, nowMs: number): LinkCheck {
    if (!expires || !sig || !/^\d+$/.test(expires)) return 'invalid';
    const expected = Buffer.from(this.signature(taskId, file, expires));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return Number(expires) * 1000 <= nowMs ? 'expired' : 'valid';
  }

  private signature(taskId: string, file: ResultFile, expires: string): string {
    return createHmac('sha256', this.secret).update(`${taskId}/${file}\n${expires}`).digest('base64url');
  }
}

export interface MediaAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer | null;
}

/** The answer to GET or HEAD of a result file, honouring a single `Range: bytes=` range. */
export function mediaAnswer(file: ResultFile, method: string, rangeHeader: string | undefined): MediaAnswer {
  const bytes = fileBytes(file);
  const size = bytes.length;
  const base = { 'content-type': RESULT_FILES[file].contentType, 'accept-ranges': 'bytes' };
  const range = rangeHeader ? parseRange(rangeHeader, size) : null;
  if (range === 'unsatisfiable') {
    return { status: 416, headers: { ...base, 'content-range': `bytes */${size}`, 'content-length': '0' }, body: null };
  }
  const { status, slice, extra } = range
    ? { status: 206, slice: bytes.subarray(range.start, range.end + 1), extra: { 'content-range': `bytes ${range.start}-${range.end}/${size}` } }
    : { status: 200, slice: bytes, extra: {} };
  return {
    status,
    headers: { ...base, ...extra, 'content-length': String(slice.length) },
    body: method === 'HEAD' ? null : slice,
  };
}

/**
 * One `bytes=` range (RFC 9110, 14.1.2). Anything else (several ranges, other units, a malformed
 * value) returns null: the header is then ignored and the whole file served, which the RFC allows.
 */
export function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return null;
  if (first === '') {
    const suffix = Number(last);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return null;
  return start >= size ? 'unsatisfiable' : { start, end };
}
