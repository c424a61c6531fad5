// The URLs clients get for media: uploads by their public, content-addressed URL; archived results
// by a signed link (the task's own `videoUrl` once archived, else the provider's URL).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MediaAssetRow, VideoTaskRow } from '../storage/schema.ts';
import type { UrlSigner } from './url-signer.ts';

export class MediaLinks {
  constructor(readonly signer: UrlSigner, private readonly baseUrl: () => string) {}

  /** Where `/media/...` is reached from outside (PUBLIC_URL, or this server's own address). */
  get mediaBase(): string {
    return `${this.baseUrl()}/media`;
  }

  upload(asset: Pick<MediaAssetRow, 'storageKey'>): string {
    return `${this.mediaBase}/${asset.storageKey}`;
  }

  /** The best playable URL: our archived copy once there is one, else the provider's. */
  video(task: VideoTaskRow): string | null {
    return task.archiveStatus === 'ARCHIVED' && task.archivedVideoKey ? this.signed(task.archivedVideoKey) : task.videoUrl;
  }

  lastFrame(task: VideoTaskRow): string | null {
    return task.archiveStatus === 'ARCHIVED' && task.archivedLastFrameKey ? this.signed(task.archivedLastFrameKey) : task.lastFrameUrl;
  }

  private signed(key: string): string {
    return this.baseUrl() + this.signer.sign(`/media/${key}`);
  }
}

/** MEDIA_SIGNING_SECRET, or one made once and kept beside the media (shared by processes on that directory). */
export function mediaSigningSecret(configured: string | undefined, mediaDir: string): Buffer {
  if (configured) return Buffer.from(configured);
  mkdirSync(mediaDir, { recursive: true });
  const file = join(mediaDir, '.signing-secret');
  try {
    writeFileSync(file, randomBytes(32).toString('hex'), { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as { code?: string }).code !== 'EEXIST') throw error;
  }
  return Buffer.from(readFileSync(file, 'utf8').trim());
}
