import { CONFIG_VARIABLES, ConfigError, FiremigrateConfig, loadConfig } from '../../functions/src/config';
import { leaseSettings } from '../../functions/src/control/lease';

/** The seed's "Environment Variables" block, verbatim (phase2-production-migration-summary.md). */
const SEED_ENV_FILE = {
  MIGRATION_BATCH_SIZE: '100',
  MIGRATION_MAX_RETRIES: '5',
  MIGRATION_RETRY_DELAY_BASE: '1000',
  MIGRATION_VALIDATION_ENABLED: 'true',
  MIGRATION_TRANSACTION_TIMEOUT: '30000',
  MIGRATION_CONCURRENT_BATCHES: '3',
  MIGRATION_CHECKPOINT_INTERVAL: '1000',
  MIGRATION_ROLLBACK_ENABLED: 'true',
  MIGRATION_HEALTH_CHECK_INTERVAL: '30000',
  MIGRATION_MEMORY_THRESHOLD_MB: '512',
  MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR: '0.8',
  MIGRATION_CONNECTION_POOL_SIZE: '10',
  MONITOR_SAMPLE_SIZE: '100',
  MONITOR_HEALTH_INTERVAL: '30000',
  MONITOR_ALERT_THRESHOLDS: '{"responseTime":{"warning":1000,"critical":3000}}',
  ROLLBACK_BATCH_SIZE: '50',
  ROLLBACK_MAX_RETRIES: '3',
  ROLLBACK_TIMEOUT: '300000',
  ROLLBACK_SAFETY_INTERVAL: '30000',
  ROLLBACK_VALIDATION_SAMPLE: '100',
  ROLLBACK_EMERGENCY_THRESHOLD: '0.1',
  ROLLBACK_BACKUP_VALIDATION: 'true',
  ROLLBACK_REQUIRE_CONFIRMATION: 'true',
  ROLLBACK_CONFIRMED: 'false',
};

/** Names the seed's PRODUCTION_CONFIG code reads where its env file spells them differently. */
const SEED_CODE_SPELLINGS = ['MIGRATION_RETRY_DELAY', 'MIGRATION_MEMORY_THRESHOLD', 'MIGRATION_QUOTA_SAFETY'];

const DEFAULTS: FiremigrateConfig = {
  migration: {
    batchSize: 100,
    maxRetries: 5,
    retryDelayMs: 1000,
    validationEnabled: true,
    transactionTimeoutMs: 30000,
    concurrentBatches: 3,
    checkpointInterval: 1000,
    rollbackEnabled: true,
    healthCheckIntervalMs: 30000,
    memoryThresholdMb: 512,
    quotaSafety: 0.8,
    connectionPoolSize: 10,
    emergencyThreshold: 0.1,
    emergencyWindow: 1000,
    controlCollection: '_migrations',
    leaseTtlMs: 60000,
  },
  monitor: {
    sampleSize: 100,
    healthIntervalMs: 30000,
    alertThresholds: {
      responseTime: { warning: 1000, critical: 3000 },
      errorRate: { warning: 0.01, critical: 0.05 },
      memory: { warning: 512, critical: 1024 },
      integrity: { warning: 0.95, critical: 0.9 },
    },
  },
  rollback: {
    batchSize: 50,
    maxRetries: 3,
    timeoutMs: 300000,
    safetyIntervalMs: 30000,
    validationSample: 100,
    emergencyThreshold: 0.1,
    backupValidation: true,
    requireConfirmation: true,
    confirmed: false,
  },
  emulator: { anyEmulator: false },
};

function valueAt(config: FiremigrateConfig, key: string): unknown {
  return key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], config);
}

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

const EMULATOR = { FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' };

describe('loadConfig defaults', () => {
  test('an empty environment gives the seed defaults', () => {
    expect(loadConfig({})).toStrictEqual(DEFAULTS);
  });

  test("the seed's environment file, verbatim, gives the same config as the defaults", () => {
    expect(loadConfig(SEED_ENV_FILE)).toStrictEqual(DEFAULTS);
  });

  test('empty and blank values count as unset', () => {
    const blank = Object.fromEntries(CONFIG_VARIABLES.flatMap((v) => [v.name, ...v.aliases]).map((name, i) => [name, i % 2 ? '' : '   ']));
    expect(loadConfig(blank)).toStrictEqual(DEFAULTS);
  });

  test('reads process.env when no environment is passed', () => {
    const before = process.env.MIGRATION_BATCH_SIZE;
    process.env.MIGRATION_BATCH_SIZE = '42';
    try {
      expect(loadConfig().migration.batchSize).toBe(42);
    } finally {
      if (before === undefined) delete process.env.MIGRATION_BATCH_SIZE;
      else process.env.MIGRATION_BATCH_SIZE = before;
    }
  });

  test('a caller changing its config does not change the next load', () => {
    const first = loadConfig({});
    first.monitor.alertThresholds.responseTime.warning = 1;
    first.migration.batchSize = 1;
    expect(loadConfig({})).toStrictEqual(DEFAULTS);
  });
});

describe('CONFIG_VARIABLES', () => {
  const spellings = CONFIG_VARIABLES.flatMap((v) => [v.name, ...v.aliases]);

  test('lists every variable of the seed, in both spellings, plus the new ones', () => {
    for (const name of [...Object.keys(SEED_ENV_FILE), ...SEED_CODE_SPELLINGS]) expect(spellings).toContain(name);
    for (const name of ['MIGRATION_EMERGENCY_THRESHOLD', 'MIGRATION_EMERGENCY_WINDOW', 'MIGRATION_CONTROL_COLLECTION']) {
      expect(spellings).toContain(name);
    }
    expect(new Set(spellings).size).toBe(spellings.length);
  });

  test('each default, written as text, loads to the default of its config key', () => {
    const defaults = loadConfig({});
    for (const variable of CONFIG_VARIABLES) {
      expect(valueAt(loadConfig({ [variable.name]: variable.default }), variable.key)).toStrictEqual(valueAt(defaults, variable.key));
      expect(valueAt(defaults, variable.key)).toStrictEqual(valueAt(DEFAULTS, variable.key));
    }
  });

  test('every entry says what it accepts and what it controls', () => {
    for (const variable of CONFIG_VARIABLES) {
      expect(variable.accepted.length).toBeGreaterThan(5);
      expect(variable.meaning.length).toBeGreaterThan(5);
    }
  });
});

describe('every spelling is read and changes the result', () => {
  // [variable, value, config key, expected value]; ROLLBACK_REQUIRE_CONFIRMATION=false needs an emulator.
  const cases: [string, string, string, unknown][] = [
    ['MIGRATION_BATCH_SIZE', '500', 'migration.batchSize', 500],
    ['MIGRATION_MAX_RETRIES', '0', 'migration.maxRetries', 0],
    ['MIGRATION_RETRY_DELAY', '250', 'migration.retryDelayMs', 250],
    ['MIGRATION_RETRY_DELAY_BASE', '2500', 'migration.retryDelayMs', 2500],
    ['MIGRATION_VALIDATION_ENABLED', 'FALSE', 'migration.validationEnabled', false],
    ['MIGRATION_TRANSACTION_TIMEOUT', '60000', 'migration.transactionTimeoutMs', 60000],
    ['MIGRATION_CONCURRENT_BATCHES', '8', 'migration.concurrentBatches', 8],
    ['MIGRATION_CHECKPOINT_INTERVAL', '250', 'migration.checkpointInterval', 250],
    ['MIGRATION_ROLLBACK_ENABLED', '0', 'migration.rollbackEnabled', false],
    ['MIGRATION_HEALTH_CHECK_INTERVAL', '5000', 'migration.healthCheckIntervalMs', 5000],
    ['MIGRATION_MEMORY_THRESHOLD', '1024', 'migration.memoryThresholdMb', 1024],
    ['MIGRATION_MEMORY_THRESHOLD_MB', '256', 'migration.memoryThresholdMb', 256],
    ['MIGRATION_QUOTA_SAFETY', '0.5', 'migration.quotaSafety', 0.5],
    ['MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR', '1', 'migration.quotaSafety', 1],
    ['MIGRATION_CONNECTION_POOL_SIZE', '1000', 'migration.connectionPoolSize', 1000],
    ['MIGRATION_EMERGENCY_THRESHOLD', '.25', 'migration.emergencyThreshold', 0.25],
    ['MIGRATION_EMERGENCY_WINDOW', '200', 'migration.emergencyWindow', 200],
    ['MIGRATION_CONTROL_COLLECTION', 'firemigrate_control', 'migration.controlCollection', 'firemigrate_control'],
    ['MIGRATION_LEASE_TTL_MS', ' 3000 ', 'migration.leaseTtlMs', 3000],
    ['MONITOR_SAMPLE_SIZE', '20', 'monitor.sampleSize', 20],
    ['MONITOR_HEALTH_INTERVAL', '60000', 'monitor.healthIntervalMs', 60000],
    [
      'MONITOR_ALERT_THRESHOLDS',
      '{"errorRate":{"critical":0.2}}',
      'monitor.alertThresholds',
      { ...DEFAULTS.monitor.alertThresholds, errorRate: { warning: 0.01, critical: 0.2 } },
    ],
    ['ROLLBACK_BATCH_SIZE', '1', 'rollback.batchSize', 1],
    ['ROLLBACK_MAX_RETRIES', '20', 'rollback.maxRetries', 20],
    ['ROLLBACK_TIMEOUT', '600000', 'rollback.timeoutMs', 600000],
    ['ROLLBACK_SAFETY_INTERVAL', '1000', 'rollback.safetyIntervalMs', 1000],
    ['ROLLBACK_VALIDATION_SAMPLE', '10000', 'rollback.validationSample', 10000],
    ['ROLLBACK_EMERGENCY_THRESHOLD', '0.05', 'rollback.emergencyThreshold', 0.05],
    ['ROLLBACK_BACKUP_VALIDATION', 'False', 'rollback.backupValidation', false],
    ['ROLLBACK_REQUIRE_CONFIRMATION', 'false', 'rollback.requireConfirmation', false],
    ['ROLLBACK_CONFIRMED', 'TRUE', 'rollback.confirmed', true],
  ];

  test('the cases cover every spelling in CONFIG_VARIABLES', () => {
    const covered = new Set(cases.map(([name]) => name));
    for (const variable of CONFIG_VARIABLES) {
      for (const name of [variable.name, ...variable.aliases]) expect(covered).toContain(name);
    }
  });

  test.each(cases)('%s=%s sets %s', (name, value, key, expected) => {
    expect(expected).not.toStrictEqual(valueAt(DEFAULTS, key));
    const config = loadConfig({ ...EMULATOR, [name]: value });
    expect(valueAt(config, key)).toStrictEqual(expected);
    // Nothing else moves: the rest equals the defaults (with the emulator seen).
    const rest = JSON.parse(JSON.stringify(config)) as FiremigrateConfig;
    const [section, field] = key.split('.') as [keyof FiremigrateConfig, string];
    (rest[section] as Record<string, unknown>)[field] = valueAt(DEFAULTS, key);
    expect(rest).toStrictEqual({ ...DEFAULTS, emulator: { firestoreHost: '127.0.0.1:8080', anyEmulator: true } });
  });

  test('values are trimmed, and booleans take true/false/1/0 in any case', () => {
    expect(loadConfig({ MIGRATION_BATCH_SIZE: ' 250\n' }).migration.batchSize).toBe(250);
    for (const [text, value] of [['true', true], ['TRUE', true], ['1', true], ['false', false], ['False', false], ['0', false]] as const) {
      expect(loadConfig({ ROLLBACK_CONFIRMED: text }).rollback.confirmed).toBe(value);
    }
  });

  test('the collection id takes 1500 bytes, counted in UTF-8', () => {
    const id = 'é'.repeat(750); // 2 bytes each
    expect(loadConfig({ MIGRATION_CONTROL_COLLECTION: id }).migration.controlCollection).toBe(id);
  });
});

describe('bad values', () => {
  // [variable, value, expected message]
  const cases: [string, string, string][] = [
    ['MIGRATION_BATCH_SIZE', 'abc', 'MIGRATION_BATCH_SIZE="abc" is invalid: expected an integer from 1 to 500'],
    ['MIGRATION_BATCH_SIZE', '0', 'MIGRATION_BATCH_SIZE="0" is invalid: expected an integer from 1 to 500'],
    ['MIGRATION_BATCH_SIZE', '501', 'MIGRATION_BATCH_SIZE="501" is invalid: expected an integer from 1 to 500'],
    ['MIGRATION_BATCH_SIZE', '1.5', 'MIGRATION_BATCH_SIZE="1.5" is invalid: expected an integer from 1 to 500'],
    ['MIGRATION_BATCH_SIZE', '1e2', 'MIGRATION_BATCH_SIZE="1e2" is invalid: expected an integer from 1 to 500'],
    ['MIGRATION_BATCH_SIZE', '100abc', 'MIGRATION_BATCH_SIZE="100abc" is invalid: expected an integer from 1 to 500'],
    ['MIGRATION_MAX_RETRIES', '-1', 'MIGRATION_MAX_RETRIES="-1" is invalid: expected an integer from 0 to 20'],
    ['MIGRATION_MAX_RETRIES', '21', 'MIGRATION_MAX_RETRIES="21" is invalid: expected an integer from 0 to 20'],
    ['MIGRATION_RETRY_DELAY_BASE', '60001', 'MIGRATION_RETRY_DELAY_BASE="60001" is invalid: expected an integer from 0 to 60000 (ms)'],
    ['MIGRATION_TRANSACTION_TIMEOUT', '999', 'MIGRATION_TRANSACTION_TIMEOUT="999" is invalid: expected an integer from 1000 to 600000 (ms)'],
    ['MIGRATION_CONCURRENT_BATCHES', '0', 'MIGRATION_CONCURRENT_BATCHES="0" is invalid: expected an integer from 1 to 100'],
    ['MIGRATION_CHECKPOINT_INTERVAL', '0', 'MIGRATION_CHECKPOINT_INTERVAL="0" is invalid: expected an integer from 1 to 1000000'],
    ['MIGRATION_HEALTH_CHECK_INTERVAL', '30s', 'MIGRATION_HEALTH_CHECK_INTERVAL="30s" is invalid: expected an integer from 1000 to 3600000 (ms)'],
    ['MIGRATION_MEMORY_THRESHOLD_MB', '512MB', 'MIGRATION_MEMORY_THRESHOLD_MB="512MB" is invalid: expected an integer from 64 to 32768 (MB)'],
    ['MIGRATION_QUOTA_SAFETY', '0', 'MIGRATION_QUOTA_SAFETY="0" is invalid: expected a number greater than 0 and at most 1'],
    ['MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR', '1.01', 'MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR="1.01" is invalid: expected a number greater than 0 and at most 1'],
    ['MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR', '80%', 'MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR="80%" is invalid: expected a number greater than 0 and at most 1'],
    ['MIGRATION_CONNECTION_POOL_SIZE', '1001', 'MIGRATION_CONNECTION_POOL_SIZE="1001" is invalid: expected an integer from 1 to 1000'],
    ['MIGRATION_EMERGENCY_THRESHOLD', '-0.1', 'MIGRATION_EMERGENCY_THRESHOLD="-0.1" is invalid: expected a number greater than 0 and at most 1'],
    ['MIGRATION_EMERGENCY_WINDOW', '9', 'MIGRATION_EMERGENCY_WINDOW="9" is invalid: expected an integer from 10 to 1000000'],
    ...['abc', '999', '3600001', '1.5'].map((value): [string, string, string] => [
      'MIGRATION_LEASE_TTL_MS',
      value,
      `MIGRATION_LEASE_TTL_MS="${value}" is invalid: expected an integer from 1000 to 3600000 (ms)`,
    ]),
    ['MONITOR_SAMPLE_SIZE', '0', 'MONITOR_SAMPLE_SIZE="0" is invalid: expected an integer from 1 to 10000'],
    ['MONITOR_HEALTH_INTERVAL', '86400001', 'MONITOR_HEALTH_INTERVAL="86400001" is invalid: expected an integer from 1000 to 86400000 (ms)'],
    ['ROLLBACK_BATCH_SIZE', '501', 'ROLLBACK_BATCH_SIZE="501" is invalid: expected an integer from 1 to 500'],
    ['ROLLBACK_MAX_RETRIES', 'three', 'ROLLBACK_MAX_RETRIES="three" is invalid: expected an integer from 0 to 20'],
    ['ROLLBACK_TIMEOUT', '5m', 'ROLLBACK_TIMEOUT="5m" is invalid: expected an integer from 1000 to 86400000 (ms)'],
    ['ROLLBACK_SAFETY_INTERVAL', '500', 'ROLLBACK_SAFETY_INTERVAL="500" is invalid: expected an integer from 1000 to 3600000 (ms)'],
    ['ROLLBACK_VALIDATION_SAMPLE', '0', 'ROLLBACK_VALIDATION_SAMPLE="0" is invalid: expected an integer from 1 to 10000'],
    ['ROLLBACK_EMERGENCY_THRESHOLD', '10', 'ROLLBACK_EMERGENCY_THRESHOLD="10" is invalid: expected a number greater than 0 and at most 1'],
    ['MIGRATION_VALIDATION_ENABLED', 'yes', 'MIGRATION_VALIDATION_ENABLED="yes" is invalid: expected true, false, 1 or 0'],
    ['MIGRATION_ROLLBACK_ENABLED', 'off', 'MIGRATION_ROLLBACK_ENABLED="off" is invalid: expected true, false, 1 or 0'],
    ['ROLLBACK_BACKUP_VALIDATION', '2', 'ROLLBACK_BACKUP_VALIDATION="2" is invalid: expected true, false, 1 or 0'],
    ['ROLLBACK_CONFIRMED', 'y', 'ROLLBACK_CONFIRMED="y" is invalid: expected true, false, 1 or 0'],
    [
      'ROLLBACK_REQUIRE_CONFIRMATION',
      'no',
      'ROLLBACK_REQUIRE_CONFIRMATION="no" is invalid: expected true, false, 1 or 0; false is honoured only against the Firestore emulator',
    ],
    ['MIGRATION_CONTROL_COLLECTION', 'a/b', `MIGRATION_CONTROL_COLLECTION="a/b" is invalid: expected a top-level collection id`],
    ['MIGRATION_CONTROL_COLLECTION', '__migrations__', `MIGRATION_CONTROL_COLLECTION="__migrations__" is invalid: expected a top-level collection id`],
    ['MIGRATION_CONTROL_COLLECTION', '..', `MIGRATION_CONTROL_COLLECTION=".." is invalid: expected a top-level collection id`],
    ['MIGRATION_CONTROL_COLLECTION', 'x'.repeat(1501), `MIGRATION_CONTROL_COLLECTION="${'x'.repeat(1501)}" is invalid: expected a top-level collection id`],
  ];

  test.each(cases)('%s=%s', (name, value, message) => {
    const error = configError({ [name]: value });
    expect(error.message.startsWith(message)).toBe(true);
    expect(error.message.split('\n')).toHaveLength(1);
    expect(error.variable).toBe(name);
    expect(error.value).toBe(value);
    expect(error.accepted).toBe(CONFIG_VARIABLES.find((v) => v.name === name || v.aliases.includes(name))!.accepted);
    expect(error.problems).toHaveLength(1);
  });

  test('a multi-byte collection id over 1500 bytes is refused although it has fewer characters', () => {
    const id = 'é'.repeat(751); // 1502 bytes, 751 characters
    expect(configError({ MIGRATION_CONTROL_COLLECTION: id }).variable).toBe('MIGRATION_CONTROL_COLLECTION');
  });

  test('a value with a control character is shown escaped', () => {
    expect(configError({ MIGRATION_BATCH_SIZE: '1\t0' }).message).toBe(
      'MIGRATION_BATCH_SIZE="1\\t0" is invalid: expected an integer from 1 to 500',
    );
  });

  test('several bad variables are reported together, one line each', () => {
    const error = configError({
      MIGRATION_BATCH_SIZE: 'abc',
      MONITOR_SAMPLE_SIZE: '0',
      ROLLBACK_CONFIRMED: 'maybe',
    });
    expect(error.message.split('\n')).toStrictEqual([
      'MIGRATION_BATCH_SIZE="abc" is invalid: expected an integer from 1 to 500',
      'MONITOR_SAMPLE_SIZE="0" is invalid: expected an integer from 1 to 10000',
      'ROLLBACK_CONFIRMED="maybe" is invalid: expected true, false, 1 or 0',
    ]);
    expect(error.problems.map((p) => [p.variable, p.value])).toStrictEqual([
      ['MIGRATION_BATCH_SIZE', 'abc'],
      ['MONITOR_SAMPLE_SIZE', '0'],
      ['ROLLBACK_CONFIRMED', 'maybe'],
    ]);
    expect(error.variable).toBe('MIGRATION_BATCH_SIZE');
    expect(error.name).toBe('ConfigError');
  });
});

describe('two spellings of one setting', () => {
  test.each([
    ['MIGRATION_RETRY_DELAY', 'MIGRATION_RETRY_DELAY_BASE', '1000', '2000'],
    ['MIGRATION_MEMORY_THRESHOLD', 'MIGRATION_MEMORY_THRESHOLD_MB', '512', '1024'],
    ['MIGRATION_QUOTA_SAFETY', 'MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR', '0.8', '0.5'],
  ])('%s and %s with different values is an error naming both', (name, alias, value, aliasValue) => {
    const error = configError({ [name]: value, [alias]: aliasValue });
    expect(error.message).toContain(`${name}="${value}" and ${alias}="${aliasValue}" disagree`);
    expect(error.message.split('\n')).toHaveLength(1);
    expect(error.variable).toBe(name);
  });

  test('the same value in both spellings is accepted, compared as values', () => {
    expect(loadConfig({ MIGRATION_RETRY_DELAY: '1500', MIGRATION_RETRY_DELAY_BASE: ' 1500 ' }).migration.retryDelayMs).toBe(1500);
    expect(loadConfig({ MIGRATION_QUOTA_SAFETY: '0.5', MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR: '0.50' }).migration.quotaSafety).toBe(0.5);
  });

  test('a bad value in one spelling is reported as that spelling', () => {
    const error = configError({ MIGRATION_MEMORY_THRESHOLD: '512', MIGRATION_MEMORY_THRESHOLD_MB: 'lots' });
    expect(error.message).toBe('MIGRATION_MEMORY_THRESHOLD_MB="lots" is invalid: expected an integer from 64 to 32768 (MB)');
    expect(error.variable).toBe('MIGRATION_MEMORY_THRESHOLD_MB');
  });
});

describe('MONITOR_ALERT_THRESHOLDS', () => {
  const thresholds = (json: string) => loadConfig({ MONITOR_ALERT_THRESHOLDS: json }).monitor.alertThresholds;

  test("the seed's example parses and keeps the other defaults", () => {
    expect(thresholds('{"responseTime":{"warning":1000,"critical":3000}}')).toStrictEqual(DEFAULTS.monitor.alertThresholds);
  });

  test('merges key by key, down to warning and critical', () => {
    expect(thresholds('{"responseTime":{"critical":5000},"memory":{"warning":256,"critical":400},"integrity":{"warning":0.99}}')).toStrictEqual({
      responseTime: { warning: 1000, critical: 5000 },
      errorRate: { warning: 0.01, critical: 0.05 },
      memory: { warning: 256, critical: 400 },
      integrity: { warning: 0.99, critical: 0.9 },
    });
    expect(thresholds('{}')).toStrictEqual(DEFAULTS.monitor.alertThresholds);
  });

  test('bad JSON is an error naming the variable, the value and the JSON problem', () => {
    const error = configError({ MONITOR_ALERT_THRESHOLDS: '{responseTime: 1000}' });
    expect(error.variable).toBe('MONITOR_ALERT_THRESHOLDS');
    expect(error.value).toBe('{responseTime: 1000}');
    expect(error.message).toMatch(/^MONITOR_ALERT_THRESHOLDS="\{responseTime: 1000\}" is invalid: not valid JSON \(.+\); expected a JSON object/);
  });

  test('JSON that is not an object is refused', () => {
    for (const json of ['[]', '1000', 'null', '"x"']) {
      expect(configError({ MONITOR_ALERT_THRESHOLDS: json }).message).toContain('is invalid: expected a JSON object; expected a JSON object with any of');
    }
  });

  test('an unknown key is an error naming it, at either level', () => {
    const error = configError({ MONITOR_ALERT_THRESHOLDS: '{"latency":{"warning":1},"memory":{"warn":100}}' });
    expect(error.message).toContain(`MONITOR_ALERT_THRESHOLDS='{"latency":{"warning":1},"memory":{"warn":100}}' is invalid:`);
    expect(error.message).toContain('unknown key "latency"');
    expect(error.message).toContain('unknown key "memory.warn"');
  });

  test('values of the wrong type or out of range name their path', () => {
    expect(configError({ MONITOR_ALERT_THRESHOLDS: '{"responseTime":{"warning":"1s"}}' }).message).toContain(
      'responseTime.warning: expected a number',
    );
    expect(configError({ MONITOR_ALERT_THRESHOLDS: '{"errorRate":{"critical":5}}' }).message).toContain(
      'errorRate.critical: expected a ratio from 0 to 1',
    );
    expect(configError({ MONITOR_ALERT_THRESHOLDS: '{"memory":{"warning":0}}' }).message).toContain(
      'memory.warning: expected a number greater than 0',
    );
    expect(configError({ MONITOR_ALERT_THRESHOLDS: '{"integrity":5}' }).message).toContain(
      'integrity: expected {"warning": n, "critical": n}',
    );
  });

  test('warning must come before critical: below it for "above" metrics, above it for integrity', () => {
    expect(configError({ MONITOR_ALERT_THRESHOLDS: '{"responseTime":{"warning":4000}}' }).message).toContain(
      'responseTime.warning (4000) must be below responseTime.critical (3000)',
    );
    expect(configError({ MONITOR_ALERT_THRESHOLDS: '{"errorRate":{"warning":0.05,"critical":0.05}}' }).message).toContain(
      'errorRate.warning (0.05) must be below errorRate.critical (0.05)',
    );
    expect(configError({ MONITOR_ALERT_THRESHOLDS: '{"memory":{"critical":256}}' }).message).toContain(
      'memory.warning (512) must be below memory.critical (256)',
    );
    expect(configError({ MONITOR_ALERT_THRESHOLDS: '{"integrity":{"warning":0.9,"critical":0.95}}' }).message).toContain(
      'integrity.warning (0.9) must be above integrity.critical (0.95)',
    );
    expect(thresholds('{"integrity":{"warning":0.8,"critical":0.5}}').integrity).toStrictEqual({ warning: 0.8, critical: 0.5 });
  });
});

describe('ROLLBACK_REQUIRE_CONFIRMATION and emulators', () => {
  test('false is refused outside emulators, saying why', () => {
    const error = configError({ ROLLBACK_REQUIRE_CONFIRMATION: 'false' });
    expect(error.variable).toBe('ROLLBACK_REQUIRE_CONFIRMATION');
    expect(error.value).toBe('false');
    expect(error.message).toMatch(/^ROLLBACK_REQUIRE_CONFIRMATION="false" is refused: FIRESTORE_EMULATOR_HOST is not set/);
    expect(error.message).toContain('FIRESTORE_EMULATOR_HOST');
  });

  test('false is refused with 0 as well, and when FUNCTIONS_EMULATOR is not true', () => {
    expect(configError({ ROLLBACK_REQUIRE_CONFIRMATION: '0' }).message).toMatch(/^ROLLBACK_REQUIRE_CONFIRMATION="0" is refused/);
    expect(configError({ ROLLBACK_REQUIRE_CONFIRMATION: 'false', FUNCTIONS_EMULATOR: 'false' }).variable).toBe(
      'ROLLBACK_REQUIRE_CONFIRMATION',
    );
    expect(configError({ ROLLBACK_REQUIRE_CONFIRMATION: 'false', FIRESTORE_EMULATOR_HOST: '' }).variable).toBe(
      'ROLLBACK_REQUIRE_CONFIRMATION',
    );
  });

  test('false is reported together with other problems', () => {
    const error = configError({ ROLLBACK_REQUIRE_CONFIRMATION: 'false', ROLLBACK_BATCH_SIZE: '0' });
    expect(error.problems.map((p) => p.variable)).toStrictEqual(['ROLLBACK_BATCH_SIZE', 'ROLLBACK_REQUIRE_CONFIRMATION']);
  });

  test('false is honoured with FIRESTORE_EMULATOR_HOST, which the config reports', () => {
    const config = loadConfig({ ROLLBACK_REQUIRE_CONFIRMATION: 'false', FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' });
    expect(config.rollback.requireConfirmation).toBe(false);
    expect(config.emulator).toStrictEqual({ firestoreHost: '127.0.0.1:8080', anyEmulator: true });
  });

  test.each([
    ['PUBSUB_EMULATOR_HOST', '127.0.0.1:8085'],
    ['FIREBASE_AUTH_EMULATOR_HOST', '127.0.0.1:9099'],
    ['CLOUD_TASKS_EMULATOR_HOST', '127.0.0.1:9499'],
    ['FUNCTIONS_EMULATOR', 'true'],
  ])('%s marks an emulator in use but does not lift the confirmation (production data)', (name, value) => {
    expect(loadConfig({ [name]: value }).emulator).toStrictEqual({ anyEmulator: true });
    expect(configError({ ROLLBACK_REQUIRE_CONFIRMATION: 'false', [name]: value }).variable).toBe('ROLLBACK_REQUIRE_CONFIRMATION');
  });

  test('without emulator variables, none is in use and firestoreHost is absent', () => {
    const config = loadConfig({});
    expect(config.emulator.anyEmulator).toBe(false);
    expect('firestoreHost' in config.emulator).toBe(false);
  });
});

describe('lease settings', () => {
  it('defaults to 60 s and renews every third of MIGRATION_LEASE_TTL_MS', () => {
    expect(leaseSettings(loadConfig({}))).toEqual({ ttlMs: 60_000, renewEveryMs: 20_000 });
    expect(leaseSettings(loadConfig({ MIGRATION_LEASE_TTL_MS: '3000' }))).toEqual({ ttlMs: 3000, renewEveryMs: 1000 });
  });
});
