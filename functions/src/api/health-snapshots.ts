import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import type { ControlPaths } from '../control/paths';

export type HealthStatus = 'healthy' | 'degraded' | 'critical' | 'maintenance';

/** The latest health check's verdict, as the API reports it. */
export interface HealthSummary {
  status: HealthStatus;
  /** 100 − 5·warnings − 15·errors − 30·critical, floor 0. */
  score: number;
  checkedAt: Date;
}

/** Where the API reads the latest health verdict from (the `healthCheck` function writes it). */
export interface HealthSnapshotReader {
  latest(): Promise<HealthSummary | null>;
}

/**
 * The fields of a stored health snapshot (`<control>/_control/health/{id}`) that the API reads.
 * The monitor writes more (checks, metrics, trends); these three are the contract.
 */
const storedSnapshot = z.object({
  status: z.enum(['HEALTHY', 'DEGRADED', 'CRITICAL', 'MAINTENANCE']),
  score: z.number().min(0).max(100),
  checkedAt: z.instanceof(Timestamp),
});

/** How many of the newest snapshots `latest` looks through for a whole-database one. */
const SNAPSHOTS_SEARCHED = 60;

export class FirestoreHealthSnapshots implements HealthSnapshotReader {
  constructor(
    private readonly db: Firestore,
    private readonly paths: ControlPaths,
  ) {}

  /** The newest snapshot of the whole database: one `monitor --version` limited to one version's migrations is skipped. */
  async latest(): Promise<HealthSummary | null> {
    const snapshot = await this.db
      .collection(this.paths.healthSnapshots())
      .orderBy('checkedAt', 'desc')
      .limit(SNAPSHOTS_SEARCHED)
      .select('status', 'score', 'checkedAt', 'version')
      .get();
    const doc = snapshot.docs.find((candidate) => (candidate.get('version') ?? null) === null);
    if (!doc) return null;
    const parsed = storedSnapshot.safeParse(doc.data());
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(document)'}: ${issue.message}`).join('; ');
      throw new Error(`health snapshot ${doc.ref.path} is malformed: ${problems}`);
    }
    const { status, score, checkedAt } = parsed.data;
    return { status: status.toLowerCase() as HealthStatus, score, checkedAt: checkedAt.toDate() };
  }
}
