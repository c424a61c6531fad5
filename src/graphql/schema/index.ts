// Imports every type file (each registers itself on the builder), then builds the schema.
import { builder } from '../builder.ts';
import './scalars.ts';
import './video-task.ts';
import './video-model.ts';
import './create-video-task.ts';
import './cancel-video-task.ts';
import './video-task-subscriptions.ts';
import './media-asset.ts';
import './extend-video-task.ts';
import './delete-video-task.ts';

export const schema = builder.toSchema({ sortSchema: false });
