// Types of infernet-sdk (hand-written; they describe src/*.js and docs/api.md).

export declare const DEFAULT_BASE_URL: string;

export type JobState = 'submitted' | 'matched' | 'assigned' | 'running' | 'completed' | 'failed' | 'canceled' | 'expired';
// 'normal' is read as 'medium' (its name before there were four levels).
export type Priority = 'low' | 'normal' | 'medium' | 'high' | 'urgent';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  name?: string;
}

/** What the job gives the model. Keys a text model takes no parameter for are ignored with a warning. */
export interface JobInput {
  prompt?: string;
  messages?: ChatMessage[];
  /** SHA-256 hashes of text blobs uploaded with uploadBlob(), attached to the prompt. */
  files?: string[];
  [ignored: string]: unknown;
}

export interface JobParameters {
  max_tokens?: number;
  temperature?: number;
  seed?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  repeat_penalty?: number;
  repeat_last_n?: number;
  stop?: string | string[];
  deterministic?: boolean;
}

export interface JobResources {
  /** A GPU name ("NVIDIA_A100" matches "NVIDIA A100-SXM4-80GB"), or "cpu" for providers without GPUs. */
  gpu_type?: string;
  min_gpu_memory_mb?: number;
  priority?: Priority;
}

export type JobBudget = { max_cost_sats: number; max_cost_msat?: never } | { max_cost_msat: number; max_cost_sats?: never };

export interface InferenceJobSpec extends JobParameters {
  model: string;
  input?: JobInput;
  parameters?: JobParameters;
  resources?: JobResources;
  budget?: JobBudget;
  /** Unix seconds; a job not finished by then expires. */
  deadline?: number;
  prompt?: string;
  messages?: ChatMessage[];
  max_cost_msat?: number;
  priority?: Priority;
  provider?: string;
  open_quotes?: boolean;
  client_request_id?: string;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
}

export interface Job {
  id: string;
  client_request_id: string;
  state: JobState;
  model: string;
  prompt: string;
  messages: ChatMessage[];
  max_tokens: number;
  temperature: number;
  seed: number;
  top_k: number;
  top_p: number;
  min_p: number;
  repeat_penalty: number;
  repeat_last_n: number;
  stop: string[];
  deterministic: boolean;
  max_cost_msat: number;
  priority: 'low' | 'medium' | 'high' | 'urgent';
  deadline: number;
  provider: string;
  requested_provider: string;
  open_quotes: boolean;
  gpu_type: string;
  min_gpu_memory_mb: number;
  attempt: number;
  output: string;
  error: string;
  usage: Usage;
  cost_msat: number;
  created_at: number;
  updated_at: number;
  /** Set by createInferenceJob: input keys the model ignored. */
  warnings?: string[];
}

export interface JobResult {
  id: string;
  state: JobState;
  output: string;
  usage: Usage;
  cost_msat: number;
  error: string;
}

export interface JobEvent {
  seq: number;
  job_id: string;
  type: 'state' | 'progress' | 'result' | 'error' | 'note';
  at: number;
  data: Record<string, unknown>;
}

export interface JobFilters {
  state?: JobState;
  model?: string;
  since?: number;
  until?: number;
  limit?: number;
  order?: 'asc' | 'desc';
  cursor?: string;
}

export interface JobPage {
  jobs: Job[];
  next_cursor: string | null;
}

export interface ModelFilters {
  capability?: string;
  type?: string;
  family?: string;
  engine?: string;
  min_parameters?: number;
  max_parameters?: number;
  quantization?: string;
  min_context?: number;
  max_price_per_1k_output_msat?: number;
  gpu_type?: string;
  q?: string;
  sort?: 'name' | 'price' | 'providers' | 'parameters';
  limit?: number;
}

export interface ProviderFilters {
  alive?: boolean;
  model?: string;
  gpu_type?: string;
  engine?: string;
}

export interface GpuInfo {
  name: string;
  memory_mb: number;
}

export interface Provider {
  pubkey: string;
  npub: string;
  name: string;
  alive: boolean;
  last_seen: number;
  expires_at: number;
  hardware: { cpu_model: string; cpu_cores: number; memory_mb: number; gpus: GpuInfo[] };
  engines: string[];
  models: Array<{
    name: string;
    sha256: string;
    family: string;
    parameters: number;
    quantization: string;
    context_length: number;
    engine: string;
    capabilities: string[];
  }>;
  prices: {
    per_1k_input_msat: number;
    per_1k_output_msat: number;
    per_second_msat: number;
    per_job_msat: number;
    priority_percent: Record<string, number>;
  };
  capacity: { slots: number; queue: number; busy: number; queued: number };
}

export interface PriceRange {
  min: number;
  max: number;
}

export interface Model {
  name: string;
  family: string;
  parameters: number;
  quantization: string;
  context_length: number;
  capabilities: string[];
  engines: string[];
  fingerprints: string[];
  providers: string[];
  provider_count: number;
  min_price_per_1k_output_msat: number;
  price: { per_1k_input_msat: PriceRange; per_1k_output_msat: PriceRange };
  hardware: { gpus: string[]; providers_without_gpu: number };
}

export interface ModelOffer {
  provider: string;
  npub: string;
  provider_name: string;
  sha256: string;
  family: string;
  parameters: number;
  quantization: string;
  context_length: number;
  engine: string;
  capabilities: string[];
  prices: Provider['prices'];
  gpus: GpuInfo[];
  capacity: Provider['capacity'];
}

export interface ModelDetail extends Model {
  offers: ModelOffer[];
}

export interface BlobDescriptor {
  url: string;
  sha256: string;
  size: number;
  type: string;
  uploaded: number;
}

export interface ClientOptions {
  apiKey?: string;
  nostrPublicKey?: string;
  nostrSecretKey?: string | Uint8Array;
  baseUrl?: string;
  fetch?: typeof fetch;
  WebSocket?: unknown;
}

export interface WaitOptions {
  timeoutMs?: number;
  pollIntervalMs?: number;
}

export interface StreamOptions {
  after?: number;
  maxRetries?: number;
  WebSocket?: unknown;
}

export declare class InfernetError extends Error {
  constructor(message: string, options?: { status?: number; code?: string; field?: string; job?: Job; cause?: unknown });
  status: number;
  code: string;
  field: string | undefined;
  job: Job | undefined;
}

export interface StreamProgress {
  percentage: number;
  tokens: number;
  max_tokens: number;
  seq: number;
}

export interface StreamResult {
  text: string;
  output: string;
  seq: number;
}

export interface JobStreamEvents {
  progress: (progress: StreamProgress) => void;
  result: (partial: StreamResult) => void;
  complete: (job: Job) => void;
  error: (error: InfernetError) => void;
  state: (state: { state: JobState; provider?: string; attempt?: number; reason?: string; seq: number }) => void;
  note: (note: { message: string; provider?: string; name?: string; seq: number }) => void;
  provider_result: (result: Record<string, unknown> & { seq: number }) => void;
  provider_error: (error: Record<string, unknown> & { seq: number }) => void;
  reconnect: (info: { attempt: number; after: number }) => void;
  event: (message: Record<string, unknown>) => void;
  close: () => void;
}

export declare class JobStream {
  readonly jobId: string;
  readonly lastSeq: number;
  readonly socket: unknown;
  output: string;
  on<E extends keyof JobStreamEvents>(event: E, listener: JobStreamEvents[E]): this;
  once<E extends keyof JobStreamEvents>(event: E, listener: JobStreamEvents[E]): this;
  off<E extends keyof JobStreamEvents>(event: E, listener: JobStreamEvents[E]): this;
  emit(event: string, ...args: unknown[]): boolean;
  listenerCount(event: string): number;
  disconnect(): void;
}

export declare class InfernetClient {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  readonly nostrPublicKey: string | undefined;
  WebSocket: unknown;
  authorization(method: string, url: string, body?: string | Uint8Array | ArrayBuffer): Promise<string | undefined>;
  request(method: string, path: string, options?: { json?: unknown; body?: string | Uint8Array | ArrayBuffer; headers?: Record<string, string> }): Promise<any>;
  createInferenceJob(spec: InferenceJobSpec): Promise<Job>;
  getJob(id: string): Promise<Job>;
  listJobs(filters?: JobFilters): Promise<Job[]>;
  listJobsPage(filters?: JobFilters): Promise<JobPage>;
  cancelJob(id: string): Promise<Job>;
  getJobResult(id: string): Promise<JobResult>;
  getJobEvents(id: string, after?: number): Promise<JobEvent[]>;
  listModels(filters?: ModelFilters): Promise<Model[]>;
  getModel(name: string): Promise<ModelDetail>;
  listProviders(filters?: ProviderFilters): Promise<Provider[]>;
  uploadBlob(data: string | Uint8Array | ArrayBuffer, options?: { type?: string }): Promise<BlobDescriptor>;
  deleteBlob(sha256: string): Promise<{ deleted: string }>;
  waitForJobCompletion(id: string, options?: WaitOptions): Promise<JobResult>;
  connectToJobStream(id: string, options?: StreamOptions): JobStream;
}

export declare function nip98Header(options: {
  secretKey: string | Uint8Array;
  url: string;
  method: string;
  body?: string | Uint8Array | ArrayBuffer;
  now?: number;
}): Promise<string>;
