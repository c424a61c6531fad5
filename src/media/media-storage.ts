// Where media files live. One small interface; the local-directory implementation is the default
// (MEDIA_DIR). Files are written to a temporary name while they stream in and renamed into place
// when complete, so a reader never sees half a file and a crash leaves only temporaries behind.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A file written under a temporary name, with what was learnt while it streamed in. */
export interface StagedMedia {
  readonly tempPath: string;
  readonly bytes: number;
  readonly sha256: string;
  /** The first bytes, for telling the real type from the content. */
  readonly head: Buffer;
}

export class MediaTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`larger than ${maxBytes} bytes`);
    this.name = 'MediaTooLargeError';
  }
}

export interface MediaStorage {
  /** Streams `source` to a temporary file, hashing and counting; refuses more than `maxBytes`. */
  stage(source: Readable | AsyncIterable<Uint8Array>, maxBytes: number): Promise<StagedMedia>;
  /** Moves a staged file to `key`; when `key` exists already (same content) the staged copy is dropped. */
  commit(staged: StagedMedia, key: string): Promise<void>;
  discard(staged: StagedMedia): Promise<void>;
  stat(key: string): Promise<{ bytes: number; modifiedAt: Date } | null>;
  read(key: string, range?: { start: number; end: number }): Readable;
  delete(key: string): Promise<void>;
  /** Keys under `prefix` last written before `before` (retention). */
  listOlderThan(prefix: string, before: Date): Promise<string[]>;
  /** Removes temporaries a crash left behind (older than `before`, so other processes' are spared). */
  removeStaleStaging(before: Date): Promise<void>;
}

const HEAD_BYTES = 4100;

export class LocalMediaStorage implements MediaStorage {
  private readonly root: string;
  private readonly tempDir: string;

  constructor(directory: string) {
    this.root = resolve(directory);
    this.tempDir = join(this.root, '.staging');
  }

  async stage(source: Readable | AsyncIterable<Uint8Array>, maxBytes: number): Promise<StagedMedia> {
    await mkdir(this.tempDir, { recursive: true });
    const tempPath = join(this.tempDir, randomUUID());
    const hash = createHash('sha256');
    const headChunks: Buffer[] = [];
    let headLength = 0;
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          callback(new MediaTooLargeError(maxBytes));
          return;
        }
        hash.update(chunk);
        if (headLength < HEAD_BYTES) {
          headChunks.push(chunk.subarray(0, HEAD_BYTES - headLength));
          headLength += Math.min(chunk.length, HEAD_BYTES - headLength);
        }
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(tempPath, { flags: 'wx' }));
    } catch (error) {
      await rm(tempPath, { force: true });
      throw error;
    }
    return { tempPath, bytes, sha256: hash.digest('hex'), head: Buffer.concat(headChunks) };
  }

  async commit(staged: StagedMedia, key: string): Promise<void> {
    const target = this.pathOf(key);
    await mkdir(dirname(target), { recursive: true });
    if (key.startsWith('uploads/') && (await this.stat(key))) {
      // Content-addressed: the same bytes are there already.
      await this.discard(staged);
      return;
    }
    await rename(staged.tempPath, target);
  }

  async discard(staged: StagedMedia): Promise<void> {
    await rm(staged.tempPath, { force: true });
  }

  async stat(key: string): Promise<{ bytes: number; modifiedAt: Date } | null> {
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { bytes: info.size, modifiedAt: info.mtime } : null;
    } catch {
      return null;
    }
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.pathOf(key), range ? { start: range.start, end: range.end } : {});
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async listOlderThan(prefix: string, before: Date): Promise<string[]> {
    const base = this.pathOf(prefix);
    const found: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if ((await stat(path)).mtime < before) found.push(relative(this.root, path).split(sep).join('/'));
      }
    };
    await walk(base);
    return found;
  }

  async removeStaleStaging(before: Date): Promise<void> {
    for (const key of await this.listOlderThan('.staging', before)) await this.delete(key);
  }

  /** Keys are this service's own (`uploads/<sha>.<ext>`, `archives/<task>/video.mp4`); anything escaping the root is refused. */
  private pathOf(key: string): string {
    const path = resolve(this.root, key);
    if (!path.startsWith(this.root + sep) || key.includes('\0')) throw new Error(`invalid media key: ${key}`);
    return path;
  }
}
