import { assertNoEmulatorOutsideEmulator, EmulatorGuardError } from '../../functions/src/api/emulator-guard';

function guard(env: NodeJS.ProcessEnv): EmulatorGuardError | undefined {
  try {
    assertNoEmulatorOutsideEmulator(env);
    return undefined;
  } catch (error) {
    if (error instanceof EmulatorGuardError) return error;
    throw error;
  }
}

describe('assertNoEmulatorOutsideEmulator', () => {
  it('lets production start without emulator variables', () => {
    expect(guard({ GCLOUD_PROJECT: 'tradeya-prod', FUNCTIONS_EMULATOR: 'false' })).toBeUndefined();
  });

  it('refuses any *_EMULATOR_HOST in a real project outside the Functions emulator, naming the variables and the project', () => {
    const error = guard({ GCLOUD_PROJECT: 'tradeya-prod', FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099', FIRESTORE_EMULATOR_HOST: 'localhost:8080' });
    expect(error?.variables).toEqual(['FIREBASE_AUTH_EMULATOR_HOST', 'FIRESTORE_EMULATOR_HOST']);
    expect(error?.projectIds).toEqual(['tradeya-prod']);
    expect(error?.message).toMatch(/FIREBASE_AUTH_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST are set outside the emulator/);
    expect(error?.message).toMatch(/tradeya-prod is not a demo- project/);
    expect(error?.message).toMatch(/accepts unsigned ID tokens/);
  });

  it('catches emulator variables it has no list for', () => {
    expect(guard({ GOOGLE_CLOUD_PROJECT: 'tradeya-prod', STORAGE_EMULATOR_HOST: 'localhost:9199' })?.variables).toEqual(['STORAGE_EMULATOR_HOST']);
  });

  it('allows emulator hosts inside the Functions emulator', () => {
    expect(guard({ GCLOUD_PROJECT: 'tradeya-prod', FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099', FUNCTIONS_EMULATOR: 'true' })).toBeUndefined();
    expect(guard({ GCLOUD_PROJECT: 'tradeya-prod', FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099', FUNCTIONS_EMULATOR: 'false' })).toBeInstanceOf(EmulatorGuardError);
  });

  it('allows emulator hosts on a demo- project, wherever the project is named', () => {
    expect(guard({ GCLOUD_PROJECT: 'demo-api', PUBSUB_EMULATOR_HOST: 'localhost:8085' })).toBeUndefined();
    expect(guard({ FIREBASE_CONFIG: JSON.stringify({ projectId: 'demo-api' }), PUBSUB_EMULATOR_HOST: 'localhost:8085' })).toBeUndefined();
  });

  it('refuses when any named project is not a demo- project, or none is named', () => {
    const mixed = guard({ GCLOUD_PROJECT: 'demo-api', FIREBASE_CONFIG: '{"projectId":"tradeya-prod"}', PUBSUB_EMULATOR_HOST: 'localhost:8085' });
    expect(mixed?.projectIds).toEqual(['demo-api', 'tradeya-prod']);
    const unnamed = guard({ CLOUD_TASKS_EMULATOR_HOST: 'localhost:9499' });
    expect(unnamed?.projectIds).toEqual([]);
    expect(unnamed?.message).toMatch(/the project \(unknown\) is not a demo- project/);
  });

  it('ignores emulator variables set to nothing', () => {
    expect(guard({ GCLOUD_PROJECT: 'tradeya-prod', FIRESTORE_EMULATOR_HOST: '  ' })).toBeUndefined();
  });
});
