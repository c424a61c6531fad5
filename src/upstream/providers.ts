// Which provider serves which model, with which key and base URL.
// A provider without a key is not used; with no key at all, the sandbox upstream serves every model.
import type { Config } from '../config.ts';
import type { DownloadPermission } from '../media/safe-download.ts';
import { isInternalHost } from '../net/internal-address.ts';
import { VIDEO_MODELS, type ProviderKind, type VideoModel } from '../tasks/catalog.ts';
import { ENDPOINT_FAMILIES } from './families.ts';
import type { EndpointFamilyAdapter } from './types.ts';

export const SANDBOX_PROVIDER = 'sandbox';
/** The key the built-in sandbox upstream is started with (it is not a secret: it only opens the sandbox). */
export const SANDBOX_API_KEY = 'sandbox-key';

export interface ProviderRoute {
  provider: string;
  model: VideoModel;
  adapter: EndpointFamilyAdapter;
  baseUrl: string;
  apiKey: string;
  taskPath(upstreamTaskId: string): string;
  /** Whether the provider would accept a callback to this base URL (seed 003: HTTPS, not internal). */
  acceptsCallbackTo(baseUrl: string): boolean;
  /** Where this provider's results may be downloaded from. */
  downloads: DownloadPermission;
}

export interface ProviderAccount {
  name: string;
  kind: ProviderKind;
  baseUrl: string;
  apiKey: string;
  /** Overrides the family's task path; `{id}` is replaced by the upstream task id. */
  taskPathTemplate?: string;
  /** The sandbox (in tests) calls back to loopback over plain HTTP; real providers do not. */
  allowsInternalCallbacks?: boolean;
  /** Hosts the provider serves results from, besides its API host. */
  resultHosts?: string[];
  /** The local sandbox serves results from loopback; a real provider never may. */
  resultHostsArePrivate?: boolean;
}

/** Where the sandbox mounts each provider's API, below its own base URL. */
export const SANDBOX_MOUNTS: Readonly<Record<ProviderKind, string>> = {
  toapis: '/toapis',
  odkkk: '/odkkk/apiv1',
};

export function sandboxAccounts(
  sandboxBaseUrl: string,
  options: { allowsInternalCallbacks?: boolean; resultBaseUrl?: string } = {},
): ProviderAccount[] {
  const resultHost = new URL(options.resultBaseUrl ?? sandboxBaseUrl).hostname;
  return (Object.keys(SANDBOX_MOUNTS) as ProviderKind[]).map((kind) => ({
    name: SANDBOX_PROVIDER,
    kind,
    baseUrl: sandboxBaseUrl + SANDBOX_MOUNTS[kind],
    apiKey: SANDBOX_API_KEY,
    ...(options.allowsInternalCallbacks ? { allowsInternalCallbacks: true } : {}),
    resultHosts: [resultHost],
    resultHostsArePrivate: true,
  }));
}

/** Seed 003's rule for callback URLs: HTTPS only, no internal address, at most 2048 characters. */
function callbackAllowed(baseUrl: string): boolean {
  try {
    const url = new URL(baseUrl);
    return url.protocol === 'https:' && !isInternalHost(url.hostname) && baseUrl.length < 1900;
  } catch {
    return false;
  }
}

/** The provider accounts that have a key in the configuration. */
export function configuredAccounts(config: Config): ProviderAccount[] {
  const accounts: ProviderAccount[] = [];
  if (config.TOAPIS_API_KEY) {
    accounts.push({ name: 'toapis', kind: 'toapis', baseUrl: config.TOAPIS_BASE_URL, apiKey: config.TOAPIS_API_KEY });
  }
  if (config.ODKKK_API_KEY) {
    accounts.push({
      name: 'odkkk', kind: 'odkkk', baseUrl: config.ODKKK_BASE_URL, apiKey: config.ODKKK_API_KEY,
      taskPathTemplate: config.ODKKK_TASK_PATH,
    });
  }
  return accounts;
}

export interface DownloadPolicy {
  /** Hosts trusted for result downloads whatever the provider (MEDIA_TRUSTED_HOSTS). */
  trustedHosts: readonly string[];
  /** Hosts allowed to be private addresses (MEDIA_PRIVATE_HOSTS_ALLOWED). */
  privateHostsAllowed: readonly string[];
}

export class ProviderDirectory {
  private routes: ProviderRoute[] = [];

  constructor(
    accounts: ProviderAccount[],
    private readonly models: readonly VideoModel[] = VIDEO_MODELS,
    private readonly downloadPolicy: DownloadPolicy = { trustedHosts: [], privateHostsAllowed: [] },
  ) {
    this.setAccounts(accounts);
  }

  /** Replaces the accounts (the embedded sandbox's address is only known once the server listens). */
  setAccounts(accounts: ProviderAccount[]): void {
    const models = this.models;
    this.routes = accounts.flatMap((account) =>
      models.filter((model) => model.providerKind === account.kind).map((model): ProviderRoute => {
        const adapter = ENDPOINT_FAMILIES[model.family];
        const template = account.taskPathTemplate;
        const providerHosts = [new URL(account.baseUrl).hostname, ...(account.resultHosts ?? [])];
        return {
          provider: account.name,
          model,
          adapter,
          baseUrl: account.baseUrl,
          apiKey: account.apiKey,
          taskPath: template ? (id) => template.replace('{id}', encodeURIComponent(id)) : (id) => adapter.taskPath(id),
          acceptsCallbackTo: (baseUrl) => account.allowsInternalCallbacks || callbackAllowed(baseUrl),
          downloads: {
            trustedHosts: [...providerHosts, ...this.downloadPolicy.trustedHosts],
            privateHostsAllowed: [...(account.resultHostsArePrivate ? providerHosts : []), ...this.downloadPolicy.privateHostsAllowed],
          },
        };
      }));
  }

  /** Every provider with at least one model. */
  providerNames(): string[] {
    return [...new Set(this.routes.map((r) => r.provider))];
  }

  /** The providers that can serve a model, in configuration order. */
  providersFor(modelId: string): string[] {
    return this.routes.filter((r) => r.model.id === modelId).map((r) => r.provider);
  }

  /** The route for a model; the first provider serving it unless one is named. */
  route(modelId: string, provider?: string | null): ProviderRoute | undefined {
    return this.routes.find((r) => r.model.id === modelId && (!provider || r.provider === provider));
  }
}
