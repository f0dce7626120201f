import { PassThrough, type Readable } from 'node:stream';
import { DocumentSnapshot, FieldPath, type DocumentReference, type Query, type QueryDocumentSnapshot } from '@google-cloud/firestore';

/**
 * The client gives a RunQuery stream 600 s of retry budget from its start, and a stream reads a
 * snapshot taken when it started (DESIGN.md "Reading"): replacing it well inside that budget keeps
 * retries possible and reads reasonably fresh.
 */
export const DEFAULT_RESTART_EVERY_MS = 4 * 60_000;
/** Documents of the first stream, before the consumer's pace is known. */
const FIRST_STREAM_DOCUMENTS = 10_000;
const MIN_STREAM_DOCUMENTS = 1_000;
export const DEFAULT_MAX_DOCUMENTS_PER_STREAM = 50_000;

export interface StreamDocumentsOptions {
  /**
   * Continue after this document. A snapshot resumes any query (its cursor carries the values of
   * every ordered field); a reference resumes a query ordered by document key only — a target
   * without range filters, like a checkpoint's last key.
   */
  startAfter?: QueryDocumentSnapshot | DocumentReference;
  /** Replace a stream by a new one (after the last document read) once it has run this long. */
  restartEveryMs?: number;
  /** Upper bound of one stream's `limit`: what leaving a stream early may cost to drain. */
  maxDocumentsPerStream?: number;
}

/**
 * Every document of `query`, read through ONE streaming query at a time with backpressure: the
 * next document is pulled only when the consumer asks for it, so memory holds the stream's small
 * buffer, not the collection. (Page queries cost O(collection size) each on the emulator; a stream
 * costs O(1) per document everywhere.) `query` must not carry a `limit` of its own.
 *
 * Each stream is limited, and sized from the consumer's pace to end by itself at about
 * `restartEveryMs`: the Node SDK cannot cancel a query stream (destroying it leaves the RPC
 * open and the client's `terminate()` waiting for its deadline), so a stream that is left early —
 * the consumer stops, or the restart time passes first — is drained in the background, which the
 * limit keeps cheap.
 */
export async function* streamDocuments(
  query: Query,
  options: StreamDocumentsOptions = {},
): AsyncGenerator<QueryDocumentSnapshot, void, undefined> {
  const restartEveryMs = options.restartEveryMs ?? DEFAULT_RESTART_EVERY_MS;
  const maxDocuments = options.maxDocumentsPerStream ?? DEFAULT_MAX_DOCUMENTS_PER_STREAM;
  if (!(restartEveryMs > 0)) throw new RangeError(`restartEveryMs must be greater than 0, got ${restartEveryMs}`);
  if (!(Number.isInteger(maxDocuments) && maxDocuments > 0)) throw new RangeError(`maxDocumentsPerStream must be a positive integer, got ${maxDocuments}`);
  let cursor = options.startAfter;
  let limit = Math.min(FIRST_STREAM_DOCUMENTS, maxDocuments);
  for (;;) {
    const startedAt = Date.now();
    const chunk = openStream(resumeAfter(query, cursor).limit(limit));
    let read = 0;
    let timeUp = false;
    try {
      for await (const document of chunk.documents) {
        read++;
        cursor = document;
        yield document;
        if (Date.now() - startedAt >= restartEveryMs) {
          timeUp = true;
          break;
        }
      }
    } finally {
      chunk.release();
    }
    if (!timeUp && read < limit) return;
    const perMs = read / Math.max(1, Date.now() - startedAt);
    limit = Math.min(maxDocuments, Math.max(Math.min(MIN_STREAM_DOCUMENTS, maxDocuments), Math.round(perMs * restartEveryMs)));
  }
}

/**
 * The SDK's stream behind a pass-through the consumer may abandon: `release()` then lets the
 * SDK's stream run to its end, discarding what is left, so its RPC completes.
 */
function openStream(query: Query): { documents: AsyncIterable<QueryDocumentSnapshot>; release(): void } {
  const source = query.stream() as unknown as Readable;
  const documents = new PassThrough({ objectMode: true, highWaterMark: 16 });
  let ended = false;
  source.once('end', () => {
    ended = true;
  });
  source.on('error', (error) => documents.destroy(error));
  source.pipe(documents);
  return {
    documents,
    release() {
      if (ended || source.destroyed) return;
      source.unpipe(documents);
      source.resume();
    },
  };
}

function resumeAfter(query: Query, cursor: QueryDocumentSnapshot | DocumentReference | undefined): Query {
  if (cursor === undefined) return query;
  if (cursor instanceof DocumentSnapshot) return query.startAfter(cursor);
  return query.orderBy(FieldPath.documentId()).startAfter(cursor);
}
