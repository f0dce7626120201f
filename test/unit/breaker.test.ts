import { CircuitBreaker, DEFAULT_MIN_SAMPLE } from '../../functions/src/engine/breaker';
import { loadConfig } from '../../functions/src/config';

function breaker(threshold: number, window: number, minSample?: number) {
  return new CircuitBreaker({ threshold, window, minSample, thresholdName: 'MIGRATION_EMERGENCY_THRESHOLD' });
}

describe('CircuitBreaker', () => {
  it('does not trip before the minimum sample, min(window, 100) documents, whatever the rate', () => {
    const b = breaker(0.1, 1000);
    expect(b.minSample).toBe(DEFAULT_MIN_SAMPLE);
    b.record(0, 99);
    expect(b.tripped()).toBeNull();
    b.record(0, 1);
    expect(b.tripped()).toMatchObject({ rate: 1, failed: 100, sample: 100 });
    expect(breaker(0.1, 10).minSample).toBe(10);
  });

  it('trips when the rate over the window passes the threshold, and says why', () => {
    const b = CircuitBreaker.forMigration(loadConfig({}));
    b.record(450, 50);
    b.record(450, 50);
    expect(b.tripped()).toBeNull(); // exactly 10 % of 1000
    b.record(0, 1); // the window slides by one ok document: 101 of 1000
    expect(b.tripped()).toEqual({
      rate: 0.101,
      failed: 101,
      sample: 1000,
      threshold: 0.1,
      window: 1000,
      reason: 'failure rate 10.1 % (101 of the last 1000 documents) is above MIGRATION_EMERGENCY_THRESHOLD 10 %',
    });
  });

  it('does not trip at a rate equal to the threshold, including thresholds with no exact binary form', () => {
    const b = breaker(0.29, 100);
    b.record(71, 29);
    expect(b.current()).toEqual({ rate: 0.29, failed: 29, sample: 100 });
    expect(b.tripped()).toBeNull();
    const never = breaker(1, 10);
    never.record(0, 50);
    expect(never.tripped()).toBeNull();
  });

  it('slides: failures older than the window age out', () => {
    const b = breaker(0.2, 100);
    b.record(80, 20);
    expect(b.tripped()).toBeNull();
    b.record(100, 0);
    expect(b.current()).toEqual({ rate: 0, failed: 0, sample: 100 });
    b.record(90, 10); // 30 failures in 200 documents, but only the last 100 count
    expect(b.current()).toEqual({ rate: 0.1, failed: 10, sample: 100 });
    expect(b.tripped()).toBeNull();
    b.record(79, 21);
    expect(b.tripped()).toMatchObject({ failed: 21, sample: 100 });
  });

  it('trims the batch the window boundary falls in, its failures in proportion, in whole documents', () => {
    const b = breaker(0.9, 10);
    b.record(5, 5);
    b.record(5, 0); // 5 of the first batch's 10 documents leave the window: 2.5 failed → 3, 2 ok
    expect(b.current()).toEqual({ rate: 0.2, failed: 2, sample: 10 });
    const big = breaker(0.5, 100);
    big.record(150, 50); // one batch larger than the window
    expect(big.current()).toEqual({ rate: 0.25, failed: 25, sample: 100 });
  });

  it('matches a document-by-document window over many batches (the ring grows as needed)', () => {
    const b = breaker(0.5, 1000, 1000);
    const outcomes: boolean[] = [];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      const failed = random() < 0.3;
      outcomes.push(failed);
      b.record(failed ? 0 : 1, failed ? 1 : 0);
      if (i % 997 === 0 || i === 19_999) {
        const window = outcomes.slice(-1000);
        expect(b.current()).toEqual({ rate: window.filter(Boolean).length / window.length, failed: window.filter(Boolean).length, sample: window.length });
      }
    }
    expect(b.tripped()).toBeNull();
  });

  it('stays tripped when later batches bring the rate back down', () => {
    const b = breaker(0.1, 100);
    b.record(50, 50);
    const trip = b.tripped();
    expect(trip).not.toBeNull();
    b.record(1000, 0);
    expect(b.current().failed).toBe(0);
    expect(b.tripped()).toBe(trip);
  });

  it('serves rollback with ROLLBACK_EMERGENCY_THRESHOLD and the migration\'s window', () => {
    const b = CircuitBreaker.forRollback(loadConfig({ ROLLBACK_EMERGENCY_THRESHOLD: '0.05', MIGRATION_EMERGENCY_WINDOW: '200' }));
    expect(b.window).toBe(200);
    b.record(94, 6);
    expect(b.tripped()?.reason).toBe('failure rate 6 % (6 of the last 100 documents) is above ROLLBACK_EMERGENCY_THRESHOLD 5 %');
  });

  it('ignores an empty batch and refuses counts that are not whole numbers ≥ 0', () => {
    const b = breaker(0.1, 100);
    b.record(0, 0);
    expect(b.current()).toEqual({ rate: 0, failed: 0, sample: 0 });
    expect(() => b.record(-1, 0)).toThrow('ok documents must be a whole number ≥ 0, got -1');
    expect(() => b.record(1, 0.5)).toThrow('failed documents must be a whole number ≥ 0, got 0.5');
  });

  it('refuses a threshold outside (0, 1], a window below 1 and a minimum sample outside 1..window', () => {
    expect(() => breaker(0, 100)).toThrow('MIGRATION_EMERGENCY_THRESHOLD must be greater than 0 and at most 1, got 0');
    expect(() => breaker(1.5, 100)).toThrow(/MIGRATION_EMERGENCY_THRESHOLD/);
    expect(() => breaker(0.1, 0)).toThrow(/window must be a whole number ≥ 1/);
    expect(() => breaker(0.1, 100, 101)).toThrow(/minimum sample must be a whole number from 1 to the window \(100\), got 101/);
  });
});
