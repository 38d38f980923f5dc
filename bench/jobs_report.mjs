// Prints bench/jobs_bench.cpp's result beside the peer's (bench/dvm_peer.mjs), with ratios and the goals.
import { readFileSync } from 'node:fs';

const [ours, peer] = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')));
// jobs/s that signing and verifying alone allow on this machine's two cores: a job is four signed events
// (request, running, result, receipt), each signed once (~30 us) and verified twice, by the relay and by its
// recipient (~58 us each): about 0.58 ms of CPU per job.
const bound = 3400;
const row = (name, a, b, higherIsBetter, goal = '') => {
  const ratio = higherIsBetter ? a / b : b / a;
  console.log(`${name.padEnd(44)} ${a.toFixed(2).padStart(10)} ${b.toFixed(2).padStart(10)} ${(ratio.toFixed(1) + 'x').padStart(8)}  ${goal}`);
};
console.log(`${'measure'.padEnd(44)} ${'infernet'.padStart(10)} ${'DVM peer'.padStart(10)} ${'ours'.padStart(8)}`);
row('jobs/s end to end (window of in-flight jobs)', ours.jobs_per_second, peer.jobs_per_second, true,
  `goal >= 1000; ${(ours.jobs_per_second / bound).toFixed(2)} of the ~${bound}/s bound`);
row('dispatch p50 ms (submit -> running)', ours.dispatch_p50_ms, peer.dispatch_p50_ms, false, 'goal < 5 ms');
row('dispatch p99 ms', ours.dispatch_p99_ms, peer.dispatch_p99_ms, false);
row('submit -> result p50 ms, one at a time', ours.total_p50_ms, peer.total_p50_ms, false);
row('submit -> result p99 ms, one at a time', ours.total_p99_ms, peer.total_p99_ms, false);
console.log(`(ours: ${ours.completed}/${ours.jobs} completed, window ${ours.window}, ${ours.providers} provider processes, ` +
  `every message NIP-44 encrypted; peer: ${peer.completed}/${peer.jobs}, window ${peer.window}, ${peer.providers} ` +
  'DVMs in one Node process, plaintext)');
