// Prints bench/relay_bench.cpp's results for our relay and the peer side by side, with ratios and goals.
import { readFileSync } from 'node:fs';

const ours = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const peer = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const rows = [
  ['ingest, accepted events/s (4 connections)', 'ingest_per_second', true, 'ours >= 20000/s'],
  ['fan-out to 50, delivered events/s (saturated)', 'fanout_saturated_per_second', true],
  ['fan-out saturated p50 ms', 'fanout_saturated_p50_ms', false],
  ['fan-out saturated p99 ms', 'fanout_saturated_p99_ms', false],
  ['fan-out paced 100/s p50 ms', 'fanout_paced_p50_ms', false],
  ['fan-out paced 100/s p99 ms', 'fanout_paced_p99_ms', false, 'ours < 4 ms'],
  ['time to EOSE, 5,000 events, ms', 'eose_ms', false],
];
console.log('measure                                          infernet        peer   infernet advantage');
for (const [label, key, higherBetter, goal] of rows) {
  const a = ours[key];
  const b = peer[key];
  const ratio = higherBetter ? a / b : b / a;
  console.log(`${label.padEnd(46)} ${a.toFixed(1).padStart(10)} ${b.toFixed(1).padStart(11)} ${ratio.toFixed(1).padStart(8)}x  ${goal ?? ''}`);
}
console.log(`(ours: ${ours.ingest_accepted}/${ours.ingest_events} accepted, ${ours.eose_events} events before EOSE; ` +
  `peer: ${peer.ingest_accepted}/${peer.ingest_events} accepted, ${peer.eose_events} events before EOSE)`);
