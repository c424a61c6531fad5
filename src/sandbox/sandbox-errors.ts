// Error answers in the one form seed 003 documents, used for both providers (UPSTREAM.md assumes
// the toapis endpoints share it): `{"error": {code, message, type, param?, fallback_suggestion?}}`.
import { STATUS_CODES } from 'node:http';

export interface ErrorObject {
  code: number;
  message: string;
  type: string;
  param?: string;
  fallback_suggestion?: string;
}

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error: ErrorObject };
}

export interface ErrorDetails {
  message?: string;
  param?: string;
  suggestion?: string;
  retryAfterSeconds?: number;
}

interface ErrorKind {
  type: string;
  message: string;
  suggestion?: string;
  /** Sent as `Retry-After`; the suggestion then says the same number. */
  retryAfterSeconds?: number;
}

// Types, messages and suggestions are seed 003's examples word for word.
const ERROR_KINDS: Readonly<Record<number, ErrorKind>> = {
  400: { type: 'invalid_request_error', message: 'Invalid request parameters' },
  401: { type: 'authentication_error', message: 'Invalid or expired token' },
  402: { type: 'insufficient_quota_error', message: 'Insufficient quota', suggestion: 'https://ai.odkkk.com/apiv1/dashboard/billing' },
  403: { type: 'permission_error', message: 'Access denied' },
  404: { type: 'not_found_error', message: 'Resource not found' },
  413: { type: 'request_too_large_error', message: 'Request body too large', suggestion: 'reduce prompt length' },
  429: { type: 'rate_limit_error', message: 'Rate limit exceeded', retryAfterSeconds: 60 },
  500: { type: 'internal_server_error', message: 'Internal server error', suggestion: 'try again later' },
  502: { type: 'upstream_error', message: 'Upstream AI service unavailable', suggestion: 'try different model' },
  503: { type: 'service_unavailable_error', message: 'Service temporarily unavailable', retryAfterSeconds: 30 },
};

// Statuses the seed does not list (a test may queue a 504) still get a body a client can read.
function undocumentedKind(status: number): ErrorKind {
  return {
    type: status >= 500 ? 'internal_server_error' : 'invalid_request_error',
    message: STATUS_CODES[status] ?? `HTTP ${status}`,
  };
}

export function errorAnswer(status: number, details: ErrorDetails = {}): ErrorAnswer {
  const kind = ERROR_KINDS[status] ?? undocumentedKind(status);
  const retryAfter = details.retryAfterSeconds ?? kind.retryAfterSeconds;
  const suggestion = details.suggestion
    ?? (retryAfter !== undefined ? `retry after ${retryAfter} seconds` : kind.suggestion);
  const error: ErrorObject = { code: status, message: details.message ?? kind.message, type: kind.type };
  if (details.param !== undefined) error.param = details.param;
  if (suggestion !== undefined) error.fallback_suggestion = suggestion;
  const headers: Record<string, string> = retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {};
  return { status, headers, body: { error } };
}
