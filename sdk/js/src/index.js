// infernet-sdk: a client for the local API of an Infernet consumer node (docs/api.md).
export { InfernetClient, DEFAULT_BASE_URL } from './client.js';
export { JobStream } from './stream.js';
export { InfernetError } from './errors.js';
export { nip98Header } from './nip98.js';
