// The REST API's listing surface against a live node: cursor paging through jobs, the models marketplace built
// from two providers' real announcements (different models and prices), provider filters, the OpenAPI document,
// and the SDK and CLI passing the same filters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, api, waitFor } from './node_process.mjs';
import { runAsync } from './infernet_cli.mjs';
import { InfernetClient } from '../../sdk/js/src/index.js';

async function network() {
  const relay = await startNode({ roles: ['relay'] });
  const common = { 'node.relays': relay.relayUrl, 'node.heartbeat_seconds': 1 };
  // "cheap" serves fake-echo and fake-small at 500 msat per 1000 output tokens, "dear" fake-echo and
  // fake-large at 4000.
  const cheap = await startNode({
    roles: ['provider'],
    settings: { ...common, 'provider.name': 'cheap', 'provider.models': 'fake-echo,fake-small',
      'provider.price_per_1k_output_msat': 500, 'provider.price_per_1k_input_msat': 100 },
  });
  const dear = await startNode({
    roles: ['provider'],
    settings: { ...common, 'provider.name': 'dear', 'provider.models': 'fake-echo,fake-large',
      'provider.price_per_1k_output_msat': 4000, 'provider.price_per_1k_input_msat': 300 },
  });
  const consumer = await startNode({ roles: ['consumer'], settings: common });
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers?alive=true');
    return r.status === 200 && r.body.providers.length === 2;
  }, 15000, 'both providers announced to the consumer');
  const all = [relay, cheap, dear, consumer];
  return { cheap, dear, consumer, stop: () => Promise.all(all.map((n) => n.stop('SIGKILL'))) };
}

test('pages through 25 jobs with limit 10, both orders, while a job is added', async () => {
  const consumer = await startNode({ roles: ['relay', 'consumer'] });
  try {
    // No provider: the jobs stay submitted, which is all paging needs.
    const ids = [];
    for (let i = 0; i < 25; i++) {
      const r = await api(consumer, 'POST', '/api/v1/jobs', { model: 'fake-echo', prompt: `job ${i}`, max_tokens: 4 });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
    for (const order of ['desc', 'asc']) {
      const seen = [];
      const sizes = [];
      let cursor = null;
      let added = null;
      do {
        const query = `?limit=10&order=${order}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const r = await api(consumer, 'GET', `/api/v1/jobs${query}`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        sizes.push(r.body.jobs.length);
        seen.push(...r.body.jobs.map((j) => j.id));
        cursor = r.body.next_cursor;
        if (order === 'desc' && !added) {
          added = (await api(consumer, 'POST', '/api/v1/jobs', { model: 'fake-echo', prompt: 'late', max_tokens: 4 })).body.id;
          ids.push(added);
        }
      } while (cursor !== null);
      if (order === 'desc') {
        assert.deepEqual(sizes, [10, 10, 5]);
        assert.deepEqual(seen, ids.slice(0, 25).reverse(), 'newest first, the late job not shifting the pages');
      } else {
        assert.deepEqual(sizes, [10, 10, 6]);
        assert.deepEqual(seen, ids, 'oldest first, ending with the late job');
      }
    }
    const bad = await api(consumer, 'GET', '/api/v1/jobs?cursor=nonsense');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'cursor');
    const badOrder = await api(consumer, 'GET', '/api/v1/jobs?order=sideways');
    assert.equal(badOrder.body.error.field, 'order');

    // The SDK pages the same way.
    const client = new InfernetClient({ baseUrl: consumer.apiUrl });
    const first = await client.listJobsPage({ limit: 10, order: 'asc' });
    assert.deepEqual(first.jobs.map((j) => j.id), ids.slice(0, 10));
    const second = await client.listJobsPage({ limit: 10, order: 'asc', cursor: first.next_cursor });
    assert.deepEqual(second.jobs.map((j) => j.id), ids.slice(10, 20));
  } finally {
    await consumer.stop('SIGKILL');
  }
});

test('the models marketplace of two providers, filtered and sorted', async () => {
  const net = await network();
  try {
    const all = (await api(net.consumer, 'GET', '/api/v1/models')).body.models;
    assert.deepEqual(all.map((m) => m.name), ['fake-echo', 'fake-large', 'fake-small']);
    const echo = all[0];
    assert.equal(echo.provider_count, 2);
    assert.deepEqual(echo.providers.sort(), [net.cheap.pubkey, net.dear.pubkey].sort());
    assert.deepEqual(echo.price.per_1k_output_msat, { min: 500, max: 4000 });
    assert.deepEqual(echo.price.per_1k_input_msat, { min: 100, max: 300 });
    assert.equal(echo.min_price_per_1k_output_msat, 500);
    assert.deepEqual(echo.capabilities, ['text-generation']);
    assert.deepEqual(echo.engines, ['fake']);
    assert.equal(echo.family, 'fake');

    const names = async (query) =>
      (await api(net.consumer, 'GET', `/api/v1/models${query}`)).body.models.map((m) => m.name);
    assert.deepEqual(await names('?max_price_per_1k_output_msat=1000'), ['fake-echo', 'fake-small']);
    assert.deepEqual(await names('?sort=price'), ['fake-echo', 'fake-small', 'fake-large']);
    assert.deepEqual(await names('?q=LARGE'), ['fake-large']);
    assert.deepEqual(await names('?type=text-generation&engine=fake&limit=2'), ['fake-echo', 'fake-large']);
    assert.deepEqual(await names('?capability=embeddings'), []);
    const cheapEcho = (await api(net.consumer, 'GET', '/api/v1/models?max_price_per_1k_output_msat=1000')).body.models[0];
    assert.equal(cheapEcho.provider_count, 1, 'only the offers under the cap are summarised');
    assert.deepEqual(cheapEcho.price.per_1k_output_msat, { min: 500, max: 500 });

    const unknown = await api(net.consumer, 'GET', '/api/v1/models?colour=red');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.field, 'colour');

    const detail = (await api(net.consumer, 'GET', '/api/v1/models/fake-echo')).body;
    assert.deepEqual(detail.offers.map((o) => o.provider_name), ['cheap', 'dear'], 'cheapest first');
    assert.deepEqual(detail.offers.map((o) => o.prices.per_1k_output_msat), [500, 4000]);
    assert.equal((await api(net.consumer, 'GET', '/api/v1/models/no-such-model')).status, 404);

    const providers = async (query) =>
      (await api(net.consumer, 'GET', `/api/v1/providers${query}`)).body.providers.map((p) => p.name).sort();
    assert.deepEqual(await providers('?model=fake-large'), ['dear']);
    assert.deepEqual(await providers('?alive=true&engine=fake'), ['cheap', 'dear']);
    assert.deepEqual(await providers('?alive=false'), []);
    assert.deepEqual(await providers('?gpu_type=cpu'), ['cheap', 'dear'], 'the fake engine announces no GPU');

    // The SDK and the CLI pass the same filters.
    const client = new InfernetClient({ baseUrl: net.consumer.apiUrl });
    assert.deepEqual((await client.listModels({ max_price_per_1k_output_msat: 1000 })).map((m) => m.name),
      ['fake-echo', 'fake-small']);
    assert.equal((await client.getModel('fake-large')).offers[0].provider_name, 'dear');
    assert.deepEqual((await client.listProviders({ model: 'fake-small' })).map((p) => p.name), ['cheap']);
    await assert.rejects(client.listModels({ colour: 'red' }), /colour: unknown filter/);
    const cli = await runAsync(['models', '--api', net.consumer.apiUrl, '--max-price', '1000', '--sort', 'price', '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout).models.map((m) => m.name), ['fake-echo', 'fake-small']);
    const table = await runAsync(['models', '--api', net.consumer.apiUrl, '--type', 'text-generation']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /fake-echo\s+0\s+\S*\s*65536\s+2\s+500-4000\s+cpu/);
  } finally {
    await net.stop();
  }
});

test('the OpenAPI document is served and names every route family', async () => {
  const consumer = await startNode({ roles: ['relay', 'consumer'] });
  try {
    const r = await api(consumer, 'GET', '/api/v1/openapi.json');
    assert.equal(r.status, 200);
    assert.match(r.body.openapi, /^3\.1\./);
    for (const path of ['/api/v1/jobs', '/api/v1/jobs/{id}/stream', '/api/v1/models/{name}', '/api/v1/webhooks',
      '/upload', '/{sha256}', '/v1/chat/completions']) {
      assert.ok(r.body.paths[path], `${path} is documented`);
    }
    assert.equal((await api(consumer, 'POST', '/api/v1/openapi.json', {})).status, 405);
  } finally {
    await consumer.stop('SIGKILL');
  }
});
