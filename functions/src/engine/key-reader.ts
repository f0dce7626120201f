/**
 * Document keys of a query, read through ONE streaming RunQuery at a time with backpressure,
 * restarted after the last key every few minutes (DESIGN.md "Reading": a stream is a snapshot
 * of when it started, with a bounded retry budget), and after a transient error.
 *
 * Why not the SDK's `query.stream()` (key-stream.ts): when its consumer stops early, the SDK
 * destroys its own stream but never cancels the RPC underneath, which then stays open until its
 * deadline (minutes) — and `Firestore.terminate()` waits for it, so a paused CLI would hang.
 * The runner stops reading on every pause and restart, so it reads keys over the v1 API, where
 * leaving the loop cancels the call.
 */
import type { Firestore, Query } from '@google-cloud/firestore';
import type { google } from '@google-cloud/firestore/types/protos/firestore_v1_proto_api';
import { DEFAULT_RESTART_EVERY_MS } from './key-stream';
import { Backoff, isTransient } from './retry';
import type { WireClient } from './wire/client';
import type { RawDocument, RawFields, RawTimestamp } from './wire/types';

/** Room above the restart period before the call's deadline: the consumer may pause (backpressure). */
const DEADLINE_MARGIN_MS = 120_000;

export interface KeyReaderOptions {
  restartEveryMs?: number;
  /** Transient errors retried in a row (progress resets the count), with MIGRATION_RETRY_DELAY as backoff base. */
  maxRetries: number;
  retryDelayMs: number;
}

type RunQueryRequest = google.firestore.v1.IRunQueryRequest;

/** The query as a v1 RunQuery request (the SDK's own translation, so filters and cursors mean what they mean there). */
export function runQueryRequest(query: Query): RunQueryRequest {
  const toProto = (query as unknown as { toProto?: () => RunQueryRequest }).toProto;
  if (typeof toProto !== 'function') {
    throw new Error('This @google-cloud/firestore has no Query.toProto(): the key reader cannot translate queries (tested with 7.x).');
  }
  return toProto.call(query);
}

/** One document of a query response, as the v1 API returns it. */
export interface StreamedDocument {
  /** `trades/abc`. */
  path: string;
  /** The projected fields (none for a keys-only query). */
  document: google.firestore.v1.IDocument;
  /** The read time of the stream's snapshot that returned it (server clock). */
  readTime: google.protobuf.ITimestamp | null | undefined;
}

/** A streamed document of a query without projection, as the batch core takes it (`BatchInput.documents`). */
export function streamedRawDocument(item: StreamedDocument): RawDocument {
  const { document } = item;
  return { path: item.path, exists: true, fields: (document.fields ?? {}) as RawFields, updateTime: document.updateTime as RawTimestamp, createTime: document.createTime as RawTimestamp };
}

/**
 * Paths (`trades/abc`) of the documents of `query`, in its order. `query` must be ordered by
 * document key only (e.g. `select().orderBy(FieldPath.documentId())`): a restart continues with
 * `startAfter(lastKey)`.
 */
export function streamKeys(db: Firestore, wire: WireClient, query: Query, options: KeyReaderOptions): AsyncGenerator<string, void, undefined> {
  return streamQuery(db, wire, query, options, (path) => path);
}

/** `streamKeys` with each document's projected fields, update time and read time. */
export function streamQueryDocuments(db: Firestore, wire: WireClient, query: Query, options: KeyReaderOptions): AsyncGenerator<StreamedDocument, void, undefined> {
  return streamQuery(db, wire, query, options, (path, response) => ({ path, document: response.document!, readTime: response.readTime }));
}

async function* streamQuery<T>(
  db: Firestore,
  wire: WireClient,
  query: Query,
  options: KeyReaderOptions,
  toItem: (path: string, response: google.firestore.v1.IRunQueryResponse) => T,
): AsyncGenerator<T, void, undefined> {
  const restartEveryMs = options.restartEveryMs ?? DEFAULT_RESTART_EVERY_MS;
  if (!(restartEveryMs > 0)) throw new RangeError(`restartEveryMs must be greater than 0, got ${restartEveryMs}`);
  const newBackoff = () => new Backoff({ baseDelayMs: options.retryDelayMs, maxRetries: options.maxRetries });
  let backoff = newBackoff();
  let lastKey: string | undefined;
  for (;;) {
    const call = wire.runQuery(runQueryRequest(lastKey === undefined ? query : query.startAfter(db.doc(lastKey))), {
      timeoutMs: restartEveryMs + DEADLINE_MARGIN_MS,
    });
    // cancel() makes the call emit CANCELLED after the loop has let go of it.
    call.on('error', () => undefined);
    const startedAt = Date.now();
    let restart = false;
    let progressed = false;
    try {
      for await (const response of call as AsyncIterable<google.firestore.v1.IRunQueryResponse>) {
        const name = response.document?.name;
        if (!name) continue;
        lastKey = wire.documentPath(name);
        progressed = true;
        yield toItem(lastKey, response);
        if (Date.now() - startedAt >= restartEveryMs) {
          restart = true;
          break;
        }
      }
    } catch (error) {
      if (progressed) backoff = newBackoff();
      if (!isTransient(error) || !(await backoff.wait())) throw error;
      restart = true;
    } finally {
      // Also runs when the consumer leaves early (return/throw at the yield).
      call.cancel();
    }
    if (!restart) return;
  }
}
