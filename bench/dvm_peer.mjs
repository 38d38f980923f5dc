// The peer for bench/jobs_bench.cpp: the same job flow done the common way on Nostr, as a NIP-90 Data Vending
// Machine built on nostr-tools (npm), against the same relay. PROVIDERS DVMs and one customer run in this
// process, each with its own key and its own relay connection; each DVM answers a kind 5050 request with a
// kind 7000 "processing" status and then a kind 6050 result carrying what the fake engine would generate.
//   node bench/dvm_peer.mjs RELAY_URL [JOBS=1000] [WINDOW=100] [PROVIDERS=10]
// Prints one JSON object with the same keys as jobs_bench, measured the same way:
//   jobs_per_second    completed / (last result - first publish), WINDOW jobs unfinished at most;
//   dispatch p50/p99   request -> "processing" feedback, one job at a time (so no queueing is counted);
//   total p50/p99      request -> result, one job at a time;
//   load_total p50/p99 request -> result during the throughput run.
// nostr-tools is given its fastest setup (nostr-wasm for signing and verifying), so the comparison is with
// the best this stack does, not its pure-JS default. Every party shares this one Node.js thread, so one core
// does each job's 3 signatures and 3 verifications: on a small machine that, before the relay, bounds jobs/s.
import WebSocket from 'ws';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { setNostrWasm, generateSecretKey, getPublicKey, finalizeEvent, verifyEvent } from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';

useWebSocketImplementation(WebSocket);
setNostrWasm(await initNostrWasm());

const [url, jobsArg, windowArg, providersArg] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: node bench/dvm_peer.mjs RELAY_URL [JOBS=1000] [WINDOW=100] [PROVIDERS=10]\n');
  process.exit(2);
}
const JOBS = Number(jobsArg ?? 1000);
const WINDOW = Number(windowArg ?? 100);
const PROVIDERS = Number(providersArg ?? 10);
const PHASE_TIMEOUT_MS = 300_000;
const KIND_REQUEST = 5050;
const KIND_RESULT = 6050;
const KIND_FEEDBACK = 7000;

const now = () => Math.floor(Date.now() / 1000);
const clock = () => performance.now();
const tagValue = (ev, name) => ev.tags.find((t) => t[0] === name)?.[1];

// Same definition as jobs_bench, so the two sides' figures are comparable.
function percentile(values, p) {
  if (values.length === 0) return 0;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(p * v.length))];
}

// What the fake engine generates (src/engine/fake/fake_engine.cpp): the prompt's words, each followed by one
// space, cycled to max_tokens words. The DVM does no more work than our provider does.
function echoOutput(prompt, maxTokens) {
  const words = prompt.split(/\s+/).filter(Boolean);
  let out = '';
  if (words.length === 0) return out;
  for (let i = 0; i < maxTokens; i++) out += words[i % words.length] + ' ';
  return out;
}

let invalidEvents = 0;
let closing = false;
let aborted = false;
const pending = new Map(); // request id -> job, for the customer
// Publishes not yet acknowledged, awaited before closing so that no connection is cut under a job's event.
const unacked = new Set();
function track(promise) {
  unacked.add(promise);
  promise.finally(() => unacked.delete(promise));
  return promise;
}

// A connection that checks every incoming event's id and signature before handing it on: the Relay calls
// verifyEvent on each EVENT and drops what fails, as any client must (a relay is not trusted).
async function connect() {
  const relay = await Relay.connect(url, { verifyEvent });
  relay.onnotice = (msg) => process.stderr.write(`dvm_peer: NOTICE: ${msg}\n`);
  relay.onclose = () => abort(`connection to ${url} lost`);
  return relay;
}

// A lost connection would leave jobs waiting out the whole timeout; fail them now and submit no more.
function abort(why) {
  if (closing || aborted) return;
  aborted = true;
  process.stderr.write(`dvm_peer: ${why}\n`);
  for (const job of [...pending.values()]) job.done(false, clock());
}

// Subscribes and resolves once the relay has sent EOSE, so nothing published afterwards can be missed.
function subscribe(relay, filters, onevent) {
  return new Promise((resolve) => {
    const sub = relay.subscribe(filters, {
      onevent,
      oninvalidevent: () => { invalidEvents++; },
      oneose: () => resolve(sub),
      onclose: (reason) => { if (!closing) process.stderr.write(`dvm_peer: subscription closed: ${reason}\n`); },
    });
  });
}

// One DVM: takes the kind 5050 requests addressed to it, says it is processing, then publishes the result.
async function startProvider() {
  const sk = generateSecretKey();
  const pubkey = getPublicKey(sk);
  const relay = await connect();
  const publish = (template) =>
    track(relay.publish(finalizeEvent({ created_at: now(), content: '', ...template }, sk))
      .catch((err) => process.stderr.write(`dvm_peer: provider publish: ${err.message}\n`)));
  const sub = await subscribe(relay, [{ kinds: [KIND_REQUEST], '#p': [pubkey], since: now() }], (req) => {
    const input = req.tags.find((t) => t[0] === 'i' && (t[2] ?? 'text') === 'text')?.[1];
    const maxTokens = Number(req.tags.find((t) => t[0] === 'param' && t[1] === 'max_tokens')?.[2] ?? 16);
    const addressed = [['e', req.id], ['p', req.pubkey]];
    if (input === undefined) {
      publish({ kind: KIND_FEEDBACK, tags: [['status', 'error', 'no text input'], ...addressed] });
      return;
    }
    publish({ kind: KIND_FEEDBACK, tags: [['status', 'processing'], ...addressed] });
    publish({
      kind: KIND_RESULT,
      content: echoOutput(input, maxTokens),
      tags: [['request', JSON.stringify(req)], ...addressed, ['i', input, 'text']],
    });
  });
  return { pubkey, relay, sub };
}

const providers = [];
for (let i = 0; i < PROVIDERS; i++) providers.push(await startProvider());

// The customer: one connection, one subscription for everything addressed to it; jobs are matched to
// their request by the "e" tag.
const customerKey = generateSecretKey();
const customerPubkey = getPublicKey(customerKey);
const customer = await connect();
let rejected = 0;

const customerSub = await subscribe(
  customer,
  [{ kinds: [KIND_RESULT, KIND_FEEDBACK], '#p': [customerPubkey], since: now() }],
  (ev) => {
    const job = pending.get(tagValue(ev, 'e'));
    if (!job) return;
    const t = clock();
    if (ev.kind === KIND_FEEDBACK) {
      const status = tagValue(ev, 'status');
      if (status === 'processing' && job.dispatchMs === undefined) job.dispatchMs = t - job.start;
      else if (status === 'error') job.done(false, t);
    } else if (ev.kind === KIND_RESULT) {
      job.done(ev.content === job.expected, t);
    }
  },
);

// Submits `count` jobs round-robin over the providers, keeping at most `window` unfinished, and resolves
// when all have finished or the phase has run out of time.
function runPhase(count, window, label) {
  return new Promise((resolve) => {
    const phase = { completed: 0, failed: 0, finished: 0, dispatchMs: [], totalMs: [], start: clock(), last: 0 };
    const ids = [];
    let next = 0;
    let inFlight = 0;
    let over = false;
    const end = () => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      for (const id of ids) pending.delete(id);
      phase.last ||= clock();
      resolve(phase);
    };
    const timer = setTimeout(end, PHASE_TIMEOUT_MS);

    const submit = (i) => {
      const prompt = `${label} job ${i}`;
      const job = { start: clock(), expected: echoOutput(prompt, 4), dispatchMs: undefined, finished: false };
      // The clock starts before signing, as jobs_bench's does before submit(), which signs too.
      const req = finalizeEvent({
        kind: KIND_REQUEST,
        created_at: now(),
        content: '',
        tags: [['i', prompt, 'text'], ['param', 'max_tokens', '4'], ['p', providers[i % providers.length].pubkey]],
      }, customerKey);
      job.done = (ok, t) => {
        if (job.finished || over) return;
        job.finished = true;
        pending.delete(req.id);
        if (ok) {
          phase.completed++;
          phase.totalMs.push(t - job.start);
          if (job.dispatchMs !== undefined) phase.dispatchMs.push(job.dispatchMs);
        } else {
          phase.failed++;
        }
        phase.last = t;
        inFlight--;
        if (++phase.finished === count || (aborted && inFlight === 0)) end();
        else if (!aborted) fill();
      };
      pending.set(req.id, job);
      ids.push(req.id);
      inFlight++;
      track(customer.publish(req).catch((err) => {
        if (rejected++ === 0) process.stderr.write(`dvm_peer: request rejected: ${err.message.slice(0, 200)}\n`);
        job.done(false, clock());
      }));
    };
    const fill = () => {
      while (inFlight < window && next < count) submit(next++);
    };
    if (count === 0 || aborted) end();
    else fill();
  });
}

// Latency first, one job at a time, so that queueing behind other jobs does not count; then throughput.
const latency = await runPhase(Math.min(JOBS, 200), 1, 'latency');
const load = await runPhase(JOBS, WINDOW, 'load');

await Promise.allSettled([...unacked]);
closing = true;
customerSub.close();
customer.close();
for (const p of providers) {
  p.sub.close();
  p.relay.close();
}

const seconds = (load.last - load.start) / 1000;
const result = {
  jobs: JOBS,
  completed: load.completed,
  failed: load.failed + latency.failed,
  window: WINDOW,
  providers: PROVIDERS,
  jobs_per_second: seconds > 0 ? load.completed / seconds : 0,
  dispatch_p50_ms: percentile(latency.dispatchMs, 0.5),
  dispatch_p99_ms: percentile(latency.dispatchMs, 0.99),
  total_p50_ms: percentile(latency.totalMs, 0.5),
  total_p99_ms: percentile(latency.totalMs, 0.99),
  load_total_p50_ms: percentile(load.totalMs, 0.5),
  load_total_p99_ms: percentile(load.totalMs, 0.99),
};
process.stdout.write(JSON.stringify(result) + '\n');
if (invalidEvents > 0) process.stderr.write(`dvm_peer: ${invalidEvents} events failed verification\n`);
if (rejected > 0) process.stderr.write(`dvm_peer: ${rejected} requests not accepted by the relay\n`);
const allDone = load.completed === JOBS && latency.completed === Math.min(JOBS, 200) && result.failed === 0;
process.exitCode = allDone ? 0 : 1;
