import type { ImageRole } from './catalog.ts';

/**
 * A video request after validation: every default of the catalog applied, nothing left to guess.
 * It is stored with the task (as JSON) and is all an upstream adapter needs to build its body.
 */
export interface VideoRequest {
  model: string;
  prompt: string | null;
  duration: number;
  aspectRatio: string | null;
  resolution: string | null;
  imageUrls: string[];
  images: { url: string; role: ImageRole }[];
  videos: string[];
  audios: string[];
  /** null: not asked, the upstream's default applies. */
  generateAudio: boolean | null;
  returnLastFrame: boolean;
  seed: number | null;
}
