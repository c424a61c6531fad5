// Rows of uploaded media (the files themselves are in MediaStorage, once per content).
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { Db } from '../storage/database.ts';
import { mediaAssets, type MediaAssetRow } from '../storage/schema.ts';

export class MediaAssetStore {
  constructor(private readonly db: Db) {}

  /** The owner's row for this content, made if new (an identical upload returns the same asset). */
  upsert(asset: Omit<MediaAssetRow, 'id' | 'createdAt'>, now = new Date()): MediaAssetRow {
    const existing = this.find(asset.ownerId, asset.sha256);
    if (existing) return existing;
    return this.db.insert(mediaAssets).values({ ...asset, id: randomUUID(), createdAt: now })
      .onConflictDoNothing().returning().get() ?? this.find(asset.ownerId, asset.sha256)!;
  }

  find(ownerId: string, sha256: string): MediaAssetRow | undefined {
    return this.db.select().from(mediaAssets).where(and(eq(mediaAssets.ownerId, ownerId), eq(mediaAssets.sha256, sha256))).get();
  }
}
