import type { ThresholdPair } from '../config';
import type { CheckLevel } from './types';

export interface Evaluation {
  status: CheckLevel;
  /** The threshold crossed, or the warning threshold when none was. */
  threshold: number;
}

/** For figures that are bad when high (latency, error rate, memory): alerts strictly ABOVE a threshold. */
export function evaluateAbove(value: number, pair: ThresholdPair): Evaluation {
  if (value > pair.critical) return { status: 'critical', threshold: pair.critical };
  if (value > pair.warning) return { status: 'warning', threshold: pair.warning };
  return { status: 'ok', threshold: pair.warning };
}

/** For figures that are bad when low (integrity, readable share): alerts strictly BELOW a threshold. */
export function evaluateBelow(value: number, pair: ThresholdPair): Evaluation {
  if (value < pair.critical) return { status: 'critical', threshold: pair.critical };
  if (value < pair.warning) return { status: 'warning', threshold: pair.warning };
  return { status: 'ok', threshold: pair.warning };
}

export function formatRatio(ratio: number): string {
  return `${(ratio * 100).toFixed(2)} %`;
}
