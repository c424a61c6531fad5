// This service's API keys: created, listed and revoked by the `keys` CLI, checked on every request.
// A key is 32 random bytes, so a fast hash (SHA-256) is enough: there is nothing to brute-force that a
// slow password hash would protect. Only the hash and a short prefix are stored.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../storage/database.ts';
import { apiKeys, type ApiKeyRow } from '../storage/schema.ts';
import type { Principal, Role } from './principal.ts';

const KEY_PREFIX = 'sgk_';

const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

export interface CreatedApiKey {
  id: string;
  name: string;
  role: Role;
  /** Shown once, never stored. */
  key: string;
}

/** Verified keys remembered at most (more are looked up again, as the first time). */
const MAX_REMEMBERED_KEYS = 10_000;

export class ApiKeyStore {
  private readonly byHash;
  /**
   * Principals of keys already verified, by the key's hash: the lookup (a query and drizzle's row
   * mapping) was ~4% of a create's CPU (bench/create.ts). Forgotten whenever any other connection
   * (the `keys` CLI, another process on the file) commits, as `PRAGMA data_version` tells, and on a
   * revoke through this store, so a revoked key is refused from the next request on, as without it.
   */
  private readonly verified = new Map<string, Principal>();
  private verifiedAtVersion = -1;
  private readonly dataVersion: () => number;

  constructor(private readonly db: Db) {
    this.byHash = db.select().from(apiKeys).where(eq(apiKeys.keyHash, sql.placeholder('keyHash'))).prepare();
    const version = db.$client.prepare('PRAGMA data_version').pluck();
    this.dataVersion = () => version.get() as number;
  }

  create(name: string, role: Role, now = new Date()): CreatedApiKey {
    const key = KEY_PREFIX + randomBytes(32).toString('base64url');
    const id = randomUUID();
    this.db.insert(apiKeys).values({ id, name, role, keyHash: hashKey(key), prefix: key.slice(0, KEY_PREFIX.length + 6), createdAt: now }).run();
    return { id, name, role, key };
  }

  list(): ApiKeyRow[] {
    return this.db.select().from(apiKeys).orderBy(apiKeys.createdAt).all();
  }

  /** Revokes by id or name; returns the key revoked, or undefined when none matched or it already was. */
  revoke(idOrName: string, now = new Date()): ApiKeyRow | undefined {
    const row = this.list().find((k) => k.id === idOrName || k.name === idOrName);
    if (!row || row.revokedAt) return undefined;
    // This connection's own commits leave data_version as it was: forget here.
    this.verified.clear();
    return this.db.update(apiKeys).set({ revokedAt: now }).where(eq(apiKeys.id, row.id)).returning().get();
  }

  /** The principal a presented key stands for, or null when it is unknown or revoked. */
  authenticate(key: string): Principal | null {
    if (!key.startsWith(KEY_PREFIX)) return null;
    const keyHash = hashKey(key);
    const version = this.dataVersion();
    if (version !== this.verifiedAtVersion) {
      this.verified.clear();
      this.verifiedAtVersion = version;
    }
    const known = this.verified.get(keyHash);
    if (known) return known;
    const row = this.byHash.get({ keyHash });
    if (!row || row.revokedAt) return null;
    const principal: Principal = Object.freeze({ ownerId: row.id, name: row.name, role: row.role });
    if (this.verified.size >= MAX_REMEMBERED_KEYS) this.verified.clear();
    this.verified.set(keyHash, principal);
    return principal;
  }

}
