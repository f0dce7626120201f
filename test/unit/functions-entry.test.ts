import functionsTest from 'firebase-functions-test';
import { captureStdout } from '../support/stdout';

/**
 * The deployed functions' entry point: what `firebase deploy` reads (each function's trigger and
 * deploy-time settings) and the handlers behind two of them, called through firebase-functions-test
 * with inputs they must refuse before touching any backend.
 */
describe('functions/src/index.ts', () => {
  const testEnv = functionsTest({ projectId: 'demo-functions-entry' });
  const env = { ...process.env };
  let index: typeof import('../../functions/src/index');
  const stdout = captureStdout();

  beforeAll(async () => {
    for (const name of Object.keys(process.env)) if (name.endsWith('_EMULATOR_HOST')) delete process.env[name];
    process.env.GCLOUD_PROJECT = 'demo-functions-entry';
    process.env.METADATA_SERVER_DETECTION = 'none';
    index = await import('../../functions/src/index');
  });
  afterAll(() => {
    testEnv.cleanup();
    process.env = env;
  });

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const endpoint = (fn: unknown) => (fn as { __endpoint: Record<string, any> }).__endpoint;

  it('exports exactly the five functions of the issue, planRun, rollbackBatch and the sync group', () => {
    expect(Object.keys(index).sort()).toEqual(['api', 'healthCheck', 'migrateBatch', 'onMigrationAlert', 'onRollbackRequest', 'planRun', 'rollbackBatch', 'sync']);
  });

  it('the sync group has one document-written trigger per migrated collection', () => {
    expect(Object.keys(index.sync).sort()).toEqual(['conversations', 'trades']);
    for (const [name, fn] of Object.entries(index.sync)) {
      const trigger = endpoint(fn).eventTrigger;
      expect(trigger.eventType).toBe('google.cloud.firestore.document.v1.written');
      expect(trigger.eventFilterPathPatterns).toEqual({ document: `${name}/{docId}` });
    }
  });

  it('gives each function its trigger and deploy-time settings', () => {
    expect(endpoint(index.api).httpsTrigger).toEqual({});
    expect(endpoint(index.api).availableMemoryMb).toBe(512);

    const batch = endpoint(index.migrateBatch);
    expect(batch.taskQueueTrigger).toBeDefined();
    expect(batch.concurrency).toBe(1);
    expect(batch.availableMemoryMb).toBe(1024);
    expect(batch.timeoutSeconds).toBe(1800);
    // Params stay expressions until deploy: the CLI resolves them ("change means redeploy").
    expect(String(batch.taskQueueTrigger.retryConfig.maxAttempts)).toContain('FIREMIGRATE_TASK_MAX_ATTEMPTS');
    expect(String(batch.taskQueueTrigger.retryConfig.minBackoffSeconds)).toContain('FIREMIGRATE_TASK_MIN_BACKOFF_SECONDS');
    expect(String(batch.taskQueueTrigger.retryConfig.maxBackoffSeconds)).toContain('FIREMIGRATE_TASK_MAX_BACKOFF_SECONDS');
    expect(String(batch.taskQueueTrigger.rateLimits.maxConcurrentDispatches)).toContain('MIGRATION_CONCURRENT_BATCHES');
    expect(String(batch.taskQueueTrigger.rateLimits.maxDispatchesPerSecond)).toContain('FIREMIGRATE_TASK_DISPATCHES_PER_SECOND');

    const plan = endpoint(index.planRun);
    expect(plan.taskQueueTrigger).toBeDefined();
    expect(plan.taskQueueTrigger.rateLimits.maxConcurrentDispatches).toBe(5);

    expect(endpoint(index.healthCheck).scheduleTrigger.schedule).toBe('every 1 minutes');

    const alert = endpoint(index.onMigrationAlert).eventTrigger;
    expect(alert.eventType).toBe('google.cloud.pubsub.topic.v1.messagePublished');
    expect(alert.eventFilters).toEqual({ topic: 'migration-alerts' });
  });

  it('the queue names match transports/names.ts', async () => {
    const { QUEUES } = await import('../../functions/src/transports/names');
    expect(Object.keys(index)).toEqual(expect.arrayContaining(Object.values(QUEUES)));
  });

  it('migrateBatch (wrapped) drops a malformed task with an error log instead of failing it for retries', async () => {
    const wrapped = testEnv.wrap(index.migrateBatch as never) as unknown as (request: { data: unknown }) => Promise<void>;
    await expect(wrapped({ data: { runId: 'r 1', seq: -1 } })).resolves.toBeUndefined();
    const lines = stdout.filter((line) => line.includes('migrateBatch: dropping a malformed task')).map((line) => JSON.parse(line));
    expect(lines).toHaveLength(1);
    expect(lines[0].severity).toBe('ERROR');
    expect(lines[0].message).toContain('migrationId');
    expect(lines[0].message).toContain('partition');
  });

  it('healthCheck exposes run() for the schedule and onMigrationAlert ignores a message naming no snapshot', async () => {
    expect(typeof (index.healthCheck as unknown as { run: unknown }).run).toBe('function');
    const wrapped = testEnv.wrap(index.onMigrationAlert);
    await wrapped({ id: 'event-1', data: { message: { json: { stop: 'everything' } } } } as never);
    const lines = stdout.filter((line) => line.includes('onMigrationAlert: ignoring event')).map((line) => JSON.parse(line));
    expect(lines).toHaveLength(1);
    expect(lines[0].eventId).toBe('event-1');
  });

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

/**
 * The emulator guard as the deployed entry runs it: loading index.ts (a fresh module registry each
 * time, as a cold start) with an emulator host set in a real project.
 */
describe('functions/src/index.ts with an emulator host set', () => {
  const env = { ...process.env };
  afterEach(() => {
    process.env = { ...env };
  });

  function loadEntry(variables: Record<string, string>): unknown {
    // The environment names one real project and no emulator but `variables`' (firebase-functions-test set FIREBASE_CONFIG above).
    for (const name of Object.keys(process.env)) {
      if (name.endsWith('_EMULATOR_HOST') || ['FUNCTIONS_EMULATOR', 'FIREBASE_CONFIG', 'GOOGLE_CLOUD_PROJECT'].includes(name)) delete process.env[name];
    }
    Object.assign(process.env, { GCLOUD_PROJECT: 'tradeya-prod', METADATA_SERVER_DETECTION: 'none' }, variables);
    let loaded: unknown;
    jest.isolateModules(() => {
      loaded = require('../../functions/src/index');
    });
    return loaded;
  }

  it('refuses to load outside the Functions emulator, naming the variable', () => {
    let thrown: unknown;
    try {
      loadEntry({ FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).name).toBe('EmulatorGuardError');
    expect((thrown as Error).message).toMatch(/^Refusing to start: FIREBASE_AUTH_EMULATOR_HOST is set outside the emulator/);
    expect((thrown as Error).message).toContain('tradeya-prod is not a demo- project');
  });

  it('loads with the same variable inside the Functions emulator (FUNCTIONS_EMULATOR=true)', () => {
    const loaded = loadEntry({ FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099', FUNCTIONS_EMULATOR: 'true' }) as Record<string, unknown>;
    expect(Object.keys(loaded)).toContain('migrateBatch');
  });
});
