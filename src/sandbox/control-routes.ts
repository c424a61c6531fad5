// `/_control/*`: the fault switches and counters over HTTP, so that a test driving the service in
// another process can still break the upstream on cue and see what it received.
import { z } from 'zod';
import type { FaultPatch, QueuedErrorKind } from './faults.ts';

export interface ControlledSandbox {
  setFaults(faults: FaultPatch): void;
  queueErrors(kind: QueuedErrorKind, status: number, count: number, retryAfterSeconds?: number): void;
  /** Everything a remote test may want to read: counters, tasks, faults, callback attempts. */
  report(): Record<string, unknown>;
}

export interface ControlAnswer {
  status: number;
  body: unknown;
}

const rate = z.number().min(0).max(1);
const errorStatus = z.number().int().min(400).max(599);

const faultsSchema = z.strictObject({
  latencyMs: z.number().min(0).max(600_000),
  errorRate: z.strictObject({ create: rate, query: rate, media: rate }).partial(),
  errorStatuses: z.array(errorStatus).min(1),
  malformedRate: rate,
  dropRate: rate,
  failRate: rate,
}).partial();

const errorsSchema = z.strictObject({
  kind: z.enum(['create', 'query', 'any']),
  status: errorStatus,
  count: z.number().int().min(1).max(100_000),
  retryAfterSeconds: z.number().int().min(0).optional(),
});

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function badRequest(message: string): ControlAnswer {
  return { status: 400, body: { error: { code: 400, message, type: 'invalid_request_error' } } };
}

/** Answers a control request; `path` is below `/_control`. */
export function controlAnswer(sandbox: ControlledSandbox, method: string, path: string, bodyText: string): ControlAnswer {
  if (method === 'GET' && path === '/stats') return { status: 200, body: sandbox.report() };
  const route = method === 'POST' && (path === '/faults' || path === '/errors') ? path : null;
  if (!route) return { status: 404, body: { error: { code: 404, message: `no control route ${method} ${path}`, type: 'not_found_error' } } };
  const json = parseJson(bodyText || '{}');
  if (!json.ok) return badRequest('control body is not JSON');
  if (route === '/faults') {
    const parsed = faultsSchema.safeParse(json.value);
    if (!parsed.success) return badRequest(z.prettifyError(parsed.error));
    sandbox.setFaults(parsed.data);
    return { status: 200, body: { ok: true, faults: sandbox.report().faults } };
  }
  const parsed = errorsSchema.safeParse(json.value);
  if (!parsed.success) return badRequest(z.prettifyError(parsed.error));
  const { kind, status, count, retryAfterSeconds } = parsed.data;
  sandbox.queueErrors(kind, status, count, retryAfterSeconds);
  return { status: 200, body: { ok: true, queued: parsed.data } };
}
