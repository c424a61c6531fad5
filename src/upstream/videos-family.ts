// Seed 000: Seedance 1.0 Pro on `POST /v1/videos/generations` (toapis).
import type { EndpointFamilyAdapter } from './types.ts';
import { commonFields, imageFields } from './request-body.ts';
import { readTaskObject } from './task-response.ts';

export const videosFamily: EndpointFamilyAdapter = {
  family: 'videos',
  createPath: '/v1/videos/generations',
  taskPath: (id) => `/v1/videos/generations/${encodeURIComponent(id)}`,
  buildCreateBody(model, request) {
    const body = { ...commonFields(model, request), ...imageFields(model, request) };
    // Seed 000 lists the seed under "Extended parameters", the request's `metadata` object
    // (the same object the task echoes back as `metadata`).
    if (model.seedParameter && request.seed !== null) body.metadata = { seed: request.seed };
    return body;
  },
  readTask: readTaskObject,
};
