import { startHarness } from '../../test/support/harness.ts';
import { request } from 'node:http';
const h = await startHarness();
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
