/**
 * The index-status port and its adapter over the Firestore Admin API (@google-cloud/firestore's
 * v1 FirestoreAdminClient). The emulator has no Admin API and needs no indexes, so there the
 * monitor reports indexes as not checkable instead of calling this.
 */
import { readFileSync } from 'node:fs';
import { v1, type Firestore } from '@google-cloud/firestore';
import { z } from 'zod';

export interface IndexField {
  fieldPath: string;
  /** `ASCENDING`/`DESCENDING`, or `CONTAINS` for an array-contains field. */
  mode: string;
}

export interface IndexDefinition {
  collectionGroup: string;
  queryScope: string;
  fields: IndexField[];
}

export interface DeployedIndex extends IndexDefinition {
  /** CREATING, READY, NEEDS_REPAIR, STATE_UNSPECIFIED. */
  state: string;
}

/** Lists the composite indexes deployed in the database. */
export interface IndexStatusSource {
  listIndexes(): Promise<DeployedIndex[]>;
}

const indexFile = z.object({
  indexes: z.array(
    z.object({
      collectionGroup: z.string().min(1),
      queryScope: z.enum(['COLLECTION', 'COLLECTION_GROUP']).default('COLLECTION'),
      fields: z.array(z.object({ fieldPath: z.string().min(1), order: z.enum(['ASCENDING', 'DESCENDING']).optional(), arrayConfig: z.literal('CONTAINS').optional() })),
    }),
  ),
});

/** The composite indexes a `firestore.indexes.json` declares; the error names the file and the bad property. */
export function readIndexFile(path: string): IndexDefinition[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the index file ${path}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = indexFile.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(file)'}: ${issue.message}`).join('; ');
    throw new Error(`the index file ${path} is malformed: ${problems}`);
  }
  return parsed.data.indexes.map((index) => ({
    collectionGroup: index.collectionGroup,
    queryScope: index.queryScope,
    fields: index.fields.map((field) => ({ fieldPath: field.fieldPath, mode: field.order ?? field.arrayConfig ?? 'ASCENDING' })),
  }));
}

/** Identifies an index by what it indexes (the Admin API appends `__name__`, which the file omits). */
export function indexKey(index: IndexDefinition): string {
  const fields = index.fields.filter((field) => field.fieldPath !== '__name__').map((field) => `${field.fieldPath}:${field.mode}`);
  return `${index.collectionGroup}|${index.queryScope}|${fields.join(',')}`;
}

// Enum values of google.firestore.admin.v1.Index, for clients configured to return numbers.
const STATES = ['STATE_UNSPECIFIED', 'CREATING', 'READY', 'NEEDS_REPAIR'];
const SCOPES = ['QUERY_SCOPE_UNSPECIFIED', 'COLLECTION', 'COLLECTION_GROUP', 'COLLECTION_RECURSIVE'];
const ORDERS = ['ORDER_UNSPECIFIED', 'ASCENDING', 'DESCENDING'];
const ARRAY_CONFIGS = ['ARRAY_CONFIG_UNSPECIFIED', 'CONTAINS'];

const enumName = (value: unknown, names: readonly string[]): string => (typeof value === 'number' ? names[value] ?? String(value) : String(value ?? ''));

/** The raw index resource, as the v1 FirestoreAdminClient returns it. */
export interface AdminIndexResource {
  name?: string | null;
  queryScope?: unknown;
  state?: unknown;
  fields?: Array<{ fieldPath?: string | null; order?: unknown; arrayConfig?: unknown }> | null;
}

export function deployedIndexOf(resource: AdminIndexResource): DeployedIndex {
  // name: projects/{p}/databases/{d}/collectionGroups/{group}/indexes/{id}
  const group = /\/collectionGroups\/([^/]+)\/indexes\//.exec(resource.name ?? '')?.[1] ?? '';
  return {
    collectionGroup: group,
    queryScope: enumName(resource.queryScope, SCOPES),
    state: enumName(resource.state, STATES),
    fields: (resource.fields ?? []).map((field) => {
      const order = field.order ? enumName(field.order, ORDERS) : '';
      const arrayConfig = field.arrayConfig ? enumName(field.arrayConfig, ARRAY_CONFIGS) : '';
      const mode = order && order !== 'ORDER_UNSPECIFIED' ? order : arrayConfig;
      return { fieldPath: field.fieldPath ?? '', mode };
    }),
  };
}

/** The part of the v1 FirestoreAdminClient this adapter uses. */
export interface AdminIndexClient {
  listIndexes(request: { parent: string }): Promise<[AdminIndexResource[], ...unknown[]]>;
  close(): Promise<void>;
}

export class FirestoreAdminIndexStatus implements IndexStatusSource {
  constructor(
    private readonly client: AdminIndexClient,
    private readonly projectId: string,
    private readonly databaseId: string = '(default)',
  ) {}

  /** An adapter on Application Default Credentials for the database of `db` in `projectId`. */
  static create(projectId: string, db: Firestore): FirestoreAdminIndexStatus {
    return new FirestoreAdminIndexStatus(new v1.FirestoreAdminClient({ projectId }) as unknown as AdminIndexClient, projectId, db.databaseId);
  }

  async listIndexes(): Promise<DeployedIndex[]> {
    // `-` lists the indexes of every collection group.
    const [resources] = await this.client.listIndexes({ parent: `projects/${this.projectId}/databases/${this.databaseId}/collectionGroups/-` });
    return resources.map(deployedIndexOf);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
