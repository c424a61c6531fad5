// The sandbox upstream: both providers' video APIs as the seed documents describe them, served
// locally, so the service and its tests run with no network and with failures on demand.
// Routes (below the base path): each provider's create and query paths under its mount
// (SANDBOX_MOUNTS), signed result files under /files, and the fault controls under /_control.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CallbackSender, SEED_003_CALLBACK_POLICY, scaledPolicy } from './callbacks.ts';
import { controlAnswer, type ControlledSandbox } from './control-routes.ts';
import { matchEndpoint, type RouteMatch, type SandboxEndpoint } from './endpoints.ts';
import { FaultSwitches, type FaultPatch, type QueuedErrorKind, type SandboxFaults } from './faults.ts';
import { isResultFile, mediaAnswer, ResultLinkSigner } from './result-media.ts';
import { errorAnswer } from './sandbox-errors.ts';
import { FAIL_MARKER, isFinished, phaseAt, planDuration, type SandboxTask, type TaskPhase } from './sandbox-task.ts';
import { validateCreateBody } from './sandbox-validation.ts';
import { taskObject, type ResultLinks } from './task-views.ts';

export type { SandboxFaults } from './faults.ts';

export interface SandboxOptions {
  /** The only accepted bearer key. */
  apiKey: string;
  /** Multiplies generation times (and callback retry waits); 1 is the catalog's typicalSeconds. */
  timeScale?: number;
  /** Path prefix the handler is mounted under, e.g. '/sandbox'. */
  basePath?: string;
  /** Absolute URL of basePath, used to build result URLs. */
  publicBaseUrl?: string;
  /** How long result URLs stay valid; the seeds say 24 hours. */
  resultTtlSeconds?: number;
  now?: () => number;
  random?: () => number;
  faults?: Partial<SandboxFaults>;
  /** Seed 003 refuses internal callback hosts; tests with a loopback receiver set this. */
  allowInternalCallbacks?: boolean;
}

export interface SandboxStats {
  requests: { create: number; query: number; media: number; control: number };
  submissions: number;
  byStatus: Record<string, number>;
}

export interface SandboxTaskRecord {
  id: string;
  model: string;
  provider: 'toapis' | 'odkkk';
  body: Record<string, unknown>;
  createdAtMs: number;
  outcome: 'completed' | 'failed';
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

interface ReceivedBody {
  text: string;
  tooLarge: boolean;
}

const DEFAULT_RESULT_TTL_SECONDS = 24 * 3600;
/** Bodies above this are refused with 413 (the seeds name the status, not the size: 1 MB assumed). */
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_CONTROL_BODY_BYTES = 64 * 1024;
/** How often tasks awaiting a callback are checked for completion; only runs while some are waiting. */
const CALLBACK_WATCH_MS = 50;

export class SandboxUpstream implements ControlledSandbox {
  private readonly apiKey: string;
  private readonly timeScale: number;
  private readonly basePath: string;
  private publicBaseUrl: string | null;
  private readonly ttlSeconds: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly allowInternalCallbacks: boolean;
  private readonly switches: FaultSwitches;
  private readonly signer = new ResultLinkSigner();
  private readonly callbacks: CallbackSender;
  private readonly taskById = new Map<string, SandboxTask>();
  private readonly awaitingCallback = new Set<SandboxTask>();
  private callbackWatch: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly requestCounts = { create: 0, query: 0, media: 0, control: 0 };
  private readonly statusCounts: Record<string, number> = {};

  constructor(options: SandboxOptions) {
    this.apiKey = options.apiKey;
    this.timeScale = options.timeScale ?? 1;
    this.basePath = normalizeBasePath(options.basePath);
    this.publicBaseUrl = options.publicBaseUrl ? withoutTrailingSlash(options.publicBaseUrl) : null;
    this.ttlSeconds = options.resultTtlSeconds ?? DEFAULT_RESULT_TTL_SECONDS;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.allowInternalCallbacks = options.allowInternalCallbacks ?? false;
    this.switches = new FaultSwitches(this.random, options.faults);
    this.callbacks = new CallbackSender(scaledPolicy(SEED_003_CALLBACK_POLICY, this.timeScale));
  }

  /** Node http handler; returns false (without answering) when the path is not under basePath. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const path = this.pathBelowBase(url.pathname);
    if (path === null) return false;
    this.route(req, res, path, url).catch((error: unknown) => this.answerCrash(res, error));
    return true;
  }

  setPublicBaseUrl(url: string): void {
    this.publicBaseUrl = withoutTrailingSlash(url);
  }

  /** Merges into the current switches; `errorRate` may be given in part. */
  setFaults(faults: FaultPatch): void {
    this.switches.update(faults);
  }

  /** The next `count` answers of a kind ('any': create or query) get this status; 429s carry Retry-After. */
  queueErrors(kind: QueuedErrorKind, status: number, count: number, retryAfterSeconds?: number): void {
    this.switches.queueErrors(kind, status, count, retryAfterSeconds);
  }

  stats(): SandboxStats {
    return {
      requests: { ...this.requestCounts },
      submissions: this.taskById.size,
      byStatus: { ...this.statusCounts },
    };
  }

  tasks(): SandboxTaskRecord[] {
    return [...this.taskById.values()].map((task) => ({
      id: task.id,
      model: task.model.id,
      provider: task.endpoint.provider,
      body: structuredClone(task.body),
      createdAtMs: task.createdAtMs,
      outcome: task.outcome,
    }));
  }

  report(): Record<string, unknown> {
    return { ...this.stats(), tasks: this.tasks(), faults: this.switches.current(), callbacks: this.callbacks.attempts() };
  }

  /** Stops the callback timers; tasks, counters and links stay as they are. */
  close(): void {
    this.closed = true;
    this.stopCallbackWatch();
    this.callbacks.close();
  }

  private pathBelowBase(pathname: string): string | null {
    if (this.basePath === '') return pathname;
    if (pathname === this.basePath) return '/';
    return pathname.startsWith(this.basePath + '/') ? pathname.slice(this.basePath.length) : null;
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    if (path.startsWith('/_control/')) return this.control(req, res, method, path.slice('/_control'.length));
    if (path.startsWith('/files/')) return this.media(req, res, method, path, url);
    const match = matchEndpoint(path);
    if (!match) return this.sendJson(res, errorAnswer(404, { message: `no route ${method} ${path}` }));
    const expected = match.kind === 'create' ? 'POST' : 'GET';
    if (method !== expected) {
      const answer = errorAnswer(405, { message: `${method} is not allowed on ${path}` });
      return this.sendJson(res, { ...answer, headers: { ...answer.headers, allow: expected } });
    }
    return this.api(req, res, match);
  }

  /** Create and query: the fault switches first (drop, queued errors, error rate, latency), then the real answer. */
  private async api(req: IncomingMessage, res: ServerResponse, match: RouteMatch): Promise<void> {
    this.requestCounts[match.kind] += 1;
    // The body is read before a drop so that a dropped create is one the upstream did receive.
    const received = match.kind === 'create' ? await readBody(req, MAX_BODY_BYTES) : { text: '', tooLarge: false };
    if (!received) return;
    const fate = this.switches.decide(match.kind);
    if (fate.action === 'drop') {
      req.socket.destroy();
      return;
    }
    await this.delay();
    if (fate.action === 'error') {
      return this.sendJson(res, errorAnswer(fate.status, { retryAfterSeconds: fate.retryAfterSeconds }));
    }
    if (!this.authorized(req)) return this.sendJson(res, errorAnswer(401));
    const answer = match.kind === 'create'
      ? this.create(match.endpoint, received, req)
      : this.query(match.endpoint, match.taskId);
    this.sendJson(res, answer, { malformed: fate.malformed && answer.status === 200 });
  }

  private authorized(req: IncomingMessage): boolean {
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    return match?.[1]?.trim() === this.apiKey;
  }

  private create(endpoint: SandboxEndpoint, received: ReceivedBody, req: IncomingMessage): Answer {
    if (received.tooLarge) return errorAnswer(413);
    let parsed: unknown;
    try {
      parsed = JSON.parse(received.text);
    } catch {
      return errorAnswer(400, { message: 'request body is not valid JSON' });
    }
    const verdict = validateCreateBody(parsed, endpoint, { allowInternalCallbacks: this.allowInternalCallbacks });
    if (verdict.refusal) {
      const { status, message, param, suggestion } = verdict.refusal;
      return errorAnswer(status, { message, param, suggestion });
    }
    const task = this.newTask(endpoint, verdict.model, verdict.body, req);
    return this.taskAnswer(task);
  }

  private newTask(endpoint: SandboxEndpoint, model: SandboxTask['model'], body: Record<string, unknown>, req: IncomingMessage): SandboxTask {
    const nowMs = this.now();
    const { queuedMs, totalMs } = planDuration(model, this.random, this.timeScale);
    const prompt = typeof body.prompt === 'string' ? body.prompt : '';
    const failRate = this.switches.failRate;
    const fails = prompt.includes(FAIL_MARKER) || (failRate > 0 && this.random() < failRate);
    const task: SandboxTask = {
      id: this.unusedTaskId(endpoint, nowMs),
      endpoint,
      model,
      body,
      createdAtMs: nowMs,
      queuedMs,
      totalMs,
      outcome: fails ? 'failed' : 'completed',
      videoDurationSeconds: typeof body.duration === 'number' ? body.duration : model.duration.default,
      returnLastFrame: model.returnLastFrame && body.return_last_frame === true,
      callbackUrl: model.callback && typeof body.callback_url === 'string' ? body.callback_url : null,
      fallbackBaseUrl: `http://${req.headers.host ?? '127.0.0.1'}${this.basePath}`,
    };
    this.taskById.set(task.id, task);
    if (task.callbackUrl) {
      this.awaitingCallback.add(task);
      this.startCallbackWatch();
    }
    return task;
  }

  private unusedTaskId(endpoint: SandboxEndpoint, nowMs: number): string {
    let id = endpoint.newTaskId(this.random, nowMs);
    while (this.taskById.has(id)) id = endpoint.newTaskId(this.random, nowMs);
    return id;
  }

  private query(endpoint: SandboxEndpoint, taskId: string): Answer {
    const task = this.taskById.get(taskId);
    // A task is only found where it was created: a client querying the wrong family's path must notice.
    if (!task || task.endpoint !== endpoint) return errorAnswer(404, { message: `Task not found: ${taskId}` });
    this.deliverDueCallbacks();
    return this.taskAnswer(task);
  }

  private taskAnswer(task: SandboxTask): Answer {
    const phase = phaseAt(task, this.now());
    return { status: 200, headers: {}, body: taskObject(task, phase, this.links(task, phase)) };
  }

  private links(task: SandboxTask, phase: TaskPhase): ResultLinks | null {
    if (phase.stage !== 'completed') return null;
    const expiresAtS = Math.floor(phase.finishedAtMs / 1000) + this.ttlSeconds;
    const base = this.publicBaseUrl ?? task.fallbackBaseUrl;
    return {
      expiresAtS,
      videoUrl: base + this.signer.path(task.id, 'video.mp4', expiresAtS),
      lastFrameUrl: task.returnLastFrame ? base + this.signer.path(task.id, 'last-frame.png', expiresAtS) : null,
    };
  }

  private async media(req: IncomingMessage, res: ServerResponse, method: string, path: string, url: URL): Promise<void> {
    this.requestCounts.media += 1;
    const fate = this.switches.decide('media');
    await this.delay();
    if (fate.action === 'error') return this.sendJson(res, errorAnswer(fate.status));
    if (method !== 'GET' && method !== 'HEAD') return this.sendJson(res, errorAnswer(405, { message: `${method} is not allowed on result files` }));
    const match = /^\/files\/([^/]+)\/([^/]+)$/.exec(path);
    const taskId = match?.[1] ? safeDecode(match[1]) : null;
    const file = match?.[2] ?? '';
    if (!taskId || !isResultFile(file) || !this.taskById.has(taskId)) {
      return this.sendJson(res, errorAnswer(404, { message: `no result file ${path}` }));
    }
    const check = this.signer.check(taskId, file, url.searchParams.get('expires'), url.searchParams.get('sig'), this.now());
    if (check === 'invalid') return this.sendJson(res, errorAnswer(403, { message: 'The link signature is invalid' }));
    if (check === 'expired') {
      return this.sendJson(res, errorAnswer(403, {
        message: `The link has expired: result links are valid for ${this.ttlSeconds} seconds after completion`,
      }));
    }
    const answer = mediaAnswer(file, method, req.headers.range);
    this.write(res, answer.status, answer.headers, answer.body, true);
  }

  private async control(req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<void> {
    this.requestCounts.control += 1;
    const received = method === 'POST' ? await readBody(req, MAX_CONTROL_BODY_BYTES) : { text: '', tooLarge: false };
    if (!received) return;
    // Control answers stay out of byStatus: they are the test's own traffic, not the upstream's.
    if (received.tooLarge) return this.sendJson(res, errorAnswer(413), { counted: false });
    const answer = controlAnswer(this, method, path, received.text);
    this.sendJson(res, { status: answer.status, headers: {}, body: answer.body }, { counted: false });
  }

  private startCallbackWatch(): void {
    if (this.callbackWatch || this.closed) return;
    this.callbackWatch = setInterval(() => this.deliverDueCallbacks(), CALLBACK_WATCH_MS);
    this.callbackWatch.unref();
  }

  private stopCallbackWatch(): void {
    if (this.callbackWatch) clearInterval(this.callbackWatch);
    this.callbackWatch = null;
  }

  private deliverDueCallbacks(): void {
    if (this.closed) return;
    const nowMs = this.now();
    for (const task of this.awaitingCallback) {
      const phase = phaseAt(task, nowMs);
      if (!isFinished(phase) || !task.callbackUrl) continue;
      this.awaitingCallback.delete(task);
      this.callbacks.send(task.callbackUrl, task.id, taskObject(task, phase, this.links(task, phase)));
    }
    if (this.awaitingCallback.size === 0) this.stopCallbackWatch();
  }

  private async delay(): Promise<void> {
    const latencyMs = this.switches.latencyMs;
    if (latencyMs > 0) await sleep(latencyMs);
  }

  private sendJson(res: ServerResponse, answer: Answer, options: { malformed?: boolean; counted?: boolean } = {}): void {
    let text = JSON.stringify(answer.body);
    // Cut mid-object: a 200 whose body is not JSON, as a proxy truncating the answer would send.
    if (options.malformed) text = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
    const headers = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
      ...answer.headers,
    };
    this.write(res, answer.status, headers, text, options.counted ?? true);
  }

  private write(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer | null, counted: boolean): void {
    if (res.headersSent || res.destroyed) return;
    if (counted) this.statusCounts[String(status)] = (this.statusCounts[String(status)] ?? 0) + 1;
    res.writeHead(status, headers);
    if (body === null) res.end();
    else res.end(body);
  }

  private answerCrash(res: ServerResponse, error: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    this.sendJson(res, errorAnswer(500, { message: `sandbox error: ${message}` }));
  }
}

/** Reads a request body up to `limit` bytes (the rest is drained, not kept); null when the client went away. */
function readBody(req: IncomingMessage, limit: number): Promise<ReceivedBody | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > limit ? { text: '', tooLarge: true } : { text: Buffer.concat(chunks).toString('utf8'), tooLarge: false }));
    req.on('error', () => resolve(null));
    req.on('close', () => {
      if (!req.complete) resolve(null);
    });
  });
}

function safeDecode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

function normalizeBasePath(basePath: string | undefined): string {
  if (!basePath || basePath === '/') return '';
  return withoutTrailingSlash(basePath.startsWith('/') ? basePath : `/${basePath}`);
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The host to put in the server's URL: a wildcard listen address is reached through loopback. */
function reachableHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startSandboxServer(
  options: SandboxOptions & { port?: number; host?: string },
): Promise<{ url: string; sandbox: SandboxUpstream; close(): Promise<void> }> {
  const { port = 0, host = '127.0.0.1', ...sandboxOptions } = options;
  const sandbox = new SandboxUpstream(sandboxOptions);
  const server = createServer((req, res) => {
    if (sandbox.handle(req, res)) return;
    const answer = errorAnswer(404, { message: `no route ${req.method ?? 'GET'} ${req.url ?? '/'}` });
    res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${reachableHost(host)}:${address.port}${normalizeBasePath(options.basePath)}`;
  if (!options.publicBaseUrl) sandbox.setPublicBaseUrl(url);
  return {
    url,
    sandbox,
    close: async () => {
      sandbox.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
