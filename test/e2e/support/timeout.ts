// A function's first call in the Functions emulator starts its worker (seconds on a busy 2-core machine).
jest.setTimeout(60_000);
