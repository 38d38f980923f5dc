// The one error type the SDK throws and emits: the API's JSON error ({error: {code, message, field}}), or a
// failure of its own (network, timeout, a job that ended without completing), in the same shape.
export class InfernetError extends Error {
  // status: the HTTP status (0 when no response came); code: the API's error code or the SDK's own
  // ("network", "bad_response", "timeout", "job_failed", "job_canceled", "job_expired", "stream_lost");
  // field: the request field the error is about, or undefined; job: the job object, when the error is about
  // a job's outcome.
  constructor(message, { status = 0, code = 'error', field, job, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'InfernetError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.job = job;
  }
}

// The error a non-2xx response carries, read from its JSON body when it has one.
export function errorFromResponse(status, body, text) {
  const detail = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : null;
  if (detail) {
    return new InfernetError(String(detail.message ?? `HTTP ${status}`), {
      status,
      code: String(detail.code ?? 'error'),
      field: detail.field === undefined ? undefined : String(detail.field),
    });
  }
  const snippet = typeof text === 'string' && text ? `: ${text.slice(0, 200)}` : '';
  return new InfernetError(`HTTP ${status}${snippet}`, { status, code: 'bad_response' });
}
