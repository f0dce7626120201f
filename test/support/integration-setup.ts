// Emulator suites seed and migrate thousands of documents: allow them minutes, not jest's 5 s.
jest.setTimeout(180_000);

// The CLI commands these suites run inside this process read their configuration from the
// environment; see `emulatorConfig` for why the memory threshold is raised in tests.
process.env.MIGRATION_MEMORY_THRESHOLD = '16384';
