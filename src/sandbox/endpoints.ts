// The create/query endpoints the seeds document, as the sandbox serves them. Which models each one
// takes comes from the catalog; the paths and id forms come from the seeds themselves, not from our
// client's family modules, so that a wrong path in the client fails against the sandbox too.
import { VIDEO_MODELS, type EndpointFamily, type ProviderKind, type VideoModel } from '../tasks/catalog.ts';
import { SANDBOX_MOUNTS } from '../upstream/providers.ts';

export interface SandboxEndpoint {
  provider: ProviderKind;
  family: EndpointFamily;
  /** Create path below the sandbox's base path: the provider's mount plus the seed's path. */
  path: string;
  models: readonly VideoModel[];
  newTaskId(random: () => number, nowMs: number): string;
}

export type RouteMatch =
  | { kind: 'create'; endpoint: SandboxEndpoint }
  | { kind: 'query'; endpoint: SandboxEndpoint; taskId: string };

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function randomChars(random: () => number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) {
    // A seeded generator may return exactly 1; clamp rather than index past the end.
    const index = Math.min(ID_ALPHABET.length - 1, Math.floor(random() * ID_ALPHABET.length));
    text += ID_ALPHABET.charAt(index);
  }
  return text;
}

// Seed 000 shows `task_vid_…`, seed 001 `tsk_vid_…`, seed 003 `task-unified-<unix>-<8 chars>`.
const DIALECTS: Readonly<Record<EndpointFamily, { path: string; newTaskId: SandboxEndpoint['newTaskId'] }>> = {
  videos: { path: '/v1/videos/generations', newTaskId: (random) => `task_vid_${randomChars(random, 12)}` },
  video: { path: '/v1/video/generations', newTaskId: (random) => `tsk_vid_${randomChars(random, 12)}` },
  'odkkk-videos': {
    path: '/v1/videos/generations',
    newTaskId: (random, nowMs) => `task-unified-${Math.floor(nowMs / 1000)}-${randomChars(random, 8)}`,
  },
};

function buildEndpoints(models: readonly VideoModel[]): SandboxEndpoint[] {
  const endpoints = new Map<string, SandboxEndpoint>();
  for (const model of models) {
    const key = `${model.providerKind} ${model.family}`;
    const known = endpoints.get(key);
    if (known) {
      endpoints.set(key, { ...known, models: [...known.models, model] });
      continue;
    }
    const dialect = DIALECTS[model.family];
    endpoints.set(key, {
      provider: model.providerKind,
      family: model.family,
      path: SANDBOX_MOUNTS[model.providerKind] + dialect.path,
      models: [model],
      newTaskId: dialect.newTaskId,
    });
  }
  return [...endpoints.values()];
}

export const SANDBOX_ENDPOINTS: readonly SandboxEndpoint[] = buildEndpoints(VIDEO_MODELS);

/** Which endpoint a path (below the base path) names, and whether it is the create or a task path. */
export function matchEndpoint(path: string): RouteMatch | null {
  for (const endpoint of SANDBOX_ENDPOINTS) {
    if (path === endpoint.path) return { kind: 'create', endpoint };
    if (!path.startsWith(endpoint.path + '/')) continue;
    const rest = path.slice(endpoint.path.length + 1);
    if (rest === '' || rest.includes('/')) continue;
    try {
      return { kind: 'query', endpoint, taskId: decodeURIComponent(rest) };
    } catch {
      return null;
    }
  }
  return null;
}
