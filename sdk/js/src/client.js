// InfernetClient: the local REST API of an Infernet consumer node (docs/api.md), as the consumer guide
// promises it ("API Integration").
import { InfernetError, errorFromResponse } from './errors.js';
import { nip98Header, derivePublicKey, publicKeyHex } from './nip98.js';
import { JobStream } from './stream.js';

export const DEFAULT_BASE_URL = 'http://127.0.0.1:7448';
const FINAL_STATES = new Set(['completed', 'failed', 'canceled', 'expired']);
const LIST_FILTERS = ['state', 'model', 'since', 'until', 'limit', 'order', 'cursor'];
const MODEL_FILTERS = [
  'capability', 'type', 'family', 'engine', 'min_parameters', 'max_parameters', 'quantization', 'min_context',
  'max_price_per_1k_output_msat', 'gpu_type', 'q', 'sort', 'limit',
];
const PROVIDER_FILTERS = ['alive', 'model', 'gpu_type', 'engine'];

// "?a=1&b=2" from the filters, refusing names the API does not know (it would answer 400 anyway; this names
// the allowed ones).
function filterQuery(filters, allowed) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters ?? {})) {
    if (!allowed.includes(key)) {
      throw new InfernetError(`${key}: unknown filter (use ${allowed.join(', ')})`, { code: 'invalid_input', field: key });
    }
    if (value !== undefined && value !== null) params.set(key, String(value));
  }
  const query = params.toString();
  return query ? `?${query}` : '';
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function checkJobId(id) {
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(id)) {
    throw new InfernetError('id: must be 1 to 128 letters, digits, "-" or "_"', { code: 'invalid_input', field: 'id' });
  }
  return id;
}

export class InfernetClient {
  #apiKey;
  #secretKey;
  #publicKey;
  #keyChecked;
  #fetch;

  // options: apiKey (sent as "Authorization: Bearer <apiKey>"), nostrPublicKey (hex or npub: who the user is;
  // checked against nostrSecretKey when both are given), nostrSecretKey (hex, nsec or 32 bytes: every request
  // is then NIP-98-signed instead of carrying the API key), baseUrl (the node's API), fetch (a fetch
  // implementation; default globalThis.fetch), WebSocket (for job streams; default globalThis.WebSocket, else
  // the "ws" package).
  constructor({ apiKey, nostrPublicKey, nostrSecretKey, baseUrl = DEFAULT_BASE_URL, fetch, WebSocket } = {}) {
    if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey === '' || /[\r\n]/.test(apiKey))) {
      throw new InfernetError('apiKey: must be a non-empty string on one line', { code: 'invalid_input', field: 'apiKey' });
    }
    let url;
    try {
      url = new URL(baseUrl);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new InfernetError('baseUrl: must be an http:// or https:// URL', { code: 'invalid_input', field: 'baseUrl' });
    }
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.nostrPublicKey = nostrPublicKey;
    this.#apiKey = apiKey;
    this.#secretKey = nostrSecretKey;
    this.#publicKey = nostrPublicKey;
    this.#fetch = fetch ?? globalThis.fetch?.bind(globalThis);
    if (typeof this.#fetch !== 'function') {
      throw new InfernetError('fetch: no fetch implementation; pass one as options.fetch', { code: 'invalid_input', field: 'fetch' });
    }
    this.WebSocket = WebSocket;
  }

  // The Authorization header for a request (undefined when the client has no credentials).
  async authorization(method, url, body) {
    if (this.#secretKey !== undefined) {
      if (!this.#keyChecked) this.#keyChecked = this.#checkKeys();
      await this.#keyChecked;
      return nip98Header({ secretKey: this.#secretKey, url, method, body });
    }
    if (this.#apiKey !== undefined) return `Bearer ${this.#apiKey}`;
    return undefined;
  }

  async #checkKeys() {
    const derived = await derivePublicKey(this.#secretKey);
    if (this.#publicKey !== undefined && (await publicKeyHex(this.#publicKey)) !== derived) {
      throw new InfernetError('nostrPublicKey: does not belong to nostrSecretKey', { code: 'invalid_input', field: 'nostrPublicKey' });
    }
  }

  // One request; the parsed JSON body of a 2xx answer, else an InfernetError.
  async request(method, path, { json, body, headers = {} } = {}) {
    const url = this.baseUrl + path;
    const sent = json !== undefined ? JSON.stringify(json) : body;
    const allHeaders = { accept: 'application/json', ...headers };
    if (json !== undefined) allHeaders['content-type'] = 'application/json';
    const auth = await this.authorization(method, url, sent);
    if (auth) allHeaders.authorization = auth;
    let res;
    try {
      res = await this.#fetch(url, { method, headers: allHeaders, body: sent });
    } catch (cause) {
      throw new InfernetError(`cannot reach the Infernet node at ${this.baseUrl}: ${cause?.message ?? cause}`, { code: 'network', cause });
    }
    const text = await res.text();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) throw errorFromResponse(res.status, parsed, text);
    if (parsed === undefined) {
      throw new InfernetError(`${method} ${path}: the answer is not JSON`, { status: res.status, code: 'bad_response' });
    }
    return parsed;
  }

  // Submits a job in the consumer guide's shape: { model, input: {prompt | messages, files?, ...},
  // parameters?, resources?: {gpu_type, min_gpu_memory_mb, priority}, budget?: {max_cost_sats | max_cost_msat},
  // deadline?, ...any flat field of POST /api/v1/jobs }. Returns the job object; input keys the model takes no
  // parameter for come back in job.warnings.
  async createInferenceJob(spec) {
    if (!spec || typeof spec !== 'object' || Array.isArray(spec)) {
      throw new InfernetError('job: must be an object', { code: 'invalid_input', field: 'job' });
    }
    const job = await this.request('POST', '/api/v1/jobs', { json: spec });
    if (!Array.isArray(job.warnings)) job.warnings = [];
    return job;
  }

  async getJob(id) {
    return this.request('GET', `/api/v1/jobs/${checkJobId(id)}`);
  }

  // filters: { state, model, since, until, limit } (docs/api.md); returns the list of jobs.
  async listJobs(filters = {}) {
    return (await this.listJobsPage(filters)).jobs;
  }

  // One page: {jobs, next_cursor}; pass next_cursor as filters.cursor for the next page (null: none left).
  async listJobsPage(filters = {}) {
    return this.request('GET', `/api/v1/jobs${filterQuery(filters, LIST_FILTERS)}`);
  }

  async cancelJob(id) {
    return this.request('POST', `/api/v1/jobs/${checkJobId(id)}/cancel`);
  }

  // { id, state, output, usage, cost_msat, error }; 409 not_final while the job runs.
  async getJobResult(id) {
    return this.request('GET', `/api/v1/jobs/${checkJobId(id)}/result`);
  }

  async getJobEvents(id, after = 0) {
    return (await this.request('GET', `/api/v1/jobs/${checkJobId(id)}/events?after=${Number(after)}`)).events;
  }

  async listModels(filters = {}) {
    return (await this.request('GET', `/api/v1/models${filterQuery(filters, MODEL_FILTERS)}`)).models;
  }

  // One model with each provider's offer (GET /api/v1/models/{name}).
  async getModel(name) {
    return this.request('GET', `/api/v1/models/${encodeURIComponent(name)}`);
  }

  async listProviders(filters = {}) {
    return (await this.request('GET', `/api/v1/providers${filterQuery(filters, PROVIDER_FILTERS)}`)).providers;
  }

  // Stores a file in the node's blob store (PUT /upload) and returns its descriptor {url, sha256, size, type,
  // uploaded}; name it in a job as input.files: [descriptor.sha256]. data: a string, Uint8Array or ArrayBuffer.
  async uploadBlob(data, { type } = {}) {
    const body = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    if (!(body instanceof Uint8Array) && !(body instanceof ArrayBuffer)) {
      throw new InfernetError('data: must be a string, Uint8Array or ArrayBuffer', { code: 'invalid_input', field: 'data' });
    }
    const headers = { 'content-type': type ?? (typeof data === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream') };
    return this.request('PUT', '/upload', { body, headers });
  }

  async deleteBlob(sha256) {
    if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) {
      throw new InfernetError('sha256: must be 64 hex digits', { code: 'invalid_input', field: 'sha256' });
    }
    return this.request('DELETE', `/${sha256}`);
  }

  // Polls the job until it is final. Resolves with its result ({id, state, output, usage, cost_msat, error})
  // when it completed; rejects with an InfernetError carrying the job (code job_failed, job_canceled or
  // job_expired) when it did not, or code "timeout" after timeoutMs (the job goes on).
  async waitForJobCompletion(id, { timeoutMs = 300000, pollIntervalMs = 1000 } = {}) {
    checkJobId(id);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.getJob(id);
      if (FINAL_STATES.has(job.state)) {
        if (job.state === 'completed') return this.getJobResult(id);
        throw new InfernetError(`job ${id} ${job.state}${job.error ? `: ${job.error}` : ''}`, {
          code: `job_${job.state}`,
          job,
        });
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new InfernetError(`job ${id} is still ${job.state} after ${timeoutMs} ms`, { code: 'timeout', job });
      }
      await sleep(Math.max(10, Math.min(pollIntervalMs, left)));
    }
  }

  // Follows the job over its WebSocket stream; see JobStream for the events. options: { after, maxRetries,
  // WebSocket }.
  connectToJobStream(id, options = {}) {
    checkJobId(id);
    return new JobStream(this, id, { WebSocket: this.WebSocket, ...options });
  }
}
