// POST /webhooks/upstream/{taskId}/{token}: a provider's completion callback (seed 003). The token in
// the path is the only credential; an unknown task and a wrong token look the same (404).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Durability } from '../storage/durability.ts';
import type { VideoTaskService } from '../tasks/task-service.ts';

export const WEBHOOK_PREFIX = '/webhooks/upstream/';
/** Seed 003's callback body is a task object: small. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Answers the request when it is a webhook call and returns true; returns false otherwise. A callback
 * may carry the only record of an upstream task (its submission's answer was lost), so it is answered
 * 204 only once its write is durable; a provider that gets no 2xx calls again.
 */
export function handleUpstreamWebhook(
  req: IncomingMessage, res: ServerResponse, tasks: VideoTaskService, durability: Durability, logger: Logger,
): boolean {
  const path = (req.url ?? '').split('?')[0] ?? '';
  if (!path.startsWith(WEBHOOK_PREFIX)) return false;
  const match = /^([\w-]{1,64})\/([\w-]{16,128})$/.exec(path.slice(WEBHOOK_PREFIX.length));
  const answer = (status: number, message?: string) => {
    if (res.headersSent) return;
    res.writeHead(status, message ? { 'content-type': 'application/json' } : {}).end(message ? JSON.stringify({ error: message }) : undefined);
  };
  if (!match) {
    answer(404, 'not found');
    return true;
  }
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    answer(405, 'method not allowed');
    return true;
  }
  const [, taskId, token] = match as unknown as [string, string, string];
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      answer(413, 'body too large');
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', async () => {
    if (size > MAX_BODY_BYTES) return;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      answer(400, 'body is not JSON');
      return;
    }
    try {
      const outcome = tasks.applyCallback(taskId, token, body);
      if (outcome === 'applied') await durability.sync();
      logger.info({ taskId, outcome }, 'upstream callback');
      if (outcome === 'applied') answer(204);
      else if (outcome === 'unreadable') answer(400, 'body is not a task object');
      else answer(404, 'not found');
    } catch (error) {
      logger.error({ err: error, taskId }, 'applying an upstream callback failed');
      answer(500, 'internal error');
    }
  });
  req.on('error', () => answer(400, 'request failed'));
  return true;
}
