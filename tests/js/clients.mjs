// The JavaScript clients shoppers' pages and developers' tools really use, driven by the Python tests.
//
//   node clients.mjs <client> '<options as JSON>'
//
// Prints one JSON object per line: {"type": "next", "payload": ...} per event, {"type": "error", ...} on
// failure, {"type": "done"} after `events` events. Exits by itself after `timeoutMs`.
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { auditServer } from 'graphql-http';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import subscriptionsTransportWs from 'subscriptions-transport-ws';
import WebSocket from 'ws';

const [client, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions || '{}');
const { url, query, variables = {}, token, events = 1, timeoutMs = 10000 } = options;

function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function fail(error) {
  const described =
    error && typeof error === 'object'
      ? { message: String(error.message ?? error.reason ?? ''), code: error.code, errors: error.errors }
      : { message: String(error) };
  emit({ type: 'error', error: described });
  process.exit(1);
}

let received = 0;
function onNext(payload) {
  emit({ type: 'next', payload });
  received += 1;
  if (received >= events) {
    emit({ type: 'done' });
    process.exit(0);
  }
}

setTimeout(() => fail(new Error(`no ${events} event(s) within ${timeoutMs} ms (got ${received})`)), timeoutMs);

const authorization = token ? { Authorization: `Bearer ${token}` } : {};

const clients = {
  // graphql-transport-ws, the token in connection_init as the README says.
  'graphql-ws': () => {
    const ws = createWsClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: token ? { accessToken: token } : {},
      retryAttempts: 0,
      on: { connected: () => emit({ type: 'connected' }) },
    });
    ws.subscribe({ query, variables }, { next: onNext, error: fail, complete: () => {} });
  },
  // The legacy `graphql-ws` subprotocol, spoken by Apollo's old subscriptions-transport-ws.
  'subscriptions-transport-ws': () => {
    const { SubscriptionClient } = subscriptionsTransportWs;
    const legacy = new SubscriptionClient(
      url,
      { reconnect: false, connectionParams: token ? { accessToken: token } : {}, connectionCallback: (e) => e && fail(e) },
      WebSocket,
    );
    legacy.onConnected(() => emit({ type: 'connected' }));
    legacy.request({ query, variables }).subscribe({ next: onNext, error: fail });
  },
  // Server-sent events, graphql-sse's distinct connections mode.
  'graphql-sse': () => {
    const sse = createSseClient({ url, headers: authorization, retryAttempts: 0 });
    sse.subscribe({ query, variables }, { next: onNext, error: fail, complete: () => {} });
  },
  // Apollo Client's HttpLink: multipart/mixed with subscriptionSpec=1.0.
  apollo: () => {
    const apollo = new ApolloClient({
      link: new HttpLink({ uri: url, headers: authorization }),
      cache: new InMemoryCache(),
    });
    apollo.subscribe({ query: gql(query), variables }).subscribe({ next: onNext, error: fail });
  },
  // GraphiQL's fetcher without a WebSocket URL: subscriptions go over multipart/mixed.
  graphiql: async () => {
    const fetcher = createGraphiQLFetcher({ url, headers: authorization, fetch: globalThis.fetch });
    try {
      const result = await fetcher({ query, variables, operationName: undefined });
      if (!result || typeof result[Symbol.asyncIterator] !== 'function') {
        onNext(result);
        return;
      }
      for await (const payload of result) onNext(payload);
    } catch (error) {
      fail(error);
    }
  },
  // graphql-http's GraphQL-over-HTTP conformance audit.
  audit: async () => {
    // Authenticated like a partner or staff tool: some audits introspect, which production allows only them.
    const fetchFn = (input, init = {}) =>
      fetch(input, { ...init, headers: { ...(init.headers || {}), ...authorization } });
    const results = await auditServer({ url, fetchFn });
    emit({
      type: 'audit',
      results: results.map(({ id, name, status, reason }) => ({ id, name, status, reason })),
    });
    process.exit(0);
  },
};

if (!clients[client]) fail(new Error(`unknown client ${client}`));
Promise.resolve()
  .then(() => clients[client]())
  .catch(fail);
