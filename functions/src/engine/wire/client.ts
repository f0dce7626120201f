import { v1, type Firestore } from '@google-cloud/firestore';
import { credentials } from '@grpc/grpc-js';
import type { CommitResult, RawDocument, RawFields, RawTimestamp, RawWrite } from './types';

type GapicClient = InstanceType<typeof v1.FirestoreClient>;

export interface WireClientOptions {
  projectId: string;
  /** Default `(default)`. */
  databaseId?: string;
  /** `host:port` of the Firestore emulator; unset means production with default credentials. */
  emulatorHost?: string;
}

export interface CallDeadline {
  /** Deadline of the call in ms; a call that times out may still have landed (commit). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The raw Firestore v1 API for batch reads and commits, with values in Firestore's own
 * representation (see `types.ts`). The client's automatic retries are switched off: the engine
 * owns every retry (`retry.ts`), so neither multiplies the other and an ambiguous commit is never
 * silently replayed underneath the engine.
 */
export class WireClient {
  readonly databaseName: string;
  /** Talking to the emulator, whose limits differ (see `commitByteBudget`). */
  readonly onEmulator: boolean;
  private readonly documentsPrefix: string;
  private readonly gapic: GapicClient;
  private readonly headers: Record<string, string>;

  constructor(options: WireClientOptions) {
    if (!options.projectId) throw new Error('WireClient needs a projectId');
    this.databaseName = `projects/${options.projectId}/databases/${options.databaseId ?? '(default)'}`;
    this.documentsPrefix = `${this.databaseName}/documents/`;
    this.headers = { 'google-cloud-resource-prefix': this.databaseName };
    this.onEmulator = Boolean(options.emulatorHost);
    if (options.emulatorHost) {
      const { host, port } = splitHostPort(options.emulatorHost);
      this.gapic = new v1.FirestoreClient({ servicePath: host, port, sslCreds: credentials.createInsecure(), projectId: options.projectId });
      // The emulator treats this token as the project owner (no security rules), as the SDK does.
      this.headers.Authorization = 'Bearer owner';
    } else {
      this.gapic = new v1.FirestoreClient({ projectId: options.projectId });
    }
  }

  /** A client on the same project, database and emulator as an SDK Firestore instance. */
  static forFirestore(db: Firestore, env: NodeJS.ProcessEnv = process.env): WireClient {
    let projectId: string | undefined;
    try {
      // Public at runtime, missing from the typings; throws until the client knows its project.
      projectId = (db as unknown as { projectId: string }).projectId;
    } catch {
      projectId = env.GCLOUD_PROJECT || env.GOOGLE_CLOUD_PROJECT;
    }
    if (!projectId) throw new Error('WireClient.forFirestore: the Firestore instance has no project id yet and GCLOUD_PROJECT is unset; pass projectId to the Firestore settings');
    return new WireClient({ projectId, databaseId: db.databaseId, emulatorHost: env.FIRESTORE_EMULATOR_HOST || undefined });
  }

  documentName(path: string): string {
    return this.documentsPrefix + path;
  }

  documentPath(name: string): string {
    if (!name.startsWith(this.documentsPrefix)) throw new Error(`${name} is not a document of ${this.databaseName}`);
    return name.slice(this.documentsPrefix.length);
  }

  /** The current state of each path, in the order asked (duplicates are read once). */
  async batchGet(paths: readonly string[], options: CallDeadline = {}): Promise<RawDocument[]> {
    if (paths.length === 0) return [];
    const names = [...new Set(paths.map((path) => this.documentName(path)))];
    const byName = new Map<string, RawDocument>();
    const stream = this.gapic.batchGetDocuments({ database: this.databaseName, documents: names }, this.callOptions(options));
    for await (const response of stream) {
      if (response.found) {
        const found = response.found;
        const path = this.documentPath(found.name!);
        byName.set(found.name!, {
          path,
          exists: true,
          fields: (found.fields ?? {}) as RawFields,
          updateTime: found.updateTime as RawTimestamp,
          createTime: found.createTime as RawTimestamp,
        });
      } else if (response.missing) {
        byName.set(response.missing, { path: this.documentPath(response.missing), exists: false });
      }
    }
    return paths.map((path) => {
      const document = byName.get(this.documentName(path));
      if (!document) throw new Error(`batchGetDocuments answered without ${path}`);
      return document;
    });
  }

  /** One atomic commit of the writes (all land or none). */
  async commit(writes: RawWrite[], options: CallDeadline = {}): Promise<CommitResult> {
    const [response] = await this.gapic.commit({ database: this.databaseName, writes }, this.callOptions(options));
    return {
      commitTime: response.commitTime as RawTimestamp,
      writeResults: (response.writeResults ?? []) as CommitResult['writeResults'],
    };
  }

  /**
   * A RunQuery stream of `google.firestore.v1.RunQueryResponse`s. Unlike the SDK's query stream
   * (whose RPC stays open until its deadline when the consumer stops early), this one can be
   * ended at any time with `cancel()`.
   */
  runQuery(request: Parameters<GapicClient['runQuery']>[0], options: CallDeadline = {}): ReturnType<GapicClient['runQuery']> {
    return this.gapic.runQuery(request, this.callOptions(options));
  }

  close(): Promise<void> {
    return this.gapic.close();
  }

  private callOptions(options: CallDeadline) {
    return { timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, retry: null, otherArgs: { headers: this.headers } };
  }
}

function splitHostPort(hostPort: string): { host: string; port: number } {
  const at = hostPort.lastIndexOf(':');
  const port = Number(hostPort.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port)) throw new Error(`FIRESTORE_EMULATOR_HOST must be host:port, got ${JSON.stringify(hostPort)}`);
  return { host: hostPort.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port };
}
