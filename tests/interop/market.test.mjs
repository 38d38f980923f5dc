// The market through real processes: a relay, two fake-engine providers at different prices and a consumer;
// estimates and "why" over REST and the CLI, and the reputation the consumer keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, api, waitFor, finalJob } from './node_process.mjs';
import { runAsync } from './infernet_cli.mjs';

async function network() {
  const relay = await startNode({ roles: ['relay'] });
  const common = { 'node.relays': relay.relayUrl, 'node.heartbeat_seconds': 1 };
  const prices = [1000, 3000];
  const provs = [];
  for (let i = 0; i < prices.length; i++) {
    provs.push(await startNode({
      roles: ['provider'],
      settings: {
        ...common,
        'provider.name': `p${i}`,
        'provider.price_per_1k_input_msat': 0,
        'provider.price_per_1k_output_msat': prices[i],
        'provider.price_per_job_msat': 0,
      },
    }));
  }
  const consumer = await startNode({ roles: ['consumer'], settings: { ...common } });
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers');
    return r.status === 200 && r.body.providers.filter((p) => p.alive).length === provs.length;
  }, 15000, 'providers announced to the consumer');
  const all = [relay, ...provs, consumer];
  return { providers: provs, consumer, stop: () => Promise.all(all.map((n) => n.stop('SIGKILL'))) };
}

test('estimate, why and reputation over REST and the CLI', async () => {
  const net = await network();
  try {
    const [cheap, dear] = net.providers;
    const body = { model: 'fake-echo', prompt: 'hello', max_tokens: 100 };

    // Estimate: the chosen provider's breakdown and the range, nothing stored.
    const e = await api(net.consumer, 'POST', '/api/v1/estimate', body);
    assert.equal(e.status, 200, JSON.stringify(e.body));
    assert.equal(e.body.chosen.provider, cheap.pubkey);
    assert.equal(e.body.chosen.worst_case.output_msat, 100);
    assert.equal(e.body.chosen.worst_case.total_msat, 100);
    // The fake engine's tokenizer counts words: "hello" is one token (the bound, 13, prices the worst case).
    assert.equal(e.body.input_tokens_source, 'tokenizer', JSON.stringify(e.body));
    assert.equal(e.body.input_tokens, 1);
    assert.equal(e.body.input_tokens_counted_by, cheap.pubkey);
    assert.equal(e.body.input_tokens_bound, 13);
    assert.equal(e.body.eligible, 2);
    assert.deepEqual(e.body.range, { min_msat: 100, max_msat: 300 });
    assert.equal(e.body.providers.length, 2);
    assert.equal((await api(net.consumer, 'GET', '/api/v1/jobs')).body.jobs.length, 0, 'an estimate stores nothing');
    const fastest = await api(net.consumer, 'POST', '/api/v1/estimate', { ...body, strategy: 'cheapest' });
    assert.equal(fastest.body.strategy, 'cheapest');
    const bad = await api(net.consumer, 'POST', '/api/v1/estimate', { ...body, strategy: 'quickest' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /strategy: must be balanced, cheapest or fastest/);
    const wrongMethod = await api(net.consumer, 'GET', '/api/v1/estimate');
    assert.equal(wrongMethod.status, 405);

    const cli = await runAsync(['estimate', '--api', net.consumer.apiUrl, '--model', 'fake-echo', '--prompt', 'hello',
      '--max-tokens', '100']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /would go to p0/);
    assert.match(cli.stdout, /2 eligible provider\(s\), worst cases from 100 to 300 msat/);

    // Why: a cap under every worst case leaves the job waiting, and says what would reach them.
    const capped = await api(net.consumer, 'POST', '/api/v1/jobs', { ...body, max_cost_msat: 50 });
    assert.equal(capped.status, 201, JSON.stringify(capped.body));
    const why = await waitFor(async () => {
      const r = await api(net.consumer, 'GET', `/api/v1/jobs/${capped.body.id}/why`);
      return r.status === 200 && r.body.suggestions.length > 0 ? r.body : null;
    }, 5000, 'why to answer');
    assert.equal(why.state, 'submitted');
    assert.deepEqual(why.providers.map((p) => p.verdict), ['rejected', 'rejected']);
    assert.ok(why.providers.every((p) => /^worst-case price \d+ msat exceeds max_cost_msat 50$/.test(p.reason)));
    assert.ok(why.suggestions.includes(
      'raising the price cap to 300 msat reaches 2 more providers (100 msat reaches the cheapest of them)'),
    JSON.stringify(why.suggestions));
    const cliWhy = await runAsync(['why', '--api', net.consumer.apiUrl, capped.body.id]);
    assert.equal(cliWhy.code, 0, cliWhy.stderr);
    assert.match(cliWhy.stdout, /rejected p1 \(/);
    assert.match(cliWhy.stdout, /- raising the price cap to 300 msat/);
    assert.equal((await api(net.consumer, 'GET', '/api/v1/jobs/nosuchjob/why')).status, 404);

    // Reputation: a completed job counts for its provider, visible in /providers.
    const ok = await api(net.consumer, 'POST', '/api/v1/jobs', { ...body, max_tokens: 5 });
    const done = await finalJob(net.consumer, ok.body.id, 15000);
    assert.equal(done.state, 'completed', done.error);
    const providers = (await api(net.consumer, 'GET', '/api/v1/providers')).body.providers;
    const rep = providers.find((p) => p.pubkey === done.provider).reputation;
    assert.equal(rep.completed, 1);
    assert.equal(rep.failed + rep.slow + rep.wrong, 0);
    assert.ok(rep.reliability > 0.5);
    const other = providers.find((p) => p.pubkey !== done.provider).reputation;
    assert.equal(other.completed, 0);
    assert.ok([cheap.pubkey, dear.pubkey].includes(done.provider));
  } finally {
    await net.stop();
  }
});
