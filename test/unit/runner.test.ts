import { MAX_SEQ, computeResumePoint, markerId, partitionId } from '../../functions/src/control/partitions';
import { RunTransitionError, assertTransition, canTransition, newRunId } from '../../functions/src/control/runs';
import { perPartitionInFlight } from '../../functions/src/engine/runner';
import { resumeCommand, signalExitCode } from '../../functions/src/engine/shutdown';

const fresh = { resumeFromSeq: 0, nextSeq: 0, cursor: null };
const marker = (seq: number, deferred = 0) => ({ seq, lastKey: `trades/k${seq}`, deferred });

describe('resume point', () => {
  it('continues after the last key of the highest contiguous seq; new seqs above every marker', () => {
    expect(computeResumePoint(fresh, [0, 1, 2, 3, 5].map((seq) => marker(seq)))).toEqual({
      cursor: 'trades/k3',
      resumeFromSeq: 6,
      contiguousThrough: 3,
      outOfOrder: 1,
    });
  });

  it('starts from the partition start when seq 0 never landed, and still never reuses a seq', () => {
    expect(computeResumePoint(fresh, [marker(1), marker(2)])).toEqual({ cursor: null, resumeFromSeq: 3, contiguousThrough: null, outOfOrder: 2 });
  });

  it('keeps the previous cursor when the epoch committed nothing, and honours the seq reservation', () => {
    const paused = { resumeFromSeq: 70, nextSeq: 128, cursor: 'trades/k69' };
    expect(computeResumePoint(paused, [])).toEqual({ cursor: 'trades/k69', resumeFromSeq: 128, contiguousThrough: null, outOfOrder: 0 });
    expect(computeResumePoint(paused, [marker(70), marker(71)])).toEqual({ cursor: 'trades/k71', resumeFromSeq: 128, contiguousThrough: 71, outOfOrder: 0 });
    expect(computeResumePoint(paused, [marker(70), marker(200)])).toEqual({ cursor: 'trades/k70', resumeFromSeq: 201, contiguousThrough: 70, outOfOrder: 1 });
  });

  it('does not move past a batch that deferred keys: later seqs may cover later keys only', () => {
    // seq 1 committed part of its keys; seq 2 (already in flight) covers later keys; seq 3 took
    // the deferred keys and never landed.
    expect(computeResumePoint(fresh, [marker(0), marker(1, 5), marker(2)])).toEqual({
      cursor: 'trades/k1',
      resumeFromSeq: 3,
      contiguousThrough: 1,
      outOfOrder: 1,
    });
  });

  it('refuses markers out of seq order or from before the epoch', () => {
    expect(() => computeResumePoint(fresh, [marker(2), marker(1)])).toThrow(/sorted by seq from 0; got 1 after 2/);
    expect(() => computeResumePoint({ ...fresh, resumeFromSeq: 5 }, [marker(4)])).toThrow(/sorted by seq from 5; got 4/);
  });
});

describe('ids', () => {
  it('pads partitions to 4 digits and seqs to 8, so marker ids sort by seq', () => {
    expect(partitionId(3)).toBe('p0003');
    expect(markerId('p0003', 42)).toBe('p0003-00000042');
    const ids = [9, 10, 100, 2].map((seq) => markerId('p0000', seq)).sort();
    expect(ids).toEqual(['p0000-00000002', 'p0000-00000009', 'p0000-00000010', 'p0000-00000100']);
    expect(() => markerId('p0000', MAX_SEQ + 1)).toThrow(/from 0 to 99999999, got 100000000/);
    expect(() => markerId('p0000', -1)).toThrow(/got -1/);
  });

  it('makes run ids that sort by creation time', () => {
    const a = newRunId(new Date('2026-11-29T09:05:07Z'));
    const b = newRunId(new Date('2026-11-29T10:00:00Z'));
    expect(a).toMatch(/^20261129-090507-[0-9a-f]{6}$/);
    expect(a < b).toBe(true);
  });
});

describe('run transitions', () => {
  it('allows the lifecycle and refuses the rest, naming what is allowed', () => {
    expect(canTransition('planning', 'running')).toBe(true);
    expect(canTransition('running', 'paused')).toBe(true);
    expect(canTransition('paused', 'running')).toBe(true);
    expect(canTransition('failed', 'running')).toBe(true);
    expect(canTransition('running', 'completed')).toBe(true);
    expect(canTransition('completed', 'rolled_back')).toBe(true);
    expect(canTransition('completed', 'running')).toBe(false);
    expect(canTransition('paused', 'completed')).toBe(false);
    expect(canTransition('running', 'running')).toBe(false);
    expect(() => assertTransition('r1', 'completed', 'running')).toThrow(RunTransitionError);
    expect(() => assertTransition('r1', 'completed', 'running')).toThrow('Run r1 cannot go from "completed" to "running" (from "completed" it can go to "rolled_back").');
    expect(() => assertTransition('r1', 'aborted', 'running')).toThrow(/nothing: it is final/);
  });
});

describe('pipelining bounds', () => {
  it('shares the connection pool evenly between the partitions in flight', () => {
    expect(perPartitionInFlight(10, 3)).toBe(4);
    expect(perPartitionInFlight(10, 1)).toBe(10);
    expect(perPartitionInFlight(2, 8)).toBe(1);
  });
});

describe('shutdown helpers', () => {
  it('prints a resume command with the global flags last, quoted for a shell', () => {
    expect(resumeCommand('trades-v2', 'r1')).toBe('firemigrate run trades-v2 --execute --resume r1');
    expect(resumeCommand('trades-v2', 'r1', ['--project', 'demo-x', '--migrations', 'my dir/m.ts'])).toBe(
      "firemigrate run trades-v2 --execute --resume r1 --project demo-x --migrations 'my dir/m.ts'",
    );
  });

  it('exits with 128 + the signal number', () => {
    expect(signalExitCode('SIGINT')).toBe(130);
    expect(signalExitCode('SIGTERM')).toBe(143);
  });
});
