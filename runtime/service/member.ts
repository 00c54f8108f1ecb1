/** One member of a presence channel: a client connection and the principal it belongs to. */
export interface ChannelMember {
  readonly clientId: string;
  readonly principal: string;
}
