import { buildApp } from './app-variant.ts'; import { loadConfig } from '../../src/config.ts'; import { createLogger } from '../../src/logger.ts'; import { mkdtempSync } from 'node:fs'; import { tmpdir } from 'node:os'; import { join } from 'node:path';
import { request } from 'node:http';
const dir = mkdtempSync(join(tmpdir(), 'bl-')); const config = loadConfig({ DATABASE_URL: join(dir, 'db.sqlite'), MEDIA_DIR: join(dir, 'm'), LOG_LEVEL: 'silent' }); const app = buildApp({ config, logger: createLogger('silent') }); const h = { url: await app.start(0, '127.0.0.1'), stop: () => app.stop() };
const url = new URL(h.url);
const send = (headers: Record<string, string>, chunks: (string | Buffer)[]) => new Promise<string>((resolve) => {
  const req = request({ host: url.hostname, port: url.port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
    let body = ''; res.on('data', (c) => body += c); res.on('end', () => resolve(`${res.statusCode} ${body.slice(0, 150)}`));
  });
  req.on('error', (e) => resolve(`error ${e.message}`));
  for (const c of chunks) req.write(c);
  req.end();
});
const q = JSON.stringify({ query: '{ videoModels { id } }' });
console.log('content-length small:', await send({ 'content-length': String(Buffer.byteLength(q)) }, [q]));
console.log('chunked small:', await send({}, [q.slice(0, 10), q.slice(10)]));
const big = Buffer.alloc(1024 * 1024, 32);
console.log('content-length 30MB (header only):', await send({ 'content-length': String(30_000_000) }, [q]));
const many = Array.from({ length: 26 }, () => big);
console.log('chunked 26MB:', await send({}, [q.slice(0, -1), ...many, '}']));
console.log('chunked 2MB ok:', await send({}, [q.slice(0, -1), big, big, '}']));
await h.stop();
