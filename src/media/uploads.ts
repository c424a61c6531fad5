// uploadMedia: a client's image, reference video or reference audio, streamed to storage (never held
// whole in memory), checked by its bytes, stored once per content, and given a stable public URL that
// createVideoTask accepts. A refused file leaves nothing behind.
import type { Readable } from 'node:stream';
import type { Principal } from '../auth/principal.ts';
import type { MediaAssetRow } from '../storage/schema.ts';
import type { UserError } from '../tasks/validation.ts';
import type { MediaAssetStore } from './media-assets.ts';
import { MediaTooLargeError, type MediaStorage, type StagedMedia } from './media-storage.ts';
import { ACCEPTED_DESCRIPTION, claimedExtension, isComplete, sniffMediaType } from './media-types.ts';

export interface IncomingFile {
  filename?: string;
  mimetype?: string;
  createReadStream(): Readable;
}

export interface UploadLimits {
  maxImageBytes: number;
  maxMediaBytes: number;
}

export interface UploadResult {
  asset: MediaAssetRow | null;
  userErrors: UserError[];
}

export class MediaUploads {
  constructor(
    private readonly storage: MediaStorage,
    private readonly assets: MediaAssetStore,
    private readonly limits: UploadLimits,
  ) {}

  async upload(principal: Principal, file: IncomingFile): Promise<UploadResult> {
    const refuse = (code: string, message: string): UploadResult => ({ asset: null, userErrors: [{ field: ['file'], code, message }] });
    let staged: StagedMedia;
    try {
      staged = await this.storage.stage(file.createReadStream(), this.limits.maxMediaBytes);
    } catch (error) {
      if (error instanceof MediaTooLargeError || isUploadLimitError(error)) {
        return refuse('TOO_LARGE', `The file is larger than ${this.limits.maxMediaBytes} bytes.`);
      }
      return refuse('UPLOAD_INCOMPLETE', 'The upload ended before the whole file arrived.');
    }
    try {
      if (staged.bytes === 0) return refuse('EMPTY', 'The file is empty.');
      const type = await sniffMediaType(staged.head);
      if (!type) return refuse('UNSUPPORTED_TYPE', `The file's content is not one of ${ACCEPTED_DESCRIPTION}.`);
      const claimed = claimedExtension(file.filename, file.mimetype);
      if (claimed && claimed !== type.extension) {
        return refuse('MISLABELLED', `The file is named or declared as ${claimed} but its content is ${type.contentType}.`);
      }
      if (type.kind === 'IMAGE' && staged.bytes > this.limits.maxImageBytes) {
        return refuse('TOO_LARGE', `Images may be at most ${this.limits.maxImageBytes} bytes (the providers' limit); this one has ${staged.bytes}.`);
      }
      if (!(await isComplete(staged.tempPath, type, staged.bytes))) {
        return refuse('TRUNCATED', `The ${type.contentType} file is incomplete (truncated).`);
      }
      const storageKey = `uploads/${staged.sha256}.${type.extension}`;
      await this.storage.commit(staged, storageKey);
      const asset = this.assets.upsert({
        ownerId: principal.ownerId,
        sha256: staged.sha256,
        kind: type.kind,
        contentType: type.contentType,
        bytes: staged.bytes,
        storageKey,
        filename: file.filename?.slice(0, 255) ?? null,
      });
      return { asset, userErrors: [] };
    } finally {
      // A committed file has moved away; anything still staged is a refusal's leftover.
      await this.storage.discard(staged);
    }
  }
}

/** graphql-upload ends the stream with a 413 error when a file passes its maxFileSize. */
function isUploadLimitError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { status?: number }).status === 413;
}
