import functionsTest from 'firebase-functions-test';

/**
 * The two rollback functions as `firebase deploy` reads them (trigger, queue settings), and the
 * wrapped `rollbackBatch` dropping a malformed task before touching any backend. Their handlers'
 * behaviour on data is tested in test/integration/rollback-tasks.test.ts and rollback-request.test.ts.
 */
describe('functions/src/index.ts: rollbackBatch and onRollbackRequest', () => {
  const testEnv = functionsTest({ projectId: 'demo-rollback-functions-entry' });
  const env = { ...process.env };
  let index: typeof import('../../functions/src/index');
  const stdout: string[] = [];
  let writeSpy: jest.SpyInstance;

  beforeAll(async () => {
    for (const name of Object.keys(process.env)) if (name.endsWith('_EMULATOR_HOST')) delete process.env[name];
    process.env.GCLOUD_PROJECT = 'demo-rollback-functions-entry';
    process.env.METADATA_SERVER_DETECTION = 'none';
    index = await import('../../functions/src/index');
  });
  beforeEach(() => {
    stdout.length = 0;
    writeSpy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout.push(String(chunk));
      return true;
    });
  });
  afterEach(() => writeSpy.mockRestore());
  afterAll(() => {
    testEnv.cleanup();
    process.env = env;
  });

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const endpoint = (fn: unknown) => (fn as { __endpoint: Record<string, any> }).__endpoint;

  it('deploys rollbackBatch as a task queue of one dispatch at a time and onRollbackRequest on the migration-rollback topic', () => {
    const batch = endpoint(index.rollbackBatch);
    expect(batch.taskQueueTrigger.rateLimits.maxConcurrentDispatches).toBe(1);
    expect(String(batch.taskQueueTrigger.retryConfig.maxAttempts)).toContain('FIREMIGRATE_TASK_MAX_ATTEMPTS');
    expect(batch.concurrency).toBe(1);
    expect(batch.timeoutSeconds).toBe(1800);
    const request = endpoint(index.onRollbackRequest).eventTrigger;
    expect(request.eventType).toBe('google.cloud.pubsub.topic.v1.messagePublished');
    expect(request.eventFilters).toEqual({ topic: 'migration-rollback' });
  });

  it('rollbackBatch (wrapped) drops a malformed task with an error log instead of failing it for retries', async () => {
    const wrapped = testEnv.wrap(index.rollbackBatch as never) as unknown as (request: { data: unknown }) => Promise<void>;
    await expect(wrapped({ data: { kind: 'batch', rollbackRunId: 'r 1', seq: -1 } })).resolves.toBeUndefined();
    const lines = stdout.filter((line) => line.includes('rollbackBatch: dropping a malformed task')).map((line) => JSON.parse(line));
    expect(lines).toHaveLength(1);
    expect(lines[0].severity).toBe('ERROR');
    expect(lines[0].message).toContain('rollbackRunId');
    expect(lines[0].message).toContain('seq');
  });
});
