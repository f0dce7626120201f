import { FieldValue } from '@google-cloud/firestore';
import { defineMigration } from '../../definitions/define';
import type { DocData } from '../../definitions/types';
import { activeUsers, userConversations } from './app-queries';
import { SCHEMA_VERSION_V2, conversationV2Schema, legacyConversationSchema, type LegacyConversation } from './schemas';

/**
 * The fields v2 adds to a valid legacy conversation (the engine adds the version marker):
 * `participantIds`, every participant's `id` (else `userId`), first occurrence first, no repeats.
 */
function upgradeConversation(doc: DocData): DocData {
  // `from` has accepted the document before `up` runs: every participant has an id or a userId.
  const conversation = doc as LegacyConversation;
  const ids = conversation.participants.map((p) => (p.id ?? p.userId) as string);
  return { participantIds: [...new Set(ids)] };
}

export const conversationsV2 = defineMigration({
  id: 'tradeya-conversations-v2',
  version: '2.0',
  description:
    'TradeYa conversations v2 (expand): participantIds lists the user ids of participants[] (id or userId), ' +
    "so the app can find a user's conversations with array-contains; participants stays as it is.",
  target: { collection: 'conversations' },
  marker: { field: 'schemaVersion', from: null, to: SCHEMA_VERSION_V2 },
  from: legacyConversationSchema,
  to: conversationV2Schema,
  up: upgradeConversation,
  down: () => ({ participantIds: FieldValue.delete() }),
  // `[]`: every element of the array at that path names a user.
  references: [{ field: 'participantIds[]', collection: 'users' }],
  impactQueries: [activeUsers],
  probes: [userConversations],
  // No legacyFields: `participants` is not legacy — it carries the names and avatars the app
  // shows — so the contract step has nothing to remove.
});
