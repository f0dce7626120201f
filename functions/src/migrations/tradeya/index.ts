export { tradesV2 } from './trades';
export { conversationsV2 } from './conversations';
