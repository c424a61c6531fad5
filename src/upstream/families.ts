import type { EndpointFamily } from '../tasks/catalog.ts';
import type { EndpointFamilyAdapter } from './types.ts';
import { videosFamily } from './videos-family.ts';
import { videoFamily } from './video-family.ts';
import { odkkkVideosFamily } from './odkkk-videos-family.ts';

export const ENDPOINT_FAMILIES: Readonly<Record<EndpointFamily, EndpointFamilyAdapter>> = {
  videos: videosFamily,
  video: videoFamily,
  'odkkk-videos': odkkkVideosFamily,
};
