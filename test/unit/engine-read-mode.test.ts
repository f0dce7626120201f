import { READ_MODE_SWITCH_AT, READ_MODE_WINDOW, ReadModePolicy } from '../../functions/src/engine/read-mode';

const clean = { preconditionRetries: 0 };
const reread = { preconditionRetries: 1 };

describe('read mode of a partition', () => {
  it('streams whole documents while its batches commit without re-reading', () => {
    const policy = new ReadModePolicy();
    expect(policy.mode).toBe('documents');
    for (let i = 0; i < 100; i++) policy.recordStreamed(clean);
    expect(policy.mode).toBe('documents');
  });

  it(`switches to keys once ${READ_MODE_SWITCH_AT} of the last ${READ_MODE_WINDOW} streamed batches had to re-read, and stays there`, () => {
    const policy = new ReadModePolicy();
    policy.recordStreamed(reread);
    for (let i = 0; i < READ_MODE_WINDOW - 2; i++) policy.recordStreamed(clean);
    expect(policy.mode).toBe('documents');
    policy.recordStreamed(reread);
    expect(policy.mode).toBe('keys');
    for (let i = 0; i < 100; i++) policy.recordStreamed(clean);
    expect(policy.mode).toBe('keys');
  });

  it('forgets re-reads that left the window', () => {
    const policy = new ReadModePolicy();
    policy.recordStreamed(reread);
    for (let i = 0; i < READ_MODE_WINDOW; i++) policy.recordStreamed(clean);
    policy.recordStreamed(reread);
    expect(policy.mode).toBe('documents');
  });
});
