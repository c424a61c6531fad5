// Seeds 001 and 002: Seedance 2 and Seedance 2.0 multimodal on `POST /v1/video/generations`
// (singular `video`). The two dialects differ only in field forms that the catalog records.
import type { EndpointFamilyAdapter } from './types.ts';
import { commonFields, imageFields, referenceMediaFields } from './request-body.ts';
import { readTaskObject } from './task-response.ts';

export const videoFamily: EndpointFamilyAdapter = {
  family: 'video',
  createPath: '/v1/video/generations',
  taskPath: (id) => `/v1/video/generations/${encodeURIComponent(id)}`,
  buildCreateBody(model, request) {
    const body = { ...commonFields(model, request), ...imageFields(model, request), ...referenceMediaFields(model, request) };
    if (model.generateAudio && request.generateAudio !== null) body.generate_audio = request.generateAudio;
    // Seed 002's default is false: sent only when asked, so bodies match the seed's examples.
    if (model.returnLastFrame && request.returnLastFrame) body.return_last_frame = true;
    return body;
  },
  readTask: readTaskObject,
};
