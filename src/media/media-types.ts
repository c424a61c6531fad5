// What media this service accepts and stores, told from the bytes themselves (file-type reads the
// magic numbers), never from a file name or a declared content type.
import { open } from 'node:fs/promises';
import { fileTypeFromBuffer } from 'file-type';

export type MediaKind = 'IMAGE' | 'VIDEO' | 'AUDIO';

export interface MediaType {
  kind: MediaKind;
  contentType: string;
  extension: string;
}

// Seeds 000-003: images are JPEG, PNG or WEBP of at most 10 MB. Reference video is MP4, reference
// audio MP3 or WAV (seed 002's examples).
const ACCEPTED: Readonly<Record<string, MediaType>> = {
  'image/jpeg': { kind: 'IMAGE', contentType: 'image/jpeg', extension: 'jpg' },
  'image/png': { kind: 'IMAGE', contentType: 'image/png', extension: 'png' },
  'image/webp': { kind: 'IMAGE', contentType: 'image/webp', extension: 'webp' },
  'video/mp4': { kind: 'VIDEO', contentType: 'video/mp4', extension: 'mp4' },
  'audio/mpeg': { kind: 'AUDIO', contentType: 'audio/mpeg', extension: 'mp3' },
  'audio/wav': { kind: 'AUDIO', contentType: 'audio/wav', extension: 'wav' },
  'audio/vnd.wave': { kind: 'AUDIO', contentType: 'audio/wav', extension: 'wav' },
};

/** MP4 variants file-type names by their brand; all are MP4 containers a player opens. */
const MP4_ALIASES = new Set(['video/mp4', 'video/quicktime', 'video/x-m4v', 'audio/x-m4a']);

export async function sniffMediaType(head: Buffer): Promise<MediaType | null> {
  const found = await fileTypeFromBuffer(head);
  if (!found) return null;
  if (MP4_ALIASES.has(found.mime) && found.mime !== 'audio/x-m4a') return ACCEPTED['video/mp4']!;
  return ACCEPTED[found.mime] ?? null;
}

export const ACCEPTED_DESCRIPTION = 'JPEG, PNG or WEBP images, MP4 video, MP3 or WAV audio';

/**
 * Whether a file of a sniffed type is whole: a truncated upload has the right first bytes but not the
 * end its format requires (JPEG's EOI marker, PNG's IEND chunk, the RIFF length of WEBP and WAV, MP4's
 * top-level boxes adding up to the file and holding a `moov`). MP3 frames carry no total length, so an
 * MP3 is taken as whole.
 */
export async function isComplete(path: string, type: MediaType, bytes: number): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const readAt = async (position: number, length: number) => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, position);
      return buffer.subarray(0, bytesRead);
    };
    switch (type.extension) {
      case 'jpg': {
        const tail = await readAt(Math.max(0, bytes - 2), 2);
        return tail[0] === 0xff && tail[1] === 0xd9;
      }
      case 'png':
        return (await readAt(Math.max(0, bytes - 12), 12)).includes('IEND');
      case 'webp':
      case 'wav': {
        const header = await readAt(0, 8);
        return header.length === 8 && header.readUInt32LE(4) + 8 <= bytes;
      }
      case 'mp4': {
        let position = 0;
        let sawMovie = false;
        while (position < bytes) {
          const header = await readAt(position, 16);
          if (header.length < 8) return false;
          let size = header.readUInt32BE(0);
          const name = header.toString('latin1', 4, 8);
          if (size === 1) size = Number(header.readBigUInt64BE(8));
          else if (size === 0) size = bytes - position;
          if (size < 8) return false;
          if (name === 'moov') sawMovie = true;
          position += size;
        }
        return position === bytes && sawMovie;
      }
      default:
        return true;
    }
  } finally {
    await file.close();
  }
}

/** The type a file name's extension or a declared content type claims, if it claims one we know. */
export function claimedExtension(filename: string | undefined, declaredType: string | undefined): string | null {
  const byType: Record<string, string> = {
    'image/jpeg': 'jpg', 'image/jpg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'video/mp4': 'mp4',
    'audio/mpeg': 'mp3', 'audio/mp3': 'mp3', 'audio/wav': 'wav', 'audio/x-wav': 'wav', 'audio/wave': 'wav',
  };
  const declared = declaredType ? byType[declaredType.toLowerCase().split(';')[0]!.trim()] : undefined;
  if (declared) return declared;
  const extension = filename?.toLowerCase().match(/\.([a-z0-9]{2,5})$/)?.[1];
  const byExtension: Record<string, string> = { jpg: 'jpg', jpeg: 'jpg', png: 'png', webp: 'webp', mp4: 'mp4', mp3: 'mp3', wav: 'wav' };
  return extension ? byExtension[extension] ?? null : null;
}
