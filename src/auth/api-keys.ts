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

export class ApiKeyStore {
  private readonly byHash;

  constructor(private readonly db: Db) {
    this.byHash = db.select().from(apiKeys).where(eq(apiKeys.keyHash, sql.placeholder('keyHash'))).prepare();
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
    return this.db.update(apiKeys).set({ revokedAt: now }).where(eq(apiKeys.id, row.id)).returning().get();
  }

  /** The principal a presented key stands for, or null when it is unknown or revoked. */
  authenticate(key: string): Principal | null {
    if (!key.startsWith(KEY_PREFIX)) return null;
    const row = this.byHash.get({ keyHash: hashKey(key) });
    if (!row || row.revokedAt) return null;
    return { ownerId: row.id, name: row.name, role: row.role };
  }

}
