import {
  COMMIT_BYTE_BUDGET,
  CommitBudget,
  commitByteBudget,
  documentsPerCommit,
  EMULATOR_COMMIT_BYTE_BUDGET,
  estimateValueBytes,
  estimateWriteBytes,
  MAX_WRITES_PER_COMMIT,
  writesPerDocument,
} from '../../functions/src/engine/batch-size';

describe('batch size', () => {
  it('counts the update, the before-image and its chunks per document', () => {
    expect(writesPerDocument({ rollbackEnabled: true })).toBe(2);
    expect(writesPerDocument({ rollbackEnabled: true, imageChunks: 2 })).toBe(4);
    expect(writesPerDocument({ rollbackEnabled: false })).toBe(1);
    expect(writesPerDocument({ rollbackEnabled: false, imageChunks: 3 })).toBe(1);
  });

  it('fits ⌊(500 − 1 marker) / writes-per-document⌋ documents, bounded by MIGRATION_BATCH_SIZE', () => {
    expect(documentsPerCommit({ batchSize: 500, rollbackEnabled: true })).toBe(249);
    expect(documentsPerCommit({ batchSize: 500, rollbackEnabled: false })).toBe(499);
    expect(documentsPerCommit({ batchSize: 100, rollbackEnabled: true })).toBe(100);
    expect(documentsPerCommit({ batchSize: 1, rollbackEnabled: true })).toBe(1);
    // The arithmetic holds: a full batch plus its marker never passes 500 writes.
    for (const rollbackEnabled of [true, false]) {
      const docs = documentsPerCommit({ batchSize: 500, rollbackEnabled });
      expect(docs * writesPerDocument({ rollbackEnabled }) + 1).toBeLessThanOrEqual(MAX_WRITES_PER_COMMIT);
      expect((docs + 1) * writesPerDocument({ rollbackEnabled }) + 1).toBeGreaterThan(MAX_WRITES_PER_COMMIT);
    }
  });

  it('keeps commits under the request size: 9 MiB in production, 3.5 MiB on the emulator (4 MiB gRPC messages)', () => {
    expect(commitByteBudget(false)).toBe(COMMIT_BYTE_BUDGET);
    expect(COMMIT_BYTE_BUDGET).toBeLessThan(10 * 1024 * 1024);
    expect(commitByteBudget(true)).toBe(EMULATOR_COMMIT_BYTE_BUDGET);
    expect(EMULATOR_COMMIT_BYTE_BUDGET).toBeLessThan(4 * 1024 * 1024);
  });

  it('budgets writes (the marker counts) and bytes, and always admits the first document', () => {
    const budget = new CommitBudget(10, 1000);
    expect(budget.writes).toBe(1);
    expect(budget.tryAdd(4, 100, true)).toBe(true);
    expect(budget.tryAdd(4, 100, false)).toBe(true);
    expect(budget.tryAdd(2, 100, false)).toBe(false); // 11 writes
    expect(budget.tryAdd(1, 801, false)).toBe(false); // 1001 bytes
    expect(budget.tryAdd(1, 800, false)).toBe(true);
    expect([budget.writes, budget.bytes]).toEqual([10, 1000]);
    const tight = new CommitBudget(10, 1000);
    expect(tight.tryAdd(3, 5000, true)).toBe(true);
    expect(tight.tryAdd(1, 1, false)).toBe(false);
  });

  it('estimates at least the payload of a write', () => {
    const text = 'é'.repeat(1000);
    expect(estimateValueBytes({ stringValue: text })).toBeGreaterThanOrEqual(2000);
    expect(estimateValueBytes({ bytesValue: Buffer.alloc(5000) })).toBeGreaterThanOrEqual(5000);
    const write = {
      update: { name: 'projects/p/databases/(default)/documents/c/d', fields: { m: { mapValue: { fields: { s: { stringValue: text } } } }, a: { arrayValue: { values: [{ stringValue: text }] } } } },
      updateMask: { fieldPaths: ['m', 'a'] },
    };
    expect(estimateWriteBytes(write)).toBeGreaterThan(4000);
  });
});
