// Downloads of provider results: only from the provider's own result hosts or hosts configured as
// trusted, never (unless allowed for that host) from a private, loopback or link-local address, whether
// the URL names one or a DNS name resolves to one (the check runs on the address actually connected to).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { isInternalHost } from '../net/internal-address.ts';

export class DownloadRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DownloadRefusedError';
  }
}

export class DownloadHttpError extends Error {
  constructor(readonly httpStatus: number, url: string) {
    super(`answered ${httpStatus} for ${redact(url)}`);
    this.name = 'DownloadHttpError';
  }
}

export interface DownloadPermission {
  /** Hosts results may come from (exact names, or `.example.com` for a domain and its subdomains). */
  trustedHosts: readonly string[];
  /** Hosts that may be private/loopback (the local sandbox); everything else must be public. */
  privateHostsAllowed: readonly string[];
}

const MAX_REDIRECTS = 3;

const matches = (host: string, patterns: readonly string[]) =>
  patterns.some((p) => (p.startsWith('.') ? host.endsWith(p) || host === p.slice(1) : host === p));

/** Query strings of signed result URLs are credentials: logs get the path only. */
export const redact = (url: string) => url.replace(/\?.*$/, '?…');

export class SafeDownloader {
  /** One pool per set of hosts allowed to be private, since the DNS guard belongs to the connection. */
  private readonly agents = new Map<string, Agent>();

  constructor(private readonly timeoutMs: number) {}

  private agentFor(privateAllowed: readonly string[]): Agent {
    const cacheKey = privateAllowed.join(',');
    const existing = this.agents.get(cacheKey);
    if (existing) return existing;
    // Every connection's resolved address is checked here, after DNS: a public name that resolves to a
    // private address (DNS rebinding) is refused at connect time.
    const guardedLookup: LookupFunction = (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
        if (error) return callback(error, '', 0);
        const list = addresses as LookupAddress[];
        const bad = list.find((a) => isInternalHost(a.address));
        if (bad && !matches(hostname, privateAllowed)) {
          return callback(new DownloadRefusedError(`${hostname} resolves to a private address (${bad.address})`), '', 0);
        }
        if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
        const first = list[0]!;
        callback(null, first.address, first.family);
      });
    };
    const agent = new Agent({ connect: { lookup: guardedLookup }, connections: 16 });
    this.agents.set(cacheKey, agent);
    return agent;
  }

  /** Opens a GET of `url` under `permission`, following at most 3 redirects (each re-checked). */
  async open(url: string, permission: DownloadPermission): Promise<Dispatcher.ResponseData> {
    const agent = this.agentFor(permission.privateHostsAllowed);
    let current = url;
    for (let hop = 0; ; hop++) {
      this.check(current, permission);
      const response = await request(current, {
        method: 'GET',
        dispatcher: agent,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const location = response.headers.location;
      if (response.statusCode >= 300 && response.statusCode < 400 && typeof location === 'string') {
        response.body.resume();
        if (hop >= MAX_REDIRECTS) throw new DownloadRefusedError('too many redirects');
        current = new URL(location, current).toString();
        continue;
      }
      if (response.statusCode !== 200) {
        response.body.resume();
        throw new DownloadHttpError(response.statusCode, current);
      }
      return response;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((agent) => agent.close()));
  }

  private check(url: string, permission: DownloadPermission): void {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new DownloadRefusedError('not a URL');
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new DownloadRefusedError(`${parsed.protocol} is not downloadable`);
    if (parsed.username || parsed.password) throw new DownloadRefusedError('URLs with credentials are refused');
    const host = parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (!matches(host, permission.trustedHosts)) throw new DownloadRefusedError(`${host} is neither a result host of the provider nor a trusted host`);
    if (isInternalHost(host) && !matches(host, permission.privateHostsAllowed)) {
      throw new DownloadRefusedError(`${host} is a private, loopback or link-local address`);
    }
    if (isIP(host) === 0 && host.length > 253) throw new DownloadRefusedError('host name too long');
  }
}
