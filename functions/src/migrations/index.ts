import type { Migration } from '../definitions/types';
import { conversationsV2, tradesV2 } from './tradeya';

/** The migrations built into this project (the TradeYa v2 example). */
export const projectMigrations: Migration[] = [tradesV2, conversationsV2];
