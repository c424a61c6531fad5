// Seed 003: Seedance 1.0 Pro Fast on the second provider (`{base}/v1/videos/generations`,
// `video.generation.task` objects with `task_info` and `usage`, completion callbacks).
import type { EndpointFamilyAdapter } from './types.ts';
import { commonFields, imageFields } from './request-body.ts';
import { readTaskObject } from './task-response.ts';

export const odkkkVideosFamily: EndpointFamilyAdapter = {
  family: 'odkkk-videos',
  createPath: '/v1/videos/generations',
  // The seed links a "get task detail" page without its path: the create path plus the id is assumed,
  // and a provider's configuration may replace it (providers.ts).
  taskPath: (id) => `/v1/videos/generations/${encodeURIComponent(id)}`,
  buildCreateBody(model, request, { callbackUrl }) {
    const body = { ...commonFields(model, request), ...imageFields(model, request) };
    if (model.callback && callbackUrl) body.callback_url = callbackUrl;
    return body;
  },
  readTask: readTaskObject,
};
