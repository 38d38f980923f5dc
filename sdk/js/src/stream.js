// A job's WebSocket stream (docs/api.md "Job streams") as the consumer guide's socket.on(...) emitter.
//
// Events:
//   'progress'  {percentage, tokens, max_tokens, seq}   for each piece of output
//   'result'    {text, output, seq}                     the same piece: text is new, output is all so far
//   'complete'  job                                     the job completed (the final job object)
//   'error'     InfernetError                           the job failed, was canceled or expired (err.job),
//                                                       the job is unknown, or the stream could not be kept
//   'state'     {state, provider?, attempt?, reason?, seq}
//   'note'      {message, provider?, name?, seq}         why a provider was passed over, why the job waits
//   'provider_result', 'provider_error'  {..., seq}      a provider's result or error (the job may go on)
//   'reconnect' {attempt, after}                        the connection dropped; re-attaching after event `after`
//   'event'     the raw message, every one
//   'close'     after the final message, or disconnect()
//
// A dropped connection is re-attached with after=<last seq seen>, so no event is missed or repeated; up to
// maxRetries times in a row with backoff (250 ms doubling, at most 4 s), counting again from zero after each
// message received.
import { Emitter } from './emitter.js';
import { InfernetError } from './errors.js';

const CLOSE_INVALID = 4400;
const CLOSE_NOT_FOUND = 4404;
const FINAL_ERRORS = { error: 'failed', canceled: 'canceled', expired: 'expired' };

let wsModule;
async function defaultWebSocket() {
  if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
  if (!wsModule) {
    try {
      wsModule = (await import('ws')).default;
    } catch (cause) {
      throw new InfernetError('WebSocket: this runtime has none; install the "ws" package or pass options.WebSocket', {
        code: 'missing_dependency',
        field: 'WebSocket',
        cause,
      });
    }
  }
  return wsModule;
}

export class JobStream extends Emitter {
  #client;
  #WebSocket;
  #socket = null;
  #lastSeq;
  #retries = 0;
  #maxRetries;
  #timer = null;
  #closed = false;
  #maxTokens = 0;
  #attempt = 0;
  #tokensBefore = 0; // tokens of earlier attempts, so a failover does not restart the percentage
  #tokensInAttempt = 0;
  output = '';

  constructor(client, jobId, { after = 0, maxRetries = 5, WebSocket } = {}) {
    super();
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new InfernetError('after: must be a non-negative integer', { code: 'invalid_input', field: 'after' });
    }
    this.jobId = jobId;
    this.#client = client;
    this.#lastSeq = after;
    this.#maxRetries = maxRetries;
    this.#WebSocket = WebSocket;
    // Started on the next turn, so the caller can attach listeners first.
    setTimeout(() => this.#start(), 0);
  }

  // The sequence number of the last event received.
  get lastSeq() {
    return this.#lastSeq;
  }

  // The current WebSocket (null between connections), for diagnostics and tests.
  get socket() {
    return this.#socket;
  }

  // Stops following the job (the job goes on). Emits 'close'.
  disconnect() {
    if (this.#closed) return;
    this.#finish();
  }

  async #start() {
    try {
      this.#WebSocket ??= await defaultWebSocket();
      const job = await this.#client.getJob(this.jobId);
      this.#maxTokens = job.max_tokens ?? 0;
    } catch (err) {
      if (this.#closed) return;
      this.emit('error', err instanceof InfernetError ? err : new InfernetError(String(err?.message ?? err), { cause: err }));
      this.#finish();
      return;
    }
    this.#open();
  }

  async #open() {
    if (this.#closed) return;
    const path = `/api/v1/jobs/${this.jobId}/stream?after=${this.#lastSeq}`;
    const httpUrl = this.#client.baseUrl + path;
    const wsUrl = httpUrl.replace(/^http/, 'ws');
    let socket;
    try {
      const auth = await this.#client.authorization('GET', httpUrl);
      // Browsers cannot set headers on a WebSocket; the "ws" package (which has terminate()) can.
      const canSetHeaders = typeof this.#WebSocket.prototype?.terminate === 'function';
      if (auth && canSetHeaders) {
        socket = new this.#WebSocket(wsUrl, { headers: { authorization: auth } });
      } else if (auth?.startsWith('Bearer ')) {
        // The API accepts a key as access_token on WebSocket upgrades only (docs/api.md "Authentication").
        socket = new this.#WebSocket(`${wsUrl}&access_token=${encodeURIComponent(auth.slice(7))}`);
      } else {
        socket = new this.#WebSocket(wsUrl);
      }
    } catch (err) {
      this.#dropped();
      return;
    }
    if (this.#closed) {
      socket.close();
      return;
    }
    this.#socket = socket;
    socket.onmessage = (ev) => this.#message(ev.data);
    socket.onerror = () => {}; // a close event follows
    socket.onclose = (ev) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      if (this.#closed) return;
      if (ev.code === CLOSE_INVALID || ev.code === CLOSE_NOT_FOUND) {
        const status = ev.code === CLOSE_NOT_FOUND ? 404 : 400;
        this.emit('error', new InfernetError(ev.reason || `job stream refused (${ev.code})`, {
          status,
          code: status === 404 ? 'not_found' : 'invalid_input',
        }));
        this.#finish();
        return;
      }
      this.#dropped();
    };
  }

  #dropped() {
    if (this.#closed) return;
    if (this.#retries >= this.#maxRetries) {
      this.emit('error', new InfernetError(`job ${this.jobId}: the stream was lost after ${this.#retries} retries`, { code: 'stream_lost' }));
      this.#finish();
      return;
    }
    const delay = Math.min(4000, 250 * 2 ** this.#retries);
    this.#retries++;
    this.emit('reconnect', { attempt: this.#retries, after: this.#lastSeq });
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#open();
    }, delay);
  }

  #message(raw) {
    if (this.#closed) return;
    let msg;
    try {
      msg = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw));
    } catch {
      return; // not ours to interpret
    }
    if (!msg || typeof msg !== 'object') return;
    this.emit('event', msg);
    if (msg.final === true) {
      const job = msg.data;
      if (msg.type === 'complete') {
        this.emit('complete', job);
      } else {
        const state = FINAL_ERRORS[msg.type] ?? job?.state ?? msg.type;
        this.emit('error', new InfernetError(`job ${this.jobId} ${state}${job?.error ? `: ${job.error}` : ''}`, {
          code: `job_${state}`,
          job,
        }));
      }
      this.#finish();
      return;
    }
    // Re-attaching starts after the last event seen, so a repeat would be a server bug; it is dropped anyway.
    if (typeof msg.seq !== 'number' || msg.seq <= this.#lastSeq) return;
    this.#lastSeq = msg.seq;
    this.#retries = 0;
    const data = msg.data && typeof msg.data === 'object' ? msg.data : {};
    switch (msg.type) {
      case 'progress':
        this.#progress(data, msg.seq);
        break;
      case 'state':
      case 'note':
        this.emit(msg.type, { ...data, seq: msg.seq });
        break;
      case 'result':
        this.emit('provider_result', { ...data, seq: msg.seq });
        break;
      case 'error':
        this.emit('provider_error', { ...data, seq: msg.seq });
        break;
      default:
        break;
    }
  }

  #progress(data, seq) {
    const text = typeof data.text === 'string' ? data.text : '';
    if (data.attempt !== undefined && data.attempt !== this.#attempt) {
      this.#tokensBefore += this.#tokensInAttempt;
      this.#tokensInAttempt = 0;
      this.#attempt = data.attempt;
    }
    if (typeof data.tokens === 'number' && data.tokens > this.#tokensInAttempt) this.#tokensInAttempt = data.tokens;
    const tokens = this.#tokensBefore + this.#tokensInAttempt;
    const percentage = this.#maxTokens > 0 ? Math.min(100, Math.round((tokens * 100) / this.#maxTokens)) : 0;
    this.output += text;
    this.emit('progress', { percentage, tokens, max_tokens: this.#maxTokens, seq });
    this.emit('result', { text, output: this.output, seq });
  }

  #finish() {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const socket = this.#socket;
    this.#socket = null;
    if (socket && socket.readyState <= 1) socket.close(1000);
    this.emit('close');
  }
}
