import { describeEmulator, resetProject, testFirestore } from '../support/emulator';

describeEmulator('Firestore emulator harness', () => {
  const projectId = 'demo-harness';
  const db = testFirestore(projectId);
  afterAll(() => db.terminate());

  it('writes and reads a document, and reset removes it', async () => {
    await db.doc('things/a').set({ n: 1 });
    expect((await db.doc('things/a').get()).data()).toEqual({ n: 1 });
    await resetProject(projectId);
    expect((await db.doc('things/a').get()).exists).toBe(false);
  });
});
