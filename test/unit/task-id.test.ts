import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getFunctions } from 'firebase-admin/functions';
import { FirebaseTaskQueue } from '../../functions/src/transports/firebase-task-queue';
import { QUEUES } from '../../functions/src/transports/names';
import { planTaskId, taskId } from '../../functions/src/transports/task-id';

const HEX_ID = /^[0-9a-f]{64}$/;

describe('taskId', () => {
  it('is a sha256 hex digest: deterministic, and different when any part differs', () => {
    const id = taskId('20261129-142501-3fa9c2', 'p0003', 17, 2);
    expect(id).toMatch(HEX_ID);
    expect(taskId('20261129-142501-3fa9c2', 'p0003', 17, 2)).toBe(id);
    const variants = [
      taskId('20261129-142501-3fa9c3', 'p0003', 17, 2),
      taskId('20261129-142501-3fa9c2', 'p0004', 17, 2),
      taskId('20261129-142501-3fa9c2', 'p0003', 18, 2),
      taskId('20261129-142501-3fa9c2', 'p0003', 17, 3),
      planTaskId('20261129-142501-3fa9c2', 0),
      planTaskId('20261129-142501-3fa9c2', 1),
    ];
    expect(new Set([id, ...variants]).size).toBe(variants.length + 1);
  });

  it('refuses parts that would make the joined identity ambiguous, naming the argument', () => {
    expect(() => taskId('run|x', 'p0000', 0, 0)).toThrow(/runId must match/);
    expect(() => taskId('run', 'p/0', 0, 0)).toThrow(/partition must match/);
    expect(() => taskId('run', 'p0000', -1, 0)).toThrow(/seq must be a non-negative integer/);
    expect(() => taskId('run', 'p0000', 0, 1.5)).toThrow(/epoch must be a non-negative integer/);
    expect(() => planTaskId('', 0)).toThrow(/runId must match/);
  });
});

/**
 * firebase-admin's own check of task ids, exercised through the real SDK. CLOUD_TASKS_EMULATOR_HOST
 * points it at a small HTTP endpoint standing in for the Cloud Tasks emulator's create-task call
 * (201 for a new task name, 409 for a name it has seen, as the emulator answers).
 */
describe('task ids against firebase-admin', () => {
  let server: Server;
  let app: App;
  const received: Array<{ url: string; name: string }> = [];
  const previousHost = process.env.CLOUD_TASKS_EMULATOR_HOST;

  beforeAll(async () => {
    const names = new Set<string>();
    server = createServer(async (request: IncomingMessage, response) => {
      let text = '';
      for await (const chunk of request) text += chunk;
      const { task } = JSON.parse(text) as { task: { name: string } };
      received.push({ url: request.url ?? '', name: task.name });
      const duplicate = names.has(task.name);
      names.add(task.name);
      response.writeHead(duplicate ? 409 : 200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(duplicate ? { error: { code: 409, status: 'ALREADY_EXISTS', message: 'exists' } } : task));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.env.CLOUD_TASKS_EMULATOR_HOST = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    app = initializeApp({ projectId: 'demo-task-id', serviceAccountId: 'tasks@demo-task-id.iam.gserviceaccount.com' }, 'task-id-test');
  });

  afterAll(async () => {
    await deleteApp(app);
    await new Promise((resolve) => server.close(resolve));
    if (previousHost === undefined) delete process.env.CLOUD_TASKS_EMULATOR_HOST;
    else process.env.CLOUD_TASKS_EMULATOR_HOST = previousHost;
  });

  it.each(['run|p0000|0|0', 'runs/abc/p0000', 'a b', ''])('the SDK refuses the id %j before sending anything', async (id) => {
    const before = received.length;
    const queue = getFunctions(app).taskQueue(QUEUES.migrateBatch);
    await expect(queue.enqueue({ n: 1 }, { id })).rejects.toMatchObject({ code: 'functions/invalid-argument' });
    expect(received.length).toBe(before);
  });

  it('accepts our ids, and a repeated id is reported as already-exists', async () => {
    const queue = new FirebaseTaskQueue<{ seq: number }>(getFunctions(app).taskQueue(QUEUES.migrateBatch));
    const ids = [taskId('20261129-142501-3fa9c2', 'p0000', 0, 0), taskId('20261129-142501-3fa9c2', 'p0000', 1, 0), planTaskId('20261129-142501-3fa9c2', 0)];
    for (const [seq, id] of ids.entries()) {
      await expect(queue.enqueue({ name: id, payload: { seq } })).resolves.toBe('enqueued');
    }
    await expect(queue.enqueue({ name: ids[0], payload: { seq: 0 } })).resolves.toBe('already-exists');
    const sent = received.slice(-4);
    expect(sent.map((request) => request.url)).toEqual(
      Array(4).fill('/projects/demo-task-id/locations/us-central1/queues/migrateBatch/tasks'),
    );
    expect(sent.map((request) => request.name)).toEqual(
      [...ids, ids[0]].map((id) => `projects/demo-task-id/locations/us-central1/queues/migrateBatch/tasks/${id}`),
    );
  });
});
