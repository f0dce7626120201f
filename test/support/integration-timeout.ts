// Emulator suites seed and migrate thousands of documents: allow them minutes, not jest's 5 s.
jest.setTimeout(180_000);
