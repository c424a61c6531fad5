// GET/HEAD /media/...: uploads (public, immutable: the name is the content's SHA-256) and archived
// results (signed, expiring links). Correct content types, Content-Length, single-range requests (so a
// browser can seek in a video), ETags and caching headers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { MediaStorage } from '../media/media-storage.ts';
import type { UrlSigner } from '../media/url-signer.ts';

export const MEDIA_PREFIX = '/media/';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  jpg: 'image/jpeg', png: 'image/png', webp: 'image/webp', mp4: 'video/mp4', mp3: 'audio/mpeg', wav: 'audio/wav',
};

const UPLOAD_PATH = /^uploads\/([0-9a-f]{64})\.(jpg|png|webp|mp4|mp3|wav)$/;
const ARCHIVE_PATH = /^archives\/([\w-]{1,64})\/(video|last-frame)\.(mp4|png|jpg|webp)$/;

export function handleMediaRequest(req: IncomingMessage, res: ServerResponse, storage: MediaStorage, signer: UrlSigner, logger: Logger): boolean {
  // Every request passes here first: parsing each one's URL was ~1% of a create's CPU. A path that is
  // media once normalized (dot segments, backslashes) still has the word in it as sent.
  if (!req.url?.includes('media')) return false;
  const url = new URL(req.url, 'http://media');
  if (!url.pathname.startsWith(MEDIA_PREFIX)) return false;
  void serve(req, res, url, storage, signer).catch((error) => {
    logger.error({ err: error }, 'serving media failed');
    if (!res.headersSent) res.writeHead(500).end();
    else res.destroy();
  });
  return true;
}

async function serve(req: IncomingMessage, res: ServerResponse, url: URL, storage: MediaStorage, signer: UrlSigner): Promise<void> {
  const key = decodeURIComponent(url.pathname.slice(MEDIA_PREFIX.length));
  const upload = UPLOAD_PATH.exec(key);
  const archive = upload ? null : ARCHIVE_PATH.exec(key);
  if (!upload && !archive) return void res.writeHead(404).end();
  if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
  if (archive && !signer.verify(url.pathname, url.searchParams.get('expires'), url.searchParams.get('signature'))) {
    return void res.writeHead(403, { 'content-type': 'text/plain' }).end('This link is invalid or has expired: ask for the task again for a fresh one.');
  }
  const info = await storage.stat(key);
  if (!info) return void res.writeHead(404).end();
  const extension = key.slice(key.lastIndexOf('.') + 1);
  const etag = upload ? `"${upload[1]}"` : `"${info.bytes.toString(16)}-${info.modifiedAt.getTime().toString(16)}"`;
  const headers: Record<string, string> = {
    'content-type': CONTENT_TYPES[extension] ?? 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag,
    'last-modified': info.modifiedAt.toUTCString(),
    // Uploads never change under their name; archive links are personal and expire.
    'cache-control': upload ? 'public, max-age=31536000, immutable' : 'private, max-age=3600',
    'x-content-type-options': 'nosniff',
  };
  if (req.headers['if-none-match'] === etag) return void res.writeHead(304, headers).end();

  const range = parseRange(req.headers.range, info.bytes, req.headers['if-range'], etag);
  if (range === 'unsatisfiable') {
    return void res.writeHead(416, { ...headers, 'content-range': `bytes */${info.bytes}` }).end();
  }
  if (range) {
    headers['content-range'] = `bytes ${range.start}-${range.end}/${info.bytes}`;
    headers['content-length'] = String(range.end - range.start + 1);
    res.writeHead(206, headers);
  } else {
    headers['content-length'] = String(info.bytes);
    res.writeHead(200, headers);
  }
  if (req.method === 'HEAD') return void res.end();
  await pipeline(storage.read(key, range ?? undefined), res);
}

/** One `bytes=` range (the form players use); several ranges, or a stale If-Range, get the whole file. */
function parseRange(header: string | undefined, size: number, ifRange: string | string[] | undefined, etag: string): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header || (ifRange && ifRange !== etag)) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}
