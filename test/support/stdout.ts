/**
 * What the code under test writes to stdout (the functions' structured log lines), captured
 * afresh for each test of the calling `describe` and kept off the test output.
 */
export function captureStdout(): string[] {
  const lines: string[] = [];
  let spy: jest.SpyInstance;
  beforeEach(() => {
    lines.length = 0;
    spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
  });
  afterEach(() => spy.mockRestore());
  return lines;
}
